//! What survives a restart: the crash-safe catalog (functions, module bytes, tables,
//! schemas) and where module bytes come from (files, inline base64, stored hashes).
//!
//! Layer 4: imports [`crate::wasm`] (the function kinds it records) and
//! [`crate::error`].

pub(crate) mod catalog;
pub(crate) mod source;

/// Name of the catalog (database) every schema lives in.
pub const CATALOG_NAME: &str = "wasmudf";
/// The default schema.
pub const DEFAULT_SCHEMA: &str = "public";
