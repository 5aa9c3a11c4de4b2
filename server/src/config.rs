//! Command-line and environment configuration.

use std::ffi::OsString;
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

/// Which function calls are counted.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackFunctions {
    /// Every Wasm function's.
    All,
    /// None.
    None,
}

/// How log lines are written.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `wasmudf serve` options; each also reads a `WASMUDF_*` environment variable and a
/// key of the `--config` file. Precedence: flag, environment, file, default.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// A TOML file of settings named like the flags (`listen = "0.0.0.0:5433"`,
    /// `max-connections = 50`, `tls-cert = "server.crt"`).
    #[arg(long, env = "WASMUDF_CONFIG")]
    pub config: Option<PathBuf>,
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
    /// Ceiling on fuel per call: no function or session may set more.
    #[arg(long, env = "WASMUDF_MAX_FUEL")]
    pub max_fuel: Option<u64>,
    /// Ceiling on memory per instance (e.g. 4GB).
    #[arg(long, env = "WASMUDF_MAX_MEMORY")]
    pub max_memory: Option<String>,
    /// Ceiling on the deadline per call (e.g. 5min).
    #[arg(long, env = "WASMUDF_MAX_TIMEOUT")]
    pub max_timeout: Option<String>,
    /// Default Wasm stack per UDF call (e.g. 1MB; at least 64kB).
    #[arg(long, env = "WASMUDF_STACK")]
    pub stack: Option<String>,
    /// Ceiling on the Wasm stack per call (e.g. 8MB).
    #[arg(long, env = "WASMUDF_MAX_STACK")]
    pub max_stack: Option<String>,
    /// Largest module CREATE FUNCTION accepts (file or inline), e.g. 64MB.
    #[arg(long, env = "WASMUDF_MAX_MODULE_SIZE", default_value = "64MB")]
    pub max_module_size: String,
    /// Components at least this large (e.g. 1MB) are first compiled with the fast
    /// baseline compiler so CREATE FUNCTION returns in seconds; the optimizing compile
    /// runs in the background and takes over when done. `off` compiles optimized first.
    #[arg(long, env = "WASMUDF_BASELINE_COMPILE_MIN_SIZE", default_value = "1MB")]
    pub baseline_compile_min_size: String,
    /// Most functions one component may describe; CREATE FUNCTION and wasm_load of a
    /// component that describes more fail with 54000.
    #[arg(
        long,
        env = "WASMUDF_MAX_FUNCTIONS_PER_COMPONENT",
        default_value_t = 1000
    )]
    pub max_functions_per_component: usize,
    /// Largest description (names and types) a component may give of its functions,
    /// e.g. 1MB; more fails with 54000.
    #[arg(long, env = "WASMUDF_MAX_DESCRIPTION_SIZE", default_value = "1MB")]
    pub max_description_size: String,
    /// Most data one COPY FROM STDIN may send, e.g. 256MB (it is held in memory until
    /// CopyDone); more fails with 54000 and loads nothing.
    #[arg(long, env = "WASMUDF_MAX_COPY_SIZE", default_value = "256MB")]
    pub max_copy_size: String,
    /// Partitions DataFusion plans queries with (default: number of cores).
    #[arg(long, env = "WASMUDF_TARGET_PARTITIONS")]
    pub target_partitions: Option<usize>,
    /// Client authentication: `trust` or `scram-sha-256` (default: SCRAM when a
    /// password is set, else trust, which only a loopback listen address allows).
    #[arg(long, env = "WASMUDF_AUTH", value_enum)]
    pub auth: Option<AuthMethod>,
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
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `wasmudf_engine=debug`
    /// (`debug` adds a span per Wasm call under each statement's).
    #[arg(long, env = "WASMUDF_LOG", default_value = "info")]
    pub log_level: String,
    /// Log line format: `text` (for people) or `json` (one object per line, for log
    /// collectors).
    #[arg(long, env = "WASMUDF_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Log every statement that takes at least this long (e.g. `250ms`; `0` logs all),
    /// with its text and its Wasm functions' calls, rows, guest time and fuel;
    /// `-1` (the default) logs none. PostgreSQL's setting of the same name.
    #[arg(
        long,
        env = "WASMUDF_LOG_MIN_DURATION_STATEMENT",
        default_value = "-1",
        allow_hyphen_values = true
    )]
    pub log_min_duration_statement: String,
    /// Count Wasm calls (`wasm.function_stats`, the function metrics, EXPLAIN ANALYZE's
    /// and pg_stat_activity's Wasm figures): `all`, or `none` (PostgreSQL's setting of
    /// the same name).
    #[arg(
        long,
        env = "WASMUDF_TRACK_FUNCTIONS",
        value_enum,
        default_value = "all"
    )]
    pub track_functions: TrackFunctions,
    /// Serve Prometheus metrics on `http://ADDR/metrics` (e.g. `127.0.0.1:9187`; a bare
    /// port listens on loopback). Off unless given.
    #[arg(long, env = "WASMUDF_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// Do not register the bundled example functions and demo table.
    #[arg(long, env = "WASMUDF_NO_EXAMPLES")]
    pub no_examples: bool,
}

/// Expands a `serve --config file.toml` command line: each setting of the file becomes
/// its flag, placed before the user's own flags (which therefore win), unless its
/// environment variable is set (which also wins).
pub fn with_config_file(args: Vec<OsString>) -> Result<Vec<OsString>, String> {
    let Some(serve_at) = args.iter().position(|a| a == "serve") else {
        return Ok(args);
    };
    let mut path: Option<PathBuf> = std::env::var_os("WASMUDF_CONFIG").map(PathBuf::from);
    let mut iter = args[serve_at + 1..].iter();
    while let Some(a) = iter.next() {
        let a = a.to_string_lossy();
        if a == "--config" {
            path = iter.next().map(PathBuf::from);
        } else if let Some(p) = a.strip_prefix("--config=") {
            path = Some(PathBuf::from(p));
        }
    }
    let Some(path) = path else {
        return Ok(args);
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("config file {}: {e}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| format!("config file {}: {e}", path.display()))?;
    let known: Vec<String> = ServeArgs::augment_args(clap::Command::new("serve"))
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_string))
        .collect();
    let mut injected = Vec::new();
    for (key, value) in table {
        let flag = key.replace('_', "-");
        if flag == "config" || !known.contains(&flag) {
            return Err(format!(
                "config file {}: unknown setting \"{key}\" (settings are named like the flags of `wasmudf serve --help`)",
                path.display()
            ));
        }
        let env = format!("WASMUDF_{}", flag.replace('-', "_").to_uppercase());
        if std::env::var_os(&env).is_some() {
            continue;
        }
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(true) => {
                injected.push(OsString::from(format!("--{flag}")));
                continue;
            }
            toml::Value::Boolean(false) => continue,
            other => {
                return Err(format!(
                    "config file {}: setting \"{key}\" must be a string, number or boolean, not {}",
                    path.display(),
                    other.type_str()
                ))
            }
        };
        injected.push(OsString::from(format!("--{flag}={value}")));
    }
    let mut out = args[..=serve_at].to_vec();
    out.extend(injected);
    out.extend_from_slice(&args[serve_at + 1..]);
    Ok(out)
}

impl ServeArgs {
    /// `--log-min-duration-statement`: `None` for `-1`.
    pub fn slow_statement_threshold(&self) -> Result<Option<std::time::Duration>, String> {
        match self.log_min_duration_statement.trim() {
            "-1" => Ok(None),
            "0" => Ok(Some(std::time::Duration::ZERO)),
            other => wasmudf_engine::parse_duration(other)
                .map(Some)
                .map_err(|e| format!("--log-min-duration-statement: {e} (or -1 for off)")),
        }
    }

    /// `--metrics-listen`, a bare port meaning loopback.
    pub fn metrics_address(&self) -> Result<Option<std::net::SocketAddr>, String> {
        let Some(given) = &self.metrics_listen else {
            return Ok(None);
        };
        let spelled = match given.trim_start_matches(':').parse::<u16>() {
            Ok(port) => format!("127.0.0.1:{port}"),
            Err(_) => given.clone(),
        };
        use std::net::ToSocketAddrs;
        spelled
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .map(Some)
            .ok_or_else(|| format!("--metrics-listen {given}: not an address (HOST:PORT or PORT)"))
    }

    /// The authentication in effect: as given, else SCRAM with a password, else trust.
    pub fn auth_method(&self) -> AuthMethod {
        self.auth.unwrap_or(if self.password.is_some() {
            AuthMethod::ScramSha256
        } else {
            AuthMethod::Trust
        })
    }
}
