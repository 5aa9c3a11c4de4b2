//! Wasm aggregates: results equal DataFusion's built-ins across plan shapes and
//! partition counts; hostile aggregates get their own errors.

use std::time::Duration;

use datafusion::prelude::{SessionConfig, SessionContext};
use wasmudf_engine::{Engine, EngineConfig, Error};

use crate::common::{
    as_udf_error, cancel_after, engine, fails_with, load, ok, open_db, run, scalar, session,
    squash, table, udf_error, value,
};

/// `t(g, x, w, s)`: 100k rows in 10 groups, with every 7th `x` null.
async fn data(engine: &Engine, ctx: &SessionContext) {
    run(
        engine,
        ctx,
        "CREATE TABLE t AS SELECT value % 10 AS g, \
         CASE WHEN value % 7 = 0 THEN NULL ELSE value END AS x, \
         CAST(value % 5 + 1 AS DOUBLE) AS w, \
         CAST(value % 1000 AS VARCHAR) AS s \
         FROM generate_series(1, 100000)",
    )
    .await
    .expect("create t");
}

/// Rows of `sql` (which selects `g` and pairs of values that must agree) where a
/// pair disagrees; `0` when the Wasm aggregates match the built-ins.
async fn mismatches(engine: &Engine, ctx: &SessionContext, sql: &str, check: &str) -> String {
    value(
        engine,
        ctx,
        &format!("SELECT count(*) FROM ({sql}) AS r WHERE NOT ({check})"),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn grouped_aggregates_equal_the_builtins_on_one_and_four_partitions() {
    let engine = engine();
    for partitions in [1, 4] {
        let ctx = session(&engine, partitions, &["stats"]);
        data(&engine, &ctx).await;
        let sql = "SELECT g, \
                   wasm_sum(x) AS a, wasm_sum_batch(x) AS b, sum(x) AS c, \
                   moving_sum(x) AS d, \
                   geo_mean(CAST(x AS DOUBLE)) AS gm, exp(avg(ln(CAST(x AS DOUBLE)))) AS gm2, \
                   median_wasm(CAST(x AS DOUBLE)) AS m, median(CAST(x AS DOUBLE)) AS m2, \
                   weighted_avg(CAST(x AS DOUBLE), w) AS wa, sum(x * w) / sum(CASE WHEN x IS NOT NULL THEN w END) AS wa2, \
                   hll_distinct(x) AS ad, count(DISTINCT x) AS ad2 \
                   FROM t GROUP BY g";
        assert_eq!(
            mismatches(
                &engine,
                &ctx,
                sql,
                "a = c AND b = c AND d = c \
                 AND abs(gm - gm2) < 1e-9 * gm2 AND m = m2 \
                 AND abs(wa - wa2) < 1e-9 * wa2 \
                 AND abs(ad - ad2) < 0.1 * ad2"
            )
            .await,
            "0",
            "{partitions} partitions"
        );
        assert_eq!(
            value(&engine, &ctx, &format!("SELECT count(*) FROM ({sql}) AS r")).await,
            "10"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn filter_distinct_rollup_having_order_by_and_subqueries() {
    let engine = engine();
    let ctx = session(&engine, 4, &["stats"]);
    data(&engine, &ctx).await;
    // FILTER, grouped and not.
    assert_eq!(
        mismatches(
            &engine,
            &ctx,
            "SELECT g, wasm_sum(x) FILTER (WHERE x % 3 = 0) AS a, sum(x) FILTER (WHERE x % 3 = 0) AS b FROM t GROUP BY g",
            "a = b"
        )
        .await,
        "0"
    );
    assert_eq!(
        value(
            &engine,
            &ctx,
            "SELECT wasm_sum(x) FILTER (WHERE g = 3) = sum(x) FILTER (WHERE g = 3) FROM t"
        )
        .await,
        "true"
    );
    // DISTINCT, grouped and not (the host deduplicates, across partitions).
    assert_eq!(
        value(
            &engine,
            &ctx,
            "SELECT wasm_sum(DISTINCT g) = sum(DISTINCT g) AND median_wasm(DISTINCT w) = 3 FROM t"
        )
        .await,
        "true"
    );
    assert_eq!(
        mismatches(
            &engine,
            &ctx,
            "SELECT g, wasm_sum(DISTINCT x % 100) AS a, sum(DISTINCT x % 100) AS b FROM t GROUP BY g",
            "a = b"
        )
        .await,
        "0"
    );
    // ROLLUP and GROUPING SETS.
    assert_eq!(
        mismatches(
            &engine,
            &ctx,
            "SELECT g, w, wasm_sum(x) AS a, sum(x) AS b FROM t GROUP BY ROLLUP (g, w)",
            "a = b"
        )
        .await,
        "0"
    );
    assert_eq!(
        value(
            &engine,
            &ctx,
            "SELECT count(*) FROM (SELECT g, w, wasm_sum(x) FROM t GROUP BY GROUPING SETS ((g), (w), ()))"
        )
        .await,
        "16"
    );
    // HAVING and ORDER BY on the aggregate, inside a subquery and a CTE.
    assert_eq!(
        squash(
            &table(
                &engine,
                &ctx,
                "WITH s AS (SELECT g, wasm_sum(x) AS total FROM t GROUP BY g HAVING wasm_sum(x) > 428000000) \
                 SELECT g FROM s WHERE total IN (SELECT wasm_sum(x) FROM t GROUP BY g) ORDER BY total DESC, g"
            )
            .await
        ),
        squash(
            &table(
                &engine,
                &ctx,
                "WITH s AS (SELECT g, sum(x) AS total FROM t GROUP BY g HAVING sum(x) > 428000000) \
                 SELECT g FROM s ORDER BY total DESC, g"
            )
            .await
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_all_null_skewed_and_a_million_groups() {
    let engine = engine();
    let ctx = session(&engine, 4, &["stats"]);
    data(&engine, &ctx).await;
    // Empty input: one NULL row without GROUP BY, no rows with it.
    assert_eq!(
        value(
            &engine,
            &ctx,
            "SELECT wasm_sum(x) IS NULL AND geo_mean(w) IS NULL AND hll_distinct(x) = 0 FROM t WHERE false"
        )
        .await,
        "true"
    );
    assert_eq!(
        value(
            &engine,
            &ctx,
            "SELECT count(*) FROM (SELECT g, wasm_sum(x) FROM t WHERE false GROUP BY g)"
        )
        .await,
        "0"
    );
    // All-null input: strict aggregates skip every row.
    assert_eq!(
        value(
            &engine,
            &ctx,
            "SELECT wasm_sum(x) IS NULL AND median_wasm(CAST(x AS DOUBLE)) IS NULL FROM t WHERE x IS NULL"
        )
        .await,
        "true"
    );
    // Skewed: one huge group and many tiny ones.
    assert_eq!(
        mismatches(
            &engine,
            &ctx,
            "SELECT CASE WHEN x % 100 = 1 THEN x ELSE 0 END AS k, wasm_sum(x) AS a, sum(x) AS b \
             FROM t GROUP BY CASE WHEN x % 100 = 1 THEN x ELSE 0 END",
            "a = b"
        )
        .await,
        "0"
    );
    // A million distinct groups, partial and final aggregation on four partitions.
    assert_eq!(
        value(
            &engine,
            &ctx,
            "SELECT count(*) FROM (SELECT value AS k, wasm_sum_batch(value) AS a, wasm_sum(value * 2) AS b \
             FROM generate_series(1, 1000000) GROUP BY value) WHERE a = k AND b = 2 * k"
        )
        .await,
        "1000000"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn text_aggregates_and_two_argument_aggregates() {
    let engine = engine();
    let ctx = session(&engine, 4, &["stats"]);
    data(&engine, &ctx).await;
    // Row order is unspecified: check what does not depend on it.
    assert_eq!(
        mismatches(
            &engine,
            &ctx,
            "SELECT g, length(str_join(s, ', ')) AS a, sum(length(s)) + 2 * (count(s) - 1) AS b FROM t GROUP BY g",
            "a = b"
        )
        .await,
        "0"
    );
    assert_eq!(
        value(
            &engine,
            &ctx,
            "SELECT str_join(s, '-') FROM (VALUES ('only')) v(s)"
        )
        .await,
        "only"
    );
    // arg_max: the text of the row with the largest value, ties to the smallest text.
    assert_eq!(
        value(
            &engine,
            &ctx,
            "SELECT arg_max(name, score) FROM (VALUES ('b', 2.0), ('a', 3.0), ('c', 3.0), ('d', NULL)) v(name, score)"
        )
        .await,
        "a"
    );
    assert_eq!(
        mismatches(
            &engine,
            &ctx,
            "SELECT g, arg_max(s, CAST(x AS DOUBLE)) AS a, CAST(max(x) % 1000 AS VARCHAR) AS b FROM t GROUP BY g",
            "a = b"
        )
        .await,
        "0"
    );
    // An error from finish names the function.
    let (code, message) = udf_error(
        &engine,
        &ctx,
        "SELECT geo_mean(x - 5) FROM (VALUES (1.0), (9.0)) v(x)",
    )
    .await;
    assert_eq!(code, "38000", "{message}");
    assert!(
        message.contains("geo_mean") && message.contains("positive"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn window_frames_growing_and_sliding() {
    let engine = engine();
    let ctx = session(&engine, 4, &["stats"]);
    run(
        &engine,
        &ctx,
        "CREATE TABLE s AS SELECT value AS day, value * value % 17 AS v FROM generate_series(1, 300)",
    )
    .await
    .expect("create s");
    // A frame that only grows: no retract needed.
    assert_eq!(
        mismatches(
            &engine,
            &ctx,
            "SELECT day, wasm_sum(v) OVER (ORDER BY day) AS a, sum(v) OVER (ORDER BY day) AS b FROM s",
            "a = b"
        )
        .await,
        "0"
    );
    // Partitioned, whole-partition frame.
    assert_eq!(
        mismatches(
            &engine,
            &ctx,
            "SELECT day, median_wasm(CAST(v AS DOUBLE)) OVER (PARTITION BY day % 3) AS a, \
             median(CAST(v AS DOUBLE)) OVER (PARTITION BY day % 3) AS b FROM s",
            "a = b"
        )
        .await,
        "0"
    );
    // A sliding frame retracts rows.
    assert_eq!(
        mismatches(
            &engine,
            &ctx,
            "SELECT day, moving_sum(v) OVER (ORDER BY day ROWS BETWEEN 6 PRECEDING AND CURRENT ROW) AS a, \
             sum(v) OVER (ORDER BY day ROWS BETWEEN 6 PRECEDING AND CURRENT ROW) AS b FROM s",
            "a = b"
        )
        .await,
        "0"
    );
    // An aggregate without retract refuses a sliding frame, saying why.
    let (code, message) = udf_error(
        &engine,
        &ctx,
        "SELECT wasm_sum(v) OVER (ORDER BY day ROWS BETWEEN 6 PRECEDING AND CURRENT ROW) FROM s",
    )
    .await;
    assert_eq!(code, "0A000", "{message}");
    assert!(
        message.contains("wasm_sum") && message.contains("retract"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_aggregates_get_their_own_errors() {
    let engine = engine();
    let ctx = session(&engine, 4, &["bad_aggregates"]);
    let many_partitions =
        "FROM (SELECT value % 50 AS g, value AS x FROM generate_series(1, 200000)) GROUP BY g";
    let (code, message) = udf_error(
        &engine,
        &ctx,
        &format!("SELECT g, trap_in_merge(x) {many_partitions}"),
    )
    .await;
    assert_eq!(code, "38000", "{message}");
    assert!(message.contains("trap_in_merge"), "{message}");
    let (code, message) = udf_error(
        &engine,
        &ctx,
        &format!("SELECT g, lying_state(x) {many_partitions}"),
    )
    .await;
    assert_eq!(code, "39000", "{message}");
    assert!(
        message.contains("lying_state") && message.contains("state"),
        "{message}"
    );
    let (code, message) = udf_error(
        &engine,
        &ctx,
        "SELECT state_hog(value) FROM generate_series(1, 10000)",
    )
    .await;
    assert_eq!(code, "53200", "{message}");
    assert!(
        message.contains("state_hog") && message.contains("memory"),
        "{message}"
    );
    // The engine goes on; on one partition no state is ever merged.
    let single = session(&engine, 1, &["bad_aggregates"]);
    assert_eq!(
        value(
            &engine,
            &single,
            "SELECT trap_in_merge(value) FROM generate_series(1, 10)"
        )
        .await,
        "10"
    );
}

#[tokio::test]
async fn create_drop_aggregate_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open_db(dir.path()).await;
        let s = db.session("wasmudf");
        assert_eq!(
            ok(
                &s,
                "CREATE FUNCTION geo_mean(double precision) RETURNS double precision \
                 LANGUAGE wasm AS 'stats.wasm', 'geo_mean'"
            )
            .await,
            "CREATE FUNCTION"
        );
        ok(
            &s,
            "CREATE FUNCTION total(bigint) RETURNS bigint LANGUAGE wasm AS 'stats.wasm', 'wasm_sum'",
        )
        .await;
        assert_eq!(
            scalar(
                &s,
                "SELECT round(geo_mean(x), 6) FROM (VALUES (2.0), (8.0)) v(x)"
            )
            .await,
            "4.0"
        );
        // The signature is checked against the component.
        fails_with(
            &s,
            "CREATE FUNCTION bad(bigint) RETURNS bigint LANGUAGE wasm AS 'stats.wasm', 'geo_mean'",
            "42P13",
            "double precision",
        )
        .await;
        // A name holds one kind of function.
        fails_with(
            &s,
            "CREATE FUNCTION total(text) RETURNS text LANGUAGE wasm AS 'strings.wasm', 'initials'",
            "42723",
            "aggregate",
        )
        .await;
        // DROP AGGREGATE drops only aggregates.
        ok(
            &s,
            "CREATE FUNCTION gcd(bigint, bigint) RETURNS bigint LANGUAGE wasm AS 'math.wasm', 'gcd'",
        )
        .await;
        fails_with(
            &s,
            "DROP AGGREGATE gcd(bigint, bigint)",
            "42809",
            "not an aggregate",
        )
        .await;
        fails_with(
            &s,
            "DROP AGGREGATE gcd",
            "42883",
            "aggregate gcd does not exist",
        )
        .await;
        // The rewrite of DROP AGGREGATE keeps statements apart.
        assert!(ok(&s, "DROP AGGREGATE IF EXISTS nothing; SELECT 1")
            .await
            .contains('1'));
        assert_eq!(
            ok(&s, "SELECT 1;; DROP AGGREGATE IF EXISTS nothing").await,
            "DROP AGGREGATE"
        );
    }
    // Both aggregates are back after a restart, planned and runnable.
    let db = open_db(dir.path()).await;
    let s = db.session("wasmudf");
    assert_eq!(
        scalar(&s, "SELECT total(value) FROM generate_series(1, 100)").await,
        "5050"
    );
    assert_eq!(
        ok(&s, "DROP AGGREGATE total(bigint)").await,
        "DROP AGGREGATE"
    );
    assert_eq!(ok(&s, "DROP FUNCTION geo_mean").await, "DROP FUNCTION");
    fails_with(&s, "SELECT total(1)", "42883", "total").await;
    // The name is free for a scalar function now.
    ok(
        &s,
        "CREATE FUNCTION total(bigint) RETURNS bigint LANGUAGE wasm AS 'math.wasm', 'add_one'",
    )
    .await;
    assert_eq!(scalar(&s, "SELECT total(1)").await, "2");
}

// Multi-threaded: the guest blocks its worker thread, and the cancel comes from another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_an_aggregate_inside_its_guest() {
    let engine = Engine::new(EngineConfig {
        fuel_metering: false,
        ..EngineConfig::default()
    })
    .unwrap();
    let ctx = session(&engine, 1, &["bad_aggregates"]);
    // The aggregate is bound to this query: the guest call itself stops.
    let (err, latency) = cancel_after(
        &engine,
        &ctx,
        "SELECT spin_update(value) FROM generate_series(1, 10)",
        Duration::from_millis(300),
    )
    .await;
    assert!(
        matches!(as_udf_error(&err), Error::Canceled { function } if function == "spin_update"),
        "{err}"
    );
    assert!(
        latency < Duration::from_millis(500),
        "cancel took {latency:?}"
    );
}

/// DataFusion skips partial aggregation for high-cardinality keys and turns rows
/// straight into states (`convert_to_state`); forced here from the first batch.
#[tokio::test(flavor = "multi_thread")]
async fn rows_become_states_when_partial_aggregation_is_skipped() {
    let engine = engine();
    let mut config = SessionConfig::new()
        .with_target_partitions(4)
        .with_batch_size(8192);
    let execution = &mut config.options_mut().execution;
    execution.skip_partial_aggregation_probe_rows_threshold = 1;
    execution.skip_partial_aggregation_probe_ratio_threshold = 0.0;
    let ctx = SessionContext::new_with_config(config);
    engine.register(&ctx, &load(&engine, "stats")).unwrap();
    data(&engine, &ctx).await;
    let sql = "SELECT x % 5000 AS k, wasm_sum(x) AS a, wasm_sum_batch(x) AS b, sum(x) AS c, \
               wasm_sum(x) FILTER (WHERE g = 3) AS fa, sum(x) FILTER (WHERE g = 3) AS fc, \
               median_wasm(CAST(x AS DOUBLE)) AS m, median(CAST(x AS DOUBLE)) AS mc \
               FROM t GROUP BY x % 5000";
    assert_eq!(
        mismatches(
            &engine,
            &ctx,
            sql,
            "a = c AND b = c AND (fa IS NOT DISTINCT FROM fc) AND m = mc"
        )
        .await,
        "0"
    );
    assert_eq!(
        value(&engine, &ctx, &format!("SELECT count(*) FROM ({sql})")).await,
        "5001"
    );
    // The plan really converted rows to states.
    let plan = table(
        &engine,
        &ctx,
        "EXPLAIN ANALYZE SELECT x % 5000, wasm_sum(x) FROM t GROUP BY x % 5000",
    )
    .await;
    let skipped = plan
        .split("skipped_aggregation_rows=")
        .nth(1)
        .unwrap_or_else(|| panic!("no skip metric in {plan}"));
    assert!(
        skipped.starts_with(|c: char| ('1'..='9').contains(&c)),
        "no row was converted: {plan}"
    );
}
