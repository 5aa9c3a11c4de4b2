//! The real `wasmudf` binary on a loopback port, driven by tokio-postgres and psql.

use std::time::Duration;

use tokio_postgres::{NoTls, SimpleQueryMessage};
use wasmudf_sql_tests::ServerProcess;

/// A running server on a fresh data directory; killed on drop.
struct Server {
    process: ServerProcess,
    port: u16,
    _data: tempfile::TempDir,
}

impl Server {
    fn start(name: &str) -> Server {
        let dir = tempfile::Builder::new()
            .prefix(&format!("wasmudf-smoke-{name}-"))
            .tempdir()
            .expect("tempdir");
        let data = dir.path().join("data");
        let process = ServerProcess::start(env!("CARGO_BIN_EXE_wasmudf").as_ref(), &data, &[])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            data.join("artifacts").is_dir(),
            "data directory was not created"
        );
        Server {
            port: process.port(),
            process,
            _data: dir,
        }
    }

    /// Kills the server (SIGKILL: no chance to flush anything) and starts it again
    /// on the same data directory.
    fn kill_and_restart(&mut self) {
        self.process
            .kill_and_restart()
            .unwrap_or_else(|e| panic!("{e}"));
        self.port = self.process.port();
    }

    async fn client(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.process.url(), NoTls)
            .await
            .expect("connect");
        tokio::spawn(conn);
        client
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
    // The example aggregates are registered too, and answer over the wire.
    assert_eq!(
        query(
            &client,
            "SELECT round(geo_mean(CAST(population AS DOUBLE))), median_wasm(lat) > 40, \
             arg_max(name, CAST(population AS DOUBLE)) FROM cities"
        )
        .await,
        vec![row(&["6491185", "t", "Tokyo"])]
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

/// psql's meta-commands read a live `pg_catalog`: Wasm functions (scalar and aggregate)
/// in `\df`, tables in `\dt` / `\d`, changes visible at once; `\x`, `\timing` and
/// `\set` + `:'var'` work as in PostgreSQL. Any error stops psql (ON_ERROR_STOP).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_meta_commands_read_a_live_catalog() {
    let server = Server::start("meta");
    let script = r#"
CREATE TABLE notes (id INT, body TEXT, score DOUBLE PRECISION);
CREATE FUNCTION my_gcd(bigint, bigint) RETURNS bigint LANGUAGE wasm AS 'examples/math.wasm', 'gcd';
\l
\l+
\dn
\dn+
\dt
\dt+
\d notes
\d+ cities
\df my_gcd
\df+ my_gcd
\df geo_mean
\du
DROP FUNCTION my_gcd(bigint, bigint);
\df my_gcd
\x on
SELECT gcd(12, 18) AS g, reverse_text('ab') AS r;
\x off
\timing on
SELECT 1 AS one;
\timing off
\set word wasm
SELECT reverse_text(:'word') AS reversed;
"#;
    let mut child = tokio::process::Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &server.port.to_string(),
            "-U",
            "wasmudf",
        ])
        .args(["-X", "-v", "ON_ERROR_STOP=1"])
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("psql is installed");
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(script.as_bytes()).await.expect("script");
    }
    let output = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("psql finished")
        .expect("psql output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "psql failed: {stderr}\n{stdout}");
    let lines: Vec<String> = stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let has = |line: &str| {
        assert!(
            lines.iter().any(|l| l == line),
            "psql printed no line {line:?}:\n{stdout}"
        )
    };
    // \l, \dn, \dt
    has("wasmudf | wasmudf | UTF-8 | en_US.UTF-8 | en_US.UTF-8 | | |");
    has("public | wasmudf");
    has("wasm | wasmudf");
    has("public | cities | table | wasmudf");
    has("public | notes | table | wasmudf");
    // \dt+, \dn+, \l+ (the database's size is its data directory's)
    has("public | notes | table | wasmudf | permanent | | |");
    has("public | wasmudf | |");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("wasmudf | wasmudf | UTF-8")
                && (l.contains(" kB | pg_default") || l.contains(" MB | pg_default"))),
        "no database size in \\l+:\n{stdout}"
    );
    // \d notes, \d+ cities
    has(r#"Table "public.notes""#);
    has("id | integer | | |");
    has("body | text | | |");
    has("score | double precision | | |");
    has("population | bigint | | | | plain | | |");
    // \df, \df+ (kind, types, language, source), an aggregate, \du
    has("public | my_gcd | bigint | bigint, bigint | func");
    has("public | my_gcd | bigint | bigint, bigint | func | immutable | safe | wasmudf | invoker | | wasm | gcd |");
    has("public | geo_mean | double precision | double precision | agg");
    has("wasmudf | Superuser |");
    // DROP shows at once.
    assert_eq!(
        lines.iter().filter(|l| l.contains("| my_gcd |")).count(),
        2,
        "my_gcd still listed after DROP:\n{stdout}"
    );
    has("(0 rows)");
    // \x, \timing, \set
    has("-[ RECORD 1 ]");
    has("g | 6");
    has("r | ba");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("Time: ") && l.ends_with(" ms")),
        "no timing line:\n{stdout}"
    );
    has("msaw");
}

/// Result columns are named as PostgreSQL names them, in RowDescription for both
/// protocols: a function call by the function, an expression `?column?`, a cast of a
/// literal by its type, aliases as written (repeats allowed, as in PostgreSQL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_columns_are_named_as_postgresql_names_them() {
    let server = Server::start("names");
    let client = server.client().await;
    let sql = "SELECT gcd(12, 18), 1 + 1, CAST('7' AS INT), CAST(population AS TEXT), \
               name AS \"City\", count(*) OVER () FROM cities LIMIT 1";
    let expected = ["gcd", "?column?", "int4", "population", "City", "count"];
    let prepared = client.prepare(sql).await.expect("prepare");
    let described: Vec<&str> = prepared.columns().iter().map(|c| c.name()).collect();
    assert_eq!(described, expected);
    let rows = client.query(&prepared, &[]).await.expect("query");
    assert_eq!(rows[0].get::<_, i64>("gcd"), 6);
    let messages = client.simple_query(sql).await.expect("simple query");
    let simple: Vec<String> = messages
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some(r.columns().iter().map(|c| c.name().to_string()).collect())
            }
            _ => None,
        })
        .expect("a row");
    assert_eq!(simple, expected);
    // Two unaliased calls of one function: both `gcd`, as in PostgreSQL.
    let twice = client
        .prepare("SELECT gcd(4, 6), gcd(9, 6)")
        .await
        .expect("prepare");
    let names: Vec<&str> = twice.columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["gcd", "gcd"]);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extended_protocol_binds_parameters_and_limits_rows() {
    let server = Server::start("extended");
    let client = server.client().await;
    // Typed parameters (inferred from the function's signature) and a NULL parameter.
    let stmt = client
        .prepare("SELECT gcd($1, $2) AS g, add_one($1) AS a")
        .await
        .expect("prepare");
    assert_eq!(stmt.params(), &[tokio_postgres::types::Type::INT8; 2]);
    let rows = client.query(&stmt, &[&84i64, &36i64]).await.expect("query");
    assert_eq!(rows[0].get::<_, i64>("g"), 12);
    assert_eq!(rows[0].get::<_, i64>("a"), 85);
    let rows = client
        .query(&stmt, &[&None::<i64>, &36i64])
        .await
        .expect("null parameter");
    assert_eq!(rows[0].get::<_, Option<i64>>("g"), None);
    // Text, booleans, floats, dates and numerics in binary format.
    let row = client
        .query_one(
            "SELECT initials($1) AS i, echo_bool(true) AS b, echo_f64(0.25) AS f, \
             echo_date(DATE '2024-02-29') AS d, CAST(-12.5 AS DECIMAL(10, 3)) AS n",
            &[&"ada lovelace"],
        )
        .await
        .expect("binary results");
    assert_eq!(row.get::<_, String>("i"), "AL");
    assert!(row.get::<_, bool>("b"));
    assert_eq!(row.get::<_, f64>("f"), 0.25);
    assert_eq!(
        row.get::<_, chrono::NaiveDate>("d"),
        chrono::NaiveDate::from_ymd_opt(2024, 2, 29).expect("date")
    );
    assert_eq!(
        row.columns()[4].type_(),
        &tokio_postgres::types::Type::NUMERIC
    );
    // A portal with a row limit hands the rows out in slices.
    let mut tx_client = server.client().await;
    let tx = tx_client.transaction().await.expect("begin");
    let portal = tx
        .bind("SELECT add_one(value) FROM generate_series(1, 10)", &[])
        .await
        .expect("bind");
    let first = tx.query_portal(&portal, 4).await.expect("first slice");
    let rest = tx.query_portal(&portal, 100).await.expect("rest");
    assert_eq!(first.len(), 4);
    assert_eq!(rest.len(), 6);
    assert_eq!(first[0].get::<_, i64>(0), 2);
    assert_eq!(rest[5].get::<_, i64>(0), 11);
    tx.commit().await.expect("commit");
    // Errors at Parse carry their SQLSTATE; the connection goes on.
    let err = client
        .prepare("SELECT nope($1)")
        .await
        .expect_err("unknown");
    assert_eq!(err.as_db_error().expect("db error").code().code(), "42883");
    let err = client
        .prepare("SELECT 1; SELECT 2")
        .await
        .expect_err("two statements");
    assert_eq!(err.as_db_error().expect("db error").code().code(), "42601");
    let err = client
        .query("SELECT safe_div($1, 0)", &[&1i64])
        .await
        .expect_err("guest error");
    assert_eq!(err.as_db_error().expect("db error").code().code(), "38000");
    assert_eq!(
        client
            .query_one("SELECT add_one(1)", &[])
            .await
            .expect("alive")
            .get::<_, i64>(0),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn module_size_limit_comes_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let modules = dir.path().join("modules");
    wasmudf_sql_tests::write_modules_dir(&modules).expect("modules");
    let args: Vec<String> = ["--no-examples", "--max-module-size", "1KB", "--modules-dir"]
        .iter()
        .map(|s| s.to_string())
        .chain([modules.display().to_string()])
        .collect();
    let process = ServerProcess::start(
        env!("CARGO_BIN_EXE_wasmudf").as_ref(),
        &dir.path().join("data"),
        &args,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (client, conn) = tokio_postgres::connect(&process.url(), NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    let err = client
        .simple_query(
            "CREATE FUNCTION add_one(bigint) RETURNS bigint LANGUAGE wasm AS 'examples/math.wasm'",
        )
        .await
        .expect_err("too large");
    let db = err.as_db_error().expect("db error");
    assert_eq!(db.code().code(), "42P13", "{}", db.message());
    assert!(
        db.message().contains("above the limit of 1024 bytes"),
        "{}",
        db.message()
    );
}

/// A server whose modules directory also holds `hostile/` (spin, membomb, ...).
fn start_with_hostile(dir: &tempfile::TempDir) -> ServerProcess {
    let modules = dir.path().join("modules");
    wasmudf_sql_tests::write_modules_dir(&modules).expect("modules");
    let args = vec!["--modules-dir".to_string(), modules.display().to_string()];
    ServerProcess::start(
        env!("CARGO_BIN_EXE_wasmudf").as_ref(),
        &dir.path().join("data"),
        &args,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

const CREATE_SPIN: &str = "CREATE FUNCTION spin(bigint) RETURNS bigint LANGUAGE wasm \
    SET wasm.fuel = '1000000000000000' SET wasm.timeout = '60s' AS 'hostile/spin.wasm'";

/// A server with the hostile components and a connection on which `spin` exists.
async fn spin_connection(dir: &tempfile::TempDir) -> (ServerProcess, tokio_postgres::Client) {
    let process = start_with_hostile(dir);
    let (client, conn) = tokio_postgres::connect(&process.url(), NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client.simple_query(CREATE_SPIN).await.expect("create spin");
    (process, client)
}

/// Runs `spin` and sends a CancelRequest `after` it started; the error and how long
/// it took from the request to the error.
async fn cancel_spin(
    client: &tokio_postgres::Client,
    after: Duration,
) -> (tokio_postgres::Error, Duration) {
    let token = client.cancel_token();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(after).await;
        let sent = std::time::Instant::now();
        token.cancel_query(NoTls).await.expect("cancel request");
        sent
    });
    let err = client
        .query("SELECT spin($1)", &[&1i64])
        .await
        .expect_err("canceled");
    let ended = std::time::Instant::now();
    let sent = canceller.await.expect("canceller");
    (err, ended.duration_since(sent))
}

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
    assert_eq!(row.get::<_, i64>(0), 42);
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
    assert_eq!(row.get::<_, i64>(0), 42);
}

/// Sends a CancelRequest for `client`'s connection and waits until the server has
/// handled it and closed the request's connection, as libpq's `PQcancel` does
/// (tokio-postgres returns as soon as the request is written).
async fn cancel_and_wait(client: &tokio_postgres::Client, port: u16) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // tokio-postgres encodes the request (with the connection's secret key) into an
    // in-memory pipe; the bytes are then sent over a real socket.
    let (ours, mut theirs) = tokio::io::duplex(64);
    client
        .cancel_token()
        .cancel_query_raw(ours, NoTls)
        .await
        .expect("encode cancel request");
    let mut request = Vec::new();
    theirs
        .read_to_end(&mut request)
        .await
        .expect("read request");
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect for cancel");
    socket.write_all(&request).await.expect("send cancel");
    let mut rest = Vec::new();
    socket
        .read_to_end(&mut rest)
        .await
        .expect("server closes the cancel connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_ctrl_c_cancels_the_running_statement() {
    let dir = tempfile::tempdir().expect("tempdir");
    let process = start_with_hostile(&dir);
    let port = process.port().to_string();
    let psql = |sql: &str| {
        let mut cmd = tokio::process::Command::new("psql");
        cmd.args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "wasmudf",
            "-X",
            "-c",
            sql,
        ])
        .env("PGCONNECT_TIMEOUT", "10")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
        cmd
    };
    let created = psql(CREATE_SPIN).output().await.expect("psql is installed");
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let child = psql("SELECT spin(1)").spawn().expect("psql");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let pid = child.id().expect("psql pid").to_string();
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let output = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("psql exits after Ctrl-C")
        .expect("psql output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("canceling statement due to user request"),
        "psql said: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_loads_and_exports_csv_and_text() {
    use futures::{SinkExt, TryStreamExt};

    let server = Server::start("copy");
    let client = server.client().await;
    client
        .simple_query(
            "CREATE TABLE people (id bigint, name text, born date, score double precision)",
        )
        .await
        .expect("create");
    // CSV with a header, a quoted delimiter, an unquoted empty field (NULL).
    let sink = client
        .copy_in("COPY people FROM STDIN WITH (FORMAT csv, HEADER true)")
        .await
        .expect("copy in");
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(
        b"id,name,born,score\n1,Ada Lovelace,1815-12-10,9.5\n2,\"Turing, Alan\",1912-06-23,\n",
    ))
    .await
    .expect("send");
    sink.send(bytes::Bytes::from_static(b"3,,1906-12-09,7.25\n"))
        .await
        .expect("send");
    assert_eq!(sink.finish().await.expect("finish"), 3);
    // Text format into a subset of the columns; the rest are NULL.
    let sink = client
        .copy_in("COPY people (name, id) FROM STDIN")
        .await
        .expect("copy in text");
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(b"Grace Hopper\t4\n\\N\t5\n"))
        .await
        .expect("send");
    assert_eq!(sink.finish().await.expect("finish"), 2);
    assert_eq!(
        query(
            &client,
            "SELECT id, name, initials(name), CAST(born AS TEXT), score FROM people ORDER BY id"
        )
        .await,
        vec![
            row(&["1", "Ada Lovelace", "AL", "1815-12-10", "9.5"]),
            vec![
                Some("2".into()),
                Some("Turing, Alan".into()),
                Some("TA".into()),
                Some("1912-06-23".into()),
                None
            ],
            vec![
                Some("3".into()),
                None,
                None,
                Some("1906-12-09".into()),
                Some("7.25".into())
            ],
            vec![
                Some("4".into()),
                Some("Grace Hopper".into()),
                Some("GH".into()),
                None,
                None
            ],
            vec![Some("5".into()), None, None, None, None],
        ]
    );
    // Bad data fails the whole COPY with 22P02 and adds nothing.
    let sink = client
        .copy_in("COPY people (id) FROM STDIN")
        .await
        .expect("copy in");
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(b"6\nseven\n"))
        .await
        .expect("send");
    let err = sink.finish().await.expect_err("bad integer");
    assert_eq!(err.as_db_error().expect("db error").code().code(), "22P02");
    assert_eq!(
        query(&client, "SELECT count(*) FROM people").await,
        vec![row(&["5"])]
    );
    for (sql, code) in [
        ("COPY nowhere FROM STDIN", "42P01"),
        ("COPY people (nope) FROM STDIN", "42703"),
        ("COPY people FROM '/etc/passwd'", "42501"),
        ("COPY people TO '/tmp/out.csv'", "42501"),
    ] {
        let err = client.simple_query(sql).await.expect_err(sql);
        assert_eq!(
            err.as_db_error().expect("db error").code().code(),
            code,
            "{sql}"
        );
    }
    // Out, through a Wasm function, as CSV with a header.
    let out: Vec<bytes::Bytes> = client
        .copy_out("COPY (SELECT id, initials(name) AS i FROM people ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)")
        .await
        .expect("copy out")
        .try_collect()
        .await
        .expect("copy data");
    let text: String = out.iter().map(|b| String::from_utf8_lossy(b)).collect();
    assert_eq!(text, "id,i\n1,AL\n2,TA\n3,\n4,GH\n5,\n");
    // psql's \copy, both ways.
    let csv = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(csv.path(), "10,\"Katherine Johnson\",1918-08-26,10\n").expect("write csv");
    let port = server.port.to_string();
    let psql = |command: String| {
        std::process::Command::new("psql")
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
            .arg(command)
            .output()
            .expect("psql is installed")
    };
    let loaded = psql(format!(
        "\\copy people FROM '{}' WITH (FORMAT csv)",
        csv.path().display()
    ));
    assert!(
        loaded.status.success(),
        "{}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&loaded.stdout).trim(), "COPY 1");
    let exported =
        psql("\\copy (SELECT initials(name) FROM people WHERE id = 10) TO STDOUT".into());
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&exported.stdout).trim(), "KJ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limit_refuses_with_53300() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args: Vec<String> = ["--no-examples", "--max-connections", "1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let process = ServerProcess::start(
        env!("CARGO_BIN_EXE_wasmudf").as_ref(),
        &dir.path().join("data"),
        &args,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let url = process.url();
    let connect = || tokio_postgres::connect(&url, NoTls);
    let (first, conn) = connect().await.expect("first connection");
    let first_task = tokio::spawn(conn);
    let err = connect().await.err().expect("second connection refused");
    let db = err.as_db_error().expect("db error");
    assert_eq!(db.code().code(), "53300");
    assert_eq!(db.message(), "sorry, too many clients already");
    // The slot frees when the first client leaves.
    drop(first);
    let _ = first_task.await;
    let mut connected = None;
    for _ in 0..50 {
        if let Ok((client, conn)) = connect().await {
            tokio::spawn(conn);
            connected = Some(client);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let client = connected.expect("a connection after the first left");
    assert_eq!(query(&client, "SELECT 1").await, vec![row(&["1"])]);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_authentication_accepts_the_password_and_refuses_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args: Vec<String> = [
        "--no-examples",
        "--auth",
        "scram-sha-256",
        "--password",
        "s3cret pass",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let process = ServerProcess::start(
        env!("CARGO_BIN_EXE_wasmudf").as_ref(),
        &dir.path().join("data"),
        &args,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let base = process.url();
    let (client, conn) = tokio_postgres::connect(&format!("{base} password='s3cret pass'"), NoTls)
        .await
        .expect("right password");
    tokio::spawn(conn);
    assert_eq!(query(&client, "SELECT 1").await, vec![row(&["1"])]);
    for url in [
        format!("{base} password=wrong"),
        format!(
            "host=127.0.0.1 port={} user=mallory password='s3cret pass'",
            process.port()
        ),
    ] {
        let err = tokio_postgres::connect(&url, NoTls)
            .await
            .err()
            .expect("refused");
        let db = err.as_db_error().unwrap_or_else(|| panic!("{err}"));
        assert_eq!(db.code().code(), "28P01", "{}", db.message());
    }
    // psql with PGPASSWORD.
    let output = std::process::Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &process.port().to_string(),
            "-U",
            "wasmudf",
            "-X",
            "-A",
            "-t",
            "-c",
            "SELECT 6 * 7",
        ])
        .env("PGPASSWORD", "s3cret pass")
        .output()
        .expect("psql is installed");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "42");
    // And the server refuses to start with SCRAM but no password.
    let err = ServerProcess::start(
        env!("CARGO_BIN_EXE_wasmudf").as_ref(),
        &dir.path().join("data2"),
        &["--auth".to_string(), "scram-sha-256".to_string()],
    )
    .err()
    .expect("no password, no start");
    assert!(err.contains("needs a password"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_connections_with_psql() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = dir.path().join("server.crt");
    let key = dir.path().join("server.key");
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is installed");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let args = vec![
        "--no-examples".to_string(),
        "--tls-cert".to_string(),
        cert.display().to_string(),
        "--tls-key".to_string(),
        key.display().to_string(),
    ];
    let process = ServerProcess::start(
        env!("CARGO_BIN_EXE_wasmudf").as_ref(),
        &dir.path().join("data"),
        &args,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let conninfo = format!(
        "host=127.0.0.1 port={} user=wasmudf sslmode=require",
        process.port()
    );
    let output = std::process::Command::new("psql")
        .args([
            conninfo.as_str(),
            "-X",
            "-c",
            "\\conninfo",
            "-c",
            "SELECT 6 * 7",
        ])
        .output()
        .expect("psql is installed");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("SSL connection"), "{stdout}");
    assert!(stdout.contains("42"), "{stdout}");
    // A bad key file stops the server at startup with a clear message.
    std::fs::write(&key, "not a key").expect("write");
    let err = ServerProcess::start(
        env!("CARGO_BIN_EXE_wasmudf").as_ref(),
        &dir.path().join("data2"),
        &args,
    )
    .err()
    .expect("bad key, no start");
    assert!(err.contains("--tls-key"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_file_settings_apply_and_flags_win() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("wasmudf.toml");
    // listen is overridden by the runner's own --listen 127.0.0.1:0 (flags win).
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:9\"\nmax-connections = 1\nno_examples = true\nstatement-timeout-is-not-a-setting = 1\n",
    )
    .expect("write");
    let args = vec!["--config".to_string(), config.display().to_string()];
    let err = ServerProcess::start(
        env!("CARGO_BIN_EXE_wasmudf").as_ref(),
        &dir.path().join("data"),
        &args,
    )
    .err()
    .expect("unknown setting");
    assert!(
        err.contains("unknown setting \"statement-timeout-is-not-a-setting\""),
        "{err}"
    );
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:9\"\nmax-connections = 1\nno_examples = true\n",
    )
    .expect("write");
    let process = ServerProcess::start(
        env!("CARGO_BIN_EXE_wasmudf").as_ref(),
        &dir.path().join("data"),
        &args,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (client, conn) = tokio_postgres::connect(&process.url(), NoTls)
        .await
        .expect("first connection");
    tokio::spawn(conn);
    let err = tokio_postgres::connect(&process.url(), NoTls)
        .await
        .err()
        .expect("max-connections = 1 from the file");
    assert_eq!(err.as_db_error().expect("db error").code().code(), "53300");
    // no_examples = true: the example functions were not registered.
    let err = client
        .simple_query("SELECT add_one(1)")
        .await
        .expect_err("no examples");
    assert_eq!(err.as_db_error().expect("db error").code().code(), "42883");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_ceilings_come_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let binary: &std::path::Path = env!("CARGO_BIN_EXE_wasmudf").as_ref();
    let args = |extra: &[&str]| -> Vec<String> {
        ["--no-examples"]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };
    let err = ServerProcess::start(
        binary,
        &dir.path().join("bad"),
        &args(&["--memory", "1GB", "--max-memory", "64MB"]),
    )
    .err()
    .expect("default above ceiling");
    assert!(err.contains("above its ceiling"), "{err}");
    let err = ServerProcess::start(binary, &dir.path().join("bad"), &args(&["--stack", "16kB"]))
        .err()
        .expect("stack below the minimum");
    assert!(
        err.contains("--stack: invalid limit: wasm.stack = 16384 bytes is below the minimum"),
        "{err}"
    );
    let process = ServerProcess::start(
        binary,
        &dir.path().join("data"),
        &args(&[
            "--max-memory",
            "64MB",
            "--memory",
            "32MB",
            "--stack",
            "4MB",
            "--max-stack",
            "16MB",
        ]),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (client, conn) = tokio_postgres::connect(&process.url(), NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    assert_eq!(query(&client, "SHOW wasm.stack").await, vec![row(&["4MB"])]);
    // (limit, above its ceiling, under it, as SHOW then tells it: a stack is rounded
    // up to a power of two, still within the ceiling).
    for (limit, above, under, shown) in [
        ("memory", "128MB", "48MB", "48MB"),
        ("stack", "32MB", "12MB", "16MB"),
    ] {
        let err = client
            .simple_query(&format!("SET wasm.{limit} = '{above}'"))
            .await
            .expect_err("above the ceiling");
        assert_eq!(err.as_db_error().expect("db error").code().code(), "22023");
        client
            .simple_query(&format!("SET wasm.{limit} = '{under}'"))
            .await
            .expect("under the ceiling");
        assert_eq!(
            query(&client, &format!("SHOW wasm.{limit}")).await,
            vec![row(&[shown])]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_the_loopback_rule() {
    let dir = tempfile::tempdir().expect("tempdir");
    let binary: &std::path::Path = env!("CARGO_BIN_EXE_wasmudf").as_ref();
    // Trust on a non-loopback address is refused; with a password it is SCRAM.
    let open = ["--listen", "0.0.0.0:0", "--no-examples"].map(String::from);
    let err = ServerProcess::start(binary, &dir.path().join("open"), &open)
        .err()
        .expect("no authentication on 0.0.0.0");
    assert!(err.contains("refusing to listen on 0.0.0.0"), "{err}");
    let mut with_password = open.to_vec();
    with_password.extend(["--password".to_string(), "pw".to_string()]);
    let process = ServerProcess::start(binary, &dir.path().join("scram"), &with_password)
        .unwrap_or_else(|e| panic!("{e}"));
    let err = tokio_postgres::connect(&process.url(), NoTls)
        .await
        .err()
        .expect("a password is required");
    // The server asked for a password the client does not have.
    assert!(format!("{err:?}").contains("password missing"), "{err:?}");
    let (client, conn) = tokio_postgres::connect(&format!("{} password=pw", process.url()), NoTls)
        .await
        .expect("with the password");
    tokio::spawn(conn);
    assert_eq!(
        query(&client, "SELECT current_user").await,
        vec![row(&["wasmudf"])]
    );
    drop(process);
    // On loopback with trust, other roles log in but may not define functions.
    let server = Server::start("roles");
    let (alice, conn) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={} user=alice", server.port),
        NoTls,
    )
    .await
    .expect("alice logs in");
    tokio::spawn(conn);
    assert_eq!(
        query(&alice, "SELECT add_one(41), current_user").await,
        vec![row(&["42", "alice"])]
    );
    for sql in [
        "CREATE FUNCTION mine(bigint) RETURNS bigint LANGUAGE wasm AS 'examples/math.wasm', 'add_one'",
        "DROP FUNCTION add_one",
        "SELECT * FROM wasm_load('examples/math.wasm')",
    ] {
        let err = alice.simple_query(sql).await.expect_err(sql);
        let db = err.as_db_error().expect("db error");
        assert_eq!(db.code().code(), "42501", "{sql}: {}", db.message());
        assert!(db.message().contains("role \"alice\""), "{}", db.message());
    }
    assert_eq!(
        query(
            &alice,
            "CREATE TABLE notes AS SELECT 1 AS n; SELECT n FROM notes"
        )
        .await,
        vec![row(&["1"])]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_stay_in_their_connection_and_ddl_is_shared() {
    let server = Server::start("isolation");
    let a = server.client().await;
    let b = server.client().await;
    a.batch_execute("SET wasm.fuel = '12345'; SET statement_timeout = '7s'")
        .await
        .expect("set on a");
    assert_eq!(query(&a, "SHOW wasm.fuel").await, vec![row(&["12345"])]);
    assert_eq!(
        query(&a, "SHOW statement_timeout").await,
        vec![row(&["7s"])]
    );
    // b still has the server's defaults.
    assert_ne!(query(&b, "SHOW wasm.fuel").await, vec![row(&["12345"])]);
    assert_eq!(query(&b, "SHOW statement_timeout").await, vec![row(&["0"])]);
    // a's tiny fuel budget applies to a's calls only.
    let err = a
        .simple_query("SELECT gcd(value, 7) FROM generate_series(1, 100000)")
        .await
        .expect_err("out of fuel on a");
    assert_eq!(err.as_db_error().expect("db error").code().code(), "54000");
    assert_eq!(
        query(
            &b,
            "SELECT sum(gcd(value, 7)) FROM generate_series(1, 100000)"
        )
        .await,
        vec![row(&["185710"])]
    );
    // Functions and tables created on one connection are visible on the other.
    a.batch_execute(
        "CREATE FUNCTION twice_gcd(bigint, bigint) RETURNS bigint LANGUAGE wasm \
         AS 'examples/math.wasm', 'gcd'; CREATE TABLE shared AS SELECT 6 AS x",
    )
    .await
    .expect("ddl on a");
    assert_eq!(
        query(&b, "SELECT twice_gcd(x, 4) FROM shared").await,
        vec![row(&["2"])]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_oversized_and_idle_connections_do_not_hurt_the_server() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = Server::start("abuse");
    let port = server.port;
    let connect = || tokio::net::TcpStream::connect(("127.0.0.1", port));
    // An idle connection that never sends a byte stays open beside working clients.
    let _idle = connect().await.expect("idle connection");
    // Garbage instead of a startup packet: the server closes that connection.
    let mut garbage = connect().await.expect("connect");
    garbage
        .write_all(b"\x00\x00\x00\x08GARBAGE GARBAGE GARBAGE\r\n\r\n")
        .await
        .expect("write garbage");
    let mut sink = Vec::new();
    let closed =
        tokio::time::timeout(Duration::from_secs(10), garbage.read_to_end(&mut sink)).await;
    assert!(closed.is_ok(), "the server kept a garbage connection open");
    // A startup packet that claims 2 GiB, then nothing: no allocation of that size, and
    // the connection ends when the client goes.
    let mut huge = connect().await.expect("connect");
    huge.write_all(&[0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0])
        .await
        .expect("write huge length");
    drop(huge);
    // A logged-in client sending a query message that claims 1 GiB and closing.
    let client = server.client().await;
    let mut raw = connect().await.expect("connect");
    let startup = {
        let mut body = Vec::new();
        body.extend_from_slice(&196608u32.to_be_bytes());
        body.extend_from_slice(b"user\0wasmudf\0\0");
        let mut msg = ((body.len() + 4) as u32).to_be_bytes().to_vec();
        msg.extend(body);
        msg
    };
    raw.write_all(&startup).await.expect("startup");
    raw.write_all(&[b'Q', 0x40, 0, 0, 0])
        .await
        .expect("huge query header");
    drop(raw);
    // The server still serves, and memory did not balloon.
    for _ in 0..3 {
        assert_eq!(query(&client, "SELECT 40 + 2").await, vec![row(&["42"])]);
    }
    let fresh = server.client().await;
    assert_eq!(query(&fresh, "SELECT add_one(1)").await, vec![row(&["2"])]);
    if let Some(rss) = resident_kib(server.process.pid()) {
        assert!(
            rss < 1 << 20,
            "server resident memory {rss} KiB after abuse"
        );
    }
}

/// The resident memory of process `pid` in KiB (Linux), if it can be read.
fn resident_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

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

/// The issue's load test, bounded and on loopback: 32 connections run mixed Wasm UDF
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
