//! Paths of the guest components in `udfs/`, built by this crate's build script.
//!
//! `cargo build -p wasmudf-udfs` builds every example and hostile component into
//! `target/udfs/<name>.wasm`; tests and the server find them through these constants.

include!(concat!(env!("OUT_DIR"), "/paths.rs"));

/// Path of a component by name, if it exists.
pub fn path(name: &str) -> Option<&'static str> {
    ALL.iter().find(|(n, _, _)| *n == name).map(|(_, _, p)| *p)
}
