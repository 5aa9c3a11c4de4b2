//! The real `wasmudf` binary on a loopback port, driven by tokio-postgres and psql:
//! one module per concern, the shared helpers here.

// A test or bench harness: an unwrap that fails is a failed run, not a crashed server.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tokio_postgres::{NoTls, SimpleQueryMessage};
use wasmudf_sql_tests::ServerProcess;

mod auth;
mod build;
mod cancel;
mod clients;
mod config;
mod copy;
mod durability;
mod guest_text;
mod inspect;
mod load;
mod load_time;
mod observability;
mod parameters;
mod psql_cli;
mod queries;
mod sessions;
mod transactions;

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

/// A server started by hand with its whole log (stdout and stderr) in a file, for the
/// tests that read what it logged (ServerProcess pipes its output); killed on drop.
struct LoggedServer {
    child: std::process::Child,
    port: u16,
    url: String,
    log_path: std::path::PathBuf,
}

impl LoggedServer {
    /// `wasmudf serve` on a free port and `dir`/data, with `flags`.
    fn start(dir: &std::path::Path, flags: &[&std::ffi::OsStr]) -> LoggedServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log_path = dir.join("server.log");
        let log = std::fs::File::create(&log_path).expect("log file");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_wasmudf"))
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(dir.join("data"))
            .args(flags)
            .env("NO_COLOR", "1")
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start the server");
        LoggedServer {
            child,
            port,
            url: format!("host=127.0.0.1 port={port} user=wasmudf connect_timeout=5"),
            log_path,
        }
    }

    /// A connection, once the server listens (its log in the panic if it never does).
    async fn client(&mut self) -> tokio_postgres::Client {
        for _ in 0..300 {
            if let Ok((client, conn)) = tokio_postgres::connect(&self.url, NoTls).await {
                tokio::spawn(conn);
                return client;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = self.child.kill();
        panic!(
            "{}",
            std::fs::read_to_string(&self.log_path).unwrap_or_default()
        );
    }

    /// Stops the server; everything it logged.
    fn stop(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::read_to_string(&self.log_path).expect("server log")
    }
}

impl Drop for LoggedServer {
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

/// A server whose modules directory also holds `hostile/` (spin, membomb, ...).
fn start_with_hostile(dir: &tempfile::TempDir) -> ServerProcess {
    start_with_hostile_and(dir, &[])
}

/// As [`start_with_hostile`], with more `serve` flags.
fn start_with_hostile_and(dir: &tempfile::TempDir, flags: &[&str]) -> ServerProcess {
    let modules = dir.path().join("modules");
    wasmudf_sql_tests::write_modules_dir(&modules).expect("modules");
    let mut args = vec!["--modules-dir".to_string(), modules.display().to_string()];
    args.extend(flags.iter().map(|f| f.to_string()));
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

/// `psql` against the server on `port` as the administrator: no ~/.psqlrc, and a
/// 10 s connect timeout so a server that does not answer fails the test, not hangs it.
fn psql(port: u16) -> std::process::Command {
    let mut cmd = std::process::Command::new("psql");
    cmd.args([
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-U",
        "wasmudf",
        "-X",
    ])
    .env("PGCONNECT_TIMEOUT", "10");
    cmd
}

/// The resident memory of process `pid` in KiB (Linux), if it can be read.
fn resident_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
