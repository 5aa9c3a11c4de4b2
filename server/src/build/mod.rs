//! `wasmudf build`: one command per guest language that turns a source file into an
//! import-free component the server loads, with the toolchain and flags pinned here
//! (docs/writing-<language>-udfs.md says how to install the toolchain).
//!
//! Every language's SDK is embedded in the binary and written beside the user's code
//! at build time, so a build needs only the language's own toolchain, and works
//! offline once that is installed.

mod c;
mod go;
mod js;
mod python;
pub mod rust;

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::{Args, ValueEnum};

/// The languages `wasmudf build` builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Language {
    /// A Python module using the `wasmudf` SDK (componentize-py 0.25).
    Python,
    /// A C file using the `wasmudf` C SDK (clang with wasi-libc).
    C,
    /// A Go file (package main) using the `wasmudf/udf` Go SDK (Go 1.27.1 or later).
    Go,
    /// A JavaScript module using the `wasmudf.js` SDK (componentize-js 0.23).
    #[value(alias = "javascript")]
    Js,
    /// A Rust crate (its directory) using the `wasmudf` SDK (cargo and the
    /// wasm32-unknown-unknown target).
    Rust,
}

/// `wasmudf build --lang LANG SOURCE [-o OUT]`.
#[derive(Args, Debug)]
pub struct BuildArgs {
    /// The language of SOURCE.
    #[arg(long = "lang", value_enum)]
    pub language: Language,
    /// The source file (Rust: the crate's directory; Python: a module of `@wasmudf.scalar` / `@wasmudf.aggregate`
    /// definitions, its directory on the module path; C: one file with
    /// `WASMUDF_EXPORT`; Go: one file of package main registering functions in `init`;
    /// JavaScript: a module importing "./wasmudf.js").
    pub source: PathBuf,
    /// Where to write the component (default: SOURCE with the extension `.wasm`).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// The toolchain's program (default: found on PATH; env WASMUDF_CARGO for Rust,
    /// WASMUDF_COMPONENTIZE_PY for
    /// Python, WASMUDF_CLANG for C, WASMUDF_GO for Go, WASMUDF_COMPONENTIZE_JS for
    /// JavaScript).
    #[arg(long)]
    pub toolchain: Option<PathBuf>,
    /// Do not load the result to check it (its imports, its functions).
    #[arg(long)]
    pub no_check: bool,
}

/// Builds the component and checks that the server would load it; prints what it
/// provides. An error is one message for the user.
pub fn run(args: BuildArgs) -> Result<(), String> {
    let is_crate = args.language == Language::Rust;
    if !(args.source.is_file() || is_crate && args.source.is_dir()) {
        return Err(format!("{}: no such file", args.source.display()));
    }
    let output = match (&args.output, is_crate) {
        (Some(o), _) => o.clone(),
        (None, true) => {
            let name = args
                .source
                .canonicalize()
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_os_string()))
                .unwrap_or_else(|| "udf".into());
            args.source.join(name).with_extension("wasm")
        }
        (None, false) => args.source.with_extension("wasm"),
    };
    match args.language {
        Language::Python => python::build(&args.source, &output, args.toolchain.as_deref())?,
        Language::C => c::build(&args.source, &output, args.toolchain.as_deref())?,
        Language::Go => go::build(&args.source, &output, args.toolchain.as_deref())?,
        Language::Js => js::build(&args.source, &output, args.toolchain.as_deref())?,
        Language::Rust => rust::build(&args.source, &output, args.toolchain.as_deref())?,
    }
    let bytes = std::fs::read(&output).map_err(|e| format!("{}: {e}", output.display()))?;
    println!("wrote {} ({} bytes)", output.display(), bytes.len());
    if !args.no_check {
        check(&bytes)?;
    }
    Ok(())
}

/// Loads the component as the server would (imports, `describe`) and lists its
/// functions.
fn check(bytes: &[u8]) -> Result<(), String> {
    // The process ends right after: no optimizing compile in the background.
    let engine = wasmudf_engine::Engine::new(wasmudf_engine::EngineConfig {
        background_optimize: false,
        ..wasmudf_engine::EngineConfig::default()
    })
    .map_err(|e| e.to_string())?;
    let module = engine
        .load_component(bytes)
        .map_err(|e| format!("the server would refuse the component: {e}"))?;
    for f in module.functions() {
        println!("  {}", crate::inspect::function_line(f));
    }
    Ok(())
}

/// Runs a toolchain command; its output is the user's to read when it fails.
fn run_tool(mut command: Command, what: &str) -> Result<(), String> {
    let shown = format!("{command:?}");
    let out = command
        .output()
        .map_err(|e| format!("{what}: cannot run {shown}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// The toolchain program: the flag, else the environment variable, else the first of
/// `candidates` that exists (an absolute path, or a name found on PATH).
fn toolchain(given: Option<&Path>, env: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Some(p) = given {
        return Some(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os(env) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    candidates.iter().find_map(|c| {
        let c = Path::new(c);
        if c.is_absolute() {
            return c.exists().then(|| c.to_path_buf());
        }
        std::env::split_paths(&path)
            .map(|d| d.join(c))
            .find(|p| p.is_file())
    })
}

/// What the WASI imports of C and Go code resolve to inside the component.
const DENY_ALL_ADAPTER: &str = include_str!("../../../udfs/adapters/wasi_deny_all.wat");

/// Embeds the contract (world `udfs`) and wraps the core module into a component,
/// with the deny-all adapter for whatever WASI function libc (C) or the runtime (Go)
/// imports.
fn componentize_deny_all(module: &mut Vec<u8>, output: &Path) -> Result<(), String> {
    let mut resolve = wit_parser::Resolve::default();
    let package = resolve
        .push_str("udf.wit", wasmudf_engine::WIT_CONTRACT)
        .map_err(|e| format!("the contract: {e:#}"))?;
    let world = resolve
        .select_world(&[package], Some("udfs"))
        .map_err(|e| format!("the contract: {e:#}"))?;
    wit_component::embed_component_metadata(
        module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .map_err(|e| format!("embedding the contract: {e:#}"))?;
    let adapter = wat::parse_str(DENY_ALL_ADAPTER).map_err(|e| format!("the adapter: {e}"))?;
    let component = wit_component::ComponentEncoder::default()
        .validate(true)
        .module(module)
        .and_then(|e| e.adapter("wasi_snapshot_preview1", &adapter))
        .and_then(|mut e| e.encode())
        .map_err(|e| format!("making the component: {e:#}"))?;
    std::fs::write(output, component).map_err(|e| format!("{}: {e}", output.display()))
}

/// Writes `files` (relative path, text) under `dir`.
pub(crate) fn write_tree(dir: &Path, files: &[(&str, &str)]) -> Result<(), String> {
    for (path, text) in files {
        let dest = dir.join(path);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&dest, text).map_err(|e| format!("{}: {e}", dest.display()))?;
    }
    Ok(())
}
