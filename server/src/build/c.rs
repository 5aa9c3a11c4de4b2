//! C: clang (wasm32-wasi, wasi-libc) with the `wasmudf` C SDK (udfs/c/sdk), then the
//! contract's metadata and a deny-all `wasi_snapshot_preview1` adapter, so the
//! component imports nothing.
//!
//! The bindings in udfs/c/sdk/gen are `wit-bindgen c` output for the contract,
//! committed (regenerate with `wit-bindgen c --world udfs engine/wit`): a C build
//! then needs only clang and wasi-libc. The metadata is embedded here with
//! wit-component rather than linking wit-bindgen's `_component_type.o`, so the
//! contract in the binary is the one the server checks against.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{run_tool, write_tree};

const SDK: &[(&str, &str)] = &[
    ("wasmudf.h", include_str!("../../../udfs/c/sdk/wasmudf.h")),
    ("wasmudf.c", include_str!("../../../udfs/c/sdk/wasmudf.c")),
    ("gen/udfs.h", include_str!("../../../udfs/c/sdk/gen/udfs.h")),
    ("gen/udfs.c", include_str!("../../../udfs/c/sdk/gen/udfs.c")),
];

/// What wasi-libc's imports resolve to inside the component.
const DENY_ALL_ADAPTER: &str = include_str!("../../../udfs/adapters/wasi_deny_all.wat");

pub(super) fn build(source: &Path, output: &Path, program: Option<&Path>) -> Result<(), String> {
    let clang = find_clang(program)?;
    let work = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
    write_tree(work.path(), SDK)?;
    let core = work.path().join("core.wasm");
    let mut command = Command::new(&clang);
    command
        .args([
            "--target=wasm32-wasi",
            "--sysroot=/usr",
            "-mexec-model=reactor",
            "-O2",
            "-std=gnu11",
            "-Wall",
            "-Werror=implicit-function-declaration",
            // What LLVM's Wasm default leaves rolled (the Rust guests use the same).
            "-mllvm",
            "-unroll-partial-threshold=200",
        ])
        .arg("-I")
        .arg(work.path())
        .arg("-I")
        .arg(work.path().join("gen"))
        .arg(work.path().join("wasmudf.c"))
        .arg(work.path().join("gen/udfs.c"))
        .arg(source)
        .arg("-o")
        .arg(&core);
    if let Some(dir) = source.parent().filter(|p| !p.as_os_str().is_empty()) {
        command.arg("-I").arg(dir);
    }
    run_tool(command, "clang")?;
    let mut module = std::fs::read(&core).map_err(|e| format!("{}: {e}", core.display()))?;
    componentize(&mut module, output)
}

/// Embeds the contract (world `udfs`) and wraps the core module into a component,
/// with the deny-all adapter for whatever WASI function libc imports.
fn componentize(module: &mut Vec<u8>, output: &Path) -> Result<(), String> {
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

/// clang with the Wasm backend: the flag, else WASMUDF_CLANG, else Debian's clang-19,
/// else `clang` on PATH.
fn find_clang(given: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = given {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("WASMUDF_CLANG") {
        return Ok(PathBuf::from(p));
    }
    let debian = Path::new("/usr/lib/llvm-19/bin/clang");
    if debian.exists() {
        return Ok(debian.to_path_buf());
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .flat_map(|d| [d.join("clang-19"), d.join("clang")])
            .find(|p| p.is_file())
    });
    on_path.ok_or_else(|| {
        "no clang found: install clang-19, lld-19 and wasi-libc \
         (apt-get install clang-19 lld-19 wasi-libc), or pass --toolchain"
            .to_string()
    })
}
