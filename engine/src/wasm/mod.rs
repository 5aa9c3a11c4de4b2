//! The wasmtime layer: engines (one per Wasm stack size), compiled and described
//! modules, guest instances under their limits, the artifact cache, and the canonical
//! ABI mirror of the WIT contract. Columns are Arrow arrays; nothing here knows
//! DataFusion's planner or execution (only arrow types and the volatility enum the
//! contract maps to).
//!
//! Layer 2: imports [`crate::error`] only.

pub(crate) mod abi;
pub(crate) mod aggregate_exports;
pub(crate) mod cache;
pub(crate) mod convert;
pub(crate) mod engine;
pub(crate) mod instance;
pub(crate) mod interfaces;
pub(crate) mod limits;
pub(crate) mod signature;
pub(crate) mod tier;
