//! DataFusion adapters: Wasm functions as scalar and aggregate UDFs, the query scope
//! that cancels them and pools their instances, and the `wasm.*` session settings.
//!
//! Layer 3: imports [`crate::wasm`] and [`crate::error`].

pub(crate) mod aggregate;
pub(crate) mod bind;
pub(crate) mod build;
pub(crate) mod explain;
pub(crate) mod query;
pub(crate) mod scalar;
pub(crate) mod scope;
pub(crate) mod settings;
pub(crate) mod stats;
