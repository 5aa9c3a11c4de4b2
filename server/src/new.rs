//! `wasmudf new --lang LANG NAME`: a project for a new set of functions, ready to
//! build with `wasmudf build` and load with CREATE FUNCTION: a scalar and an aggregate
//! to start from, and a README with the commands.
//!
//! The Rust project is a crate outside this repository: it depends on the SDK by path
//! (the checkout this binary was built from, or `--sdk`), targets
//! wasm32-unknown-unknown and carries the loop-unrolling flag in `.cargo/config.toml`.
//! The other languages' projects are one source file: `wasmudf build` brings their SDK.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::build::rust::UNROLL_FLAG;
use crate::build::{write_tree, Language};

/// `wasmudf new --lang LANG NAME`.
#[derive(Args, Debug)]
pub struct NewArgs {
    /// The language of the functions.
    #[arg(long = "lang", value_enum)]
    pub language: Language,
    /// The project's directory, created (its last component names the project: letters,
    /// digits and `_`, starting with a letter).
    pub name: PathBuf,
    /// Rust: the SDK's directory (`udfs/sdk` of a wasmudf checkout; default: the one
    /// this binary was built from).
    #[arg(long)]
    pub sdk: Option<PathBuf>,
}

/// The SDK of the checkout this binary was built from.
fn built_in_sdk() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../udfs/sdk")
}

pub fn run(args: &NewArgs) -> Result<(), String> {
    let name = args
        .name
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("{}: not a project name", args.name.display()))?;
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "{name}: a project name is letters, digits and `_`, starting with a letter"
        ));
    }
    if args.name.exists() {
        return Err(format!("{}: already exists", args.name.display()));
    }
    let spelling = Spelling::of(args.language);
    let mut files = match spelling.template {
        Some((extension, text)) => vec![(format!("{name}.{extension}"), text.to_string())],
        None => rust_files(name, args.sdk.as_deref())?,
    };
    files.push(("README.md".into(), readme(name, &spelling)));
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(path, text)| (path.as_str(), text.as_str()))
        .collect();
    write_tree(&args.name, &borrowed)?;
    println!(
        "created {} ({} project); build it with: {}",
        args.name.display(),
        spelling.shown,
        spelling.build_command(name, &args.name.display().to_string())
    );
    Ok(())
}

/// How a language is named and what its project holds.
struct Spelling {
    /// Its `--lang` value, also the name of its guide (docs/writing-<flag>-udfs.md).
    flag: &'static str,
    /// Its name for people.
    shown: &'static str,
    /// The one source file (extension, text); `None` for Rust's crate.
    template: Option<(&'static str, &'static str)>,
}

impl Spelling {
    fn of(language: Language) -> Self {
        let (flag, shown, template) = match language {
            Language::Rust => ("rust", "Rust", None),
            Language::Python => ("python", "Python", Some(("py", PYTHON))),
            Language::C => ("c", "C", Some(("c", C))),
            Language::Go => ("go", "Go", Some(("go", GO))),
            Language::Js => ("js", "JavaScript", Some(("js", JS))),
        };
        Spelling {
            flag,
            shown,
            template,
        }
    }

    /// `wasmudf build` of project `name` in `dir`: the crate, or its source file.
    fn build_command(&self, name: &str, dir: &str) -> String {
        let source = match self.template {
            Some((extension, _)) => format!("/{name}.{extension}"),
            None => String::new(),
        };
        format!("wasmudf build --lang {} {dir}{source}", self.flag)
    }
}

fn rust_files(name: &str, sdk: Option<&Path>) -> Result<Vec<(String, String)>, String> {
    let sdk = sdk.map(Path::to_path_buf).unwrap_or_else(built_in_sdk);
    let sdk = sdk.canonicalize().map_err(|e| {
        format!(
            "the Rust SDK {}: {e} (pass --sdk DIR, the udfs/sdk directory of a wasmudf checkout)",
            sdk.display()
        )
    })?;
    let sdk = sdk.display().to_string().replace('\\', "/");
    let flags: Vec<String> = UNROLL_FLAG.split(' ').map(|f| format!("\"{f}\"")).collect();
    Ok(vec![
        (
            "Cargo.toml".into(),
            format!(
                r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2021"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
wasmudf = {{ path = "{sdk}" }}

[profile.release]
opt-level = 3
lto = true
codegen-units = 1
panic = "abort"
strip = "debuginfo"
"#
            ),
        ),
        (
            ".cargo/config.toml".into(),
            format!(
                r#"[build]
target = "wasm32-unknown-unknown"

# wasmtime checks fuel and the deadline at every loop header; with LLVM's default for
# Wasm a column loop paid that every row or two.
[target.wasm32-unknown-unknown]
rustflags = [{}]
"#,
                flags.join(", ")
            ),
        ),
        (".gitignore".into(), "/target\n*.wasm\n".into()),
        ("src/lib.rs".into(), RUST.to_string()),
    ])
}

fn readme(name: &str, spelling: &Spelling) -> String {
    let build = spelling.build_command(name, ".");
    let built = format!("./{name}.wasm");
    format!(
        r#"# {name}

SQL functions in {lang} for wasmudf.

```sh
{build}             # writes {built} and lists its functions
wasmudf inspect {built}      # the SQL signatures and the CREATE FUNCTION statements
```

Copy `{name}.wasm` into the server's modules directory (`<data-dir>/modules`), then:

```sql
SELECT * FROM wasm_load('{name}.wasm');  -- every function, under its own name
SELECT add_one(41), my_sum(x) FROM (VALUES (1), (2)) t(x);
```

The guide: docs/writing-{doc}-udfs.md of the wasmudf repository.
"#,
        lang = spelling.shown,
        doc = spelling.flag,
    )
}

const RUST: &str = include_str!("new/template.rs");

const PYTHON: &str = include_str!("new/template.py");
const C: &str = include_str!("new/template.c");
const GO: &str = include_str!("new/template.go");
const JS: &str = include_str!("new/template.js");
