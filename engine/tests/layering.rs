//! The engine's layers import only the layers below them.
//!
//! `engine/src` is one folder per layer (see `lib.rs` and CONTRIBUTING.md). This test
//! reads every source file and fails on any path that reaches a layer above the file's
//! own: `crate::<layer>::...`, a root re-export that lives in a higher layer
//! (`crate::Database` from `introspection/`), or `super::super` out of a layer. It also
//! keeps DataFusion's planner and execution out of the wasmtime layer. (DataFusion's CI
//! checks its crate graph the same way: `ci/scripts/check_circular_dependencies.sh`.)

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Bottom to top. A file may import its own layer and those before it.
const LAYERS: &[&str] = &[
    "error",
    "pg",
    "wasm",
    "udf",
    "store",
    "introspection",
    "sql",
    "fuzzing",
];

/// The only DataFusion paths the wasmtime layer may name: Arrow types, and the
/// volatility enum the contract's own maps to.
const WASM_ALLOWED_DATAFUSION: &[&str] =
    &["datafusion::arrow", "datafusion::logical_expr::Volatility"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// The layer a file belongs to: its folder under `src/`, or its stem for a top-level
/// file; `None` for `lib.rs`, which declares the layers and re-exports them.
fn layer_of(file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src()).expect("file under src");
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib").then(|| name.to_string())
}

fn rank(layer: &str) -> usize {
    LAYERS.iter().position(|l| *l == layer).unwrap_or_else(|| {
        panic!("module `{layer}` is in no layer: add it to LAYERS (and to CONTRIBUTING.md)")
    })
}

/// Source lines without comments (doc examples may show any public API).
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().filter_map(|(i, line)| {
        let code = match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        };
        (!code.trim().is_empty()).then_some((i + 1, code))
    })
}

/// Which layer each name `lib.rs` re-exports comes from (`Database` -> `sql`).
fn root_exports() -> HashMap<String, String> {
    let lib = fs::read_to_string(src().join("lib.rs")).expect("lib.rs");
    let code: String = code_lines(&lib).map(|(_, l)| format!("{l}\n")).collect();
    let mut names = HashMap::new();
    for statement in code.split(';') {
        let Some(path) = statement.trim().strip_prefix("pub use ") else {
            continue;
        };
        let layer = path
            .split("::")
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        if !LAYERS.contains(&layer.as_str()) {
            continue;
        }
        let imported = path.rsplit("::{").next().unwrap_or(path);
        for name in imported.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
            if name.chars().next().is_some_and(char::is_alphabetic) && !LAYERS.contains(&name) {
                names.insert(name.to_string(), layer.clone());
            }
        }
    }
    names
}

/// Every `crate::<name>` in `line`.
fn crate_paths(line: &str) -> impl Iterator<Item = &str> {
    line.match_indices("crate::").filter_map(move |(at, _)| {
        let before = line[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            return None; // `$crate::`, `my_crate::`
        }
        let rest = &line[at + "crate::".len()..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        Some(&rest[..end]).filter(|name| !name.is_empty())
    })
}

fn violations() -> Vec<String> {
    let exports = root_exports();
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut found = Vec::new();
    for file in &files {
        let Some(layer) = layer_of(file) else {
            continue;
        };
        let own = rank(&layer);
        let text = fs::read_to_string(file).expect("source file");
        let shown = file
            .strip_prefix(src())
            .unwrap_or(file)
            .display()
            .to_string();
        for (number, line) in code_lines(&text) {
            for name in crate_paths(line) {
                let target = if LAYERS.contains(&name) {
                    name.to_string()
                } else if let Some(layer) = exports.get(name) {
                    layer.clone()
                } else {
                    found.push(format!(
                        "{shown}:{number}: `crate::{name}` is neither a layer nor a re-export"
                    ));
                    continue;
                };
                if rank(&target) > own {
                    found.push(format!(
                        "{shown}:{number}: layer `{layer}` imports `{target}`, a layer above it (crate::{name})"
                    ));
                }
            }
            if line.contains("super::super") {
                found.push(format!("{shown}:{number}: `super::super` leaves the layer; name the layer with crate::"));
            }
            if layer == "wasm" {
                for (at, _) in line.match_indices("datafusion::") {
                    let path = &line[at..];
                    if !WASM_ALLOWED_DATAFUSION.iter().any(|a| path.starts_with(a)) {
                        found.push(format!(
                            "{shown}:{number}: the wasm layer names DataFusion beyond arrow types: {}",
                            path.trim()
                        ));
                    }
                }
            }
        }
    }
    found
}

#[test]
fn layers_import_only_layers_below() {
    let found = violations();
    assert!(
        found.is_empty(),
        "layering violations:\n{}",
        found.join("\n")
    );
}

/// The check itself catches what it is for: an upward path, an upward root re-export
/// and a path out through `super::super`, each in a file of a lower layer.
#[test]
fn the_check_catches_upward_imports() {
    let exports = root_exports();
    assert_eq!(exports.get("Database").map(String::as_str), Some("sql"));
    assert_eq!(exports.get("Engine").map(String::as_str), Some("wasm"));
    assert_eq!(exports.get("Error").map(String::as_str), Some("error"));
    let paths: Vec<&str> =
        crate_paths("use crate::sql::database::Database; x = $crate::y; crate::Engine").collect();
    assert_eq!(paths, ["sql", "Engine"]);
    assert!(rank("sql") > rank("wasm"));
    assert!(code_lines("// crate::sql").next().is_none());
    assert_eq!(
        layer_of(&src().join("wasm").join("engine.rs")).as_deref(),
        Some("wasm")
    );
    assert_eq!(layer_of(&src().join("error.rs")).as_deref(), Some("error"));
    assert_eq!(layer_of(&src().join("lib.rs")), None);
}
