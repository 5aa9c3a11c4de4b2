//! Where a `CREATE FUNCTION ... AS '<module>'` gets its bytes: a file inside the
//! modules directory, inline `base64:`, or `sha256:` naming a stored module.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use base64::Engine as _;

use crate::error::{Error, Result};
use crate::store::catalog::Catalog;

/// Reads the bytes `spec` names, refusing anything outside `modules_dir` and anything
/// larger than `max_size`.
pub(crate) fn read_module(
    spec: &str,
    modules_dir: Option<&Path>,
    catalog: &Catalog,
    max_size: usize,
) -> Result<Vec<u8>> {
    let too_big = |n: usize| {
        Error::InvalidDefinition(format!(
            "module is {n} bytes, above the limit of {max_size} bytes"
        ))
    };
    if let Some(b64) = spec.strip_prefix("base64:") {
        let text: String = b64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        if text.len() / 4 * 3 > max_size + 3 {
            return Err(too_big(text.len() / 4 * 3));
        }
        return base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(|e| {
                Error::InvalidDefinition(format!("inline module is not valid base64: {e}"))
            });
    }
    if let Some(hash) = spec.strip_prefix("sha256:") {
        let hash = hash.trim().to_ascii_lowercase();
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::InvalidDefinition(format!(
                "\"sha256:{hash}\" is not a SHA-256 hash (64 hex digits)"
            )));
        }
        return catalog.module(&hash)?.ok_or_else(|| {
            Error::InvalidDefinition(format!(
                "no stored module has hash {hash} (see wasm.modules)"
            ))
        });
    }
    let Some(dir) = modules_dir else {
        return Err(Error::InsufficientPrivilege(
            "reading module files is disabled on this server (no modules directory); use 'base64:...' or 'sha256:...'".into(),
        ));
    };
    let path = resolve_in(dir, spec)?;
    let file = std::fs::File::open(&path)
        .map_err(|e| Error::InvalidDefinition(format!("cannot read module \"{spec}\": {e}")))?;
    let mut bytes = Vec::new();
    file.take(max_size as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::InvalidDefinition(format!("cannot read module \"{spec}\": {e}")))?;
    if bytes.len() > max_size {
        return Err(too_big(bytes.len()));
    }
    Ok(bytes)
}

/// `spec` resolved inside `dir`; escapes by `..`, absolute paths or symlinks are refused.
fn resolve_in(dir: &Path, spec: &str) -> Result<PathBuf> {
    let refuse = || {
        Error::InsufficientPrivilege(format!(
            "module path \"{spec}\" is outside the modules directory"
        ))
    };
    let root = dir
        .canonicalize()
        .map_err(|e| Error::Io(format!("modules directory {}: {e}", dir.display())))?;
    let given = Path::new(spec);
    let joined = if given.is_absolute() {
        given.to_path_buf()
    } else {
        if given.components().any(|c| c == Component::ParentDir) {
            return Err(refuse());
        }
        root.join(given)
    };
    // Canonicalizing resolves every symlink, so a link pointing out of the directory
    // is caught here as well as a plain absolute path.
    let real = match joined.canonicalize() {
        Ok(p) => p,
        // Do not tell whether a file outside the directory exists.
        Err(_) if !joined.starts_with(&root) => return Err(refuse()),
        Err(e) => {
            return Err(Error::InvalidDefinition(format!(
                "cannot read module \"{spec}\": {e}"
            )))
        }
    };
    if !real.starts_with(&root) {
        return Err(refuse());
    }
    Ok(real)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_modules_directory() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("modules");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/m.wasm"), b"x").unwrap();
        std::fs::write(dir.path().join("secret.wasm"), b"x").unwrap();
        assert!(resolve_in(&root, "sub/m.wasm").is_ok());
        let abs = root.join("sub/m.wasm").canonicalize().unwrap();
        assert!(resolve_in(&root, abs.to_str().unwrap()).is_ok());
        for bad in ["../secret.wasm", "sub/../../secret.wasm", "/etc/passwd"] {
            let e = resolve_in(&root, bad).unwrap_err();
            assert_eq!(e.sqlstate(), "42501", "{bad}: {e}");
        }
        let outside = dir.path().join("secret.wasm");
        assert_eq!(
            resolve_in(&root, outside.to_str().unwrap())
                .unwrap_err()
                .sqlstate(),
            "42501"
        );
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&outside, root.join("link.wasm")).unwrap();
            assert_eq!(
                resolve_in(&root, "link.wasm").unwrap_err().sqlstate(),
                "42501"
            );
        }
        assert_eq!(
            resolve_in(&root, "missing.wasm").unwrap_err().sqlstate(),
            "42P13"
        );
    }
}
