//! Rust: a crate of the `wasmudf` SDK (`wasmudf new --lang rust` makes one), built
//! for wasm32-unknown-unknown in release with the loop-unrolling flag, its core module
//! wrapped into a component. The SDK's bindings embed the contract; the module imports
//! nothing, so no adapter is needed.

use std::path::Path;
use std::process::Command;

use super::{run_tool, toolchain};

/// LLVM's Wasm target unrolls little, so column loops paid wasmtime's fuel and deadline
/// checks every row or two (udfs/.cargo/config.toml sets the same for the repository).
pub const UNROLL_FLAG: &str = "-C llvm-args=-unroll-partial-threshold=200";

pub fn build(crate_dir: &Path, output: &Path, cargo: Option<&Path>) -> Result<(), String> {
    let manifest = crate_dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).map_err(|e| {
        format!(
            "{}: {e} (SOURCE is the crate's directory)",
            manifest.display()
        )
    })?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| format!("{}: {e}", manifest.display()))?;
    let package = table
        .get("lib")
        .and_then(|l| l.get("name"))
        .or_else(|| table.get("package").and_then(|p| p.get("name")))
        .and_then(|n| n.as_str())
        .ok_or_else(|| format!("{}: no package name", manifest.display()))?
        .replace('-', "_");
    let cargo = toolchain(cargo, "WASMUDF_CARGO", &["cargo"])
        .ok_or("cargo is not on PATH (install Rust with rustup)")?;
    let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => crate_dir.join("target"),
    };
    let mut command = Command::new(cargo);
    command
        .arg("build")
        .arg("--release")
        .arg("--target")
        .arg("wasm32-unknown-unknown")
        .arg("--manifest-path")
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", &target_dir)
        .env(
            "CARGO_ENCODED_RUSTFLAGS",
            UNROLL_FLAG.replace(' ', "\u{1f}"),
        );
    run_tool(command, "cargo build")?;
    let module_path = target_dir
        .join("wasm32-unknown-unknown/release")
        .join(format!("{package}.wasm"));
    let module = std::fs::read(&module_path).map_err(|e| {
        format!(
            "{}: {e} (is the crate a cdylib? `crate-type = [\"cdylib\"]`)",
            module_path.display()
        )
    })?;
    let component = wit_component::ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .and_then(|mut e| e.encode())
        .map_err(|e| format!("making the component: {e:#}"))?;
    std::fs::write(output, component).map_err(|e| format!("{}: {e}", output.display()))
}
