//! The SQL entry point: a data directory with its catalog, and sessions that run
//! statements against it (DDL for Wasm functions and persistent tables included).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::{DataType, SchemaRef, UInt64Type};
use datafusion::catalog::CatalogProvider;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::{
    AggregateUDF, DdlStatement, DmlStatement, Expr, LogicalPlan, ScalarUDF, WriteOp,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::{DFParser, ResetStatement, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::{ObjectType, Statement as SqlStatement};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use futures::StreamExt;
use parking_lot::{Mutex, RwLock};

use crate::cache::CacheOutcome;
use crate::catalog::{Catalog, FunctionRecord};
use crate::copy::{self, CopyFormat, CopyIn, CopyRequest};
use crate::error::{Error, Result};
use crate::exec::Executor;
use crate::query::{CancelHandle, CancelReason, Query};
use crate::runtime::{Engine, EngineConfig, Module};
use crate::settings::WasmSettings;
use crate::timeout::{self, TimeoutStatement};
use crate::{column_names, pg_catalog, session_info};
use crate::{ddl, system, tables};
use datafusion::common::config::ExtensionOptions;

/// Name of the catalog (database) every schema lives in.
pub const CATALOG_NAME: &str = "wasmudf";
/// The default schema.
pub const DEFAULT_SCHEMA: &str = "public";

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
    pub catalog: Catalog,
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
}

impl DbInner {
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
    pub(crate) fn load_component(&self, bytes: &[u8]) -> Result<Module> {
        let (module, outcome) = self.engine.load_component_traced(bytes)?;
        // The first load in this process is the one that produced the machine code;
        // later ones reuse the in-memory module.
        self.artifacts
            .lock()
            .entry(module.hash())
            .or_insert(outcome);
        Ok(module)
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
    /// Every overload, by catalog key.
    pub records: BTreeMap<String, FunctionRecord>,
    /// One DataFusion function per SQL name.
    pub udfs: HashMap<String, SqlFunction>,
    /// Loaded modules by hash.
    pub modules: HashMap<String, Module>,
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
        let catalog = Catalog::open(&data_dir.join("catalog.redb"))?;
        let mut engine_config = config.engine.clone();
        engine_config.artifact_dir = Some(data_dir.join("artifacts"));
        let engine = Engine::new(engine_config)?;

        let mut session_config = SessionConfig::new()
            .with_information_schema(false)
            .with_default_catalog_and_schema(CATALOG_NAME, DEFAULT_SCHEMA)
            .with_create_default_catalog_and_schema(true)
            .set_str("datafusion.sql_parser.dialect", "PostgreSQL");
        if let Some(p) = config.target_partitions {
            session_config = session_config.with_target_partitions(p.max(1));
        }
        let engine_cfg = engine.config();
        session_config
            .options_mut()
            .extensions
            .insert(WasmSettings::new(engine_cfg.defaults, engine_cfg.ceilings));
        let template = SessionContext::new_with_config(session_config);
        // Registered before the built-in list is taken, so no Wasm function takes them;
        // the session information functions last, as they replace the catalog's.
        let admins = config.admin_roles.clone().unwrap_or_default();
        let pg_catalog_db = pg_catalog::setup(&template, &admins)?;
        for f in session_info::functions("") {
            template.register_udf(f.as_ref().clone());
        }
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        // Threads with room for any Wasm stack up to the ceiling (64MB at most: past
        // that a call gets its own stack segment, see `instance.rs`) and the plan's own
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
            }),
        };
        // Set once: the catalog's functions read the database they belong to.
        let _ = pg_catalog_db.set(Arc::downgrade(&db.inner));
        system::install(&db)?;
        // Functions first: restored views may call them.
        ddl::restore_functions(&db)?;
        tables::restore(&db).await?;
        Ok(db)
    }

    /// A new session (one per client connection) for role `user`.
    pub fn session(&self, user: &str) -> Session {
        let mut state = self.inner.template.state();
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
        Session {
            db: self.clone(),
            ctx,
            user: user.to_string(),
            synced: AtomicU64::new(u64::MAX),
            registered: Mutex::new(HashSet::new()),
            running: Mutex::new(None),
            statement_timeout: Mutex::new(None),
        }
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

/// What a statement produced.
#[non_exhaustive]
pub enum Output {
    /// A result set (SELECT, SHOW, EXPLAIN, ...), streamed batch by batch.
    Rows(SendableRecordBatchStream),
    /// A command's completion tag as PostgreSQL spells it: `CREATE FUNCTION`,
    /// `INSERT 0 3`, `SELECT 5` (for CREATE TABLE AS), `SET`.
    Command(String),
    /// `COPY ... FROM STDIN`: the client now sends the data, which goes to
    /// [`Session::copy_in`].
    CopyIn(CopyIn),
    /// `COPY ... TO STDOUT`: rows for the client, rendered by [`copy_lines`].
    CopyOut {
        /// The data format the statement asked for.
        format: CopyFormat,
        /// The rows.
        rows: SendableRecordBatchStream,
    },
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Output::Rows(s) => write!(f, "Rows({:?})", s.schema()),
            Output::Command(t) => write!(f, "Command({t})"),
            Output::CopyIn(c) => write!(f, "CopyIn({})", c.table),
            Output::CopyOut { format, .. } => write!(f, "CopyOut({format:?})"),
        }
    }
}

/// Collects a result stream into batches.
pub async fn collect(
    stream: SendableRecordBatchStream,
) -> DfResult<Vec<datafusion::arrow::record_batch::RecordBatch>> {
    datafusion::physical_plan::common::collect(stream).await
}

/// One parsed statement, ready to [`Session::run`].
#[derive(Debug, Clone)]
pub struct Statement {
    pub(crate) sql: DfStatement,
    /// Written `DROP AGGREGATE` (parsed as `DROP FUNCTION`, which sqlparser knows).
    pub(crate) drop_aggregate: bool,
    /// The result's column names as PostgreSQL gives them, when the text tells them.
    pub(crate) column_names: Option<Vec<String>>,
}

impl Statement {
    fn new(sql: DfStatement) -> Self {
        Statement {
            column_names: column_names::pg_column_names(&sql),
            sql,
            drop_aggregate: false,
        }
    }
}

impl std::fmt::Display for Statement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.sql.fmt(f)
    }
}

/// One client's session: its own settings over the shared database.
pub struct Session {
    pub(crate) db: Database,
    pub(crate) ctx: SessionContext,
    pub(crate) user: String,
    synced: AtomicU64,
    registered: Mutex<HashSet<String>>,
    running: Mutex<Option<CancelHandle>>,
    /// `SET statement_timeout`: each statement is canceled after this long.
    statement_timeout: Mutex<Option<std::time::Duration>>,
}

/// Cancels the query in progress when dropped (the statement future or its result
/// stream was dropped: client gone, statement abandoned), so no guest call outlives it.
struct CancelOnDrop {
    handle: CancelHandle,
    /// The `statement_timeout` timer, stopped with the statement.
    timer: Option<tokio::task::AbortHandle>,
    /// The execution on the executor, stopped with the statement.
    producer: Option<tokio::task::AbortHandle>,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        for task in [&self.timer, &self.producer].into_iter().flatten() {
            task.abort();
        }
        self.handle.cancel();
    }
}

/// `out` with its columns named as PostgreSQL names them (see [`column_names`]).
fn with_pg_names(out: Output, names: Option<&[String]>) -> Output {
    let Output::Rows(stream) = out else {
        return out;
    };
    let Some(schema) = names.and_then(|n| column_names::renamed(&stream.schema(), n)) else {
        return Output::Rows(stream);
    };
    // Each batch keeps its own fields (nullability included) under the new names, so
    // renaming can never reject a batch DataFusion produced.
    let names = names.map(<[String]>::to_vec).unwrap_or_default();
    let batches = stream.map(move |batch| {
        batch.and_then(|b| match column_names::renamed(&b.schema(), &names) {
            Some(renamed) => Ok(datafusion::arrow::record_batch::RecordBatch::try_new(
                renamed,
                b.columns().to_vec(),
            )?),
            None => Ok(b),
        })
    });
    Output::Rows(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
}

/// `statements` with the tools' catalog queries (those that read `pg_catalog`) put
/// through the PostgreSQL compatibility rewriter; every other statement as parsed.
fn catalog_queries_rewritten(sql: &str, statements: VecDeque<DfStatement>) -> Vec<DfStatement> {
    let reads_catalog =
        |s: &DfStatement| matches!(s, DfStatement::Statement(s) if pg_catalog::reads_catalog(s));
    if !statements.iter().any(reads_catalog) {
        return statements.into();
    }
    // The whole text first: some known client queries are swapped as token runs.
    if statements
        .iter()
        .all(|s| matches!(s, DfStatement::Statement(_)))
    {
        if let Some(rewritten) = pg_catalog::parse_catalog_query(sql) {
            if rewritten.len() == statements.len() {
                // Only the catalog statements take the rewritten form: the crate's rules
                // (a correlated subquery in a projection becomes NULL, ...) are for tools'
                // queries, never for the user's own statements beside them.
                return statements
                    .into_iter()
                    .zip(rewritten)
                    .map(|(original, rewritten)| {
                        if reads_catalog(&original) {
                            DfStatement::Statement(Box::new(rewritten))
                        } else {
                            original
                        }
                    })
                    .collect();
            }
        }
    }
    statements
        .into_iter()
        .map(|s| match s {
            DfStatement::Statement(s) if pg_catalog::reads_catalog(&s) => {
                DfStatement::Statement(Box::new(pg_catalog::rewrite_catalog_statement(*s)))
            }
            other => other,
        })
        .collect()
}

/// The error a canceled statement ends with, whatever the interrupted code returned.
fn canceled_error(handle: &CancelHandle) -> DataFusionError {
    let reason = handle.reason().unwrap_or(CancelReason::UserRequest);
    Error::QueryCanceled(reason).into()
}

impl Session {
    /// Splits `sql` into statements (PostgreSQL dialect).
    pub fn parse(&self, sql: &str) -> DfResult<Vec<Statement>> {
        let (sql, drop_aggregates) = ddl::rewrite_drop_aggregate(sql);
        let mut statements = self.parse_rewritten(&sql)?;
        for i in drop_aggregates {
            if let Some(s) = statements.get_mut(i) {
                s.drop_aggregate = true;
            }
        }
        Ok(statements)
    }

    fn parse_rewritten(&self, sql: &str) -> DfResult<Vec<Statement>> {
        match DFParser::parse_sql_with_dialect(sql, &PostgreSqlDialect {}) {
            Ok(statements) => Ok(catalog_queries_rewritten(sql, statements)
                .into_iter()
                .map(Statement::new)
                .collect()),
            // DataFusion's parser reads only its own `COPY ... TO 'file'`; PostgreSQL's
            // `COPY t FROM STDIN` / `COPY ... TO STDOUT` come from sqlparser's.
            Err(e) => match Parser::parse_sql(&PostgreSqlDialect {}, sql) {
                Ok(statements)
                    if statements
                        .iter()
                        .any(|s| matches!(s, SqlStatement::Copy { .. })) =>
                {
                    Ok(statements
                        .into_iter()
                        .map(|s| Statement::new(DfStatement::Statement(Box::new(s))))
                        .collect())
                }
                _ => Err(e),
            },
        }
    }

    /// Appends the data a client sent for a `COPY ... FROM STDIN` (in its text or CSV
    /// format) to the table, all or nothing; returns the rows added.
    pub async fn copy_in(&self, copy: &CopyIn, data: &[u8]) -> DfResult<u64> {
        let batch = copy::parse(copy, data)?;
        let rows = batch.num_rows() as u64;
        if rows == 0 {
            return Ok(0);
        }
        let written = self
            .ctx
            .read_batch(batch)?
            .write_table(&copy.table, DataFrameWriteOptions::new())
            .await?;
        let counted = count_rows(&written);
        Ok(if counted > 0 { counted } else { rows })
    }

    /// Parses and runs every statement of `sql`, stopping at the first error.
    pub async fn execute(&self, sql: &str) -> DfResult<Vec<Output>> {
        let mut out = Vec::new();
        for statement in self.parse(sql)? {
            out.push(self.run(statement).await?);
        }
        Ok(out)
    }

    /// The role this session runs as.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// This session's DataFusion context (its settings and, after each statement,
    /// the current set of Wasm functions).
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Cancels whatever statement this session is running (a PostgreSQL
    /// CancelRequest): a Wasm call in progress stops within one epoch tick.
    pub fn cancel_current(&self) {
        if let Some(h) = self.running.lock().as_ref() {
            h.cancel();
        }
    }

    /// Brings this session's function registry up to date with the database's.
    pub(crate) fn sync_functions(&self) {
        let registry = self.db.inner.functions.read();
        if self.synced.load(Ordering::Acquire) == registry.version {
            return;
        }
        let mut registered = self.registered.lock();
        let restore_scalar = |name: &str| match self.db.inner.replaced_builtins.get(name) {
            Some(builtin) => self.ctx.register_udf(builtin.clone()),
            None => self.ctx.deregister_udf(name),
        };
        for name in registered.iter() {
            if !registry.udfs.contains_key(name) {
                self.ctx.deregister_udaf(name);
                restore_scalar(name);
            }
        }
        // A name may have changed kind (dropped, then created as the other kind).
        for (name, f) in &registry.udfs {
            match f {
                SqlFunction::Scalar(udf) => {
                    self.ctx.deregister_udaf(name);
                    self.ctx.register_udf(udf.as_ref().clone());
                }
                SqlFunction::Aggregate(udaf) => {
                    // Also hides a replaceable built-in scalar of the same name.
                    self.ctx.deregister_udf(name);
                    self.ctx.register_udaf(udaf.as_ref().clone());
                }
            }
        }
        *registered = registry.udfs.keys().cloned().collect();
        self.synced.store(registry.version, Ordering::Release);
    }

    /// Runs one statement.
    pub async fn run(&self, statement: Statement) -> DfResult<Output> {
        self.run_with_params(statement, Vec::new()).await
    }

    /// Runs one statement with values for its `$1 .. $n` placeholders (the extended
    /// protocol's Bind). Only queries and DML take parameters.
    pub async fn run_with_params(
        &self,
        statement: Statement,
        params: Vec<ScalarValue>,
    ) -> DfResult<Output> {
        self.sync_functions();
        if let Some(setting) = timeout::recognize(&statement.sql) {
            if !params.is_empty() {
                return Err(Error::Protocol("SET and SHOW take no parameters".into()).into());
            }
            return match setting? {
                TimeoutStatement::Set(value) => {
                    *self.statement_timeout.lock() = value;
                    Ok(command(if matches!(statement.sql, DfStatement::Reset(_)) {
                        "RESET"
                    } else {
                        "SET"
                    }))
                }
                TimeoutStatement::Show => timeout::show_output(*self.statement_timeout.lock()),
            };
        }
        if let Some(name) = timeout::shown_wasm_setting(&statement.sql) {
            // PostgreSQL's SHOW: one column named after the setting (DataFusion's has
            // name and value).
            let entries = self
                .ctx
                .state()
                .config_options()
                .extensions
                .get::<WasmSettings>()
                .map(|w| w.entries())
                .unwrap_or_default();
            let value = entries
                .into_iter()
                .find(|e| e.key == name)
                .and_then(|e| e.value)
                .ok_or_else(|| {
                    Error::InvalidLimit(format!("unrecognized configuration parameter \"{name}\""))
                })?;
            return timeout::setting_output(&name, value);
        }
        let out = if returns_plan(&statement.sql) {
            let names = statement.column_names;
            self.run_query(statement.sql, params)
                .await
                .map(|out| with_pg_names(out, names.as_deref()))
        } else if !params.is_empty() {
            Err(Error::Protocol(format!(
                "{} parameters given to a statement that takes none",
                params.len()
            ))
            .into())
        } else {
            self.dispatch(statement.sql, statement.drop_aggregate).await
        };
        // DDL changes functions: make them visible to this session's next statement.
        self.sync_functions();
        out
    }

    /// What `statement` takes and returns, planned against the current catalog but
    /// not run (the extended protocol's Describe).
    pub async fn describe(&self, statement: &Statement) -> DfResult<Description> {
        if let Some(name) = timeout::shown_wasm_setting(&statement.sql) {
            return Ok(Description {
                parameters: Vec::new(),
                columns: Some(timeout::setting_schema(&name)),
            });
        }
        if let Some(setting) = timeout::recognize(&statement.sql) {
            return Ok(Description {
                parameters: Vec::new(),
                columns: matches!(setting?, TimeoutStatement::Show).then(timeout::schema),
            });
        }
        if !returns_plan(&statement.sql) {
            return Ok(Description {
                parameters: Vec::new(),
                columns: None,
            });
        }
        self.sync_functions();
        let plan = self
            .ctx
            .state()
            .statement_to_plan(statement.sql.clone())
            .await?;
        let mut types = plan.get_parameter_types()?;
        for (id, hint) in placeholder_hints(&plan)? {
            if let Some(slot @ None) = types.get_mut(&id) {
                *slot = Some(hint);
            }
        }
        let mut parameters = Vec::new();
        for (name, ty) in types {
            let index: usize = name
                .trim_start_matches('$')
                .parse()
                .map_err(|_| Error::Protocol(format!("unsupported placeholder {name}")))?;
            if index == 0 {
                return Err(Error::Protocol("placeholders are numbered from $1".into()).into());
            }
            if parameters.len() < index {
                parameters.resize(index, None);
            }
            parameters[index - 1] = ty;
        }
        // The columns are those of the plan as it will run: the analyzer's type coercion
        // can change a column's type (an Int32 CASE that runs as Int64), and a client
        // decodes binary rows by what Describe announced. (Only the analyzer: the
        // optimizer would fold constant calls, running Wasm functions outside any
        // statement's cancel and timeout.)
        let columns = if matches!(plan, LogicalPlan::Dml(_)) {
            None
        } else {
            let state = self.ctx.state();
            let analyzed =
                state
                    .analyzer()
                    .execute_and_check(plan.clone(), state.config_options(), |_, _| {});
            let schema = Arc::new(match analyzed {
                Ok(analyzed) => analyzed.schema().as_arrow().clone(),
                Err(_) => plan.schema().as_arrow().clone(),
            });
            Some(
                statement
                    .column_names
                    .as_deref()
                    .and_then(|names| column_names::renamed(&schema, names))
                    .unwrap_or(schema),
            )
        };
        Ok(Description {
            parameters,
            columns,
        })
    }

    async fn dispatch(&self, statement: DfStatement, drop_aggregate: bool) -> DfResult<Output> {
        let sql =
            match &statement {
                DfStatement::Statement(s) => s.as_ref(),
                DfStatement::CreateExternalTable(_) => {
                    self.db.inner.require_admin(
                        &self.user,
                        "define external tables (they read server files)",
                    )?;
                    return tables::create_by_statement(self, statement, "CREATE TABLE").await;
                }
                DfStatement::Reset(ResetStatement::Variable(name))
                    if name.to_string().to_lowercase().starts_with("wasm.") =>
                {
                    // DataFusion's RESET only knows its own namespaces.
                    let key = name.to_string().to_lowercase();
                    self.ctx
                        .state_ref()
                        .write()
                        .config_mut()
                        .options_mut()
                        .set(&key, "default")?;
                    return Ok(command("RESET"));
                }
                DfStatement::Reset(_) => return self.run_on_session(statement, "RESET").await,
                DfStatement::CopyTo(_) => return Err(Error::InsufficientPrivilege(
                    "COPY to a server file is not allowed; use COPY ... TO STDOUT from a client"
                        .into(),
                )
                .into()),
                DfStatement::Explain(_) => return self.run_query(statement, Vec::new()).await,
            };
        match sql {
            SqlStatement::CreateFunction(cf) => {
                self.db.inner.require_admin(&self.user, "create functions")?;
                Ok(command(ddl::create_function(self, cf)?))
            }
            SqlStatement::DropFunction(df) => {
                self.db.inner.require_admin(&self.user, "drop functions")?;
                Ok(command(ddl::drop_function(self, df, drop_aggregate)?))
            }
            SqlStatement::CreateTable(_) => tables::create_table(self, statement).await,
            SqlStatement::CreateView(_) => {
                tables::create_by_statement(self, statement, "CREATE VIEW").await
            }
            SqlStatement::CreateSchema { .. } => tables::create_schema(self, statement).await,
            SqlStatement::Drop {
                object_type: ObjectType::Table | ObjectType::View,
                ..
            } => Ok(command(tables::drop_relations(self, sql)?)),
            SqlStatement::Drop {
                object_type: ObjectType::Schema,
                ..
            } => Ok(command(tables::drop_schemas(self, sql)?)),
            SqlStatement::Copy {
                source,
                to,
                target,
                options,
                legacy_options,
                ..
            } => match copy::request(source, *to, target, options, legacy_options)? {
                CopyRequest::In {
                    table,
                    columns,
                    format,
                } => Ok(Output::CopyIn(self.copy_target(&table, &columns, format).await?)),
                CopyRequest::Out { query, format } => {
                    let mut statements = self.parse(&query)?;
                    let query = statements
                        .pop()
                        .ok_or_else(|| Error::Syntax("COPY needs a query".into()))?;
                    // The header names the columns as a query's result would.
                    let names = query.column_names;
                    let output = self.run_query(query.sql, Vec::new()).await?;
                    match with_pg_names(output, names.as_deref()) {
                        Output::Rows(rows) => Ok(Output::CopyOut { format, rows }),
                        _ => Err(Error::Syntax("COPY (...) TO needs a query that returns rows".into()).into()),
                    }
                }
            },
            SqlStatement::Set(_) => self.run_on_session(statement, "SET").await,
            SqlStatement::StartTransaction { .. } => Ok(command("BEGIN")),
            SqlStatement::Commit { .. } => Ok(command("COMMIT")),
            SqlStatement::Rollback { .. } => Ok(command("ROLLBACK")),
            SqlStatement::CreateDatabase { .. } => Err(Error::NotSupported(
                "CREATE DATABASE is not supported: a wasmudf server has one database; use CREATE SCHEMA".into(),
            )
            .into()),
            _ => self.run_query(statement, Vec::new()).await,
        }
    }

    /// The table (and columns) a `COPY ... FROM STDIN` fills.
    async fn copy_target(
        &self,
        table: &str,
        columns: &[String],
        format: CopyFormat,
    ) -> DfResult<CopyIn> {
        let provider = self.ctx.table_provider(table).await.map_err(|_| {
            DataFusionError::from(Error::UndefinedRelation(format!(
                "relation \"{table}\" does not exist"
            )))
        })?;
        let table_schema = provider.schema();
        let columns = if columns.is_empty() {
            (0..table_schema.fields().len()).collect()
        } else {
            columns
                .iter()
                .map(|c| {
                    table_schema.index_of(c).map_err(|_| {
                        DataFusionError::from(Error::UndefinedColumn(format!(
                            "column \"{c}\" of relation \"{table}\" does not exist"
                        )))
                    })
                })
                .collect::<DfResult<Vec<_>>>()?
        };
        Ok(CopyIn {
            table: table.to_string(),
            table_schema,
            columns,
            format,
        })
    }

    /// Statements that change this session's own settings run on its context, not on
    /// a per-query copy.
    async fn run_on_session(&self, statement: DfStatement, tag: &str) -> DfResult<Output> {
        let plan = self.ctx.state().statement_to_plan(statement).await?;
        self.ctx.execute_logical_plan(plan).await?.collect().await?;
        Ok(command(tag))
    }

    /// Plans and starts a query or DML statement in its own query scope.
    pub(crate) async fn run_query(
        &self,
        statement: DfStatement,
        params: Vec<ScalarValue>,
    ) -> DfResult<Output> {
        let query = self.db.inner.engine.query(&self.ctx);
        let state = query.session().state();
        let mut plan = state.statement_to_plan(statement).await?;
        if !params.is_empty() || !plan.get_parameter_types()?.is_empty() {
            plan = plan.with_param_values(ParamValues::List(
                params.into_iter().map(Into::into).collect(),
            ))?;
        }
        match &plan {
            LogicalPlan::Ddl(DdlStatement::CreateCatalog(_)) => {
                return Err(Error::NotSupported(
                    "CREATE DATABASE is not supported: a wasmudf server has one database".into(),
                )
                .into())
            }
            LogicalPlan::Ddl(_) => {
                return Err(Error::NotSupported(format!(
                    "statement not supported here: {}",
                    plan.display()
                ))
                .into())
            }
            LogicalPlan::Copy(_) => {
                return Err(Error::InsufficientPrivilege(
                    "COPY to a server file is not allowed; use COPY ... TO STDOUT from a client"
                        .into(),
                )
                .into())
            }
            _ => {}
        }
        self.execute_in(query, plan).await
    }

    /// Runs a plan built by the engine itself (the fill of CREATE TABLE AS) like a
    /// query: on the executor, cancelable, under `statement_timeout`.
    pub(crate) async fn execute_plan(&self, plan: LogicalPlan) -> DfResult<Output> {
        let query = self.db.inner.engine.query(&self.ctx);
        self.execute_in(query, plan).await
    }

    /// Executes `plan` in `query`'s scope on the database's executor: rows stream
    /// back (an INSERT is drained to its tag), each batch racing cancellation.
    async fn execute_in(&self, query: Query, plan: LogicalPlan) -> DfResult<Output> {
        let insert = matches!(
            &plan,
            LogicalPlan::Dml(DmlStatement {
                op: WriteOp::Insert(_),
                ..
            })
        );
        let handle = query.cancel_handle();
        *self.running.lock() = Some(handle.clone());
        let timer = (*self.statement_timeout.lock()).map(|limit| {
            let handle = handle.clone();
            tokio::spawn(async move {
                tokio::time::sleep(limit).await;
                handle.cancel_for(CancelReason::StatementTimeout);
            })
            .abort_handle()
        });
        let mut guard = CancelOnDrop {
            handle: handle.clone(),
            timer,
            producer: None,
        };
        let canceled = |e: DataFusionError| {
            if handle.is_canceled() {
                canceled_error(&handle)
            } else {
                e
            }
        };
        let df = query
            .session()
            .execute_logical_plan(plan)
            .await
            .map_err(canceled)?;
        let task_ctx = Arc::new(df.task_ctx());
        let physical = df.create_physical_plan().await.map_err(canceled)?;
        let schema = physical.schema();
        let (batches, producer) = self.db.inner.executor.execute(physical, task_ctx)?;
        guard.producer = Some(producer);
        // Each batch races the cancel signal: a canceled query ends with 57014 at once,
        // whatever the executor is busy with.
        let stream =
            futures::stream::unfold((Some(batches), guard), |(batches, guard)| async move {
                let mut batches = batches?;
                let handle = guard.handle.clone();
                tokio::select! {
                    biased;
                    _ = handle.canceled() => {
                        Some((Err(canceled_error(&handle)), (None, guard)))
                    }
                    next = batches.recv() => match next {
                        None => None,
                        Some(Err(_)) if handle.is_canceled() => {
                            Some((Err(canceled_error(&handle)), (None, guard)))
                        }
                        Some(item) => Some((item, (Some(batches), guard))),
                    },
                }
            });
        if insert {
            let batches: Vec<_> = stream.collect().await;
            let batches = batches.into_iter().collect::<DfResult<Vec<_>>>()?;
            return Ok(command(format!("INSERT 0 {}", count_rows(&batches))));
        }
        Ok(Output::Rows(Box::pin(RecordBatchStreamAdapter::new(
            schema, stream,
        ))))
    }
}

/// Whether a statement is planned by DataFusion (queries, DML, EXPLAIN, SHOW) rather
/// than handled by the engine's own DDL; only those take parameters and return rows.
fn returns_plan(statement: &DfStatement) -> bool {
    match statement {
        DfStatement::Explain(_) => true,
        DfStatement::Statement(s) => !matches!(
            s.as_ref(),
            SqlStatement::CreateFunction(_)
                | SqlStatement::DropFunction(_)
                | SqlStatement::CreateTable(_)
                | SqlStatement::CreateView(_)
                | SqlStatement::CreateSchema { .. }
                | SqlStatement::Drop {
                    object_type: ObjectType::Table | ObjectType::View | ObjectType::Schema,
                    ..
                }
                | SqlStatement::Set(_)
                | SqlStatement::StartTransaction { .. }
                | SqlStatement::Commit { .. }
                | SqlStatement::Rollback { .. }
                | SqlStatement::CreateDatabase { .. }
                | SqlStatement::Copy { .. }
        ),
        _ => false,
    }
}

/// Placeholder types implied by the Wasm functions they are passed to.
fn placeholder_hints(plan: &LogicalPlan) -> DfResult<HashMap<String, DataType>> {
    let mut hints = HashMap::new();
    plan.apply_with_subqueries(|node| {
        node.apply_expressions(|e| {
            e.apply(|e| {
                if let Expr::ScalarFunction(f) = e {
                    for (i, arg) in f.args.iter().enumerate() {
                        if let Expr::Placeholder(p) = arg {
                            if let Some(t) = crate::udf::placeholder_hint(&f.func, f.args.len(), i)
                            {
                                hints.entry(p.id.clone()).or_insert(t);
                            }
                        }
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    })?;
    Ok(hints)
}

/// What a statement takes and returns: [`Session::describe`].
#[derive(Debug, Clone)]
pub struct Description {
    /// The type of each placeholder `$1 .. $n`; `None` where the statement does not
    /// determine it (`SELECT $1`), which a client then chooses.
    pub parameters: Vec<Option<DataType>>,
    /// The columns of the rows it returns; `None` for a statement that returns a
    /// command tag (DDL, DML, SET).
    pub columns: Option<SchemaRef>,
}

/// The row count DataFusion reports for DML (`count` column), summed.
pub(crate) fn count_rows(batches: &[datafusion::arrow::record_batch::RecordBatch]) -> u64 {
    batches
        .iter()
        .filter_map(|b| b.columns().first())
        .filter_map(|c| c.as_primitive_opt::<UInt64Type>())
        .map(|c| c.iter().flatten().sum::<u64>())
        .sum()
}

pub(crate) fn command(tag: impl Into<String>) -> Output {
    Output::Command(tag.into())
}

/// The default catalog of a session.
pub(crate) fn default_catalog(ctx: &SessionContext) -> DfResult<Arc<dyn CatalogProvider>> {
    ctx.catalog(CATALOG_NAME)
        .ok_or_else(|| DataFusionError::Internal("default catalog missing".into()))
}
