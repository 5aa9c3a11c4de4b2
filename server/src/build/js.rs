//! JavaScript: componentize-js 0.23 (SpiderMonkey in StarlingMonkey, snapshotted
//! with the user's module evaluated) with the `wasmudf` JS SDK (udfs/js/sdk).
//!
//! Every WASI feature componentize-js can leave out is left out (`-d stdio random
//! clocks http fetch-event`), so the component imports nothing; the SDK makes the
//! clock and entropy calls that would then return build-time constants throw a clear
//! error instead. componentize-js resolves the module's relative imports at build
//! time, so the SDK is written beside the user's file.

use std::path::Path;
use std::process::Command;

use super::{run_tool, toolchain, write_tree};

/// The componentize-js release the SDK is built and tested with.
const COMPONENTIZE_JS: &str = "0.23.";

const SDK: &[(&str, &str)] = &[(
    "wasmudf.js",
    include_str!("../../../udfs/js/sdk/wasmudf.js"),
)];

/// Module names the build itself uses.
const RESERVED: &[&str] = &["wasmudf.js", "wasmudf_main.js"];

const INSTALL: &str = "npm install @bytecodealliance/componentize-js@0.23.0 \
                       @bytecodealliance/preview2-shim@0.17.9";

pub(super) fn build(source: &Path, output: &Path, program: Option<&Path>) -> Result<(), String> {
    let name = source
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| n.ends_with(".js") || n.ends_with(".mjs"))
        .ok_or_else(|| {
            format!(
                "{}: a JavaScript module (NAME.js) is needed",
                source.display()
            )
        })?;
    if RESERVED.contains(&name) {
        return Err(format!(
            "{name}: the SDK has a file of that name; rename it"
        ));
    }
    // Not found: run it by name anyway, so the error says how to install it.
    let program = toolchain(program, "WASMUDF_COMPONENTIZE_JS", &["componentize-js"])
        .unwrap_or_else(|| "componentize-js".into());
    check_version(&program)?;

    let work = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
    write_tree(work.path(), SDK)?;
    std::fs::copy(source, work.path().join(name))
        .map_err(|e| format!("{}: {e}", source.display()))?;
    // The user's module registers its functions when evaluated; the SDK's exports
    // are the contract's (its `scalar` and `aggregate` API functions have other
    // names inside).
    let main = format!(
        "import \"./{name}\";\n\
         export {{ guest, scalar_ as scalar, aggregate_ as aggregate }} from \"./wasmudf.js\";\n"
    );
    write_tree(work.path(), &[("wasmudf_main.js", &main)])?;
    let wit = work.path().join("udf.wit");
    std::fs::write(&wit, wasmudf_engine::WIT_CONTRACT).map_err(|e| e.to_string())?;

    let mut command = Command::new(&program);
    command
        .arg(work.path().join("wasmudf_main.js"))
        .arg("--wit")
        .arg(&wit)
        .args(["--world-name", "udfs"])
        .args(["-d", "stdio", "random", "clocks", "http", "fetch-event"])
        .arg("-o")
        .arg(output);
    run_tool(command, "componentize-js")
}

/// componentize-js's version must be the one the SDK is built for: the shape of
/// the generated bindings (how results and resources map to JS) is what it uses.
fn check_version(program: &Path) -> Result<(), String> {
    let out = Command::new(program)
        .arg("--version")
        .output()
        .map_err(|e| {
            format!(
                "cannot run {}: {e} (install it: {INSTALL})",
                program.display()
            )
        })?;
    let version = String::from_utf8_lossy(&out.stdout);
    let version = version.trim();
    if !version.starts_with(COMPONENTIZE_JS) {
        return Err(format!(
            "{} says {version:?}; wasmudf's JavaScript SDK needs componentize-js 0.23 ({INSTALL})",
            program.display()
        ));
    }
    Ok(())
}
