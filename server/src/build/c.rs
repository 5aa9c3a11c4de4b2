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

use super::{componentize_deny_all, run_tool, toolchain, write_tree};

const SDK: &[(&str, &str)] = &[
    ("wasmudf.h", include_str!("../../../udfs/c/sdk/wasmudf.h")),
    ("wasmudf.c", include_str!("../../../udfs/c/sdk/wasmudf.c")),
    ("gen/udfs.h", include_str!("../../../udfs/c/sdk/gen/udfs.h")),
    ("gen/udfs.c", include_str!("../../../udfs/c/sdk/gen/udfs.c")),
];

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
    componentize_deny_all(&mut module, output)
}

/// clang with the Wasm backend: the flag, else WASMUDF_CLANG, else Debian's clang-19.
fn find_clang(given: Option<&Path>) -> Result<PathBuf, String> {
    toolchain(
        given,
        "WASMUDF_CLANG",
        &["/usr/lib/llvm-19/bin/clang", "clang-19", "clang"],
    )
    .ok_or_else(|| {
        "no clang found: install clang-19, lld-19 and wasi-libc \
         (apt-get install clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32), or pass --toolchain"
            .to_string()
    })
}
