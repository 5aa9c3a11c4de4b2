//! Load-time work against everyone else: the latency of a new client's login plus
//! `SELECT 1` while three 5-second CREATE FUNCTIONs run (a component whose `describe`
//! only its deadline stops), against the same measured on an idle server in the same
//! run; and the restart time with the largest component the ceilings allow (20,000
//! functions, with `--max-functions-per-component 20000`) in the catalog.
//!
//! `cargo bench --workspace --bench load_latency` (the server binary is built with the
//! bench profile; `WASMUDF_BENCH_SERVER` runs another build).

// A bench harness: an unwrap that fails is a failed run, not a crashed server.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use tokio_postgres::NoTls;
use wasmudf_sql_tests::ServerProcess;

/// CREATEs running at once in the loaded phase.
const SLOW_CREATES: usize = 3;
/// How long each of them runs (the server's default `wasm.timeout`).
const CREATE_SECONDS: u64 = 5;

fn server(dir: &std::path::Path, flags: &[&str]) -> ServerProcess {
    let modules = dir.join("modules");
    wasmudf_sql_tests::write_modules_dir(&modules).unwrap();
    let mut args = vec!["--modules-dir".to_string(), modules.display().to_string()];
    args.extend(flags.iter().map(|f| f.to_string()));
    let binary = std::env::var("WASMUDF_BENCH_SERVER")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_wasmudf").to_string());
    ServerProcess::start(binary.as_ref(), &dir.join("data"), &args).unwrap()
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

/// One new client: connect (startup, authentication) and `SELECT 1`.
async fn login_and_select(url: &str) -> Duration {
    let start = Instant::now();
    let client = connect(url).await;
    let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    start.elapsed()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// Samples logins back to back until `until` (at least `min` samples).
async fn sample(url: &str, until: Instant, min: usize) -> Vec<Duration> {
    let mut out = Vec::new();
    while Instant::now() < until || out.len() < min {
        out.push(login_and_select(url).await);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    out.sort();
    out
}

async fn latency_under_slow_creates() {
    let dir = tempfile::tempdir().unwrap();
    let timeout = format!("{CREATE_SECONDS}s");
    let process = server(
        dir.path(),
        &["--fuel", "1000000000000000", "--timeout", &timeout],
    );
    let url = process.url();
    // Warm-up: the first connections pay for the session template.
    for _ in 0..5 {
        login_and_select(&url).await;
    }
    let idle = sample(&url, Instant::now() + Duration::from_secs(3), 100).await;

    let mut creates = Vec::new();
    let started = Instant::now();
    for _ in 0..SLOW_CREATES {
        let client = connect(&url).await;
        creates.push(tokio::spawn(async move {
            let sql = "CREATE FUNCTION stalled(bigint) RETURNS bigint LANGUAGE wasm \
                       AS 'hostile/stall.wasm'";
            let err = client.simple_query(sql).await.expect_err("stalled");
            assert_eq!(err.code().map(|c| c.code()), Some("57014"), "{err}");
            started.elapsed()
        }));
    }
    // Sample while all of them surely run.
    let busy_until = started + Duration::from_secs(CREATE_SECONDS) - Duration::from_millis(300);
    let busy = sample(&url, busy_until, 20).await;
    let mut create_times = Vec::new();
    for c in creates {
        create_times.push(c.await.unwrap());
    }
    println!(
        "## login + SELECT 1 while {SLOW_CREATES} CREATE FUNCTIONs run for {CREATE_SECONDS} s each"
    );
    println!();
    println!("| server | samples | p50 | p99 | max |");
    println!("|---|---|---|---|---|");
    for (what, s) in [("idle", &idle), ("3 slow CREATEs running", &busy)] {
        println!(
            "| {what} | {} | {} | {} | {} |",
            s.len(),
            ms(percentile(s, 0.5)),
            ms(percentile(s, 0.99)),
            ms(*s.last().unwrap())
        );
    }
    let slowest = create_times.iter().max().unwrap();
    println!();
    println!(
        "p99 busy / idle: {:.2}x; target p99 <= 50 ms: {}; each CREATE ran {:.2} s (57014 at its deadline)",
        percentile(&busy, 0.99).as_secs_f64() / percentile(&idle, 0.99).as_secs_f64(),
        if percentile(&busy, 0.99) <= Duration::from_millis(50) {
            "met"
        } else {
            "MISSED"
        },
        slowest.as_secs_f64()
    );
}

async fn restart_with_largest_component() {
    let dir = tempfile::tempdir().unwrap();
    let flags = [
        "--max-functions-per-component",
        "20000",
        "--max-description-size",
        "8MB",
    ];
    let mut process = server(dir.path(), &flags);
    let client = connect(&process.url()).await;
    let start = Instant::now();
    let rows = client
        .simple_query("SELECT * FROM wasm_load('hostile/sprawl.wasm')")
        .await
        .unwrap();
    let load = start.elapsed();
    assert!(rows.len() > 20_000);
    drop(client);
    let mut restarts = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        process.kill_and_restart().unwrap();
        let client = connect(&process.url()).await;
        let v: i64 = client.query_one("SELECT f0(7)", &[]).await.unwrap().get(0);
        assert_eq!(v, 7);
        restarts.push(start.elapsed());
    }
    restarts.sort();
    // Every new session registers every function: what that costs a login.
    let logins = sample(&process.url(), Instant::now(), 100).await;
    println!();
    println!("## The largest component the raised ceilings allow: 20,000 functions");
    println!();
    println!("| what | time |");
    println!("|---|---|");
    println!(
        "| wasm_load (compile, describe, install, commit) | {} |",
        ms(load)
    );
    println!(
        "| restart after SIGKILL to the first answer (median of 5) | {} |",
        ms(percentile(&restarts, 0.5))
    );
    println!("| the same, slowest | {} |", ms(*restarts.last().unwrap()));
    println!(
        "| login + SELECT 1 with the 20,000 functions defined (p50 / p99 of {}) | {} / {} |",
        logins.len(),
        ms(percentile(&logins, 0.5)),
        ms(percentile(&logins, 0.99))
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    latency_under_slow_creates().await;
    restart_with_largest_component().await;
}
