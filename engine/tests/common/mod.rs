//! Shared helpers for the engine's integration tests.
#![allow(dead_code)]

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::error::DataFusionError;
use datafusion::prelude::{SessionConfig, SessionContext};
use wasmudf_engine::{find_udf_error, Engine, EngineConfig, Error, Module};

/// An engine with default settings.
pub fn engine() -> Engine {
    Engine::new(EngineConfig::default()).expect("engine")
}

/// Loads a component from udfs/ by name.
pub fn load(engine: &Engine, name: &str) -> Module {
    let path = wasmudf_udfs::path(name).unwrap_or_else(|| panic!("no component {name}"));
    engine
        .load_component(&std::fs::read(path).expect("read component"))
        .unwrap_or_else(|e| panic!("load {name}: {e}"))
}

/// A session with `partitions` target partitions and the named components registered.
pub fn session(engine: &Engine, partitions: usize, components: &[&str]) -> SessionContext {
    let ctx = SessionContext::new_with_config(
        SessionConfig::new()
            .with_target_partitions(partitions)
            .with_batch_size(8192),
    );
    for c in components {
        engine.register(&ctx, &load(engine, c)).expect("register");
    }
    ctx
}

/// Runs `sql` in a fresh query scope.
pub async fn run(
    engine: &Engine,
    ctx: &SessionContext,
    sql: &str,
) -> Result<Vec<RecordBatch>, DataFusionError> {
    engine.query(ctx).sql(sql).await?.collect().await
}

/// Runs `sql` and renders the result as a table.
pub async fn table(engine: &Engine, ctx: &SessionContext, sql: &str) -> String {
    let batches = run(engine, ctx, sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    pretty_format_batches(&batches).expect("format").to_string()
}

/// Runs `sql` and returns its only value as text.
pub async fn value(engine: &Engine, ctx: &SessionContext, sql: &str) -> String {
    let batches = run(engine, ctx, sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let batch = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .unwrap_or_else(|| panic!("{sql}: no rows"));
    datafusion::arrow::util::display::array_value_to_string(batch.column(0), 0).expect("display")
}

/// Runs `sql`, expecting it to fail with a wasmudf error; returns (sqlstate, message).
pub async fn udf_error(engine: &Engine, ctx: &SessionContext, sql: &str) -> (String, String) {
    match run(engine, ctx, sql).await {
        Ok(b) => panic!(
            "{sql}: expected an error, got\n{}",
            pretty_format_batches(&b).unwrap()
        ),
        Err(e) => match find_udf_error(&e) {
            Some(err) => (err.sqlstate().to_string(), err.to_string()),
            None => panic!("{sql}: not a wasmudf error: {e}"),
        },
    }
}

/// The wasmudf error inside a DataFusion error, for matching on its variant.
pub fn as_udf_error(e: &DataFusionError) -> &Error {
    find_udf_error(e).unwrap_or_else(|| panic!("not a wasmudf error: {e}"))
}
