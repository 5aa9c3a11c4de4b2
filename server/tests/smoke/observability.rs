//! What an operator sees of what functions cost: `/metrics` (`--metrics-listen`),
//! EXPLAIN ANALYZE figures, `pg_stat_activity` of a statement inside a Wasm function,
//! and the slow-statement log in JSON.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::{query, spin_connection, LoggedServer, Server};

/// `GET /metrics` on `port`: the body.
fn scrape(port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(mut s) => {
                s.write_all(
                    b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                )
                .unwrap();
                let mut response = String::new();
                s.read_to_string(&mut response).unwrap();
                assert!(response.starts_with("HTTP/1.1 200"), "{response}");
                let body = response.split_once("\r\n\r\n").map(|(_, b)| b).unwrap();
                return body.to_string();
            }
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("metrics endpoint: {e}"),
        }
    }
}

/// The value of the sample `name{labels}` (labels exactly as exposed), if present.
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

#[tokio::test]
async fn metrics_move_with_queries() {
    let dir = tempfile::tempdir().unwrap();
    let modules = dir.path().join("modules");
    wasmudf_sql_tests::write_modules_dir(&modules).unwrap();
    let metrics_port = free_port();
    let port_flag = metrics_port.to_string();
    let mut server = LoggedServer::start(
        dir.path(),
        &[
            "--modules-dir".as_ref(),
            modules.as_os_str(),
            // A bare port: loopback.
            "--metrics-listen".as_ref(),
            port_flag.as_ref(),
        ],
    );
    let client = server.client().await;
    client
        .batch_execute(
            // add_one is one of the examples a new server registers.
            "CREATE FUNCTION spin(bigint) RETURNS bigint LANGUAGE wasm AS 'hostile/spin.wasm'",
        )
        .await
        .unwrap();
    let rows = "wasmudf_function_rows_total{function=\"add_one(bigint)\"}";
    let calls = "wasmudf_function_calls_total{function=\"add_one(bigint)\"}";
    let before = scrape(metrics_port);
    assert_eq!(sample(&before, rows), Some(0.0), "{before}");
    assert_eq!(
        sample(&before, "wasmudf_connections"),
        Some(1.0),
        "{before}"
    );

    query(
        &client,
        "SELECT count(add_one(x)) FROM generate_series(1, 100) t(x)",
    )
    .await;
    let after = scrape(metrics_port);
    assert_eq!(sample(&after, rows), Some(100.0), "{after}");
    assert!(sample(&after, calls).unwrap() >= 1.0, "{after}");
    assert!(
        after.contains("wasmudf_function_guest_seconds_bucket{function=\"add_one(bigint)\",le="),
        "{after}"
    );
    assert!(
        sample(
            &after,
            "wasmudf_function_fuel_total{function=\"add_one(bigint)\"}"
        )
        .unwrap()
            > 0.0,
        "{after}"
    );
    let selects = "wasmudf_statements_total{tag=\"SELECT\"}";
    let seen = sample(&after, selects).unwrap();
    assert!(seen >= 1.0, "{after}");
    assert!(after.contains("wasmudf_statement_duration_seconds_bucket{tag=\"SELECT\",le="));
    assert!(
        after.contains("# HELP wasmudf_function_calls_total"),
        "{after}"
    );

    query(
        &client,
        "SELECT count(add_one(x)) FROM generate_series(1, 50) t(x)",
    )
    .await;
    let again = scrape(metrics_port);
    assert_eq!(sample(&again, rows), Some(150.0), "{again}");
    assert!(sample(&again, selects).unwrap() > seen, "{again}");

    // A limit hit: the function's error by SQLSTATE and the limit, the statement's error.
    let err = client
        .simple_query("SET wasm.fuel = '1000000'; SELECT spin(1)")
        .await
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("54000"), "{err}");
    let limited = scrape(metrics_port);
    assert_eq!(
        sample(
            &limited,
            "wasmudf_function_errors_total{function=\"spin(bigint)\",sqlstate=\"54000\"}"
        ),
        Some(1.0),
        "{limited}"
    );
    assert_eq!(
        sample(
            &limited,
            "wasmudf_limits_hit_total{function=\"spin(bigint)\",limit=\"fuel\"}"
        ),
        Some(1.0),
        "{limited}"
    );
    assert_eq!(
        sample(
            &limited,
            "wasmudf_statement_errors_total{sqlstate=\"54000\"}"
        ),
        Some(1.0),
        "{limited}"
    );

    // A second connection shows in the gauge, and leaves it when closed.
    let second = server.client().await;
    assert_eq!(
        sample(&scrape(metrics_port), "wasmudf_connections"),
        Some(2.0)
    );
    drop(second);
    let deadline = Instant::now() + Duration::from_secs(5);
    while sample(&scrape(metrics_port), "wasmudf_connections") != Some(1.0) {
        assert!(
            Instant::now() < deadline,
            "the closed connection stays counted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop();
}

#[tokio::test]
async fn a_bad_metrics_address_stops_the_server_before_it_listens() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wasmudf"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "nowhere",
        ])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--metrics-listen nowhere"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"));
}

#[tokio::test]
async fn track_functions_none_counts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let process = crate::start_with_hostile_and(&dir, &["--track-functions", "none"]);
    let (client, conn) = tokio_postgres::connect(&process.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    assert_eq!(
        query(&client, "SELECT add_one(1)").await,
        vec![vec![Some("2".to_string())]]
    );
    assert_eq!(
        query(
            &client,
            "SELECT calls, rows FROM wasm.function_stats WHERE name = 'add_one'"
        )
        .await,
        vec![vec![Some("0".to_string()), Some("0".to_string())]]
    );
}

#[tokio::test]
async fn explain_analyze_shows_what_the_guest_took_on_its_node() {
    let server = Server::start("explain-analyze");
    let client = server.client().await;
    let plan = |rows: Vec<Vec<Option<String>>>| -> String {
        rows.into_iter()
            .flatten()
            .flatten()
            .collect::<Vec<_>>()
            .join("\n")
    };
    let analyzed = plan(
        query(
            &client,
            "EXPLAIN ANALYZE SELECT add_one(x) FROM generate_series(1, 1000) t(x) WHERE gcd(x, 6) = 1",
        )
        .await,
    );
    assert!(
        analyzed.contains("WasmCallsExec: functions=[add_one]"),
        "{analyzed}"
    );
    assert!(
        analyzed.contains("WasmCallsExec: functions=[gcd]"),
        "{analyzed}"
    );
    // gcd saw every row, add_one only those the filter kept (333 of 1000; DataFusion
    // shows counts from a thousand up as `1.00 K`).
    assert!(
        analyzed.contains("wasm_rows[gcd(bigint, bigint)]=1.00 K"),
        "{analyzed}"
    );
    assert!(
        analyzed.contains("wasm_rows[add_one(bigint)]=333"),
        "{analyzed}"
    );
    for figure in [
        "wasm_calls[add_one(bigint)]=",
        "wasm_guest_time[add_one(bigint)]=",
        "wasm_fuel[add_one(bigint)]=",
    ] {
        assert!(analyzed.contains(figure), "{figure} missing: {analyzed}");
    }
    // An aggregate's figures on its aggregate nodes.
    let aggregate = plan(
        query(
            &client,
            "EXPLAIN ANALYZE SELECT wasm_sum(x) FROM generate_series(1, 100) t(x)",
        )
        .await,
    );
    assert!(aggregate.contains("functions=[wasm_sum]"), "{aggregate}");
    assert!(
        aggregate.contains("wasm_rows[wasm_sum(bigint)]=100"),
        "{aggregate}"
    );
    // Plain EXPLAIN runs nothing and adds no node.
    let explained = plan(
        query(
            &client,
            "EXPLAIN SELECT add_one(x) FROM generate_series(1, 10) t(x)",
        )
        .await,
    );
    assert!(!explained.contains("WasmCallsExec"), "{explained}");
}

#[tokio::test]
async fn pg_stat_activity_shows_the_function_a_statement_is_in_and_cancels_it() {
    let dir = tempfile::tempdir().unwrap();
    let (process, runner) = spin_connection(&dir).await;
    let (watcher, conn) = tokio_postgres::connect(&process.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    // The connection stays open after the statement: its session's row is checked then.
    let spinning = tokio::spawn(async move {
        let result = runner.simple_query("SELECT spin(1)").await;
        (runner, result)
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let row = loop {
        let rows = query(
            &watcher,
            "SELECT pid, state, wasm_function, wasm_guest_time, query FROM pg_stat_activity \
             WHERE wasm_function IS NOT NULL",
        )
        .await;
        if let Some(row) = rows.into_iter().next() {
            break row;
        }
        assert!(
            Instant::now() < deadline,
            "spin never showed in pg_stat_activity"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(row[1].as_deref(), Some("active"), "{row:?}");
    assert_eq!(row[2].as_deref(), Some("spin(bigint)"), "{row:?}");
    let guest_ms: f64 = row[3].as_deref().unwrap().parse().unwrap();
    assert!(guest_ms >= 0.0, "{row:?}");
    assert_eq!(row[4].as_deref(), Some("SELECT spin(1)"), "{row:?}");
    // Its guest time grows while it runs.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let later = query(
        &watcher,
        &format!(
            "SELECT wasm_guest_time FROM pg_stat_activity WHERE pid = {}",
            row[0].as_deref().unwrap()
        ),
    )
    .await;
    let later_ms: f64 = later[0][0].as_deref().unwrap().parse().unwrap();
    assert!(later_ms >= guest_ms + 100.0, "{guest_ms} then {later_ms}");

    let started = Instant::now();
    let canceled = query(
        &watcher,
        "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE wasm_function = 'spin(bigint)'",
    )
    .await;
    assert_eq!(canceled, vec![vec![Some("t".to_string())]]);
    let (_runner, result) = spinning.await.unwrap();
    let err = result.unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("57014"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // Then the session is idle, its last statement shown.
    let idle = query(
        &watcher,
        &format!(
            "SELECT state, query, wasm_function FROM pg_stat_activity WHERE pid = {}",
            row[0].as_deref().unwrap()
        ),
    )
    .await;
    assert_eq!(
        idle,
        vec![vec![
            Some("idle".into()),
            Some("SELECT spin(1)".into()),
            None
        ]]
    );
    drop(process);
}

#[tokio::test]
async fn slow_statements_are_logged_as_json_with_their_functions() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = LoggedServer::start(
        dir.path(),
        &[
            "--log-format".as_ref(),
            "json".as_ref(),
            "--log-min-duration-statement".as_ref(),
            "0".as_ref(),
        ],
    );
    let client = server.client().await;
    query(
        &client,
        "SELECT add_one(x) FROM (VALUES (1), (2), (3)) t(x)",
    )
    .await;
    query(&client, "SELECT 'not \u{1b}[31m a guest''s text'").await;
    let log = server.stop();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert!(!lines.is_empty(), "{log}");
    let slow: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "slow statement")
        .collect();
    let add_one = slow
        .iter()
        .find(|l| {
            l["fields"]["statement"]
                .as_str()
                .is_some_and(|s| s.contains("add_one"))
        })
        .unwrap_or_else(|| panic!("no slow-statement line for add_one: {log}"));
    let functions = add_one["fields"]["functions"].as_str().unwrap();
    assert!(
        functions.starts_with("add_one(bigint): 1 calls, 3 rows, "),
        "{functions}"
    );
    assert!(add_one["fields"]["duration_ms"].as_f64().unwrap() >= 0.0);
    // The statement's span rides along: its user and tag.
    assert_eq!(add_one["span"]["user"], "wasmudf", "{add_one}");
    assert_eq!(add_one["span"]["tag"], "SELECT", "{add_one}");
    // A statement's control characters are escaped before they reach the log.
    let quoted = slow
        .iter()
        .filter_map(|l| l["fields"]["statement"].as_str())
        .find(|s| s.contains("a guest"))
        .unwrap_or_else(|| panic!("no slow-statement line for the text: {log}"));
    assert!(!quoted.contains('\u{1b}'), "{quoted}");
}
