//! On-disk cache of compiled components.
//!
//! `Component::deserialize` runs native code from the file it is given, so a cached
//! artifact is only trusted if it carries a MAC made with this cache directory's own
//! secret key: files from another machine, another cache, a truncated write or a bit
//! flip are recompiled instead. Files are written to a temporary name, synced and
//! renamed, so a crash leaves either the old file or the new one.

use std::collections::HashSet;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

const MAGIC: &[u8; 8] = b"WUDFART1";
const KEY_FILE: &str = "artifact.key";

/// A directory of compiled artifacts, keyed by module hash and engine configuration.
pub(crate) struct ArtifactCache {
    dir: PathBuf,
    key: [u8; 32],
    /// Identifies the wasmtime version and compilation settings.
    engine_tag: String,
}

/// What happened on a lookup, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// No artifact was cached; compiled from source.
    Compiled,
    /// A verified artifact was loaded.
    Loaded,
    /// An artifact existed but failed verification; recompiled and replaced.
    Rejected,
}

impl ArtifactCache {
    pub(crate) fn open(dir: &Path, engine: &wasmtime::Engine) -> std::io::Result<Self> {
        fs::create_dir_all(dir)?;
        let key_path = dir.join(KEY_FILE);
        let key = match fs::read(&key_path) {
            Ok(bytes) if bytes.len() == 32 => {
                let mut k = [0u8; 32];
                k.copy_from_slice(&bytes);
                k
            }
            _ => {
                let mut k = [0u8; 32];
                getrandom::fill(&mut k).map_err(std::io::Error::other)?;
                write_atomic(&key_path, &k)?;
                k
            }
        };
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        Ok(ArtifactCache {
            dir: dir.to_path_buf(),
            key,
            engine_tag: format!("{:016x}", h.finish()),
        })
    }

    fn path(&self, module_hash: &str) -> PathBuf {
        self.dir
            .join(format!("{module_hash}-{}.cwasm", self.engine_tag))
    }

    fn mac(&self, module_hash: &str, artifact: &[u8]) -> Hmac<Sha256> {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).expect("HMAC takes any key size");
        mac.update(module_hash.as_bytes());
        mac.update(self.engine_tag.as_bytes());
        mac.update(artifact);
        mac
    }

    /// Returns the verified artifact for `module_hash`, or `None` (and whether one was
    /// present but rejected).
    pub(crate) fn get(&self, module_hash: &str) -> (Option<Vec<u8>>, bool) {
        let Ok(mut bytes) = fs::read(self.path(module_hash)) else {
            return (None, false);
        };
        if bytes.len() < MAGIC.len() + 32 || &bytes[..MAGIC.len()] != MAGIC {
            return (None, true);
        }
        let artifact = bytes.split_off(MAGIC.len() + 32);
        // Constant-time comparison with the stored tag.
        if self
            .mac(module_hash, &artifact)
            .verify_slice(&bytes[MAGIC.len()..])
            .is_err()
        {
            return (None, true);
        }
        (Some(artifact), false)
    }

    /// Removes the artifact of `module_hash`, if there is one.
    pub(crate) fn remove(&self, module_hash: &str) -> std::io::Result<()> {
        match fs::remove_file(self.path(module_hash)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Removes every artifact but this configuration's for the modules in `keep`:
    /// artifacts of other modules, of other engine configurations (an older wasmtime)
    /// and temporary files a crash left. Returns how many files went.
    pub(crate) fn retain(&self, keep: &HashSet<String>) -> std::io::Result<usize> {
        let mut removed = 0;
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let kept = match name.strip_suffix(".cwasm") {
                Some(stem) => stem
                    .rsplit_once('-')
                    .is_some_and(|(hash, tag)| tag == self.engine_tag && keep.contains(hash)),
                // The key, and files that are not the cache's.
                None => !name.contains(".tmp"),
            };
            if !kept && entry.file_type()?.is_file() {
                fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    pub(crate) fn put(&self, module_hash: &str, artifact: &[u8]) -> std::io::Result<()> {
        let mut out = Vec::with_capacity(MAGIC.len() + 32 + artifact.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.mac(module_hash, artifact).finalize().into_bytes());
        out.extend_from_slice(artifact);
        write_atomic(&self.path(module_hash), &out)
    }
}

/// Writes `bytes` to `path` so that readers see the old or the new content, never a part.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        // Make the rename itself durable.
        if let Ok(d) = fs::File::open(parent) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}
