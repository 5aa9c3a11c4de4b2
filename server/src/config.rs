//! Command-line and environment configuration.

use std::path::PathBuf;

use clap::Args;

/// How clients prove who they are.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// Every client that can reach the listen address is let in (the default, for a
    /// loopback-only development server).
    Trust,
    /// SCRAM-SHA-256 against the password of role `wasmudf` (`--password`).
    #[value(name = "scram-sha-256")]
    ScramSha256,
}

/// `wasmudf serve` options; each also reads a `WASMUDF_*` environment variable.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, env = "WASMUDF_LISTEN", default_value = "127.0.0.1:5433")]
    pub listen: String,
    /// Data directory (created on first start): catalog, modules, compiled artifacts,
    /// table data.
    #[arg(long, env = "WASMUDF_DATA_DIR", default_value = "./wasmudf-data")]
    pub data_dir: PathBuf,
    /// Directory `CREATE FUNCTION ... AS 'file.wasm'` reads modules from; paths cannot
    /// escape it (default: `<data-dir>/modules`, with the examples in `examples/`).
    #[arg(long, env = "WASMUDF_MODULES_DIR")]
    pub modules_dir: Option<PathBuf>,
    /// Default fuel per UDF call.
    #[arg(long, env = "WASMUDF_FUEL")]
    pub fuel: Option<u64>,
    /// Default memory per UDF instance (e.g. 256MB).
    #[arg(long, env = "WASMUDF_MEMORY")]
    pub memory: Option<String>,
    /// Default wall-clock deadline per UDF call (e.g. 10s).
    #[arg(long, env = "WASMUDF_TIMEOUT")]
    pub timeout: Option<String>,
    /// Wasm stack size for every UDF call (e.g. 1MB).
    #[arg(long, env = "WASMUDF_STACK")]
    pub stack: Option<String>,
    /// Largest module CREATE FUNCTION accepts (file or inline), e.g. 64MB.
    #[arg(long, env = "WASMUDF_MAX_MODULE_SIZE", default_value = "64MB")]
    pub max_module_size: String,
    /// Partitions DataFusion plans queries with (default: number of cores).
    #[arg(long, env = "WASMUDF_TARGET_PARTITIONS")]
    pub target_partitions: Option<usize>,
    /// Client authentication: `trust` or `scram-sha-256`.
    #[arg(long, env = "WASMUDF_AUTH", value_enum, default_value = "trust")]
    pub auth: AuthMethod,
    /// The password of role `wasmudf` (required with `--auth scram-sha-256`); prefer
    /// the environment variable, which `ps` does not show.
    #[arg(long, env = "WASMUDF_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// TLS certificate chain (PEM); with `--tls-key`, clients may connect with SSL
    /// (`sslmode=require`).
    #[arg(long, env = "WASMUDF_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for `--tls-cert`.
    #[arg(long, env = "WASMUDF_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Most client connections at once; more are refused with 53300.
    #[arg(long, env = "WASMUDF_MAX_CONNECTIONS", default_value_t = 100)]
    pub max_connections: usize,
    /// On SIGINT/SIGTERM: how long running statements may take to finish (e.g. 30s)
    /// before they are canceled.
    #[arg(long, env = "WASMUDF_SHUTDOWN_TIMEOUT", default_value = "30s")]
    pub shutdown_timeout: String,
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `wasmudf_engine=debug`.
    #[arg(long, env = "WASMUDF_LOG", default_value = "info")]
    pub log_level: String,
    /// Do not register the bundled example functions and demo table.
    #[arg(long, env = "WASMUDF_NO_EXAMPLES")]
    pub no_examples: bool,
}
