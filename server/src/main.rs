//! `wasmudf`: a PostgreSQL-protocol SQL server whose functions can be WebAssembly components.

mod config;
mod encode;
mod extended;
mod pg;

use std::sync::Arc;

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

use crate::config::ServeArgs;

#[derive(Parser)]
#[command(
    name = "wasmudf",
    version,
    about = "SQL server with sandboxed WebAssembly UDFs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Starts the server (default: 127.0.0.1:5433, data in ./wasmudf-data).
    Serve(ServeArgs),
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    EnvFilter::try_new(&args.log_level).unwrap_or_else(|_| EnvFilter::new("info")),
                )
                .init();
            if let Err(e) = serve(args).await {
                tracing::error!("{e}");
                eprintln!("wasmudf: {e}");
                std::process::exit(1);
            }
        }
    }
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let state = Arc::new(pg::ServerState::start(&args).await?);
    let listener = TcpListener::bind(&args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(%addr, data_dir = %args.data_dir.display(), "wasmudf listening");
    println!(
        "wasmudf listening on {addr} — connect with: psql -h {} -p {} -U wasmudf",
        addr.ip(),
        addr.port()
    );
    let shutdown = async {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
    };
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => {
                tracing::info!("shutting down");
                return Ok(());
            }
            accepted = listener.accept() => {
                let (socket, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => { tracing::warn!("accept failed: {e}"); continue; }
                };
                let handlers = Arc::new(pg::Connection::new(state.clone()));
                tokio::spawn(async move {
                    tracing::info!(%peer, "connection opened");
                    if let Err(e) = pgwire::tokio::process_socket(socket, None, handlers).await {
                        tracing::info!(%peer, "connection ended with error: {e}");
                    } else {
                        tracing::info!(%peer, "connection closed");
                    }
                });
            }
        }
    }
}
