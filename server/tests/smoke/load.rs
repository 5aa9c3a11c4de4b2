//! The load test: 32 connections of mixed Wasm UDF statements.

use super::*;

/// The mixed statements each load-test connection runs, in turn.
const LOAD_STATEMENTS: &[&str] = &[
    "SELECT initials(name) AS i, reverse_text(name) AS r FROM cities ORDER BY name",
    "SELECT round(geo_mean(CAST(population AS DOUBLE))) AS g, arg_max(name, lat) AS n FROM cities",
    "SELECT count(*) FROM cities WHERE add_one(CAST(population AS BIGINT)) > 1000000",
    "SELECT name, round(haversine(lat, lon, 48.8566, 2.3522)) AS km FROM cities ORDER BY km, name",
];

fn gcd(mut a: i64, mut b: i64) -> i64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.abs()
}

/// The load test, bounded and on loopback: 32 connections run mixed Wasm UDF
/// statements (simple and extended protocol, scalars and aggregates) with zero errors
/// and the same answers as a lone client; afterwards the server's memory is back near
/// where it stood after warm-up. Throughput and latency percentiles are printed (run
/// with `--nocapture`; `WASMUDF_LOAD_ITERATIONS` scales it, `WASMUDF_LOAD_SERVER` runs
/// another build of the server, e.g. target/release/wasmudf, for docs/benchmarks.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_32_connections_mixed_udf_queries() {
    const CONNECTIONS: usize = 32;
    let iterations: usize = std::env::var("WASMUDF_LOAD_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25);
    let dir = tempfile::tempdir().expect("tempdir");
    let binary = std::env::var("WASMUDF_LOAD_SERVER")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_wasmudf").to_string());
    let process = ServerProcess::start(binary.as_ref(), &dir.path().join("data"), &[])
        .unwrap_or_else(|e| panic!("{e}"));
    let url = process.url();
    let connect = || async {
        let (client, conn) = tokio_postgres::connect(&url, NoTls).await.expect("connect");
        tokio::spawn(conn);
        client
    };

    // Warm-up on one connection: compiles nothing new later, and gives the answers
    // every concurrent run must match.
    let lone = connect().await;
    let mut expected = Vec::new();
    for sql in LOAD_STATEMENTS {
        expected.push(query(&lone, sql).await);
    }
    let gcd_sql = "SELECT sum(gcd(value, $1)) FROM generate_series(1, 5000)";
    let gcd_expected = |p: i64| (1..=5000).map(|v| gcd(v, p)).sum::<i64>();
    let warm = lone.prepare(gcd_sql).await.expect("prepare");
    let got: i64 = lone.query_one(&warm, &[&12i64]).await.expect("gcd").get(0);
    assert_eq!(got, gcd_expected(12));
    drop(lone);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = resident_kib(process.pid());

    let expected = std::sync::Arc::new(expected);
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CONNECTIONS {
        let client = connect().await;
        let expected = expected.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = Vec::new();
            let gcd = client.prepare(gcd_sql).await.expect("prepare");
            for i in 0..iterations {
                let p = (c * iterations + i) as i64 % 97 + 1;
                let t = std::time::Instant::now();
                match client.query_one(&gcd, &[&p]).await {
                    Ok(r) if r.get::<_, i64>(0) == gcd_expected(p) => {}
                    Ok(r) => errors.push(format!("gcd({p}) summed to {}", r.get::<_, i64>(0))),
                    Err(e) => errors.push(format!("gcd({p}): {e}")),
                }
                latencies.push(t.elapsed());
                let k = (c + i) % LOAD_STATEMENTS.len();
                let t = std::time::Instant::now();
                match client.simple_query(LOAD_STATEMENTS[k]).await {
                    Ok(messages) => {
                        let rows: Vec<Vec<Option<String>>> = messages
                            .iter()
                            .filter_map(|m| match m {
                                SimpleQueryMessage::Row(r) => Some(
                                    (0..r.len()).map(|j| r.get(j).map(str::to_string)).collect(),
                                ),
                                _ => None,
                            })
                            .collect();
                        if rows != expected[k] {
                            errors.push(format!("{}: {rows:?}", LOAD_STATEMENTS[k]));
                        }
                    }
                    Err(e) => errors.push(format!("{}: {e}", LOAD_STATEMENTS[k])),
                }
                latencies.push(t.elapsed());
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = Vec::new();
    for task in tasks {
        let (l, e) = task.await.expect("load task");
        latencies.extend(l);
        errors.extend(e);
    }
    let elapsed = started.elapsed();
    assert!(
        errors.is_empty(),
        "{} errors under load: {errors:#?}",
        errors.len()
    );

    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "load: {CONNECTIONS} connections x {iterations} iterations = {} statements in {:.2?}: \
         {:.0} statements/s; latency p50 {:.2?} p95 {:.2?} p99 {:.2?} max {:.2?}",
        latencies.len(),
        elapsed,
        latencies.len() as f64 / elapsed.as_secs_f64(),
        at(0.50),
        at(0.95),
        at(0.99),
        at(1.0),
    );

    // All connections closed: the server gives back what the load took.
    tokio::time::sleep(Duration::from_secs(1)).await;
    if let (Some(before), Some(after)) = (before, resident_kib(process.pid())) {
        println!("load: resident memory {before} KiB after warm-up, {after} KiB after the load");
        assert!(
            after <= before + 64 * 1024,
            "server resident memory grew from {before} KiB to {after} KiB under load"
        );
    }
    // And it still answers.
    let client = connect().await;
    assert_eq!(query(&client, "SELECT add_one(1)").await, vec![row(&["2"])]);
}
