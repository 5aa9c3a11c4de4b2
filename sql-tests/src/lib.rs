//! sqllogictest runner for wasmudf (in-process and over pgwire).
//!
//! The runner and the suites arrive with the sqllogictest issue; until then the
//! engine's integration tests (`engine/tests/`) drive the same behaviour through
//! `SessionContext::sql`.
