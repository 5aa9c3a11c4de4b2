//! Shared helpers for the engine's integration tests.

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

/// Opens a database in `dir` whose modules directory holds the built components
/// (`target/udfs`), so statements say `AS 'math.wasm'`.
pub async fn open_db(dir: &std::path::Path) -> wasmudf_engine::Database {
    let mut config = wasmudf_engine::DatabaseConfig::new(dir);
    config.modules_dir = Some(wasmudf_udfs::DIR.into());
    config.target_partitions = Some(4);
    wasmudf_engine::Database::open(config)
        .await
        .unwrap_or_else(|e| panic!("open {}: {e}", dir.display()))
}

/// Runs every statement of `sql`; returns the rows of the last one rendered as a
/// table, or its command tag.
pub async fn exec(session: &wasmudf_engine::Session, sql: &str) -> Result<String, DataFusionError> {
    let mut last = String::new();
    for out in session.execute(sql).await? {
        last = match out {
            wasmudf_engine::Output::Rows(stream) => {
                let batches = wasmudf_engine::collect(stream).await?;
                pretty_format_batches(&batches)?.to_string()
            }
            wasmudf_engine::Output::Command(tag) => tag.to_string(),
            wasmudf_engine::Output::CopyOut { format, rows } => {
                let batches = wasmudf_engine::collect(rows).await?;
                let mut text = String::new();
                for b in &batches {
                    text.extend(wasmudf_engine::copy_lines(b, &format)?);
                }
                text
            }
            other => format!("{other:?}"),
        };
    }
    Ok(last)
}

/// Like [`exec`], panicking on error.
pub async fn ok(session: &wasmudf_engine::Session, sql: &str) -> String {
    exec(session, sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e} (SQLSTATE {})", wasmudf_engine::sqlstate(&e)))
}

/// Runs `sql` expecting an error; returns (SQLSTATE, message).
pub async fn fails(session: &wasmudf_engine::Session, sql: &str) -> (String, String) {
    match exec(session, sql).await {
        Ok(out) => panic!("{sql}: expected an error, got\n{out}"),
        Err(e) => (wasmudf_engine::sqlstate(&e).to_string(), e.to_string()),
    }
}

/// Asserts `sql` fails with `code` and a message containing `text`.
pub async fn fails_with(session: &wasmudf_engine::Session, sql: &str, code: &str, text: &str) {
    let (got, msg) = fails(session, sql).await;
    assert_eq!(got, code, "{sql}: {msg}");
    assert!(msg.contains(text), "{sql}: message {msg:?} lacks {text:?}");
}

/// The first value of the last statement's result, as text.
pub async fn scalar(session: &wasmudf_engine::Session, sql: &str) -> String {
    let mut outs = session
        .execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let Some(wasmudf_engine::Output::Rows(stream)) = outs.pop() else {
        panic!("{sql}: no rows");
    };
    let batches = wasmudf_engine::collect(stream).await.expect("collect");
    let batch = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .unwrap_or_else(|| panic!("{sql}: no rows"));
    datafusion::arrow::util::display::array_value_to_string(batch.column(0), 0).expect("display")
}

/// `s` with every run of spaces collapsed to one, so table assertions ignore widths.
pub fn squash(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == ' ' && out.ends_with(' ') {
            continue;
        }
        out.push(c);
    }
    out
}

/// Starts `sql` in a fresh query scope, cancels the query after `after` (from another
/// task, while the guest blocks its worker thread), and returns the query's error
/// and how long it took to end after the cancel.
pub async fn cancel_after(
    engine: &Engine,
    ctx: &SessionContext,
    sql: &str,
    after: std::time::Duration,
) -> (DataFusionError, std::time::Duration) {
    let query = engine.query(ctx);
    let handle = query.cancel_handle();
    // A column argument: no constant folding at planning time.
    let df = query
        .sql(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let task = tokio::spawn(async move { df.collect().await });
    tokio::time::sleep(after).await;
    let canceled_at = std::time::Instant::now();
    handle.cancel();
    let err = task
        .await
        .expect("query task")
        .expect_err("the query was canceled");
    (err, canceled_at.elapsed())
}
