//! The engine's integration tests, in one binary: every test links DataFusion and
//! wasmtime, so one binary instead of five saves minutes of linking and gigabytes of disk.

mod common;

mod aggregate;
mod catalog;
mod crash;
mod ddl;
mod persistence;
mod sandbox;
mod scalar;
