//! What every connection shares, and the startup of the database behind them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use wasmudf_engine::{
    parse_bytes, parse_duration, parse_stack, Database, DatabaseConfig, EngineConfig, Limits,
    Session,
};

use crate::config::{AuthMethod, ServeArgs};
use crate::pg::auth::{scram_handler, SessionParameters, ADMIN_ROLE};
use crate::pg::lock;

/// What every connection shares: the database, and the sessions a CancelRequest can
/// reach by the (process id, secret key) pair their connection was given.
pub struct ServerState {
    pub(crate) db: Database,
    /// SCRAM authentication, when configured (else trust).
    pub(crate) scram: Option<Arc<SASLAuthStartupHandler<SessionParameters>>>,
    pub(crate) cancel_keys: Mutex<HashMap<(i32, Bytes), Weak<Session>>>,
    /// Statements executing now (a graceful shutdown waits for them).
    running: AtomicUsize,
    /// Most bytes one COPY FROM STDIN may send (the upload is held in memory).
    pub(crate) max_copy_size: u64,
}

impl ServerState {
    /// Statements executing now.
    pub fn running_statements(&self) -> usize {
        self.running.load(Ordering::Acquire)
    }

    /// Cancels every statement in progress (a shutdown past its timeout).
    pub fn cancel_all(&self) {
        let sessions: Vec<Arc<Session>> = lock(&self.cancel_keys)
            .values()
            .filter_map(Weak::upgrade)
            .collect();
        for session in sessions {
            session.cancel_current();
        }
    }
}

/// Counts a statement as running until dropped.
pub(crate) struct RunningStatement(Arc<ServerState>);

impl RunningStatement {
    pub(crate) fn start(state: &Arc<ServerState>) -> Self {
        state.running.fetch_add(1, Ordering::AcqRel);
        RunningStatement(state.clone())
    }
}

impl Drop for RunningStatement {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ServerState {
    pub async fn start(args: &ServeArgs) -> Result<Self, String> {
        let mut defaults = Limits::default();
        if let Some(f) = args.fuel {
            defaults.fuel = f;
        }
        if let Some(m) = &args.memory {
            defaults.memory = parse_bytes(m).map_err(|e| e.to_string())?;
        }
        if let Some(t) = &args.timeout {
            defaults.timeout = parse_duration(t).map_err(|e| e.to_string())?;
        }
        if let Some(s) = &args.stack {
            defaults.stack = parse_stack(s).map_err(|e| format!("--stack: {e}"))?;
        }
        let mut ceilings = Limits::default_ceilings();
        if let Some(f) = args.max_fuel {
            ceilings.fuel = f;
        }
        if let Some(m) = &args.max_memory {
            ceilings.memory = parse_bytes(m).map_err(|e| format!("--max-memory: {e}"))?;
        }
        if let Some(t) = &args.max_timeout {
            ceilings.timeout = parse_duration(t).map_err(|e| format!("--max-timeout: {e}"))?;
        }
        if let Some(s) = &args.max_stack {
            ceilings.stack = parse_stack(s).map_err(|e| format!("--max-stack: {e}"))?;
        } else {
            ceilings.stack = ceilings.stack.max(defaults.stack);
        }
        if defaults.fuel > ceilings.fuel
            || defaults.memory > ceilings.memory
            || defaults.timeout > ceilings.timeout
            || defaults.stack > ceilings.stack
        {
            return Err("a limit default is above its ceiling (--fuel/--memory/--timeout/--stack against --max-fuel/--max-memory/--max-timeout/--max-stack)".into());
        }
        let first_start = !args.data_dir.join("catalog.redb").exists();
        let modules_dir = args
            .modules_dir
            .clone()
            .unwrap_or_else(|| args.data_dir.join("modules"));
        std::fs::create_dir_all(&modules_dir)
            .map_err(|e| format!("modules directory {}: {e}", modules_dir.display()))?;
        if !args.no_examples {
            write_examples(&modules_dir)?;
        }
        let mut config = DatabaseConfig::new(&args.data_dir);
        config.modules_dir = Some(modules_dir);
        config.engine = EngineConfig {
            defaults,
            ceilings,
            max_module_size: parse_bytes(&args.max_module_size).map_err(|e| e.to_string())?
                as usize,
            baseline_compile_min_size: match args.baseline_compile_min_size.as_str() {
                "off" => None,
                size => Some(
                    parse_bytes(size)
                        .map_err(|e| format!("--baseline-compile-min-size: {e} (or `off`)"))?
                        as usize,
                ),
            },
            max_functions_per_component: args.max_functions_per_component,
            max_description_size: parse_bytes(&args.max_description_size)
                .map_err(|e| e.to_string())? as usize,
            track_functions: args.track_functions == crate::config::TrackFunctions::All,
            ..EngineConfig::default()
        };
        config.target_partitions = args.target_partitions;
        config.log_min_duration_statement = args.slow_statement_threshold()?;
        // Only the administrator role defines functions and reads server files.
        config.admin_roles = Some(vec![ADMIN_ROLE.to_string()]);
        let db = Database::open(config).await.map_err(|e| e.to_string())?;
        if first_start && !args.no_examples {
            let admin = db.session(ADMIN_ROLE);
            for (name, _) in wasmudf_udfs::EXAMPLES {
                admin
                    .execute(&format!("SELECT * FROM wasm_load('examples/{name}.wasm')"))
                    .await
                    .map_err(|e| format!("example {name}: {e}"))?;
            }
            admin
                .execute(DEMO_TABLE)
                .await
                .map_err(|e| format!("demo table: {e}"))?;
            tracing::info!("registered the example functions and the demo table `cities`");
        }
        let scram = match (args.auth_method(), &args.password) {
            (AuthMethod::Trust, _) => None,
            (AuthMethod::ScramSha256, Some(password)) => Some(Arc::new(scram_handler(password)?)),
            (AuthMethod::ScramSha256, None) => {
                return Err(
                    "--auth scram-sha-256 needs a password (--password or WASMUDF_PASSWORD)".into(),
                )
            }
        };
        Ok(ServerState {
            db,
            scram,
            cancel_keys: Mutex::new(HashMap::new()),
            running: AtomicUsize::new(0),
            max_copy_size: parse_bytes(&args.max_copy_size).map_err(|e| e.to_string())?,
        })
    }
}

/// Copies the bundled example components into `<modules>/examples/`, so
/// `CREATE FUNCTION ... AS 'examples/math.wasm'` works out of the box.
fn write_examples(modules_dir: &std::path::Path) -> Result<(), String> {
    let dir = modules_dir.join("examples");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (name, bytes) in wasmudf_udfs::EXAMPLES {
        let path = dir.join(format!("{name}.wasm"));
        if std::fs::read(&path).ok().as_deref() != Some(*bytes) {
            std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    Ok(())
}

const DEMO_TABLE: &str =
    "CREATE TABLE cities (name VARCHAR, lat DOUBLE, lon DOUBLE, population BIGINT) AS VALUES \
    ('Paris', 48.8566, 2.3522, 2102650), ('London', 51.5074, -0.1278, 8866180), \
    ('Tokyo', 35.6762, 139.6503, 13960236), ('New York', 40.7128, -74.0060, 8335897), \
    ('Sydney', -33.8688, 151.2093, 5312163)";
