//! The real `wasmudf` binary on a loopback port, driven by tokio-postgres and psql.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio_postgres::{NoTls, SimpleQueryMessage};

/// A running server; killed on drop.
struct Server {
    child: Child,
    port: u16,
    _data: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Server {
    fn start(name: &str) -> Server {
        let data =
            std::env::temp_dir().join(format!("wasmudf-smoke-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data);
        let (child, port) = spawn(&data);
        assert!(
            data.join("artifacts").is_dir(),
            "data directory was not created"
        );
        Server {
            child,
            port,
            _data: TempDir(data),
        }
    }

    /// Kills the server (SIGKILL: no chance to flush anything) and starts it again
    /// on the same data directory.
    fn kill_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, port) = spawn(&self._data.0);
        self.child = child;
        self.port = port;
    }

    async fn client(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(
            &format!("host=127.0.0.1 port={} user=wasmudf", self.port),
            NoTls,
        )
        .await
        .expect("connect");
        tokio::spawn(conn);
        client
    }
}

/// Starts the binary on an ephemeral port; returns it and the port from its banner.
fn spawn(data: &std::path::Path) -> (Child, u16) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasmudf"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-level",
            "warn",
            "--data-dir",
        ])
        .arg(data)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start wasmudf");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read banner");
    // "wasmudf listening on 127.0.0.1:PORT — connect with: ..."
    let port = line
        .split_whitespace()
        .nth(3)
        .and_then(|addr| addr.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected banner: {line:?}"));
    (child, port)
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `sql` over the simple protocol; every row as text, `None` for NULL.
async fn query(client: &tokio_postgres::Client, sql: &str) -> Vec<Vec<Option<String>>> {
    let messages = client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect()
}

/// A row of non-null text values.
fn row(values: &[&str]) -> Vec<Option<String>> {
    values.iter().map(|v| Some(v.to_string())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_functions_answer_the_first_query() {
    let server = Server::start("first");
    let client = server.client().await;
    assert_eq!(
        query(
            &client,
            "SELECT gcd(1071, 462) AS g, add_one(41) AS a, initials('Ada Lovelace') AS i"
        )
        .await,
        vec![row(&["21", "42", "AL"])]
    );
    assert_eq!(
        query(&client, "SELECT name, round(haversine(lat, lon, 48.8566, 2.3522)) FROM cities WHERE name = 'London'").await,
        vec![row(&["London", "344"])]
    );
    // PostgreSQL's text for booleans, bytea and floats.
    let mut expected = row(&["t", "\\x6162", "0.5"]);
    expected.push(None);
    assert_eq!(
        query(&client, "SELECT echo_bool(true), echo_bytes(CAST('ab' AS BYTEA)), CAST(0.5 AS REAL), echo_f64(NULL)").await,
        vec![expected]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_sqlstates_and_the_connection_survives() {
    let server = Server::start("errors");
    let client = server.client().await;
    let cases = [
        (
            "SELECT safe_div(1, 0)",
            "38000",
            "function safe_div: division by zero (at row 0 of the batch)",
        ),
        ("SELECT no_such_function(1)", "42883", "no_such_function"),
        ("SELEC 1", "42601", "SELEC"),
        ("SELECT * FROM no_such_table", "42P01", "no_such_table"),
    ];
    for (sql, code, text) in cases {
        let err = client.simple_query(sql).await.expect_err(sql);
        let db = err.as_db_error().unwrap_or_else(|| panic!("{sql}: {err}"));
        assert_eq!(db.code().code(), code, "{sql}: {}", db.message());
        assert!(db.message().contains(text), "{sql}: {}", db.message());
        // The same connection keeps working.
        assert_eq!(query(&client, "SELECT add_one(1)").await, vec![row(&["2"])]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_calls_a_wasm_function() {
    let server = Server::start("psql");
    let port = server.port.to_string();
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "wasmudf",
                "-X",
                "-A",
                "-t",
                "-c",
            ])
            .arg("SELECT reverse_text('wasm') || '|' || gcd(12, 18)")
            .env("PGCONNECT_TIMEOUT", "10")
            .output(),
    )
    .await
    .expect("psql finished")
    .expect("psql is installed (Debian: postgresql-client)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout.trim(), "msaw|6");
}

#[tokio::test]
async fn functions_and_tables_created_over_the_wire_survive_a_kill() {
    let mut server = Server::start("persist");
    let client = server.client().await;
    client
        .simple_query(
            "CREATE FUNCTION rev(text) RETURNS text LANGUAGE wasm STRICT \
             AS 'examples/strings.wasm', 'reverse_text'; \
             CREATE TABLE notes (id bigint, body text); \
             INSERT INTO notes VALUES (1, 'hello'), (2, NULL)",
        )
        .await
        .expect("DDL over the wire");
    let tags: Vec<String> = client
        .simple_query("DROP FUNCTION IF EXISTS nothing; CREATE SCHEMA s")
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::CommandComplete(n) => Some(n.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(tags.len(), 2);
    let err = client
        .simple_query("CREATE FUNCTION rev(text) RETURNS text LANGUAGE wasm AS 'examples/strings.wasm', 'reverse_text'")
        .await
        .expect_err("duplicate");
    assert_eq!(err.as_db_error().unwrap().code().code(), "42723");
    let err = client
        .simple_query(
            "CREATE FUNCTION x(bigint) RETURNS bigint LANGUAGE wasm AS '../catalog.redb', 'x'",
        )
        .await
        .expect_err("escape");
    assert_eq!(err.as_db_error().unwrap().code().code(), "42501");
    drop(client);
    server.kill_and_restart();
    let client = server.client().await;
    assert_eq!(
        query(&client, "SELECT id, rev(body) FROM notes ORDER BY id").await,
        vec![
            vec![Some("1".into()), Some("olleh".into())],
            vec![Some("2".into()), None]
        ]
    );
    // The examples were registered once, on the first start, and are still there.
    assert_eq!(
        query(&client, "SELECT add_one(41)").await,
        vec![row(&["42"])]
    );
    assert_eq!(
        query(&client, "SELECT count(*) FROM cities").await,
        vec![row(&["5"])]
    );
}
