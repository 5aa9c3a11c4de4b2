//! CancelRequest, statement_timeout and shutdown stop running guests; the connection goes on.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_request_stops_a_guest_and_the_connection_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (process, client) = spin_connection(&dir).await;
    let (err, latency) = cancel_spin(&client, Duration::from_millis(300)).await;
    let db = err.as_db_error().expect("db error");
    assert_eq!(db.code().code(), "57014", "{}", db.message());
    assert!(
        db.message()
            .contains("canceling statement due to user request"),
        "{}",
        db.message()
    );
    // A generous bound for a loaded CI machine: the latency itself is one epoch tick.
    assert!(latency < Duration::from_secs(2), "cancel took {latency:?}");
    // The same connection runs the next statement; a cancel with nothing running
    // changes nothing. (Sent and awaited until the server has handled it: a cancel
    // still in flight when the next statement starts would rightly cancel that one.)
    cancel_and_wait(&client, process.port()).await;
    let row = client.query_one("SELECT 40 + 2", &[]).await.expect("alive");
    // Integer constants are int4, as in PostgreSQL.
    assert_eq!(row.get::<_, i32>(0), 42);
}

/// How long a CancelRequest and `statement_timeout` take to stop a guest stuck in a loop,
/// measured over the wire (issue target: 100 ms). Printed for docs/benchmarks.md (run
/// with `--nocapture`); asserted only against a bound a loaded CI machine keeps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_and_statement_timeout_latency() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_process, client) = spin_connection(&dir).await;
    let spin = client.prepare("SELECT spin($1)").await.expect("prepare");
    let mut cancels = Vec::new();
    for _ in 0..10 {
        let (err, latency) = cancel_spin(&client, Duration::from_millis(150)).await;
        assert_eq!(err.as_db_error().expect("db error").code().code(), "57014");
        cancels.push(latency);
    }
    client
        .batch_execute("SET statement_timeout = '100ms'")
        .await
        .expect("set timeout");
    let mut overshoots = Vec::new();
    for _ in 0..10 {
        let started = std::time::Instant::now();
        let err = client.query(&spin, &[&1i64]).await.expect_err("timed out");
        let took = started.elapsed();
        assert_eq!(err.as_db_error().expect("db error").code().code(), "57014");
        assert!(
            took >= Duration::from_millis(100),
            "timed out early: {took:?}"
        );
        overshoots.push(took.saturating_sub(Duration::from_millis(100)));
    }
    cancels.sort();
    overshoots.sort();
    println!(
        "cancel latency (request sent -> error received), 10 runs: min {:.1?} median {:.1?} max {:.1?}",
        cancels[0], cancels[5], cancels[9]
    );
    println!(
        "statement_timeout 100ms overshoot, 10 runs: min {:.1?} median {:.1?} max {:.1?}",
        overshoots[0], overshoots[5], overshoots[9]
    );
    assert!(cancels[9] < Duration::from_secs(2), "{cancels:?}");
    assert!(overshoots[9] < Duration::from_secs(2), "{overshoots:?}");
    // The connection is still usable.
    client
        .batch_execute("SET statement_timeout = 0")
        .await
        .expect("reset timeout");
    let row = client.query_one("SELECT 40 + 2", &[]).await.expect("alive");
    // Integer constants are int4, as in PostgreSQL.
    assert_eq!(row.get::<_, i32>(0), 42);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_running_statements_finish_then_cancels_at_the_deadline() {
    for (shutdown_timeout, function_timeout, expected) in [
        // The statement ends by itself (its own 1.5 s limit) before the 30 s deadline.
        ("30s", "1500ms", "timed out (wasm.timeout = 1500ms)"),
        // The deadline comes first: the server cancels the statement.
        ("500ms", "60s", "canceling statement due to user request"),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let modules = dir.path().join("modules");
        wasmudf_sql_tests::write_modules_dir(&modules).expect("modules");
        let args = vec![
            "--no-examples".to_string(),
            "--modules-dir".to_string(),
            modules.display().to_string(),
            "--shutdown-timeout".to_string(),
            shutdown_timeout.to_string(),
        ];
        let mut process = ServerProcess::start(
            env!("CARGO_BIN_EXE_wasmudf").as_ref(),
            &dir.path().join("data"),
            &args,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let (client, conn) = tokio_postgres::connect(&process.url(), NoTls)
            .await
            .expect("connect");
        tokio::spawn(conn);
        client
            .simple_query(&format!(
                "CREATE FUNCTION spin(bigint) RETURNS bigint LANGUAGE wasm \
                 SET wasm.fuel = '1000000000000000' SET wasm.timeout = '{function_timeout}' \
                 AS 'hostile/spin.wasm'"
            ))
            .await
            .expect("create");
        let running = tokio::spawn(async move { client.simple_query("SELECT spin(1)").await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let status =
            tokio::task::spawn_blocking(move || process.terminate(Duration::from_secs(20)))
                .await
                .expect("join")
                .unwrap_or_else(|e| panic!("{e}"));
        assert!(status.success(), "{status:?}");
        let err = running
            .await
            .expect("join")
            .expect_err("the statement fails by itself or is canceled");
        let db = err
            .as_db_error()
            .unwrap_or_else(|| panic!("the client got an answer, not a dropped connection: {err}"));
        assert_eq!(db.code().code(), "57014", "{}", db.message());
        assert!(db.message().contains(expected), "{}", db.message());
    }
}
