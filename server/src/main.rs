//! `wasmudf`: a PostgreSQL-protocol SQL server whose functions can be WebAssembly components.

mod build;
mod config;
mod inspect;
mod new;
mod pg;
mod prometheus;

use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use futures::FutureExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing_subscriber::EnvFilter;

use crate::config::ServeArgs;

#[derive(Parser)]
#[command(
    name = "wasmudf",
    version,
    about = "SQL server with sandboxed WebAssembly UDFs",
    // Settings from --config come first; a flag given again on the command line wins.
    args_override_self = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Starts the server (default: 127.0.0.1:5433, data in ./wasmudf-data).
    Serve(Box<ServeArgs>),
    /// Builds a component from Rust, Python, C, Go or JavaScript source (`wasmudf build
    /// --lang python f.py`, `wasmudf build --lang rust CRATE_DIR`).
    Build(build::BuildArgs),
    /// Shows what a component provides: its functions with their SQL signatures, the
    /// interfaces it exports and imports (and whether the server would refuse them),
    /// its size and SHA-256, and the CREATE FUNCTION statements that register it.
    Inspect(inspect::InspectArgs),
    /// As `inspect`, compiling and instantiating the component as the server would;
    /// exits with status 1 if the server would refuse it.
    Check(inspect::InspectArgs),
    /// Creates a project for new functions in Rust, Python, C, Go or JavaScript (`wasmudf
    /// new --lang rust myfuncs`): a scalar and an aggregate to start from, ready for
    /// `wasmudf build`.
    New(new::NewArgs),
}

#[tokio::main]
async fn main() {
    let args = match config::with_config_file(std::env::args_os().collect()) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("wasmudf: {e}");
            std::process::exit(2);
        }
    };
    let cli = Cli::parse_from(args);
    match cli.command {
        Command::Inspect(args) => {
            if let Err(e) = inspect::inspect(&args) {
                eprintln!("wasmudf inspect: {e}");
                std::process::exit(1);
            }
        }
        Command::Check(args) => {
            if let Err(e) = inspect::check(&args) {
                eprintln!("wasmudf check: {e}");
                std::process::exit(1);
            }
        }
        Command::New(args) => {
            if let Err(e) = new::run(&args) {
                eprintln!("wasmudf new: {e}");
                std::process::exit(1);
            }
        }
        Command::Build(args) => {
            if let Err(e) = build::run(args) {
                eprintln!("wasmudf build: {e}");
                std::process::exit(1);
            }
        }
        Command::Serve(args) => {
            let filter =
                EnvFilter::try_new(&args.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
            match args.log_format {
                config::LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
                // One object per line; the statement span's fields (id, user, tag) ride
                // on every line logged within it.
                config::LogFormat::Json => tracing_subscriber::fmt()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_env_filter(filter)
                    .init(),
            }
            // A panic is one log line, its message sanitized, not a backtrace on stderr:
            // pgwire 0.42's decoder panics on some malformed messages (a Parse that
            // declares more parameter types than it carries), which a client controls.
            std::panic::set_hook(Box::new(|info| {
                let message = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                let location = info.location().map(ToString::to_string).unwrap_or_default();
                tracing::error!(
                    %location,
                    message = %wasmudf_engine::log_text(&message),
                    "panic"
                );
            }));
            if let Err(e) = serve(*args).await {
                tracing::error!("{e}");
                eprintln!("wasmudf: {e}");
                std::process::exit(1);
            }
        }
    }
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    // Everything that can be wrong with the configuration fails before the banner.
    let shutdown_timeout = wasmudf_engine::parse_duration(&args.shutdown_timeout)
        .map_err(|e| format!("--shutdown-timeout: {e}"))?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
        _ => None,
    };
    let metrics_addr = args.metrics_address()?;
    args.slow_statement_threshold()?;
    // Before the database opens: its functions take their metric handles then.
    if let Some(addr) = metrics_addr {
        prometheus::install(addr)?;
    }
    let state = Arc::new(pg::ServerState::start(&args).await?);
    let listener = TcpListener::bind(&args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    if args.auth_method() == config::AuthMethod::Trust && !addr.ip().is_loopback() {
        return Err(format!(
            "refusing to listen on {addr} without authentication: set a password \
             (WASMUDF_PASSWORD, SCRAM-SHA-256) or listen on a loopback address"
        ));
    }
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
    let slots = Arc::new(Semaphore::new(args.max_connections));
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let (socket, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => { tracing::warn!("accept failed: {e}"); continue; }
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    metrics::counter!(prometheus::CONNECTIONS_REFUSED).increment(1);
                    tracing::warn!(%peer, max = args.max_connections, "connection refused: too many clients");
                    tokio::spawn(refuse(socket));
                    continue;
                };
                let handlers = Arc::new(pg::Connection::new(state.clone()));
                let terminated = handlers.terminated();
                let connection = handlers.clone();
                // A second handle on the socket, to say why it closes when
                // pg_terminate_backend ends the connection (pgwire owns the first).
                let split = socket.into_std().and_then(|std| {
                    let farewell = std.try_clone().ok();
                    Ok((tokio::net::TcpStream::from_std(std)?, farewell))
                });
                let (socket, farewell) = match split {
                    Ok(split) => split,
                    Err(e) => { tracing::warn!(%peer, "socket lost: {e}"); continue; }
                };
                let tls = tls.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    let _open = prometheus::OpenConnection::new();
                    tracing::info!(%peer, "connection opened");
                    // A panic while serving ends this connection only (its slot and
                    // session are released as the task unwinds).
                    let serving = std::panic::AssertUnwindSafe(
                        pgwire::tokio::process_socket(socket, tls, handlers),
                    )
                    .catch_unwind();
                    tokio::select! {
                        served = serving => match served {
                            Ok(Err(e)) => tracing::info!(%peer, error = %wasmudf_engine::log_text(&e.to_string()), "connection ended with an error"),
                            Ok(Ok(())) => tracing::info!(%peer, "connection closed"),
                            Err(_) => tracing::warn!(%peer, "connection ended: serving it panicked (see the panic line before)"),
                        },
                        // Dropping the connection's future closes pgwire's socket; the
                        // client reads PostgreSQL's FATAL first (over a plaintext
                        // connection: a TLS one is only closed).
                        _ = terminated.notified() => {
                            if let (Some(mut farewell), false) = (farewell, connection.is_secure()) {
                                use std::io::Write;
                                let fatal = fatal_message("57P01", "terminating connection due to administrator command");
                                let _ = farewell.write_all(&fatal);
                                let _ = farewell.shutdown(std::net::Shutdown::Both);
                            }
                            tracing::info!(%peer, "connection terminated by pg_terminate_backend");
                        }
                    }
                });
            }
        }
    }
    // Stop accepting (the listener closes here), let running statements finish, cancel
    // what is left at the deadline. The catalog commits every DDL durably, so there is
    // nothing to flush but the database's own close.
    drop(listener);
    let running = state.running_statements();
    tracing::info!(running, "shutting down: waiting for running statements");
    let deadline = tokio::time::Instant::now() + shutdown_timeout;
    while state.running_statements() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if state.running_statements() > 0 {
        tracing::warn!(
            running = state.running_statements(),
            "shutdown timeout: canceling the statements still running"
        );
        state.cancel_all();
        let grace = tokio::time::Instant::now() + Duration::from_secs(2);
        while state.running_statements() > 0 && tokio::time::Instant::now() < grace {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    tracing::info!("shut down");
    Ok(())
}

/// The TLS acceptor for `--tls-cert` / `--tls-key` (PEM files).
fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<pgwire::tokio::TlsAcceptor, String> {
    use pgwire::tokio::tokio_rustls::rustls::pki_types::pem::PemObject;
    use pgwire::tokio::tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use pgwire::tokio::tokio_rustls::rustls::ServerConfig;
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("--tls-cert {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "--tls-cert {}: no certificate in it",
            cert.display()
        ));
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("--tls-key {}: {e}", key.display()))?;
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| format!("TLS certificate and key: {e}"))?;
    Ok(pgwire::tokio::TlsAcceptor::from(Arc::new(config)))
}

/// Tells a client over the connection limit why, as PostgreSQL does (FATAL 53300).
async fn refuse(mut socket: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    let _ = socket
        .write_all(&fatal_message("53300", "sorry, too many clients already"))
        .await;
    let _ = socket.shutdown().await;
}

/// A FATAL ErrorResponse, as the server sends it before closing a connection.
fn fatal_message(code: &str, message: &str) -> bytes::BytesMut {
    use pgwire::messages::Message;
    let info = pgwire::error::ErrorInfo::new("FATAL".into(), code.into(), message.into());
    let mut buf = bytes::BytesMut::new();
    if pgwire::messages::response::ErrorResponse::from(info)
        .encode(&mut buf)
        .is_err()
    {
        buf.clear();
    }
    buf
}
