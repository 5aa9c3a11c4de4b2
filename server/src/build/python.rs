//! Python: componentize-py 0.25 with the `wasmudf` SDK (udfs/python/sdk).
//!
//! componentize-py runs the module at build time and snapshots the interpreter, so
//! the decorators register every function before the component exists. WASI is
//! stubbed (`--stub-wasi`): without it CPython's component imports 25 `wasi:*`
//! interfaces (sockets, files) and the server refuses it. The SDK's sandbox module
//! turns the stubs' traps into clear errors (see udfs/python/sdk/wasmudf/_sandbox.py).

use std::path::Path;
use std::process::Command;

use super::{run_tool, toolchain, write_tree};

/// The componentize-py release the SDK is built and tested with.
const COMPONENTIZE_PY: &str = "0.25";

/// The SDK, as written beside the user's module at build time.
const SDK: &[(&str, &str)] = &[
    (
        "wasmudf/__init__.py",
        include_str!("../../../udfs/python/sdk/wasmudf/__init__.py"),
    ),
    (
        "wasmudf/_columns.py",
        include_str!("../../../udfs/python/sdk/wasmudf/_columns.py"),
    ),
    (
        "wasmudf/_errors.py",
        include_str!("../../../udfs/python/sdk/wasmudf/_errors.py"),
    ),
    (
        "wasmudf/_exports.py",
        include_str!("../../../udfs/python/sdk/wasmudf/_exports.py"),
    ),
    (
        "wasmudf/_sandbox.py",
        include_str!("../../../udfs/python/sdk/wasmudf/_sandbox.py"),
    ),
    (
        "wasmudf/_types.py",
        include_str!("../../../udfs/python/sdk/wasmudf/_types.py"),
    ),
    (
        "aggregate.py",
        include_str!("../../../udfs/python/sdk/aggregate.py"),
    ),
];

/// Module names the build itself uses.
const RESERVED: &[&str] = &[
    "wasmudf",
    "aggregate",
    "wasmudf_main",
    "wit_world",
    "componentize_py_types",
];

pub(super) fn build(source: &Path, output: &Path, program: Option<&Path>) -> Result<(), String> {
    let module = source
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| is_identifier(s))
        .ok_or_else(|| {
            format!(
                "{}: the file name must be a Python module name (letters, digits, _)",
                source.display()
            )
        })?;
    if RESERVED.contains(&module) {
        return Err(format!(
            "{}: the module name {module} is taken by the SDK; rename the file",
            source.display()
        ));
    }
    // Not found: run it by name anyway, so the error says how to install it.
    let program = toolchain(program, "WASMUDF_COMPONENTIZE_PY", &["componentize-py"])
        .unwrap_or_else(|| "componentize-py".into());
    check_version(&program)?;

    let work = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
    let sdk = work.path().join("sdk");
    let app = work.path().join("app");
    write_tree(&sdk, SDK)?;
    // The sandbox goes in before the user's module is imported, so that what the
    // module does at import time is sandboxed too.
    let main = format!(
        "import wasmudf._sandbox\nwasmudf._sandbox.install()\nimport {module}  # noqa: F401\n\
         from wasmudf._exports import Guest, Scalar, Aggregate  # noqa: F401\n"
    );
    write_tree(&app, &[("wasmudf_main.py", &main)])?;
    // A copy of the module (so the build leaves no __pycache__ beside it); its own
    // directory stays on the path for the modules it imports.
    std::fs::copy(source, app.join(format!("{module}.py")))
        .map_err(|e| format!("{}: {e}", source.display()))?;
    let wit = work.path().join("udf.wit");
    std::fs::write(&wit, wasmudf_engine::WIT_CONTRACT).map_err(|e| e.to_string())?;
    let source_dir = source
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));

    let mut command = Command::new(&program);
    command
        .arg("--wit-path")
        .arg(&wit)
        .args(["--world", "udfs", "componentize", "--stub-wasi"])
        .arg("--python-path")
        .arg(&sdk)
        .arg("--python-path")
        .arg(&app)
        .arg("--python-path")
        .arg(source_dir)
        .arg("wasmudf_main")
        .arg("--output")
        .arg(output);
    run_tool(command, "componentize-py")
}

/// componentize-py's version must be the one the SDK is built for: its generated
/// bindings' names are what the SDK imports.
fn check_version(program: &Path) -> Result<(), String> {
    let install = format!("pip install componentize-py=={COMPONENTIZE_PY}.1");
    let out = Command::new(program)
        .arg("--version")
        .output()
        .map_err(|e| {
            format!(
                "cannot run {}: {e} (install it: {install})",
                program.display()
            )
        })?;
    let version = String::from_utf8_lossy(&out.stdout);
    let version = version.trim();
    let wanted = format!("componentize-py {COMPONENTIZE_PY}.");
    if !version.starts_with(&wanted) {
        return Err(format!(
            "{} says {version:?}; wasmudf's Python SDK needs componentize-py {COMPONENTIZE_PY} ({install})",
            program.display()
        ));
    }
    Ok(())
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
