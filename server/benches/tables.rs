//! Managed tables over the wire, against the targets: single-row INSERTs in
//! autocommit (per second, against `SELECT 1` round trips in the same run); `SELECT
//! count(*), sum(x)` after 10,000 of them against the same rows in one file; and an
//! UPDATE of 1% of a 10M-row table chosen by a Wasm predicate against rewriting the
//! table with CREATE TABLE AS.
//!
//! `cargo bench --workspace --bench tables` (the server binary is built with the bench
//! profile; `WASMUDF_BENCH_SERVER` runs another build).

// A bench harness: an unwrap that fails is a failed run, not a crashed server.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use tokio_postgres::NoTls;
use wasmudf_sql_tests::ServerProcess;

fn server(dir: &std::path::Path) -> ServerProcess {
    let modules = dir.join("modules");
    wasmudf_sql_tests::write_modules_dir(&modules).unwrap();
    let args = vec!["--modules-dir".to_string(), modules.display().to_string()];
    let binary = std::env::var("WASMUDF_BENCH_SERVER")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_wasmudf").to_string());
    ServerProcess::start(binary.as_ref(), &dir.join("data"), &args).unwrap()
}

/// The median of `runs` timings of `sql`.
async fn median(client: &tokio_postgres::Client, sql: &str, runs: usize) -> Duration {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        client.simple_query(sql).await.unwrap();
        times.push(start.elapsed());
    }
    times.sort();
    times[runs / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let process = server(dir.path());
    let (client, conn) = tokio_postgres::connect(&process.url(), NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);

    // Single-row INSERTs in autocommit, each its own statement and commit.
    client
        .simple_query("CREATE TABLE small (x bigint)")
        .await
        .unwrap();
    let start = Instant::now();
    for i in 0..1000 {
        client
            .simple_query(&format!("INSERT INTO small VALUES ({i})"))
            .await
            .unwrap();
    }
    let inserts = start.elapsed();
    let start = Instant::now();
    for _ in 0..1000 {
        client.simple_query("SELECT 1").await.unwrap();
    }
    let selects = start.elapsed();
    let per_second = 1000.0 / inserts.as_secs_f64();
    println!(
        "1000 single-row INSERTs, autocommit: {per_second:.0}/s ({} each; SELECT 1: {} each, {:.1}x) target >= 500/s",
        ms(inserts / 1000),
        ms(selects / 1000),
        inserts.as_secs_f64() / selects.as_secs_f64()
    );

    // 9,000 more, then count and sum against one file of the same rows.
    for i in 1000..10_000 {
        client
            .simple_query(&format!("INSERT INTO small VALUES ({i})"))
            .await
            .unwrap();
    }
    client
        .simple_query("CREATE TABLE one_file AS SELECT * FROM small")
        .await
        .unwrap();
    let many = median(&client, "SELECT count(*), sum(x) FROM small", 21).await;
    let one = median(&client, "SELECT count(*), sum(x) FROM one_file", 21).await;
    let files = std::fs::read_dir(dir.path().join("data/tables/public"))
        .unwrap()
        .flatten()
        .find(|d| d.file_name().to_string_lossy().starts_with("small-"))
        .map_or(0, |d| std::fs::read_dir(d.path()).unwrap().count());
    println!(
        "count(*), sum(x) after 10000 single-row INSERTs ({files} files): {} vs one file {}: {:.2}x  target <= 2x",
        ms(many),
        ms(one),
        many.as_secs_f64() / one.as_secs_f64()
    );

    // UPDATE of 1% of 10M rows by a Wasm predicate against CREATE TABLE AS.
    client
        .simple_query("CREATE TABLE big AS SELECT value AS x FROM generate_series(1, 10000000)")
        .await
        .unwrap();
    let mut update = Vec::new();
    let mut rewrite = Vec::new();
    for run in 0..3 {
        let start = Instant::now();
        client
            .simple_query("UPDATE big SET x = x + 1 WHERE add_one(x) % 100 = 0")
            .await
            .unwrap();
        update.push(start.elapsed());
        let start = Instant::now();
        client
            .simple_query(&format!(
                "CREATE TABLE big_{run} AS SELECT CASE WHEN add_one(x) % 100 = 0 THEN x + 1 ELSE x END AS x FROM big"
            ))
            .await
            .unwrap();
        rewrite.push(start.elapsed());
    }
    update.sort();
    rewrite.sort();
    println!(
        "UPDATE of 1% of 10M rows by a Wasm predicate: {} vs CREATE TABLE AS {}: {:.2}x  target <= 3x",
        ms(update[1]),
        ms(rewrite[1]),
        update[1].as_secs_f64() / rewrite[1].as_secs_f64()
    );
}
