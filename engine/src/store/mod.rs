//! What survives a restart: the crash-safe catalog (functions, module bytes, tables,
//! schemas, sequences), the managed tables' files and the transactions that change them, and
//! where module bytes come from (files, inline base64, stored hashes).
//!
//! Layer 4: imports [`crate::udf`] (a query's scope, which keeps the files its scans
//! read), [`crate::wasm`] (the function kinds it records) and [`crate::error`].

pub(crate) mod catalog;
pub(crate) mod keys;
pub(crate) mod sequence;
pub(crate) mod source;
pub(crate) mod table;
pub(crate) mod transaction;
pub(crate) mod written;

/// Name of the catalog (database) every schema lives in.
pub const CATALOG_NAME: &str = "wasmudf";
/// The default schema.
pub const DEFAULT_SCHEMA: &str = "public";
