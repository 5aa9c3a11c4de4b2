//! Tiered compilation: a large component runs baseline (Winch) code at once and
//! optimized (Cranelift) code once the background compile is done. The components here
//! are small, so the tests lower the size threshold to zero.

use std::path::Path;
use std::time::Duration;

use crate::common::*;
use wasmudf_engine::{
    CacheOutcome, CodeTier, Engine, EngineConfig, LimitOverrides, Limits, UdfOptions,
};

/// An engine that baseline-compiles every component; `optimize` says whether the
/// optimizing compile follows.
fn tiered(optimize: bool, artifacts: Option<&Path>, limits: Limits) -> Engine {
    Engine::new(EngineConfig {
        defaults: limits,
        baseline_compile_min_size: Some(0),
        background_optimize: optimize,
        artifact_dir: artifacts.map(Path::to_path_buf),
        ..EngineConfig::default()
    })
    .unwrap()
}

fn with_stack(name: &str, stack: &str) -> UdfOptions {
    let mut limits = LimitOverrides::default();
    limits.set("stack", stack).unwrap();
    UdfOptions {
        name: Some(name.into()),
        limits,
        ..Default::default()
    }
}

/// Scalars, strings, aggregates and their window form give on baseline code what
/// they give on optimized code.
async fn check_results(engine: &Engine) {
    let ctx = session(engine, 4, &["math", "strings", "stats"]);
    assert_eq!(
        value(
            engine,
            &ctx,
            "SELECT sum(add_one(value)) + gcd(12, 18) FROM generate_series(1, 100000)"
        )
        .await,
        "5000150006"
    );
    assert_eq!(
        value(engine, &ctx, "SELECT initials('Ada King Lovelace')").await,
        "AKL"
    );
    let grouped = "SELECT count(*) FROM (\
        SELECT value % 7 AS g, geo_mean(CAST(value AS DOUBLE)) AS w, \
               exp(avg(ln(CAST(value AS DOUBLE)))) AS d \
        FROM generate_series(1, 20000) GROUP BY value % 7) WHERE abs(w - d) < 1e-9 * d";
    assert_eq!(value(engine, &ctx, grouped).await, "7");
    let window = "SELECT count(*) FROM (\
        SELECT geo_mean(CAST(value AS DOUBLE)) OVER w AS s, \
               exp(avg(ln(CAST(value AS DOUBLE))) OVER w) AS d \
        FROM generate_series(1, 2000) \
        WINDOW w AS (PARTITION BY value % 5 ORDER BY value)) \
        WHERE abs(s - d) < 1e-9 * d";
    assert_eq!(value(engine, &ctx, window).await, "2000");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baseline_code_gives_the_same_results() {
    let engine = tiered(false, None, Limits::default());
    let math = load(&engine, "math");
    assert_eq!(math.code_tier(), CodeTier::BaselineOnly);
    assert!(!math.wait_optimized(Duration::from_millis(10)));
    check_results(&engine).await;
    // A function with its own stack runs the baseline code in an engine of that size.
    let ctx = session(&engine, 1, &[]);
    ctx.register_udf(
        math.scalar_udf("add_one", &with_stack("add_big", "4MB"))
            .unwrap(),
    );
    assert_eq!(value(&engine, &ctx, "SELECT add_big(41)").await, "42");
}

/// Every limit holds on baseline code, with the same SQLSTATE and message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baseline_code_keeps_every_limit() {
    let limits = Limits {
        fuel: 50_000_000,
        memory: 32 << 20,
        ..Limits::default()
    };
    let engine = tiered(false, None, limits);
    let ctx = session(&engine, 1, &["spin", "membomb", "recursion", "math"]);
    let (state, msg) = udf_error(&engine, &ctx, "SELECT spin(1)").await;
    assert_eq!(
        (state.as_str(), msg.as_str()),
        (
            "54000",
            "function spin: fuel exhausted (wasm.fuel = 50000000)"
        )
    );
    let (state, msg) = udf_error(&engine, &ctx, "SELECT membomb(1)").await;
    assert_eq!(state, "53200");
    assert!(
        msg.starts_with("function membomb: memory limit exceeded (wasm.memory = 33554432 bytes"),
        "{msg}"
    );
    let (state, msg) = udf_error(&engine, &ctx, "SELECT recurse(1)").await;
    assert_eq!(
        (state.as_str(), msg.as_str()),
        (
            "54000",
            "function recurse: wasm stack overflow (wasm.stack = 1048576 bytes)"
        )
    );
    assert_eq!(value(&engine, &ctx, "SELECT add_one(1)").await, "2");

    let deadline = tiered(
        false,
        None,
        Limits {
            timeout: Duration::from_millis(200),
            fuel: u64::MAX / 2,
            ..Limits::default()
        },
    );
    let ctx = session(&deadline, 1, &["spin"]);
    let (state, msg) = udf_error(&deadline, &ctx, "SELECT spin(1)").await;
    assert_eq!(
        (state.as_str(), msg.as_str()),
        ("57014", "function spin: timed out (wasm.timeout = 200ms)")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optimized_code_replaces_the_baseline_and_is_cached() {
    let dir = tempfile::tempdir().unwrap();
    let artifacts = dir.path().join("artifacts");
    let bytes = std::fs::read(wasmudf_udfs::path("math").unwrap()).unwrap();
    let hash = {
        let engine = tiered(true, Some(&artifacts), Limits::default());
        let (math, outcome) = engine.load_component_traced(&bytes).unwrap();
        assert_eq!(outcome, CacheOutcome::Compiled);
        let ctx = session(&engine, 2, &[]);
        ctx.register_udf(math.scalar_udf("add_one", &UdfOptions::default()).unwrap());
        ctx.register_udf(
            math.scalar_udf("add_one", &with_stack("add_big", "4MB"))
                .unwrap(),
        );
        let sql = "SELECT sum(add_one(value)) - sum(add_big(value)) FROM generate_series(1, 10000)";
        // Whichever code runs now, the result is the same.
        assert_eq!(value(&engine, &ctx, sql).await, "0");
        assert!(math.wait_optimized(Duration::from_secs(120)));
        assert_eq!(math.code_tier(), CodeTier::Optimized);
        // A stack variant made from the baseline code is made again from the optimized.
        assert_eq!(value(&engine, &ctx, sql).await, "0");
        check_results(&engine).await;
        math.hash()
    };
    let cached = std::fs::read_dir(&artifacts)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .filter(|n| n.starts_with(&format!("{hash}-")) && n.ends_with(".cwasm"))
        .count();
    assert_eq!(cached, 1, "the optimized artifact is cached");
    // A restart loads the optimized artifact and never runs baseline code.
    let engine = tiered(true, Some(&artifacts), Limits::default());
    let (math, outcome) = engine.load_component_traced(&bytes).unwrap();
    assert_eq!(outcome, CacheOutcome::Loaded);
    assert_eq!(math.code_tier(), CodeTier::Optimized);
}

#[test]
fn small_components_compile_optimized_at_once() {
    // The default threshold (1 MB) is far above the Rust examples (tens of kB).
    let math = load(&engine(), "math");
    assert_eq!(math.code_tier(), CodeTier::Optimized);
    assert!(math.wait_optimized(Duration::ZERO));
    let off = Engine::new(EngineConfig {
        baseline_compile_min_size: None,
        ..EngineConfig::default()
    })
    .unwrap();
    assert_eq!(load(&off, "math").code_tier(), CodeTier::Optimized);
}
