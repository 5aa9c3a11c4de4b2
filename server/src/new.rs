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
use crate::build::Language;

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
    let files = match args.language {
        Language::Rust => rust_files(name, args.sdk.as_deref())?,
        Language::Python => vec![(format!("{name}.py"), PYTHON.to_string())],
        Language::C => vec![(format!("{name}.c"), C.to_string())],
        Language::Go => vec![(format!("{name}.go"), GO.to_string())],
        Language::Js => vec![(format!("{name}.js"), JS.to_string())],
    };
    let mut files = files;
    files.push(("README.md".into(), readme(name, args.language)));
    for (path, text) in &files {
        let dest = args.name.join(path);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&dest, text).map_err(|e| format!("{}: {e}", dest.display()))?;
    }
    println!(
        "created {} ({} project); build it with: {}",
        args.name.display(),
        language_name(args.language),
        build_command(name, args.language, &args.name.display().to_string())
    );
    Ok(())
}

fn language_name(language: Language) -> &'static str {
    match language {
        Language::Rust => "Rust",
        Language::Python => "Python",
        Language::C => "C",
        Language::Go => "Go",
        Language::Js => "JavaScript",
    }
}

fn source_file(name: &str, language: Language) -> String {
    match language {
        Language::Rust => String::new(),
        Language::Python => format!("/{name}.py"),
        Language::C => format!("/{name}.c"),
        Language::Go => format!("/{name}.go"),
        Language::Js => format!("/{name}.js"),
    }
}

fn build_command(name: &str, language: Language, dir: &str) -> String {
    let lang = match language {
        Language::Rust => "rust",
        Language::Python => "python",
        Language::C => "c",
        Language::Go => "go",
        Language::Js => "js",
    };
    format!(
        "wasmudf build --lang {lang} {dir}{}",
        source_file(name, language)
    )
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

fn readme(name: &str, language: Language) -> String {
    let build = build_command(name, language, ".");
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
        lang = language_name(language),
        doc = match language {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::C => "c",
            Language::Go => "go",
            Language::Js => "js",
        },
    )
}

const RUST: &str = include_str!("new/template.rs");

const PYTHON: &str = include_str!("new/template.py");
const C: &str = include_str!("new/template.c");
const GO: &str = include_str!("new/template.go");
const JS: &str = include_str!("new/template.js");
