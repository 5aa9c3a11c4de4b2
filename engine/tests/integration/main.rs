//! The engine's integration tests, in one binary: every test links DataFusion and
//! wasmtime, so one binary instead of five saves minutes of linking and gigabytes of disk.

// A test or bench harness: an unwrap that fails is a failed run, not a crashed server.
#![allow(clippy::unwrap_used)]

mod common;

mod aggregate;
mod catalog;
mod crash;
mod ddl;
mod persistence;
mod sandbox;
mod scalar;
mod tables;
mod tiers;
