//! `wasmudf-sql-tests`: run `.slt` files against a running server, a server binary
//! the runner starts, or the engine in-process.
//!
//! ```text
//! cargo run -p wasmudf-sql-tests -- --url 'host=127.0.0.1 port=5433 user=wasmudf' 'sql-tests/slt/**/*.slt'
//! cargo run -p wasmudf-sql-tests -- --in-process sql-tests/slt/scalar.slt
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use wasmudf_sql_tests::{run_file, run_file_keep_going, slt_files, Target};

/// Runs sqllogictest files against wasmudf.
#[derive(Parser)]
#[command(name = "wasmudf-sql-tests", version)]
struct Cli {
    /// Files or glob patterns (quote globs so the shell leaves them alone).
    #[arg(required = true)]
    files: Vec<String>,
    /// A running server: a tokio-postgres connection string or `postgres://` URL.
    /// Files are run in order on its current state; `restart` is refused.
    #[arg(long, conflicts_with_all = ["in_process", "server"])]
    url: Option<String>,
    /// Run in this process on the engine, one fresh data directory per file.
    #[arg(long)]
    in_process: bool,
    /// Start this `wasmudf` binary per file on a fresh data directory
    /// (default: the `wasmudf` next to this program, e.g. target/debug/wasmudf).
    #[arg(long)]
    server: Option<PathBuf>,
    /// Go on after a failing record and report every failure of a file.
    #[arg(long)]
    keep_going: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let target = if let Some(url) = cli.url {
        Target::Url(url)
    } else if cli.in_process {
        Target::InProcess
    } else {
        match cli.server.or_else(sibling_server) {
            Some(binary) => Target::Server(binary),
            None => {
                eprintln!("no wasmudf binary next to this program: build it (cargo build --bin wasmudf) or pass --server, --url or --in-process");
                return ExitCode::FAILURE;
            }
        }
    };
    let mut files = Vec::new();
    for pattern in &cli.files {
        match slt_files(pattern) {
            Ok(found) if found.is_empty() => {
                eprintln!("{pattern}: no such files");
                return ExitCode::FAILURE;
            }
            Ok(found) => files.extend(found),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let mut failed = 0;
    for file in &files {
        let result = if cli.keep_going {
            run_file_keep_going(file, &target).await
        } else {
            run_file(file, &target).await
        };
        match result {
            Ok(()) => println!("ok      {}", file.display()),
            Err(e) => {
                failed += 1;
                println!("FAILED  {}\n{e}", file.display());
            }
        }
    }
    println!(
        "{} files, {} passed, {failed} failed ({})",
        files.len(),
        files.len() - failed,
        target.label()
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn sibling_server() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let candidate = exe.with_file_name(format!("wasmudf{}", std::env::consts::EXE_SUFFIX));
    candidate.is_file().then_some(candidate)
}
