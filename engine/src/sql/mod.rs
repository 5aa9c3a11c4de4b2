//! The SQL entry point: a [`Database`](database::Database) over a data directory, its
//! sessions, and one handler per statement family: the typed statement layer
//! ([`statement`]) sorts each statement once, and Describe and Execute both go by it.
//!
//! Layer 6, the top: may import every layer below.

pub(crate) mod advisory;
pub(crate) mod backends;
pub(crate) mod byte_lengths;
pub(crate) mod call;
pub(crate) mod column_origins;
pub(crate) mod database;
pub(crate) mod ddl;
pub(crate) mod exec;
pub(crate) mod json;
pub(crate) mod literal_types;
pub(crate) mod monitor;
pub(crate) mod numeric;
pub(crate) mod output;
pub(crate) mod parameters;
pub(crate) mod pg_functions;
pub(crate) mod returning;
pub(crate) mod sequences;
pub(crate) mod session;
pub(crate) mod statement;
pub(crate) mod tables;
pub(crate) mod text_casts;
pub(crate) mod transaction;
pub(crate) mod unsigned_results;
