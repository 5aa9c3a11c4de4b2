//! PostgreSQL's value formats, shared by the engine, the server and the tests: text
//! output of Arrow values, the PostgreSQL type of each Arrow type, ISO date/time and interval input, `json` / `jsonb` text, `numeric`'s binary form, COPY's text and CSV formats,
//! `LIKE` patterns, and result column names as PostgreSQL gives them.
//!
//! Layer 1: imports only [`crate::error`].

pub(crate) mod column_names;
pub(crate) mod copy;
pub(crate) mod datetime_input;
pub(crate) mod datetime_range;
pub(crate) mod interval;
pub(crate) mod json;
pub(crate) mod like;
pub(crate) mod text;
pub(crate) mod types;
