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

// The layers, bottom to top; each imports only those listed before it (the
// `layering` test enforces it, CONTRIBUTING.md says what each holds).
mod error;
mod introspection;
mod pg;
mod sql;
mod store;
mod udf;
mod wasm;

// The fuzz targets' entry points; built in tests too, where their property-test
// versions run in CI.
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;

// Embedding: Wasm functions in your own DataFusion `SessionContext`.
pub use error::{
    find_udf_error, log_text, sqlstate, CancelReason, Error, Result, GUEST_TEXT_LIMIT,
    LOG_TEXT_LIMIT,
};
pub use udf::build::UdfOptions;
pub use udf::query::{CancelHandle, Query};
pub use wasm::cache::CacheOutcome;
pub use wasm::engine::{Engine, EngineConfig, Module};
pub use wasm::interfaces::ComponentInterfaces;
pub use wasm::limits::{
    parse_bytes, parse_duration, parse_stack, round_stack, LimitOverrides, Limits, MAX_STACK,
    MIN_STACK,
};
pub use wasm::signature::{
    kind_word, sql_type_name, volatility_word, AggregateShape, FunctionKind, FunctionSignature,
    NullHandling,
};
pub use wasm::tier::CodeTier;

// The database: a data directory, sessions, statements.
pub use sql::database::{Database, DatabaseConfig, REPLACEABLE_BUILTINS};
pub use sql::monitor::describe_metrics;
pub use sql::output::{collect, CommandTag, Description, Output};
pub use sql::session::Session;
pub use sql::statement::Statement;
pub use sql::transaction::TransactionState;
pub use store::{CATALOG_NAME, DEFAULT_SCHEMA};

// PostgreSQL value formats, for servers and tests that speak the wire protocol.
pub use introspection::session_info::SERVER_VERSION;
pub use pg::copy::{copy_header, copy_lines, CopyFormat, CopyIn};
pub use pg::datetime_input::{canonical_datetime, DatetimeKind};
pub use pg::datetime_range::check_datetime_range;
pub use pg::interval::{pg_intervals, pg_times, PgInterval};
pub use pg::text::{
    array_from_text, array_literal, bytea_from_text, numeric_from_binary, numeric_to_binary,
    pg_field_text, pg_text, pg_text_in, TextFormat,
};
pub use pg::types::{
    pg_column_origin, pg_type_name, pg_type_oid, pg_type_oid_of, pg_vector_text, PG_TYPE_KEY,
};

/// The WIT contract every component implements, for tools that embed it.
pub const WIT_CONTRACT: &str = include_str!("../wit/udf.wit");

/// Re-export of the DataFusion version the engine is built against.
pub use datafusion;
