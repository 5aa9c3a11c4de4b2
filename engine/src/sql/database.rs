//! The database: a data directory with its catalog, its live function registry, and
//! the session template every connection starts from.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF};
use datafusion::optimizer::analyzer::{Analyzer, AnalyzerRule};
use datafusion::prelude::{SessionConfig, SessionContext};
use parking_lot::{Mutex, RwLock};

use crate::error::{CancelReason, Error, Result};
use crate::introspection::{
    pg_catalog, session_info, system, ActivityRow, DatabaseHandle, DatabaseView,
};
use crate::sql::advisory::AdvisoryLocks;
use crate::sql::backends::Backends;
use crate::sql::byte_lengths;
use crate::sql::column_origins::RelationOids;
use crate::sql::exec::Executor;
use crate::sql::json::{self, JsonColumns, JsonOperators};
use crate::sql::literal_types::IntegerLiterals;
use crate::sql::numeric::{self, NumericDivision};
use crate::sql::pg_functions::{self, TypeofAtPlanning};
use crate::sql::session::Session;
use crate::sql::text_casts::TemporalTextCasts;
use crate::sql::unsigned_results::UnsignedResults;
use crate::sql::{ddl, sequences, tables};
use crate::store::catalog::{Catalog, FunctionRecord};
use crate::store::sequence::Sequences;
use crate::store::table::TableStore;
use crate::store::{CATALOG_NAME, DEFAULT_SCHEMA};
use crate::udf::scope::QueryScope;
use crate::udf::settings::WasmSettings;
use crate::udf::stats::{StatsRegistry, StatsSnapshot};
use crate::wasm::cache::CacheOutcome;
use crate::wasm::engine::{Engine, EngineConfig, Module};
use crate::wasm::tier::CodeTier;

/// How a [`Database`] is set up.
#[derive(Clone, Debug)]
pub struct DatabaseConfig {
    /// Holds the catalog (`catalog.redb`), compiled artifacts (`artifacts/`) and table
    /// data (`tables/`). Created if missing.
    pub data_dir: PathBuf,
    /// Where `CREATE FUNCTION ... AS 'file.wasm'` reads files from; paths cannot
    /// escape it. `None` refuses file paths (inline and stored modules still work).
    pub modules_dir: Option<PathBuf>,
    /// The Wasm engine's limits and pool settings (its `artifact_dir` is replaced by
    /// the data directory's).
    pub engine: EngineConfig,
    /// Partitions per query (`None`: one per core).
    pub target_partitions: Option<usize>,
    /// Roles allowed to create and drop functions, load modules and define external
    /// tables (which read server files); others get 42501. `None`: no checks (every
    /// session is trusted, as in an embedded use of the library).
    pub admin_roles: Option<Vec<String>>,
    /// Statements that take at least this long are logged (at info level, with their
    /// text and their Wasm functions' figures), as PostgreSQL's
    /// `log_min_duration_statement`. `None`: none are.
    pub log_min_duration_statement: Option<Duration>,
}

impl DatabaseConfig {
    /// A configuration with defaults for everything but the data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        DatabaseConfig {
            data_dir: data_dir.into(),
            modules_dir: None,
            engine: EngineConfig::default(),
            target_partitions: None,
            admin_roles: None,
            log_min_duration_statement: None,
        }
    }
}

/// A wasmudf database: one data directory, shared by every session. Cheap to clone.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use wasmudf_engine::{Database, DatabaseConfig, Output};
///
/// let mut config = DatabaseConfig::new("./wasmudf-data");
/// config.modules_dir = Some("target/udfs".into());
/// let db = Database::open(config).await?;
/// let session = db.session("wasmudf");
/// session.execute("CREATE FUNCTION gcd(bigint, bigint) RETURNS bigint \
///                  LANGUAGE wasm IMMUTABLE STRICT AS 'math.wasm', 'gcd'").await?;
/// for output in session.execute("SELECT gcd(12, 18)").await? {
///     if let Output::Rows(stream) = output {
///         let batches = wasmudf_engine::collect(stream).await?;
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Database {
    pub(crate) inner: Arc<DbInner>,
}

pub(crate) struct DbInner {
    pub engine: Engine,
    pub catalog: Arc<Catalog>,
    /// The managed tables' files and the commits that change them.
    pub tables: Arc<TableStore>,
    /// The sequences of serial and identity columns.
    pub sequences: Arc<Sequences>,
    /// The template every session copies: configuration, shared catalogs.
    pub template: SessionContext,
    pub data_dir: PathBuf,
    pub modules_dir: Option<PathBuf>,
    pub functions: RwLock<Registry>,
    /// Serializes DDL so the catalog and the live registry change together.
    pub ddl: Mutex<()>,
    /// Names of built-in functions, which can be neither shadowed nor dropped
    /// (except those in [`REPLACEABLE_BUILTINS`]).
    pub builtins: HashSet<String>,
    /// The original UDFs of the replaceable built-ins, restored when the Wasm
    /// function that replaced one is dropped.
    pub replaced_builtins: HashMap<String, ScalarUDF>,
    /// How each module loaded in this process got its machine code (shown in
    /// `wasm.modules.artifact`): from the artifact cache, compiled, or recompiled
    /// because the cached artifact failed verification.
    pub artifacts: Mutex<HashMap<String, CacheOutcome>>,
    /// Where query plans execute (apart from the caller's runtime).
    pub executor: Executor,
    /// [`DatabaseConfig::admin_roles`].
    pub admin_roles: Option<Vec<String>>,
    /// Advisory locks, shared by every session.
    pub advisory_locks: Arc<AdvisoryLocks>,
    /// The sessions by backend pid (pg_cancel_backend / pg_terminate_backend).
    pub backends: Arc<Backends>,
    /// The relations' pg_class OIDs, which RowDescription carries.
    pub relation_oids: RelationOids,
    /// What each function overload has cost (`wasm.function_stats`), by catalog key.
    pub stats: StatsRegistry,
    /// [`DatabaseConfig::log_min_duration_statement`].
    pub log_min_duration_statement: Option<Duration>,
}

impl DbInner {
    /// Whether `user` is an administrator (every role is, without admin roles).
    pub(crate) fn is_admin(&self, user: &str) -> bool {
        self.require_admin(user, "").is_ok()
    }

    /// Refuses `action` to a role that is not an administrator (42501).
    pub(crate) fn require_admin(&self, user: &str, action: &str) -> Result<()> {
        match &self.admin_roles {
            Some(admins) if !admins.iter().any(|a| a == user) => {
                Err(Error::InsufficientPrivilege(format!(
                    "permission denied: role \"{user}\" may not {action} (administrators: {})",
                    admins.join(", ")
                )))
            }
            _ => Ok(()),
        }
    }

    /// Loads a component through the engine's artifact cache, remembering the outcome.
    /// Its load-time code stops once `cancel` is set.
    pub(crate) fn load_component(
        &self,
        bytes: &[u8],
        cancel: Option<&Arc<AtomicBool>>,
    ) -> Result<Module> {
        let (module, outcome) = self.engine.load_component_cancelable(bytes, cancel)?;
        // The first load in this process is the one that produced the machine code;
        // later ones reuse the in-memory module.
        self.artifacts
            .lock()
            .entry(module.hash())
            .or_insert(outcome);
        Ok(module)
    }
}

impl std::fmt::Debug for DbInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Database({})", self.data_dir.display())
    }
}

impl DatabaseView for DbInner {
    fn function_records(&self) -> Vec<FunctionRecord> {
        self.functions.read().records.values().cloned().collect()
    }

    fn stored_modules(&self) -> Result<Vec<(String, u64)>> {
        self.catalog.modules()
    }

    fn artifact_outcomes(&self) -> HashMap<String, CacheOutcome> {
        self.artifacts.lock().clone()
    }

    fn code_tiers(&self) -> HashMap<String, CodeTier> {
        let registry = self.functions.read();
        registry
            .modules
            .iter()
            .map(|(hash, module)| (hash.clone(), module.code_tier()))
            .collect()
    }

    fn function_stats(&self) -> HashMap<String, StatsSnapshot> {
        self.stats.snapshots()
    }

    fn reset_function_stats(&self) {
        self.stats.reset_all();
    }

    fn activity(&self) -> Vec<ActivityRow> {
        self.backends.activity()
    }

    fn is_admin(&self, user: &str) -> bool {
        DbInner::is_admin(self, user)
    }

    fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    fn spawn_load(
        self: Arc<Self>,
        user: String,
        spec: String,
        scope: Option<QueryScope>,
    ) -> Result<tokio::task::JoinHandle<Result<Vec<FunctionRecord>>>> {
        let db = Database { inner: self };
        let executor = &db.inner.executor;
        let work = {
            let db = db.clone();
            move || {
                let commit_point = || match &scope {
                    Some(s) if !s.pass_commit_point() => {
                        Err(Error::QueryCanceled(CancelReason::UserRequest))
                    }
                    _ => Ok(()),
                };
                let load = ddl::LoadControl {
                    cancel: scope.as_ref().and_then(|s| s.cancel.as_ref()),
                    commit_point: &commit_point,
                };
                ddl::wasm_load(&db, &user, &spec, &load)
            }
        };
        executor.spawn_blocking(work).map_err(Error::from)
    }
}

/// Built-ins a Wasm function may replace. DataFusion ships `gcd`, and `gcd` is also the
/// canonical first Wasm function (the quick start and the bundled `math` example
/// define it); dropping the Wasm `gcd` brings DataFusion's back. Every other built-in
/// is protected.
pub const REPLACEABLE_BUILTINS: &[&str] = &["gcd"];

impl DbInner {
    /// Whether `name` is a built-in a Wasm function may not take.
    pub(crate) fn is_protected_builtin(&self, name: &str) -> bool {
        self.builtins.contains(name) && !REPLACEABLE_BUILTINS.contains(&name)
    }
}

/// A Wasm function as DataFusion sees it: all overloads of one name, of one kind.
#[derive(Clone)]
pub(crate) enum SqlFunction {
    Scalar(Arc<ScalarUDF>),
    Aggregate(Arc<AggregateUDF>),
}

/// The live Wasm functions, mirrored from the catalog.
#[derive(Default)]
pub(crate) struct Registry {
    /// Bumped on every change; sessions re-sync when it moves.
    pub version: u64,
    /// The version at which each name last changed (removed names included): a session
    /// catches up on the names changed since its version, not on every function.
    pub changed_at: HashMap<String, u64>,
    /// Every overload, by catalog key.
    pub records: BTreeMap<String, FunctionRecord>,
    /// One DataFusion function per SQL name.
    pub udfs: HashMap<String, SqlFunction>,
    /// Loaded modules by hash.
    pub modules: HashMap<String, Module>,
}

impl Registry {
    /// Makes `ctx` show each of `names` as the registry has it now: its Wasm function,
    /// or (dropped) nothing, or the built-in it had replaced.
    pub(crate) fn sync_names<'a>(
        &self,
        ctx: &SessionContext,
        names: impl Iterator<Item = &'a str>,
        replaced_builtins: &HashMap<String, ScalarUDF>,
    ) {
        for name in names {
            match self.udfs.get(name) {
                // A name may change kind (dropped, then created as the other kind).
                Some(SqlFunction::Scalar(udf)) => {
                    ctx.deregister_udaf(name);
                    ctx.register_udf(udf.as_ref().clone());
                }
                Some(SqlFunction::Aggregate(udaf)) => {
                    // Also hides a replaceable built-in scalar of the same name.
                    ctx.deregister_udf(name);
                    ctx.register_udaf(udaf.as_ref().clone());
                }
                None => {
                    ctx.deregister_udaf(name);
                    match replaced_builtins.get(name) {
                        Some(builtin) => ctx.register_udf(builtin.clone()),
                        None => ctx.deregister_udf(name),
                    };
                }
            }
        }
    }
}

impl Database {
    /// Opens (creating if needed) the database in `config.data_dir`, restoring every
    /// schema, table and function of its catalog.
    pub async fn open(config: DatabaseConfig) -> Result<Database> {
        let data_dir = config.data_dir.clone();
        std::fs::create_dir_all(&data_dir)
            .map_err(|e| Error::Io(format!("data directory {}: {e}", data_dir.display())))?;
        let data_dir = data_dir
            .canonicalize()
            .map_err(|e| Error::Io(format!("data directory {}: {e}", data_dir.display())))?;
        let catalog = Arc::new(Catalog::open(&data_dir.join("catalog.redb"))?);
        let tables = TableStore::new(data_dir.clone(), &catalog);
        let sequences = Sequences::new(&catalog);
        let mut engine_config = config.engine.clone();
        engine_config.artifact_dir = Some(data_dir.join("artifacts"));
        let engine = Engine::new(engine_config)?;

        let mut session_config = SessionConfig::new()
            .with_information_schema(false)
            .with_default_catalog_and_schema(CATALOG_NAME, DEFAULT_SCHEMA)
            .with_create_default_catalog_and_schema(true)
            .set_str("datafusion.sql_parser.dialect", "PostgreSQL")
            // `1.5` is a numeric, as in PostgreSQL (DataFusion: a float8).
            .set_bool("datafusion.sql_parser.parse_float_as_decimal", true);
        if let Some(p) = config.target_partitions {
            session_config = session_config.with_target_partitions(p.max(1));
        }
        let engine_cfg = engine.config();
        session_config
            .options_mut()
            .extensions
            .insert(WasmSettings::new(engine_cfg.defaults, engine_cfg.ceilings));
        // PostgreSQL's typing rules run first, before DataFusion's type coercion.
        let mut analyzer_rules: Vec<Arc<dyn AnalyzerRule + Send + Sync>> = vec![
            Arc::new(IntegerLiterals),
            Arc::new(UnsignedResults),
            Arc::new(TemporalTextCasts),
            Arc::new(TypeofAtPlanning),
            Arc::new(JsonColumns),
            Arc::new(NumericDivision),
        ];
        analyzer_rules.extend(Analyzer::new().rules);
        let mut state = SessionStateBuilder::new()
            .with_config(session_config)
            .with_default_features()
            .with_analyzer_rules(analyzer_rules)
            .build();
        state.register_expr_planner(Arc::new(JsonOperators))?;
        let template = SessionContext::new_with_state(state);
        // Registered before the built-in list is taken, so no Wasm function takes them;
        // the session information functions last, as they replace the catalog's.
        let admins = config.admin_roles.clone().unwrap_or_default();
        let pg_catalog_db = pg_catalog::setup(&template, &admins)?;
        for f in pg_functions::functions()
            .into_iter()
            .chain(json::functions())
            .chain(byte_lengths::functions())
            .chain(numeric::functions())
            .chain(sequences::functions(&sequences))
        {
            template.register_udf(f);
        }
        for f in session_info::functions("") {
            template.register_udf(f.as_ref().clone());
        }
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        // Threads with room for any Wasm stack up to the ceiling (64MB at most: past
        // that a call gets its own stack segment, see `wasm/instance.rs`) and the plan's own
        // frames. Only address space: pages are touched as the stack grows.
        let executor = Executor::new(
            threads,
            engine_cfg
                .ceilings
                .stack
                .min(64 << 20)
                .saturating_add(4 << 20),
        )
        .map_err(|e| Error::Io(format!("query executor threads: {e}")))?;

        let state = template.state();
        let mut builtins: HashSet<String> = state.scalar_functions().keys().cloned().collect();
        builtins.extend(state.aggregate_functions().keys().cloned());
        builtins.extend(state.window_functions().keys().cloned());
        // Registered later, with the views that need the database.
        builtins.insert("wasm_stats_reset".to_string());
        let replaced_builtins = REPLACEABLE_BUILTINS
            .iter()
            .filter_map(|n| state.scalar_functions().get(*n))
            .map(|u| (u.name().to_string(), u.as_ref().clone()))
            .collect();

        let modules_dir = match config.modules_dir {
            Some(dir) => Some(
                dir.canonicalize()
                    .map_err(|e| Error::Io(format!("modules directory {}: {e}", dir.display())))?,
            ),
            None => None,
        };
        let db = Database {
            inner: Arc::new(DbInner {
                engine,
                catalog,
                tables,
                sequences,
                template,
                data_dir,
                modules_dir,
                functions: RwLock::new(Registry::default()),
                ddl: Mutex::new(()),
                builtins,
                replaced_builtins,
                artifacts: Mutex::new(HashMap::new()),
                executor,
                admin_roles: config.admin_roles.clone(),
                advisory_locks: Arc::new(AdvisoryLocks::default()),
                relation_oids: RelationOids::default(),
                backends: Arc::new(Backends::default()),
                stats: StatsRegistry::default(),
                log_min_duration_statement: config.log_min_duration_statement,
            }),
        };
        // Set once: the catalog's functions read the database they belong to.
        let view: DatabaseHandle = Arc::downgrade(&db.inner) as DatabaseHandle;
        let _ = pg_catalog_db.set(view.clone());
        system::install(&db.inner.template, view)?;
        // Functions first: restored views may call them.
        ddl::restore_functions(&db)?;
        ddl::sweep_artifacts(&db)?;
        tables::restore(&db).await?;
        Ok(db)
    }

    /// A new session (one per client connection) for role `user`.
    pub fn session(&self, user: &str) -> Session {
        // The template holds every Wasm function (kept in step under the registry's
        // lock): a new session copies them at the version it then starts from, so a
        // login costs a map copy, not a registration per function.
        let (mut state, synced) = {
            let registry = self.inner.functions.read();
            (self.inner.template.state(), registry.version)
        };
        if let Some(settings) = state
            .config_mut()
            .options_mut()
            .extensions
            .get_mut::<WasmSettings>()
        {
            settings.user = user.to_string();
        }
        let ctx = SessionContext::new_with_state(state);
        for f in session_info::functions(user) {
            ctx.register_udf(f.as_ref().clone());
        }
        Session::new(self.clone(), ctx, user, synced)
    }

    /// The Wasm engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The data directory (canonical).
    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    /// The modules directory, if file paths are allowed.
    pub fn modules_dir(&self) -> Option<&Path> {
        self.inner.modules_dir.as_deref()
    }
}
