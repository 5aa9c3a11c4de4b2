//! Runs one `.slt` file against one target, with the `restart` directive.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use sqllogictest::{AsyncDB, DefaultColumnType, MakeConnection, Record, Runner};

use crate::inprocess::InProcess;
use crate::server::ServerProcess;
use crate::wire::{Conventions, Endpoint};

/// Where a file's statements run.
#[derive(Debug, Clone)]
pub enum Target {
    /// The engine's SQL entry point in this process, fresh data directory per file.
    InProcess,
    /// The `wasmudf` binary at this path, started per file on a fresh data directory.
    Server(PathBuf),
    /// A server already running at this URL (`postgres://user@host:port`); `restart`
    /// is refused, since the runner cannot restart it.
    Url(String),
}

impl Target {
    /// The label `onlyif` / `skipif` records can test.
    pub fn label(&self) -> &'static str {
        match self {
            Target::InProcess => "inprocess",
            Target::Server(_) | Target::Url(_) => "server",
        }
    }
}

/// DataFusion's `df_value_validator`: a row is its cells joined by one space, and only
/// trailing whitespace is ignored (a cell of spaces counts).
fn datafusion_validator(
    _normalizer: sqllogictest::Normalizer,
    actual: &[Vec<String>],
    expected: &[String],
) -> bool {
    actual.len() == expected.len()
        && actual
            .iter()
            .zip(expected)
            .all(|(row, line)| row.join(" ").trim_end() == line.trim_end())
}

/// Whether `path` is one of DataFusion's upstream files (under a `conformance` directory).
pub fn is_upstream(path: &Path) -> bool {
    path.components().any(|c| c.as_os_str() == "conformance")
}

/// Every `.slt` file matching `pattern` (a glob), sorted.
pub fn slt_files(pattern: &str) -> Result<Vec<PathBuf>, String> {
    let mut files = glob::glob(pattern)
        .map_err(|e| format!("bad pattern {pattern}: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    files.sort();
    Ok(files)
}

/// The directive's stand-in: sqllogictest has no `restart`, so the line becomes a
/// subtest record with this name (one line for one line: locations stay right).
const RESTART: &str = "__wasmudf_restart__";

/// Runs every record of `path` against `target`, stopping at the first failure; the
/// error names file, line, statement, and expected vs actual.
pub async fn run_file(path: &Path, target: &Target) -> Result<(), String> {
    run(path, target, false).await
}

/// Like [`run_file`], but goes on after a failing record and reports every failure
/// (later records may fail only because an earlier one did).
pub async fn run_file_keep_going(path: &Path, target: &Target) -> Result<(), String> {
    run(path, target, true).await
}

async fn run(path: &Path, target: &Target, keep_going: bool) -> Result<(), String> {
    let script = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let script: String = script
        .lines()
        .map(|line| {
            if line.trim() == "restart" {
                format!("subtest {RESTART}\n")
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    let records =
        sqllogictest::parse_with_name::<DefaultColumnType>(&script, path.display().to_string())
            .map_err(|e| format!("{}: {e}", path.display()))?;

    // Upstream DataFusion files keep DataFusion's conventions and run over the wire only
    // (they exist to show the wire layer does not change SQL semantics).
    let conventions = if is_upstream(path) {
        Conventions::DataFusion
    } else {
        Conventions::Psql
    };

    let scratch = tempfile::Builder::new()
        .prefix("wasmudf-slt-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let data_dir = scratch.path().join("data");
    let modules_dir = scratch.path().join("modules");
    crate::write_modules_dir(&modules_dir).map_err(|e| format!("modules directory: {e}"))?;

    match target {
        Target::InProcess if conventions == Conventions::DataFusion => Err(format!(
            "{}: an upstream conformance file runs over pgwire only",
            path.display()
        )),
        Target::InProcess => {
            let db = InProcess::open(data_dir, modules_dir).await?;
            let connect_db = db.clone();
            let runner = Runner::new(move || {
                let db = connect_db.clone();
                async move { Ok(db.connect().await) }
            });
            drive(runner, records, target, conventions, keep_going, || {
                let db = db.clone();
                async move { db.restart().await }
            })
            .await
        }
        Target::Server(binary) => {
            let args = vec![
                "--modules-dir".to_string(),
                modules_dir.display().to_string(),
                "--no-examples".to_string(),
                "--target-partitions".to_string(),
                "4".to_string(),
            ];
            let server = ServerProcess::start(binary, &data_dir, &args)?;
            let log = server.log_path();
            let endpoint = Endpoint::new(server.url(), conventions);
            let server = std::sync::Arc::new(tokio::sync::Mutex::new(server));
            let connect = endpoint.clone();
            let runner = Runner::new(move || {
                let endpoint = connect.clone();
                async move { Ok(endpoint.connect()) }
            });
            let result = drive(runner, records, target, conventions, keep_going, || {
                let server = server.clone();
                let endpoint = endpoint.clone();
                async move {
                    let mut server = server.lock().await;
                    server.restart()?;
                    endpoint.moved(server.url()).await;
                    Ok(())
                }
            })
            .await;
            result.map_err(|e| {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                if tail.is_empty() {
                    e
                } else {
                    let tail: Vec<&str> = tail.into_iter().rev().collect();
                    format!("{e}\nlast lines of the server log:\n{}", tail.join("\n"))
                }
            })
        }
        Target::Url(url) => {
            let endpoint = Endpoint::new(url.clone(), conventions);
            let runner = Runner::new(move || {
                let endpoint = endpoint.clone();
                async move { Ok(endpoint.connect()) }
            });
            drive(runner, records, target, conventions, keep_going, || async {
                Err("`restart` needs a server the runner started (run without --url)".to_string())
            })
            .await
        }
    }
}

/// Feeds the records to the runner, restarting the target at each `restart`.
async fn drive<D, M, R, F>(
    mut runner: Runner<D, M>,
    records: Vec<Record<DefaultColumnType>>,
    target: &Target,
    conventions: Conventions,
    keep_going: bool,
    mut restart: R,
) -> Result<(), String>
where
    D: AsyncDB<ColumnType = DefaultColumnType>,
    M: MakeConnection<Conn = D>,
    R: FnMut() -> F,
    F: std::future::Future<Output = Result<(), String>>,
{
    runner.add_label(target.label());
    // Data files suites read (sql-tests/fixtures).
    runner.set_var(
        "FIXTURES".to_string(),
        concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures").to_string(),
    );
    // `base64:$B64_MATH` and friends: every example module inline, for CREATE FUNCTION
    // tests that must not depend on the server's files.
    for (name, bytes) in wasmudf_udfs::EXAMPLES {
        runner.set_var(
            format!("B64_{}", name.to_uppercase()),
            base64::engine::general_purpose::STANDARD.encode(bytes),
        );
    }
    match conventions {
        Conventions::Psql => runner.with_column_validator(sqllogictest::strict_column_validator),
        // DataFusion's column letters (B, D, P, ?) have no PostgreSQL counterpart: the
        // values are compared, not the letters.
        Conventions::DataFusion => {
            runner.with_column_validator(sqllogictest::default_column_validator);
            runner.with_validator(datafusion_validator);
        }
    }
    let mut failures = Vec::new();
    for record in records {
        if let Record::Subtest { loc, name } = &record {
            if name == RESTART {
                restart().await.map_err(|e| format!("{e}\nat {loc}"))?;
                continue;
            }
        }
        if let Err(e) = runner.run_async(record).await {
            failures.push(format!("{}", e.display(false)));
            if !keep_going {
                break;
            }
        }
    }
    runner.shutdown_async().await;
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n\n"))
    }
}
