//! Builds every guest crate in udfs/ for wasm32-unknown-unknown (in its own target
//! directory, so this nested cargo never waits on the outer one's lock) and wraps each
//! core module into a component at `<target>/udfs/<name>.wasm`. Modelled on wasmtime's
//! `test-programs/artifacts`.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let udfs = manifest.parent().expect("udfs/").to_path_buf();
    let root = udfs.parent().expect("repository root").to_path_buf();
    let target = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| if t.is_absolute() { t } else { root.join(t) })
        .unwrap_or_else(|| root.join("target"));
    let build_dir = target.join("udfs-build");
    let out_dir = target.join("udfs");

    for watched in [
        "sdk",
        "macros",
        "examples",
        "hostile",
        "Cargo.toml",
        "Cargo.lock",
        ".cargo/config.toml",
    ] {
        println!("cargo:rerun-if-changed={}", udfs.join(watched).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        root.join("engine/wit").display()
    );

    let guests = guest_crates(&udfs);
    ensure_wasm_target();
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&udfs)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-unknown-unknown",
            "--target-dir",
        ])
        .arg(&build_dir);
    for (name, _) in &guests {
        cmd.args(["-p", name]);
    }
    // The outer build's flags and wrappers (clippy, coverage) are for host code.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd
        .status()
        .expect("could not run cargo for the guest components");
    if !status.success() {
        panic!(
            "building the guest components failed; is the target installed? \
             (rustup target add wasm32-unknown-unknown)"
        );
    }

    fs::create_dir_all(&out_dir).expect("create target/udfs");
    let mut consts = String::new();
    let mut all = String::new();
    let mut embedded = String::new();
    for (name, kind) in &guests {
        let core = build_dir
            .join("wasm32-unknown-unknown/release")
            .join(format!("{}.wasm", name.replace('-', "_")));
        let bytes = fs::read(&core).unwrap_or_else(|e| panic!("{}: {e}", core.display()));
        let component = wit_component::ComponentEncoder::default()
            .module(&bytes)
            .and_then(|e| e.validate(true).encode())
            .unwrap_or_else(|e| panic!("componentizing {name}: {e:#}"));
        let dest = out_dir.join(format!("{name}.wasm"));
        // Rewrite only on change so dependants are not rebuilt needlessly.
        if fs::read(&dest).ok().as_deref() != Some(&component[..]) {
            fs::write(&dest, &component).expect("write component");
        }
        let ident = name.to_uppercase().replace('-', "_");
        consts.push_str(&format!(
            "/// `{name}` ({kind}).\npub const {ident}: &str = {:?};\n",
            dest.display().to_string()
        ));
        all.push_str(&format!("    ({name:?}, {kind:?}, {ident}),\n"));
        if *kind == "example" {
            embedded.push_str(&format!(
                "    ({name:?}, include_bytes!({:?})),\n",
                dest.display().to_string()
            ));
        }
    }
    consts.push_str(&format!(
        "/// Every component: (name, \"example\" or \"hostile\", path).\npub const ALL: &[(&str, &str, &str)] = &[\n{all}];\n"
    ));
    consts.push_str(&format!(
        "/// The example components' bytes, embedded: (name, component).\npub const EXAMPLES: &[(&str, &[u8])] = &[\n{embedded}];\n"
    ));
    consts.push_str(&format!(
        "/// The directory holding every component.\npub const DIR: &str = {:?};\n",
        out_dir.display().to_string()
    ));
    let gen = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo")).join("paths.rs");
    fs::write(gen, consts).expect("write paths.rs");
}

/// Installs the guest target with rustup if the toolchain lacks it, so that a fresh
/// machine with only rustup and cargo can build everything.
fn ensure_wasm_target() {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let installed = sysroot
        .map(|s| s.join("lib/rustlib/wasm32-unknown-unknown").is_dir())
        .unwrap_or(false);
    if !installed {
        let added = Command::new("rustup")
            .args(["target", "add", "wasm32-unknown-unknown"])
            .status();
        if !matches!(added, Ok(s) if s.success()) {
            println!(
                "cargo:warning=could not install wasm32-unknown-unknown; run: rustup target add wasm32-unknown-unknown"
            );
        }
    }
}

/// (crate name, "example" | "hostile") for every directory under examples/ and hostile/.
fn guest_crates(udfs: &Path) -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    for kind in ["example", "hostile"] {
        let dir = udfs.join(if kind == "example" {
            "examples"
        } else {
            "hostile"
        });
        let mut names: Vec<String> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("Cargo.toml").exists())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        out.extend(names.into_iter().map(|n| (n, kind)));
    }
    out
}
