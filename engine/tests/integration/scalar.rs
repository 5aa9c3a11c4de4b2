//! Scalar Wasm UDFs through `SessionContext::sql`: results, types, nulls, batch shapes,
//! query contexts and partitioning.

use std::sync::Arc;

use crate::common::*;
use datafusion::arrow::array::*;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};
use wasmudf_engine::{FunctionKind, NullHandling, UdfOptions};

#[tokio::test]
async fn describe_reads_the_components_own_signatures() {
    let engine = engine();
    let math = load(&engine, "math");
    let names: Vec<_> = math.functions().iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["add_one", "gcd", "safe_div", "add_one_batch"]);
    let gcd = math.function("gcd").unwrap();
    assert_eq!(gcd.params, [DataType::Int64, DataType::Int64]);
    assert_eq!(gcd.returns, DataType::Int64);
    assert_eq!(gcd.kind, FunctionKind::Scalar);
    assert_eq!(gcd.null_handling, NullHandling::Strict);
    assert_eq!(gcd.to_string(), "gcd(bigint, bigint) -> bigint");
    let strings = load(&engine, "strings");
    assert_eq!(
        strings.function("initials").unwrap().null_handling,
        NullHandling::CalledOnNull
    );
    // Same bytes, same module: compiled once.
    assert_eq!(load(&engine, "math").hash(), math.hash());
}

#[tokio::test]
async fn examples_compute_what_they_claim() {
    let engine = engine();
    let ctx = session(&engine, 1, &["math", "strings", "geo", "temporal"]);
    let q = "SELECT add_one(41) AS a, gcd(12, 18) AS g, gcd(-4, 0) AS g0, \
             initials('Ada Lovelace') AS i, upper_ascii('wasm udf') AS u, reverse_text('héllo') AS r, \
             byte_len(CAST('abc' AS BYTEA)) AS b, add_one_batch(1) AS ab";
    assert_eq!(
        table(&engine, &ctx, q).await,
        "+----+---+----+----+----------+-------+---+----+\n\
         | a  | g | g0 | i  | u        | r     | b | ab |\n\
         +----+---+----+----+----------+-------+---+----+\n\
         | 42 | 6 | 4  | AL | WASM UDF | olléh | 3 | 2  |\n\
         +----+---+----+----+----------+-------+---+----+"
    );
    // Paris to London.
    let km: f64 = value(
        &engine,
        &ctx,
        "SELECT haversine(48.8566, 2.3522, 51.5074, -0.1278)",
    )
    .await
    .parse()
    .unwrap();
    assert!((km - 343.5).abs() < 1.0, "{km}");
    assert_eq!(
        value(
            &engine,
            &ctx,
            "SELECT with_vat(CAST(100.00 AS DECIMAL(12,2)), 2000)"
        )
        .await,
        "120.00"
    );
    assert_eq!(
        value(
            &engine,
            &ctx,
            "SELECT day_start(CAST('2024-03-10T17:45:00Z' AS TIMESTAMP WITH TIME ZONE))"
        )
        .await,
        "2024-03-10T00:00:00Z"
    );
    assert_eq!(
        value(
            &engine,
            &ctx,
            "SELECT days_between(DATE '2024-01-01', DATE '2024-03-01')"
        )
        .await,
        "60"
    );
    assert_eq!(
        value(
            &engine,
            &ctx,
            "SELECT to_day(TIMESTAMP '1969-12-31 23:00:00')"
        )
        .await,
        "1969-12-31"
    );
}

/// The example `gcd` switches to 32-bit division once both operands fit: results must
/// not change across that boundary, for negative operands or at the extremes.
#[tokio::test]
async fn gcd_is_exact_across_the_32_bit_boundary() {
    fn euclid(a: i64, b: i64) -> i64 {
        let (mut a, mut b) = (a.unsigned_abs(), b.unsigned_abs());
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a as i64
    }
    let engine = engine();
    let ctx = session(&engine, 1, &["math"]);
    let pairs: [(i64, i64); 10] = [
        (1 << 40, 3 << 33),
        (u32::MAX as i64 * 6, u32::MAX as i64 * 4),
        ((1 << 32) + 1, 1 << 32),
        (u32::MAX as i64, (1 << 32) + 2),
        (-(1 << 35) * 9, 6 << 35),
        (i64::MAX, i64::MAX - 1),
        (i64::MIN + 1, 7 << 50),
        (1_000_000_007 * 3, 1_000_000_007 * 5),
        (0, -(1 << 33)),
        (-12, 18),
    ];
    for (a, b) in pairs {
        let got = value(&engine, &ctx, &format!("SELECT gcd({a}, {b})")).await;
        assert_eq!(got, euclid(a, b).to_string(), "gcd({a}, {b})");
    }
}
/// A batch with one column of every supported type, every other row null.
fn all_types_batch(rows: usize) -> RecordBatch {
    let valid = |i: usize| i.is_multiple_of(2);
    let cols: Vec<(&str, ArrayRef)> = vec![
        (
            "bool",
            Arc::new(
                (0..rows)
                    .map(|i| valid(i).then_some(i % 3 == 0))
                    .collect::<BooleanArray>(),
            ),
        ),
        (
            "i8",
            Arc::new(
                (0..rows)
                    .map(|i| valid(i).then_some(i as i8))
                    .collect::<Int8Array>(),
            ),
        ),
        (
            "i16",
            Arc::new(
                (0..rows)
                    .map(|i| valid(i).then_some(-(i as i16)))
                    .collect::<Int16Array>(),
            ),
        ),
        (
            "i32",
            Arc::new(
                (0..rows)
                    .map(|i| valid(i).then_some(i as i32 * 7))
                    .collect::<Int32Array>(),
            ),
        ),
        (
            "i64",
            Arc::new(
                (0..rows)
                    .map(|i| valid(i).then_some(i as i64 * -1_000_000_007))
                    .collect::<Int64Array>(),
            ),
        ),
        (
            "u8",
            Arc::new(
                (0..rows)
                    .map(|i| valid(i).then_some(i as u8))
                    .collect::<UInt8Array>(),
            ),
        ),
        (
            "u16",
            Arc::new(
                (0..rows)
                    .map(|i| valid(i).then_some(i as u16))
                    .collect::<UInt16Array>(),
            ),
        ),
        (
            "u32",
            Arc::new(
                (0..rows)
                    .map(|i| valid(i).then_some(u32::MAX - i as u32))
                    .collect::<UInt32Array>(),
            ),
        ),
        (
            "u64",
            Arc::new(
                (0..rows)
                    .map(|i| valid(i).then_some(u64::MAX - i as u64))
                    .collect::<UInt64Array>(),
            ),
        ),
        (
            "f32",
            Arc::new(
                (0..rows)
                    .map(|i| valid(i).then_some(i as f32 / 3.0))
                    .collect::<Float32Array>(),
            ),
        ),
        (
            "f64",
            Arc::new(
                (0..rows)
                    .map(|i| valid(i).then_some(-(i as f64) / 7.0))
                    .collect::<Float64Array>(),
            ),
        ),
        (
            "text",
            Arc::new(
                (0..rows)
                    .map(|i| valid(i).then(|| format!("héllo {i} ✓")))
                    .collect::<StringArray>(),
            ),
        ),
        (
            "bytes",
            Arc::new(
                (0..rows)
                    .map(|i| valid(i).then(|| vec![i as u8, 0, 255]))
                    .collect::<BinaryArray>(),
            ),
        ),
        (
            "date",
            Arc::new(
                (0..rows)
                    .map(|i| valid(i).then_some(19_000 + i as i32))
                    .collect::<Date32Array>(),
            ),
        ),
        (
            "ts_us",
            Arc::new(
                (0..rows)
                    .map(|i| valid(i).then_some(1_700_000_000_000_000 + i as i64))
                    .collect::<TimestampMicrosecondArray>(),
            ),
        ),
        (
            "ts_ns",
            Arc::new(
                (0..rows)
                    .map(|i| valid(i).then_some(1_700_000_000_000_000_000 + i as i64))
                    .collect::<TimestampNanosecondArray>(),
            ),
        ),
        (
            "tstz_us",
            Arc::new(
                (0..rows)
                    .map(|i| valid(i).then_some(-(i as i64)))
                    .collect::<TimestampMicrosecondArray>()
                    .with_timezone("UTC"),
            ),
        ),
        (
            "tstz_ns",
            Arc::new(
                (0..rows)
                    .map(|i| valid(i).then_some(i as i64))
                    .collect::<TimestampNanosecondArray>()
                    .with_timezone("UTC"),
            ),
        ),
        (
            "dec",
            Arc::new(
                (0..rows)
                    .map(|i| valid(i).then_some(i as i128 * 12_345 - 99_999_999_999_999_999))
                    .collect::<Decimal128Array>()
                    .with_precision_and_scale(20, 4)
                    .unwrap(),
            ),
        ),
    ];
    let schema = Schema::new(
        cols.iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    );
    RecordBatch::try_new(Arc::new(schema), cols.into_iter().map(|(_, a)| a).collect()).unwrap()
}

#[tokio::test]
async fn every_type_round_trips_with_nulls() {
    let engine = engine();
    let ctx = session(&engine, 2, &["types"]);
    let batch = all_types_batch(1000);
    let schema = batch.schema();
    ctx.register_table(
        "t",
        Arc::new(MemTable::try_new(schema.clone(), vec![vec![batch.clone()]]).unwrap()),
    )
    .unwrap();
    for (i, field) in schema.fields().iter().enumerate() {
        let col = field.name();
        for suffix in ["", "_n"] {
            let f = format!("echo_{col}{suffix}");
            let sql = format!("SELECT {f}({col}) FROM t");
            let out = run(&engine, &ctx, &sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            let got = datafusion::arrow::compute::concat(
                &out.iter().map(|b| b.column(0).as_ref()).collect::<Vec<_>>(),
            )
            .unwrap();
            assert_eq!(got.data_type(), field.data_type(), "{f}");
            assert_eq!(&got, batch.column(i), "{f} changed its input");
        }
    }
}

#[tokio::test]
async fn strict_and_called_on_null() {
    let engine = engine();
    let ctx = session(&engine, 1, &["types", "math", "strings"]);
    let t = table(
        &engine,
        &ctx,
        "SELECT gcd(a, b) AS g, is_missing(a) AS m, first_text(s, 'dflt') AS f, initials(s) AS i \
         FROM (VALUES (12, 18, 'x y'), (NULL, 3, NULL), (4, NULL, 'solo')) AS v(a, b, s)",
    )
    .await;
    assert_eq!(
        t,
        "+---+-------+------+----+\n\
         | g | m     | f    | i  |\n\
         +---+-------+------+----+\n\
         | 6 | false | x y  | XY |\n\
         |   | true  | dflt |    |\n\
         |   | false | solo | S  |\n\
         +---+-------+------+----+"
    );
    // A null literal makes a strict function null without calling the guest.
    assert_eq!(
        value(&engine, &ctx, "SELECT gcd(NULL, 5) IS NULL").await,
        "true"
    );
    assert_eq!(
        value(&engine, &ctx, "SELECT is_missing(NULL)").await,
        "true"
    );
}

#[tokio::test]
async fn empty_one_row_and_large_batches() {
    let engine = engine();
    let ctx = session(&engine, 1, &["math", "strings"]);
    assert_eq!(
        table(
            &engine,
            &ctx,
            "SELECT add_one(value) FROM generate_series(1, 10) WHERE value > 100"
        )
        .await,
        "++\n++"
    );
    let empty = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, true)])),
        vec![Arc::new(Int64Array::from(Vec::<i64>::new()))],
    )
    .unwrap();
    ctx.register_table(
        "empty",
        Arc::new(MemTable::try_new(empty.schema(), vec![vec![empty]]).unwrap()),
    )
    .unwrap();
    assert_eq!(
        value(&engine, &ctx, "SELECT count(add_one(x)) FROM empty").await,
        "0"
    );
    assert_eq!(
        value(
            &engine,
            &ctx,
            "SELECT add_one(value) FROM generate_series(7, 7)"
        )
        .await,
        "8"
    );
    // 100k rows: sum(x + 1) = n(n+1)/2 + n.
    assert_eq!(
        value(
            &engine,
            &ctx,
            "SELECT sum(add_one(value)) FROM generate_series(1, 100000)"
        )
        .await,
        "5000150000"
    );
    // One batch of 100k strings.
    let big = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8, false)])),
        vec![Arc::new(
            (0..100_000)
                .map(|i| Some(format!("row {i}")))
                .collect::<StringArray>(),
        )],
    )
    .unwrap();
    let ctx2 = SessionContext::new_with_config(SessionConfig::new().with_batch_size(200_000));
    engine.register(&ctx2, &load(&engine, "strings")).unwrap();
    ctx2.register_table(
        "big",
        Arc::new(MemTable::try_new(big.schema(), vec![vec![big]]).unwrap()),
    )
    .unwrap();
    assert_eq!(
        value(
            &engine,
            &ctx2,
            "SELECT sum(length(upper_ascii(s))) FROM big"
        )
        .await,
        (0..100_000)
            .map(|i| format!("row {i}").len())
            .sum::<usize>()
            .to_string()
    );
}

#[tokio::test]
async fn works_in_every_query_context() {
    let engine = engine();
    let ctx = session(&engine, 4, &["math", "strings"]);
    ctx.sql("CREATE TABLE nums AS SELECT value AS x, value % 5 AS k FROM generate_series(1, 2000)")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let cases = [
        ("SELECT count(*) FROM nums WHERE gcd(x, 10) = 10", "200"),
        (
            "SELECT count(*) FROM nums a JOIN nums b ON add_one(a.x) = b.x",
            "1999",
        ),
        (
            "SELECT count(*) FROM (SELECT gcd(x, 6) AS g FROM nums GROUP BY gcd(x, 6))",
            "4",
        ),
        (
            "SELECT x FROM nums ORDER BY add_one(x) DESC LIMIT 1",
            "2000",
        ),
        (
            "WITH c AS (SELECT add_one(x) AS y FROM nums) SELECT max(y) FROM c",
            "2001",
        ),
        (
            "SELECT max(y) FROM (SELECT add_one(add_one(x)) AS y FROM nums)",
            "2002",
        ),
        (
            "SELECT count(*) FROM nums WHERE x IN (SELECT add_one(x) FROM nums WHERE k = 0)",
            "399",
        ),
        (
            "SELECT sum(CASE WHEN gcd(x, 2) = 2 THEN add_one(x) ELSE 0 END) FROM nums",
            "1002000",
        ),
        ("SELECT sum(gcd(x, k)) FROM nums WHERE k > 0", "2468"),
        (
            "SELECT reverse_text(initials(concat('a', ' ', CAST(x AS VARCHAR)))) FROM nums WHERE x = 7",
            "7A",
        ),
        ("SELECT count(DISTINCT safe_div(x, 100)) FROM nums", "21"),
    ];
    for (sql, expected) in cases {
        assert_eq!(value(&engine, &ctx, sql).await, expected, "{sql}");
    }
}

#[tokio::test]
async fn literal_arguments_broadcast_and_never_run_at_planning() {
    let engine = engine();
    let ctx = session(&engine, 1, &["math", "spin"]);
    assert_eq!(
        value(
            &engine,
            &ctx,
            "SELECT sum(gcd(value, 12)) FROM generate_series(1, 12)"
        )
        .await,
        "40"
    );
    // Literal arguments are not folded into a constant while planning: guest code
    // runs only in the executing plan, under its query's limits and cancellation.
    let plan = table(
        &engine,
        &ctx,
        "EXPLAIN SELECT gcd(12, 18) FROM generate_series(1, 3)",
    )
    .await;
    assert!(plan.contains("gcd(Int64(12), Int64(18))"), "{plan}");
    assert!(!plan.contains("Int64(6)"), "{plan}");
    // A call that would never return plans at once.
    let plan = table(&engine, &ctx, "EXPLAIN SELECT spin(1)").await;
    assert!(plan.contains("spin(Int64(1))"), "{plan}");
}

#[tokio::test]
async fn wrong_arguments_are_planning_errors() {
    let engine = engine();
    let ctx = session(&engine, 1, &["math"]);
    let err = run(&engine, &ctx, "SELECT gcd(1)")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("function gcd(bigint) does not exist; it is gcd(bigint, bigint)"),
        "{err}"
    );
    let err = run(&engine, &ctx, "SELECT gcd('a', 2)")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("function gcd(text, bigint) does not exist"),
        "{err}"
    );
    // Numeric widening is implicit, as in PostgreSQL.
    assert_eq!(
        value(
            &engine,
            &ctx,
            "SELECT gcd(CAST(12 AS INT), CAST(18 AS SMALLINT))"
        )
        .await,
        "6"
    );
}

#[tokio::test]
async fn guest_state_does_not_leak_between_queries() {
    let engine = engine();
    let ctx = session(&engine, 1, &["types"]);
    for _ in 0..3 {
        assert_eq!(
            value(
                &engine,
                &ctx,
                "SELECT max(calls()) FROM generate_series(1, 10)"
            )
            .await,
            "10"
        );
    }
    // Within one query, the partition's instance is reused batch after batch.
    assert_eq!(
        value(
            &engine,
            &ctx,
            "SELECT max(calls()) FROM generate_series(1, 50000)"
        )
        .await,
        "50000"
    );
}

/// A plain `ctx.sql` (no `Engine::query`) in a context set up by `Engine::register`
/// still pools its instances within the query and never across queries; a context
/// whose function was registered by hand, without `Engine::scope_queries`, gets a
/// fresh instance per batch.
#[tokio::test]
async fn plain_session_queries_get_a_scope_of_their_own() {
    let engine = engine();
    let ctx = session(&engine, 1, &["types"]);
    let plain = |ctx: SessionContext| async move {
        let batches = ctx
            .sql("SELECT max(calls()) FROM generate_series(1, 50000)")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        datafusion::arrow::util::display::array_value_to_string(batches[0].column(0), 0).unwrap()
    };
    for _ in 0..3 {
        assert_eq!(plain(ctx.clone()).await, "50000");
    }
    let bare = SessionContext::new_with_config(
        SessionConfig::new()
            .with_target_partitions(1)
            .with_batch_size(8192),
    );
    let types = load(&engine, "types");
    bare.register_udf(types.scalar_udf("calls", &UdfOptions::default()).unwrap());
    assert_eq!(plain(bare.clone()).await, "8192");
    engine.scope_queries(&bare);
    assert_eq!(plain(bare).await, "50000");
}

#[tokio::test]
async fn partitions_run_in_parallel_instances() {
    let engine = engine();
    let ctx = session(&engine, 4, &["math"]);
    let parts: Vec<Vec<RecordBatch>> = (0..4)
        .map(|p| {
            (0..5)
                .map(|b| {
                    let start = (p * 5 + b) * 10_000;
                    RecordBatch::try_new(
                        Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)])),
                        vec![Arc::new(Int64Array::from_iter_values(
                            start as i64..start as i64 + 10_000,
                        ))],
                    )
                    .unwrap()
                })
                .collect()
        })
        .collect();
    let schema = parts[0][0].schema();
    ctx.register_table("p", Arc::new(MemTable::try_new(schema, parts).unwrap()))
        .unwrap();
    let n: i64 = 200_000;
    assert_eq!(
        value(&engine, &ctx, "SELECT sum(add_one(x)) FROM p").await,
        (n * (n - 1) / 2 + n).to_string()
    );
    assert_eq!(
        value(
            &engine,
            &ctx,
            "SELECT count(*) FROM p WHERE gcd(x, 1000) = 1000"
        )
        .await,
        "200"
    );
}
