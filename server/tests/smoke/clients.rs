//! The client-compatibility suite: each mainstream driver, in its own language and
//! with its defaults, against the real server (`sql-tests/clients/`).
//!
//! The drivers come from their registries (`.ci/run` installs them: pip into
//! `sql-tests/clients/.venv`, npm into `sql-tests/clients/node`). Without them a
//! plain `cargo test` says so and skips; with `WASMUDF_CLIENTS=required` (CI) a
//! missing driver fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Server;

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sql-tests/clients")
}

fn required() -> bool {
    std::env::var("WASMUDF_CLIENTS").is_ok_and(|v| v == "required")
}

/// Runs `program args.. URL` against a fresh server; skips (or, when required, fails)
/// if the driver is not installed here.
fn run_client(name: &str, program: &Path, args: &[PathBuf], installed: bool) {
    if !installed {
        assert!(
            !required(),
            "{name} is not installed (WASMUDF_CLIENTS=required): run .ci/run's client setup"
        );
        eprintln!("skipped {name}: not installed (see sql-tests/clients/README.md)");
        return;
    }
    let server = Server::start(name);
    let url = if name == "pgjdbc" {
        format!(
            "jdbc:postgresql://127.0.0.1:{}/wasmudf?user=wasmudf",
            server.port
        )
    } else {
        format!("postgresql://wasmudf@127.0.0.1:{}/wasmudf", server.port)
    };
    let out = Command::new(program)
        .args(args)
        .arg(&url)
        .output()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{name} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains(": ok"),
        "{name} did not finish:\n{stdout}\n{stderr}"
    );
}

/// A Python client program, run by the suite's virtualenv.
fn python_client(name: &str, program: &str) {
    let py = clients_dir().join(".venv/bin/python");
    let installed = py.exists();
    run_client(name, &py, &[clients_dir().join(program)], installed);
}

#[test]
fn psycopg() {
    python_client("psycopg", "psycopg_client.py");
}

#[test]
fn asyncpg() {
    python_client("asyncpg", "asyncpg_client.py");
}

#[test]
fn sqlalchemy() {
    python_client("sqlalchemy", "sqlalchemy_client.py");
}

#[test]
fn pgcli() {
    python_client("pgcli", "pgcli_client.py");
}

/// Debian's pgjdbc (Maven Central is not reachable here), run as a single-file Java
/// program.
#[test]
fn pgjdbc() {
    let jar = Path::new("/usr/share/java/postgresql.jar");
    let installed = jar.exists() && Command::new("java").arg("-version").output().is_ok();
    run_client(
        "pgjdbc",
        Path::new("java"),
        &[
            "-cp".into(),
            jar.to_path_buf(),
            clients_dir().join("jdbc/JdbcClient.java"),
        ],
        installed,
    );
}

#[test]
fn node_postgres() {
    let dir = clients_dir().join("node");
    run_client(
        "node-postgres",
        Path::new("node"),
        &[dir.join("client.js")],
        dir.join("node_modules/pg").exists(),
    );
}
