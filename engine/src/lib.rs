//! # wasmudf-engine
//!
//! Sandboxed, vectorized user-defined functions for [Apache DataFusion], written in any
//! language that compiles to a WebAssembly component implementing the `wasmudf:udf`
//! WIT contract (`wit/udf.wit`).
//!
//! - A component **describes itself**: [`Engine::load_component`] validates and compiles
//!   it (once per content hash), refuses any import, and reads its function list.
//! - Columns cross the boundary as **raw Arrow buffers**, one call per batch.
//! - Every call runs under [`Limits`]: fuel, memory, stack and a wall-clock deadline
//!   (which also serves cancellation). A limit or trap fails the query with an
//!   [`Error`] naming the function and the limit, and poisons only that instance.
//! - Guest output is validated (length, type, offsets, UTF-8, decimal precision)
//!   before DataFusion sees it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use datafusion::prelude::SessionContext;
//! use wasmudf_engine::{Engine, Limits};
//!
//! let engine = Engine::new(Limits::default())?;
//! let module = engine.load_component(&std::fs::read("target/udfs/math.wasm")?)?;
//! let ctx = SessionContext::new();
//! engine.register(&ctx, &module)?;
//! let batches = engine.query(&ctx).sql("SELECT gcd(12, 18)").await?.collect().await?;
//! # Ok(()) }
//! ```
//!
//! [Apache DataFusion]: https://datafusion.apache.org
#![warn(missing_docs)]

mod abi;
mod aggregate;
mod cache;
mod catalog;
mod column_names;
mod convert;
mod copy;
mod database;
mod ddl;
mod error;
mod exec;
mod instance;
mod limits;
mod pg_catalog;
mod pgtext;
mod query;
mod runtime;
mod session_info;
mod settings;
mod signature;
mod source;
mod system;
mod tables;
mod timeout;
mod udf;

pub use cache::CacheOutcome;
pub use copy::{copy_header, copy_lines, CopyFormat, CopyIn};
pub use database::{
    collect, Database, DatabaseConfig, Description, Output, Session, Statement, CATALOG_NAME,
    DEFAULT_SCHEMA, REPLACEABLE_BUILTINS,
};
pub use error::{find_udf_error, sqlstate, Error, Result};
pub use limits::{
    parse_bytes, parse_duration, parse_stack, round_stack, LimitOverrides, Limits, MAX_STACK,
    MIN_STACK,
};
pub use pgtext::{numeric_from_binary, numeric_to_binary, pg_text};
pub use query::{CancelHandle, CancelReason, Query};
pub use runtime::{Engine, EngineConfig, Module, UdfOptions};
pub use session_info::SERVER_VERSION;
pub use signature::{sql_type_name, AggregateShape, FunctionKind, FunctionSignature, NullHandling};

/// The WIT contract every component implements, for tools that embed it.
pub const WIT_CONTRACT: &str = include_str!("../wit/udf.wit");

/// Re-export of the DataFusion version the engine is built against.
pub use datafusion;
