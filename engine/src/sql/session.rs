//! One client's session: its settings over the shared database, and the statements
//! it runs (each in its own query scope, on the database's executor, cancelable and
//! under `statement_timeout`).

use datafusion::arrow::datatypes::{DataType, Field, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::config::ExtensionOptions;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{FunctionRegistry, SendableRecordBatchStream};
use datafusion::logical_expr::Statement as PlanStatement;
use datafusion::logical_expr::{
    Cast, DdlStatement, DmlStatement, Expr, ExprSchemable, LogicalPlan, TryCast, WriteOp,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    DataType as SqlDataType, Expr as SqlExpr, Ident, Statement as SqlStatement,
};
use futures::StreamExt;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;
use tracing::Instrument;

use crate::error::{CancelReason, Error};
use crate::introspection::settings::SettingsOfSession;
use crate::introspection::system::WASM_LOAD_EXEC;
use crate::pg::column_names;
use crate::pg::copy::{self, CopyFormat, CopyIn, CopyRequest};
use crate::pg::text::TextFormat;
use crate::sql::advisory::{self, AdvisoryLocks, SessionLocks};
use crate::sql::backends::{self, SessionActivity};
use crate::sql::column_origins::with_column_origins;
use crate::sql::database::Database;
use crate::sql::monitor::{self, StatementMonitor};
use crate::sql::output::{command, count_rows, with_pg_names, CommandTag, Description, Output};
use crate::sql::parameters::{self, Parameters, SharedParameters};
use crate::sql::returning::{take_returning, Returning};
use crate::sql::statement::{self, Command, Family, ParameterStatement, Statement};
use crate::sql::transaction::{FailedMark, TransactionState};
use crate::sql::{ddl, sequences, tables};
use crate::store::transaction::{Transaction, TransactionOfSession};
use crate::store::written::WrittenRows;
use crate::udf::explain;
use crate::udf::query::{CancelHandle, Query};
use crate::udf::settings::WasmSettings;

/// One client's session: its own settings over the shared database.
pub struct Session {
    pub(crate) db: Database,
    pub(crate) ctx: SessionContext,
    pub(crate) user: String,
    synced: AtomicU64,
    running: Arc<Mutex<Option<CancelHandle>>>,
    /// This session among the database's (advisory locks are held by it).
    id: u64,
    /// The process id its client was told (`pg_backend_pid()`).
    backend_pid: Arc<AtomicI32>,
    /// PostgreSQL's session parameters (TimeZone, statement_timeout, ...).
    parameters: SharedParameters,
    /// The parameters' version last mirrored into DataFusion's config.
    applied: AtomicU64,
    /// Open cursors (`DECLARE`), by name.
    cursors: Mutex<HashMap<String, Cursor>>,
    /// Statements prepared with SQL PREPARE, by name.
    prepared: Mutex<HashMap<String, PreparedSql>>,
    /// Set when a statement fails inside a transaction block (25P02 until it ends).
    failed: FailedMark,
    /// What `pg_stat_activity` shows of this session.
    activity: Arc<SessionActivity>,
    /// The table changes of its open transaction block.
    transaction: Arc<Transaction>,
}

/// A statement prepared with SQL PREPARE.
#[derive(Clone)]
struct PreparedSql {
    statement: Statement,
    /// The declared parameter types.
    types: Vec<SqlDataType>,
}

/// An open cursor: its query's rows, read as FETCH asks.
struct Cursor {
    schema: SchemaRef,
    /// The rows not fetched yet: a batch partly read, then the rest of the stream.
    pending: Option<RecordBatch>,
    /// `None` while a FETCH has it out, or once exhausted.
    stream: Option<SendableRecordBatchStream>,
    /// `WITH HOLD`: outlives the transaction.
    hold: bool,
}

impl Drop for Session {
    fn drop(&mut self) {
        // A session that ends rolls its transaction back.
        self.transaction.rollback();
        // A session's advisory locks end with it, as a PostgreSQL backend's do.
        self.db.inner.advisory_locks.release_all(self.id);
        self.db.inner.backends.remove(self.id);
    }
}

/// Cancels the query in progress when dropped (the statement future or its result
/// stream was dropped: client gone, statement abandoned), so no guest call outlives it.
struct CancelOnDrop {
    handle: CancelHandle,
    /// The `statement_timeout` timer, stopped with the statement.
    timer: Option<tokio::task::AbortHandle>,
    /// The execution on the executor, stopped with the statement.
    producer: Option<tokio::task::AbortHandle>,
    /// Outside a transaction block the statement is its own transaction: its
    /// transaction-level advisory locks (this session's) end with it.
    implicit_transaction: Option<(Arc<AdvisoryLocks>, u64)>,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        for task in [&self.timer, &self.producer].into_iter().flatten() {
            task.abort();
        }
        self.handle.cancel();
        if let Some((locks, session)) = &self.implicit_transaction {
            locks.release_transaction_locks(*session);
        }
    }
}

/// The error a canceled statement ends with, whatever the interrupted code returned.
fn canceled_error(handle: &CancelHandle) -> DataFusionError {
    let reason = handle.reason().unwrap_or(CancelReason::UserRequest);
    Error::QueryCanceled(reason).into()
}

impl Session {
    /// A new session of `db` for role `user`, planning in `ctx`.
    /// `ctx` already shows the database's functions as of registry version `synced`.
    pub(crate) fn new(db: Database, ctx: SessionContext, user: &str, synced: u64) -> Self {
        let superuser = db.inner.is_admin(user);
        let parameters = Arc::new(Mutex::new(Parameters::new(user, superuser)));
        for f in parameters::functions(&parameters) {
            ctx.register_udf(f);
        }
        ctx.state_ref()
            .write()
            .config_mut()
            .set_extension(Arc::new(SettingsOfSession(Arc::new(
                parameters::SettingsView(parameters.clone()),
            ))));
        let transaction = Arc::new(Transaction::default());
        ctx.state_ref()
            .write()
            .config_mut()
            .set_extension(Arc::new(TransactionOfSession(transaction.clone())));
        static SESSIONS: AtomicU64 = AtomicU64::new(1);
        let id = SESSIONS.fetch_add(1, Ordering::Relaxed);
        let running = Arc::new(Mutex::new(None));
        // Without a wire connection, a session is named by its own number.
        let backend_pid = Arc::new(AtomicI32::new((id % i32::MAX as u64) as i32));
        let locks = SessionLocks {
            locks: db.inner.advisory_locks.clone(),
            session: id,
            running: running.clone(),
            backend_pid: backend_pid.clone(),
        };
        for f in advisory::functions(&locks) {
            ctx.register_udf(f);
        }
        for f in backends::functions(&db.inner.backends, user, superuser) {
            ctx.register_udf(f);
        }
        ctx.state_ref()
            .write()
            .config_mut()
            .options_mut()
            .extensions
            .insert(sequences::SessionSequences::default());
        let activity = SessionActivity::new();
        db.inner.backends.register(
            backend_pid.load(Ordering::Relaxed),
            id,
            user,
            &running,
            &activity,
        );
        Session {
            activity,
            id,
            backend_pid,
            db,
            ctx,
            user: user.to_string(),
            synced: AtomicU64::new(synced),
            running,
            parameters,
            applied: AtomicU64::new(u64::MAX),
            cursors: Mutex::new(HashMap::new()),
            prepared: Mutex::new(HashMap::new()),
            failed: FailedMark::default(),
            transaction,
        }
    }

    /// Tells the session the process id its client was given in BackendKeyData, which
    /// `pg_backend_pid()` returns.
    pub fn set_backend_pid(&self, pid: i32) {
        self.backend_pid.store(pid, Ordering::Relaxed);
        self.db
            .inner
            .backends
            .register(pid, self.id, &self.user, &self.running, &self.activity);
    }

    /// Sets what `pg_terminate_backend` of this session calls to end its connection
    /// (after canceling its statement).
    pub fn on_terminate(&self, terminate: impl Fn() + Send + Sync + 'static) {
        self.db
            .inner
            .backends
            .on_terminate(self.id, Arc::new(terminate));
    }

    /// Applies a parameter a client gave at connect (its startup packet or
    /// `options=-c name=value`): it becomes the session's value and what RESET returns
    /// to. An unknown or fixed parameter, or a bad value, is an error (PostgreSQL ends
    /// the connection with it).
    pub fn set_startup_parameter(&self, name: &str, value: &str) -> Result<(), Error> {
        if name.to_lowercase().starts_with("wasm.")
            || name.to_lowercase().starts_with("datafusion.")
        {
            return self
                .ctx
                .state_ref()
                .write()
                .config_mut()
                .options_mut()
                .set(&name.to_lowercase(), value)
                .map_err(|e| Error::InvalidLimit(e.to_string()));
        }
        self.parameters.lock().set_at_startup(name, value)?;
        self.apply_parameters();
        Ok(())
    }

    /// The parameters PostgreSQL reports to a client in ParameterStatus, with their
    /// current values, and a version that changes whenever any parameter does.
    pub fn reported_parameters(&self) -> (u64, Vec<(&'static str, String)>) {
        let p = self.parameters.lock();
        (p.version(), p.reported())
    }

    /// The columns of the open cursor `name` (`DECLARE name CURSOR`), which the wire
    /// layer describes as a portal of that name.
    pub fn cursor_schema(&self, name: &str) -> Option<SchemaRef> {
        self.cursors.lock().get(name).map(|c| c.schema.clone())
    }

    /// How this session prints values in text format (TimeZone, extra_float_digits,
    /// bytea_output).
    pub fn text_format(&self) -> TextFormat {
        self.parameters.lock().text_format()
    }

    /// Mirrors the parameters DataFusion acts on (TimeZone) into its config.
    fn apply_parameters(&self) {
        let (version, zone) = {
            let p = self.parameters.lock();
            (p.version(), p.time_zone())
        };
        if self.applied.swap(version, Ordering::AcqRel) == version {
            return;
        }
        let state = self.ctx.state_ref();
        let mut state = state.write();
        // Checked when set: DataFusion takes every zone the parameter accepts.
        if state
            .config_mut()
            .options_mut()
            .set("datafusion.execution.time_zone", &zone)
            .is_err()
        {
            return;
        }
        // As DataFusion's own SET does: functions that read the zone (now() returns a
        // timestamptz in it) are rebuilt for it.
        let options = state.config().options().clone();
        let updated: Vec<_> = state
            .scalar_functions()
            .values()
            .filter_map(|f| f.inner().with_updated_config(&options))
            .collect();
        for f in updated {
            let _ = state.register_udf(Arc::new(f));
        }
    }

    /// Splits `sql` into statements (PostgreSQL dialect). A syntax error inside a
    /// transaction block fails the block, as any error there does.
    pub fn parse(&self, sql: &str) -> DfResult<Vec<Statement>> {
        let parsed = statement::parse(sql);
        if parsed.is_err() {
            self.fail_block();
        }
        parsed
    }

    /// Marks the transaction block failed, if one is open.
    fn fail_block(&self) {
        if self.parameters.lock().in_transaction() {
            self.failed.set();
        }
    }

    /// Appends the data a client sent for a `COPY ... FROM STDIN` (in its text or CSV
    /// format) to the table, all or nothing; returns the rows added.
    pub async fn copy_in(&self, copy: &CopyIn, data: &[u8]) -> DfResult<u64> {
        let copied = self.copy_in_table(copy, data).await;
        if copied.is_err() {
            self.fail_block();
        }
        copied
    }

    async fn copy_in_table(&self, copy: &CopyIn, data: &[u8]) -> DfResult<u64> {
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
    /// Only the names changed since the session's version are touched.
    pub(crate) fn sync_functions(&self) {
        let registry = self.db.inner.functions.read();
        let synced = self.synced.load(Ordering::Acquire);
        if synced == registry.version {
            return;
        }
        let changed = registry
            .changed_at
            .iter()
            .filter(|(_, &at)| at > synced)
            .map(|(name, _)| name.as_str());
        registry.sync_names(&self.ctx, changed, &self.db.inner.replaced_builtins);
        self.synced.store(registry.version, Ordering::Release);
    }

    /// Runs one statement.
    pub async fn run(&self, statement: Statement) -> DfResult<Output> {
        self.run_with_params(statement, Vec::new()).await
    }

    /// The transaction state the client should be told (ReadyForQuery).
    pub fn transaction_state(&self) -> TransactionState {
        if !self.parameters.lock().in_transaction() {
            TransactionState::Idle
        } else if self.failed.is_set() {
            TransactionState::Failed
        } else {
            TransactionState::InBlock
        }
    }

    /// Refuses `family` with 25P02 if the block has failed and it does not end the
    /// block (ROLLBACK, COMMIT, ROLLBACK TO SAVEPOINT).
    fn check_not_failed(&self, family: &Family) -> Result<(), Error> {
        let ends_block = matches!(
            family,
            Family::Command(c) if matches!(**c, Command::Rollback | Command::Commit | Command::RollbackTo(_))
        );
        if self.failed.is_set() && !ends_block && self.parameters.lock().in_transaction() {
            return Err(Error::InFailedTransaction);
        }
        Ok(())
    }

    /// Runs one statement with values for its `$1 .. $n` placeholders (the extended
    /// protocol's Bind). Only queries and DML take parameters.
    pub async fn run_with_params(
        &self,
        statement: Statement,
        params: Vec<ScalarValue>,
    ) -> DfResult<Output> {
        let text = monitor::statement_text(statement.text());
        self.activity.statement_starts(&text);
        let watch = StatementMonitor::start(
            &self.user,
            text,
            self.db.inner.log_min_duration_statement,
            &self.running,
        );
        let span = watch.span().clone();
        let out = self.run_in_block(statement, params).instrument(span).await;
        let application_name = self
            .parameters
            .lock()
            .get("application_name")
            .map(|(_, v)| v)
            .unwrap_or_default();
        self.activity
            .statement_ends(self.transaction_state(), &application_name);
        watch.finish(out)
    }

    /// Runs `statement` as the transaction block's state allows, marking the block
    /// failed if it fails.
    async fn run_in_block(
        &self,
        statement: Statement,
        params: Vec<ScalarValue>,
    ) -> DfResult<Output> {
        let out = match Family::of(&statement) {
            Ok(family) => match self.check_not_failed(&family) {
                // Refused: the block stays failed, nothing ran.
                Err(e) => return Err(e.into()),
                Ok(()) => self.run_family(&statement, family, params).await,
            },
            Err(e) => Err(e.into()),
        };
        if self.parameters.lock().in_transaction() {
            return match out {
                Err(e) => {
                    self.fail_block();
                    Err(e)
                }
                Ok(Output::Rows(rows)) => Ok(Output::Rows(self.failed.watch(rows))),
                Ok(Output::Fetch(rows)) => Ok(Output::Fetch(self.failed.watch(rows))),
                Ok(Output::CopyOut { format, rows }) => Ok(Output::CopyOut {
                    format,
                    rows: self.failed.watch(rows),
                }),
                other => other,
            };
        }
        out
    }

    async fn run_family(
        &self,
        statement: &Statement,
        family: Family,
        params: Vec<ScalarValue>,
    ) -> DfResult<Output> {
        self.sync_functions();
        self.apply_parameters();
        if !params.is_empty() && !matches!(family, Family::Query(_)) {
            return Err(Error::Protocol(format!(
                "{} parameters given to a statement that takes none",
                params.len()
            ))
            .into());
        }
        let out = match family {
            Family::Parameter(p) => self.run_parameter(p),
            Family::Query(sql) => self
                .run_query(sql, params)
                .await
                .map(|out| with_pg_names(out, statement.column_names.as_deref())),
            Family::Fetch {
                cursor,
                count,
                skip,
            } => self.fetch(&cursor, count, skip).await,
            Family::Execute { name, arguments } => self.execute_prepared(&name, arguments).await,
            Family::Command(c) => self.run_command(*c).await,
        };
        self.apply_parameters();
        // DDL changes functions: make them visible to this session's next statement.
        self.sync_functions();
        if let Ok(Output::Command(
            CommandTag::CreateTable
            | CommandTag::CreateView
            | CommandTag::CreateSchema
            | CommandTag::DropTable
            | CommandTag::DropView
            | CommandTag::DropSchema
            | CommandTag::Select(_),
        )) = &out
        {
            self.db.inner.relation_oids.forget();
        }
        out
    }

    /// `SHOW wasm.<limit>`: PostgreSQL's one column named after the setting
    /// (DataFusion's SHOW has name and value).
    fn show_wasm_setting(&self, name: &str) -> DfResult<Output> {
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
            .ok_or_else(|| parameters::unrecognized(name))?;
        parameters::setting_output(name, value)
    }

    /// SHOW / SET / RESET of a parameter.
    fn run_parameter(&self, statement: ParameterStatement) -> DfResult<Output> {
        let mut p = self.parameters.lock();
        match statement {
            ParameterStatement::Show(name) => {
                let (name, value) = p.get(&name)?;
                parameters::setting_output(name, value)
            }
            ParameterStatement::ShowAll => {
                let mut entries: Vec<[String; 3]> = p
                    .all()
                    .into_iter()
                    .map(|(n, v, d)| [n.to_string(), v, d.to_string()])
                    .collect();
                drop(p);
                let wasm = self.wasm_settings();
                entries.extend(
                    wasm.into_iter()
                        .filter_map(|e| Some([e.key, e.value?, e.description.to_string()])),
                );
                parameters::show_all_output(entries)
            }
            ParameterStatement::ShowWasm(name) => {
                drop(p);
                self.show_wasm_setting(&name)
            }
            ParameterStatement::Set { name, value, local } => {
                p.set(&name, value.as_deref(), local)?;
                Ok(command(CommandTag::Set))
            }
            ParameterStatement::Reset(name) => {
                p.set(&name, None, false)?;
                Ok(command(CommandTag::Reset))
            }
            ParameterStatement::ResetAll => {
                p.reset_all();
                drop(p);
                // RESET ALL covers the engine's own settings too.
                let keys: Vec<String> = self.wasm_settings().into_iter().map(|e| e.key).collect();
                let state = self.ctx.state_ref();
                let mut state = state.write();
                for key in keys {
                    state.config_mut().options_mut().set(&key, "default")?;
                }
                Ok(command(CommandTag::Reset))
            }
        }
    }

    /// The session's `wasm.*` settings.
    fn wasm_settings(&self) -> Vec<datafusion::common::config::ConfigEntry> {
        self.ctx
            .state()
            .config_options()
            .extensions
            .get::<WasmSettings>()
            .map(|w| w.entries())
            .unwrap_or_default()
    }

    /// `FETCH [n] FROM cursor` (or `MOVE`, `skip`): up to `count` rows, all if `None`.
    async fn fetch(&self, name: &str, count: Option<u64>, skip: bool) -> DfResult<Output> {
        let undefined = || {
            DataFusionError::from(Error::UndefinedCursor(format!(
                "cursor \"{}\" does not exist",
                crate::error::guest_text(name)
            )))
        };
        let (schema, mut pending, stream) = {
            let mut cursors = self.cursors.lock();
            let cursor = cursors.get_mut(name).ok_or_else(undefined)?;
            (
                cursor.schema.clone(),
                cursor.pending.take(),
                cursor.stream.take(),
            )
        };
        let mut stream = stream;
        let mut wanted = count.map_or(usize::MAX, |c| usize::try_from(c).unwrap_or(usize::MAX));
        let mut batches = Vec::new();
        let mut failed = None;
        while wanted > 0 {
            let batch = match pending.take() {
                Some(b) => b,
                None => match stream.as_mut() {
                    Some(s) => match s.next().await {
                        Some(Ok(b)) => b,
                        Some(Err(e)) => {
                            failed = Some(e);
                            stream = None;
                            break;
                        }
                        None => {
                            stream = None;
                            break;
                        }
                    },
                    None => break,
                },
            };
            if batch.num_rows() > wanted {
                batches.push(batch.slice(0, wanted));
                pending = Some(batch.slice(wanted, batch.num_rows() - wanted));
                wanted = 0;
            } else {
                wanted -= batch.num_rows();
                batches.push(batch);
            }
        }
        if let Some(cursor) = self.cursors.lock().get_mut(name) {
            cursor.pending = pending;
            cursor.stream = stream;
        }
        if let Some(e) = failed {
            return Err(e);
        }
        if skip {
            let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
            return Ok(command(CommandTag::Move(rows)));
        }
        Ok(Output::Fetch(Box::pin(RecordBatchStreamAdapter::new(
            schema,
            futures::stream::iter(batches.into_iter().map(Ok)),
        ))))
    }

    /// The statement SQL PREPARE gave `name`; 26000 if none.
    fn prepared_sql(&self, name: &str) -> DfResult<PreparedSql> {
        self.prepared.lock().get(name).cloned().ok_or_else(|| {
            Error::UndefinedPreparedStatement(format!(
                "prepared statement \"{}\" does not exist",
                crate::error::guest_text(name)
            ))
            .into()
        })
    }

    /// `EXECUTE name (arguments)`: the arguments are evaluated (constant expressions,
    /// as PostgreSQL takes), then the statement runs with them as its parameters.
    async fn execute_prepared(&self, name: &str, arguments: Vec<SqlExpr>) -> DfResult<Output> {
        let prepared = self.prepared_sql(name)?;
        let mut params = Vec::with_capacity(arguments.len());
        if !arguments.is_empty() {
            let select = format!(
                "SELECT {}",
                arguments
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let mut statements = self.parse(&select)?;
            let statement = statements
                .pop()
                .ok_or_else(|| Error::Syntax("EXECUTE arguments".into()))?;
            let Output::Rows(rows) = self.run_query(statement.sql, Vec::new()).await? else {
                return Err(Error::Syntax("EXECUTE arguments".into()).into());
            };
            let batches = crate::sql::output::collect(rows).await?;
            let batch = batches
                .iter()
                .find(|b| b.num_rows() > 0)
                .ok_or_else(|| Error::Syntax("EXECUTE arguments".into()))?;
            for column in batch.columns() {
                params.push(ScalarValue::try_from_array(column, 0)?);
            }
        }
        let names = prepared.statement.column_names.clone();
        match Family::of(&prepared.statement)? {
            Family::Query(sql) => self
                .run_query_typed(sql, params, &prepared.types)
                .await
                .map(|out| with_pg_names(out, names.as_deref())),
            _ if params.is_empty() => Box::pin(self.run(prepared.statement)).await,
            _ => Err(Error::Protocol(format!(
                "{} parameters given to a statement that takes none",
                params.len()
            ))
            .into()),
        }
    }

    /// Ends the transaction block: parameters committed or rolled back, cursors
    /// without HOLD closed.
    fn end_transaction(&self, commit: bool) {
        if !commit {
            self.transaction.rollback();
        }
        self.failed.clear();
        let mut p = self.parameters.lock();
        if commit {
            p.commit();
        } else {
            p.rollback();
        }
        drop(p);
        self.cursors.lock().retain(|_, c| c.hold);
        self.db
            .inner
            .advisory_locks
            .release_transaction_locks(self.id);
    }

    /// What `statement` takes and returns, planned against the current catalog but
    /// not run (the extended protocol's Describe).
    pub async fn describe(&self, statement: &Statement) -> DfResult<Description> {
        self.describe_typed(statement, &[]).await
    }

    /// As [`Self::describe`], with the parameter types the client declared (Parse):
    /// a parameter keeps its declared type, so `SELECT $1` declared int4 returns int4.
    /// Undeclared (`None`) parameters, and those after one, are inferred.
    pub async fn describe_typed(
        &self,
        statement: &Statement,
        declared: &[Option<DataType>],
    ) -> DfResult<Description> {
        // A failed block refuses Parse and Describe too, as PostgreSQL does.
        if let Ok(family) = Family::of(statement) {
            self.check_not_failed(&family)?;
        }
        let described = self.describe_statement(statement, declared).await;
        if described.is_err() {
            self.fail_block();
        }
        described
    }

    async fn describe_statement(
        &self,
        statement: &Statement,
        declared: &[Option<DataType>],
    ) -> DfResult<Description> {
        let types: Vec<SqlDataType> = declared
            .iter()
            .map_while(|t| t.as_ref().and_then(sql_type))
            .collect();
        let no_parameters = |columns| {
            Ok(Description {
                parameters: Vec::new(),
                columns,
            })
        };
        self.apply_parameters();
        let sql = match Family::of(statement)? {
            Family::Parameter(ParameterStatement::ShowWasm(name)) => {
                return no_parameters(Some(parameters::setting_schema(&name)))
            }
            Family::Parameter(ParameterStatement::Show(name)) => {
                let (name, _) = self.parameters.lock().get(&name)?;
                return no_parameters(Some(parameters::setting_schema(name)));
            }
            Family::Parameter(ParameterStatement::ShowAll) => {
                return no_parameters(Some(parameters::show_all_schema()))
            }
            Family::Fetch { cursor, skip, .. } => {
                let schema = self.cursors.lock().get(&cursor).map(|c| c.schema.clone());
                return match (skip, schema) {
                    (true, _) => no_parameters(None),
                    (false, Some(schema)) => no_parameters(Some(schema)),
                    (false, None) => Err(Error::UndefinedCursor(format!(
                        "cursor \"{}\" does not exist",
                        crate::error::guest_text(&cursor)
                    ))
                    .into()),
                };
            }
            Family::Execute { name, .. } => {
                let prepared = self.prepared_sql(&name)?;
                let mut inner = Box::pin(self.describe_typed(&prepared.statement, &[])).await?;
                inner.parameters.clear();
                return Ok(inner);
            }
            Family::Parameter(_) | Family::Command(_) => return no_parameters(None),
            Family::Query(sql) => sql,
        };
        let mut sql = sql;
        tables::prepare_write(self, &mut sql).await?;
        let returning = take_returning(&mut sql)?;
        self.sync_functions();
        let state = self.ctx.state();
        let apart = tables::insert_with_nested_values(&state, &sql, async |q| {
            plan_typed(&state, q, &types).await
        })
        .await?;
        let plan = match apart {
            Some(plan) => plan,
            None => plan_typed(&state, sql, &types).await?,
        };
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
        let columns = if let Some(returning) = &returning {
            let state = self.ctx.state();
            let mut select = state
                .sql_to_statement(&returning.query, &datafusion::config::Dialect::PostgreSQL)?;
            let names = column_names::pg_column_names(&select);
            column_names::repeated_items_aliased(&mut select);
            let plan = state.statement_to_plan(select).await?;
            let analyzed = state
                .analyzer()
                .execute_and_check(plan.clone(), state.config_options(), |_, _| {})
                .unwrap_or(plan);
            let schema = Arc::new(analyzed.schema().as_arrow().clone());
            Some(
                names
                    .as_deref()
                    .and_then(|names| column_names::renamed(&schema, names))
                    .unwrap_or(schema),
            )
        } else if matches!(plan, LogicalPlan::Dml(_)) {
            None
        } else {
            let state = self.ctx.state();
            let analyzed =
                state
                    .analyzer()
                    .execute_and_check(plan.clone(), state.config_options(), |_, _| {});
            let analyzed = analyzed.unwrap_or_else(|_| plan.clone());
            let schema = Arc::new(analyzed.schema().as_arrow().clone());
            let schema =
                with_column_origins(&self.ctx, &self.db.inner.relation_oids, &analyzed, schema)
                    .await;
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

    /// Runs a statement the engine handles itself.
    async fn run_command(&self, cmd: Command) -> DfResult<Output> {
        let admin = |action: &str| self.db.inner.require_admin(&self.user, action);
        match cmd {
            Command::CreateExternalTable(statement) => {
                admin("define external tables (they read server files)")?;
                tables::create_by_statement(self, statement, CommandTag::CreateTable).await
            }
            Command::ResetWasmSetting(key) => {
                // DataFusion's RESET only knows its own namespaces.
                self.ctx
                    .state_ref()
                    .write()
                    .config_mut()
                    .options_mut()
                    .set(&key, "default")?;
                Ok(command(CommandTag::Reset))
            }
            Command::Reset(statement) => self.run_on_session(statement, CommandTag::Reset).await,
            Command::Set(statement) => self.run_on_session(statement, CommandTag::Set).await,
            Command::CreateFunction(cf) => {
                admin("create functions")?;
                let create = ddl::plan_create_function(self, &cf)?;
                Ok(command(
                    self.run_load(move |db, load| create.run(db, load)).await?,
                ))
            }
            Command::DropFunction {
                statement,
                aggregate,
            } => {
                admin("drop functions")?;
                Ok(command(ddl::drop_function(self, &statement, aggregate)?))
            }
            Command::CreateTable(statement) => tables::create_table(self, statement).await,
            Command::CreateView(statement) => {
                tables::create_by_statement(self, statement, CommandTag::CreateView).await
            }
            Command::CreateSchema(statement) => tables::create_schema(self, statement).await,
            Command::DropRelations(statement) => {
                Ok(command(tables::drop_relations(self, &statement)?))
            }
            Command::DropSchemas(statement) => Ok(command(tables::drop_schemas(self, &statement)?)),
            Command::Copy(CopyRequest::In {
                table,
                columns,
                format,
            }) => Ok(Output::CopyIn(
                self.copy_target(&table, &columns, format).await?,
            )),
            Command::Copy(CopyRequest::Out { query, format }) => {
                let mut statements = self.parse(&query)?;
                let query = statements
                    .pop()
                    .ok_or_else(|| Error::Syntax("COPY needs a query".into()))?;
                // The header names the columns as a query's result would.
                let names = query.column_names;
                let output = self.run_query(query.sql, Vec::new()).await?;
                match with_pg_names(output, names.as_deref()) {
                    Output::Rows(rows) => Ok(Output::CopyOut { format, rows }),
                    _ => Err(
                        Error::Syntax("COPY (...) TO needs a query that returns rows".into())
                            .into(),
                    ),
                }
            }
            Command::Begin(modes) => {
                let mut p = self.parameters.lock();
                // Checked before the block opens: BEGIN ISOLATION LEVEL SERIALIZABLE is
                // refused, never run as something weaker.
                let mut scratch = Parameters::new(&self.user, false);
                scratch.begin();
                for mode in &modes {
                    let (name, value) = statement::transaction_mode(mode);
                    scratch.set(name, Some(&value), true)?;
                }
                p.begin();
                self.transaction.begin();
                for mode in &modes {
                    let (name, value) = statement::transaction_mode(mode);
                    p.set(name, Some(&value), true)?;
                }
                Ok(command(CommandTag::Begin))
            }
            Command::Commit => {
                // COMMIT of a failed block rolls it back, and says so.
                if self.failed.is_set() {
                    self.end_transaction(false);
                    return Ok(command(CommandTag::Rollback));
                }
                // The tables first: a conflict (40001) ends the block rolled back.
                if let Err(e) = self.transaction.commit(&self.db.inner.tables).await {
                    self.end_transaction(false);
                    return Err(e.into());
                }
                self.end_transaction(true);
                Ok(command(CommandTag::Commit))
            }
            Command::Rollback => {
                self.end_transaction(false);
                Ok(command(CommandTag::Rollback))
            }
            Command::Savepoint(name) => {
                self.parameters.lock().savepoint(&name)?;
                self.transaction.savepoint(&name);
                Ok(command(CommandTag::Savepoint))
            }
            Command::Release(name) => {
                self.parameters.lock().release(&name)?;
                self.transaction.release(&name)?;
                Ok(command(CommandTag::Release))
            }
            Command::RollbackTo(name) => {
                self.parameters.lock().rollback_to(&name)?;
                self.transaction.rollback_to(&name)?;
                // Back to the savepoint: the block works again.
                self.failed.clear();
                Ok(command(CommandTag::RollbackTo))
            }
            Command::Discard { all } => {
                if !all {
                    // Nothing is cached per session but plans, which are not kept.
                    return Ok(command(CommandTag::Discard));
                }
                if self.parameters.lock().in_transaction() {
                    return Err(Error::ActiveTransaction(
                        "DISCARD ALL cannot run inside a transaction block".into(),
                    )
                    .into());
                }
                self.run_parameter(ParameterStatement::ResetAll)?;
                self.cursors.lock().clear();
                self.prepared.lock().clear();
                self.db.inner.advisory_locks.release_all(self.id);
                Ok(command(CommandTag::DiscardAll))
            }
            // SQL PREPARE's statements are the engine's; the protocol's are the wire
            // layer's (same namespace, as in PostgreSQL).
            Command::Deallocate(Some(name)) => match self.prepared.lock().remove(&name) {
                Some(_) => Ok(command(CommandTag::Deallocate)),
                None => Ok(Output::Deallocate(name)),
            },
            Command::Deallocate(None) => {
                self.prepared.lock().clear();
                Ok(command(CommandTag::DeallocateAll))
            }
            Command::Prepare {
                name,
                types,
                statement,
            } => {
                if self.prepared.lock().contains_key(&name) {
                    return Err(Error::DuplicatePreparedStatement(format!(
                        "prepared statement \"{}\" already exists",
                        crate::error::guest_text(&name)
                    ))
                    .into());
                }
                let statement = Statement::new(DfStatement::Statement(statement));
                // Planned now, as PostgreSQL checks it at PREPARE.
                if let Family::Query(sql) = Family::of(&statement)? {
                    self.sync_functions();
                    plan_typed(&self.ctx.state(), sql, &types).await?;
                }
                self.prepared
                    .lock()
                    .insert(name, PreparedSql { statement, types });
                Ok(command(CommandTag::Prepare))
            }
            Command::DeclareCursor { name, query, hold } => {
                if !hold && !self.parameters.lock().in_transaction() {
                    return Err(Error::NoActiveTransaction(
                        "DECLARE CURSOR can only be used in transaction blocks".into(),
                    )
                    .into());
                }
                if self.cursors.lock().contains_key(&name) {
                    return Err(Error::DuplicateCursor(format!(
                        "cursor \"{}\" already exists",
                        crate::error::guest_text(&name)
                    ))
                    .into());
                }
                let Output::Rows(stream) = self.run_query(query, Vec::new()).await? else {
                    return Err(Error::Syntax("DECLARE CURSOR needs a query".into()).into());
                };
                self.cursors.lock().insert(
                    name,
                    Cursor {
                        schema: stream.schema(),
                        pending: None,
                        stream: Some(stream),
                        hold,
                    },
                );
                Ok(command(CommandTag::DeclareCursor))
            }
            Command::CloseCursor(Some(name)) => {
                if self.cursors.lock().remove(&name).is_none() {
                    return Err(Error::UndefinedCursor(format!(
                        "cursor \"{}\" does not exist",
                        crate::error::guest_text(&name)
                    ))
                    .into());
                }
                Ok(command(CommandTag::CloseCursor))
            }
            Command::CloseCursor(None) => {
                self.cursors.lock().clear();
                Ok(command(CommandTag::CloseCursorAll))
            }
            // Accepted so that clients' reset sequences run; no notification is sent
            // (NOTIFY is refused), so a listener waits for nothing it could miss.
            Command::Listen => Ok(command(CommandTag::Listen)),
            Command::Unlisten => Ok(command(CommandTag::Unlisten)),
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
    async fn run_on_session(&self, statement: DfStatement, tag: CommandTag) -> DfResult<Output> {
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
        self.run_query_typed(statement, params, &[]).await
    }

    /// As [`Self::run_query`], with the first placeholders of the declared `types`
    /// (SQL PREPARE's); each value is cast to its placeholder's type.
    ///
    /// An UPDATE, DELETE or TRUNCATE in autocommit whose commit loses a race with
    /// another (40001) runs again on the version that won, as PostgreSQL's READ
    /// COMMITTED re-evaluates a row another transaction changed meanwhile: the client
    /// sees the statement succeed. The lost attempt committed nothing.
    async fn run_query_typed(
        &self,
        statement: DfStatement,
        params: Vec<ScalarValue>,
        types: &[SqlDataType],
    ) -> DfResult<Output> {
        const ATTEMPTS: usize = 32;
        let rewrites = matches!(
            &statement,
            DfStatement::Statement(s) if matches!(
                **s,
                SqlStatement::Update(_) | SqlStatement::Delete(_) | SqlStatement::Truncate(_)
            )
        );
        if !rewrites {
            return self.run_query_once(statement, params, types).await;
        }
        let mut attempt = 1;
        loop {
            let out = self
                .run_query_once(statement.clone(), params.clone(), types)
                .await;
            match out {
                Err(e)
                    if attempt < ATTEMPTS
                        && crate::error::sqlstate(&e) == "40001"
                        && !self.transaction.in_block() =>
                {
                    attempt += 1;
                }
                out => return out,
            }
        }
    }

    async fn run_query_once(
        &self,
        mut statement: DfStatement,
        mut params: Vec<ScalarValue>,
        types: &[SqlDataType],
    ) -> DfResult<Output> {
        let skip_conflicts = tables::prepare_write(self, &mut statement).await?;
        let returning = take_returning(&mut statement)?;
        let query = self.db.inner.engine.query(&self.ctx);
        if let Some(skip) = skip_conflicts {
            query
                .session()
                .state_ref()
                .write()
                .config_mut()
                .options_mut()
                .extensions
                .insert(skip);
        }
        let written = WrittenRows::default();
        if returning.is_some() {
            query
                .session()
                .state_ref()
                .write()
                .config_mut()
                .options_mut()
                .extensions
                .insert(written.clone());
        }
        let state = query.session().state();
        let apart = tables::insert_with_nested_values(&state, &statement, async |q| {
            plan_typed(&state, q, types).await
        })
        .await?;
        let mut plan = match apart {
            Some(plan) => plan,
            None => plan_typed(&state, statement, types).await?,
        };
        if !types.is_empty() {
            let placeholders = plan.get_parameter_types()?;
            for (i, value) in params.iter_mut().enumerate() {
                if let Some(Some(ty)) = placeholders.get(&format!("${}", i + 1)) {
                    if &value.data_type() != ty {
                        *value = value.cast_to(ty)?;
                    }
                }
            }
        }
        if !params.is_empty() || !plan.get_parameter_types()?.is_empty() {
            plan = plan.with_param_values(ParamValues::List(
                params.into_iter().map(Into::into).collect(),
            ))?;
        }
        if matches!(
            &plan,
            LogicalPlan::Dml(DmlStatement {
                op: WriteOp::Insert(_),
                ..
            })
        ) {
            plan = values_nullable(plan)?;
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
                return Err(Error::InsufficientPrivilege(statement::COPY_TO_FILE.into()).into())
            }
            _ => {}
        }
        let Some(returning) = returning else {
            return self.execute_in(query, plan).await;
        };
        // The statement and its RETURNING are one: a RETURNING that fails undoes the
        // statement. In autocommit it runs in a block of its own, committed once its
        // rows are computed.
        let implicit = !self.transaction.in_block();
        if implicit {
            self.transaction.begin();
        }
        let done = async {
            self.execute_in(query, plan).await?;
            self.run_returning(&returning, &written).await
        }
        .await;
        if !implicit {
            return done;
        }
        match done {
            Ok(out) => {
                self.transaction.commit(&self.db.inner.tables).await?;
                Ok(out)
            }
            Err(e) => {
                self.transaction.rollback();
                Err(e)
            }
        }
    }

    /// The rows of a RETURNING clause, computed over the rows its statement wrote.
    async fn run_returning(
        &self,
        returning: &Returning,
        written: &WrittenRows,
    ) -> DfResult<Output> {
        let query = self.db.inner.engine.query(&self.ctx);
        let state = query.session().state();
        let mut select =
            state.sql_to_statement(&returning.query, &datafusion::config::Dialect::PostgreSQL)?;
        let names = column_names::pg_column_names(&select);
        column_names::repeated_items_aliased(&mut select);
        let plan = state.statement_to_plan(select).await?;
        let plan = returning.over(plan, written)?;
        match with_pg_names(self.execute_in(query, plan).await?, names.as_deref()) {
            // Computed in full before the statement commits.
            Output::Rows(rows) => {
                let schema = rows.schema();
                let batches = crate::sql::output::collect(rows).await?;
                Ok(Output::Written {
                    tag: returning.tag,
                    rows: Box::pin(RecordBatchStreamAdapter::new(
                        schema,
                        futures::stream::iter(batches.into_iter().map(Ok)),
                    )),
                })
            }
            other => Err(Error::Runtime(format!("unexpected RETURNING output {other:?}")).into()),
        }
    }

    /// Makes `handle` this session's running statement (CancelRequest reaches it) and
    /// starts its `statement_timeout` timer; the guard cancels it when dropped.
    fn start_statement(&self, handle: &CancelHandle) -> CancelOnDrop {
        *self.running.lock() = Some(handle.clone());
        let (timeout, in_transaction) = {
            let p = self.parameters.lock();
            (p.statement_timeout(), p.in_transaction())
        };
        let timer = timeout.map(|limit| {
            let handle = handle.clone();
            tokio::spawn(async move {
                tokio::time::sleep(limit).await;
                handle.cancel_for(CancelReason::StatementTimeout);
            })
            .abort_handle()
        });
        CancelOnDrop {
            handle: handle.clone(),
            timer,
            producer: None,
            implicit_transaction: (!in_transaction)
                .then(|| (self.db.inner.advisory_locks.clone(), self.id)),
        }
    }

    /// Runs load-time work (a component's compile and load-time code, the catalog
    /// commit) as a statement: on a blocking thread of the executor, never on the
    /// caller's network threads; a CancelRequest or `statement_timeout` ends the
    /// statement with 57014 at once, stops the component's code within an epoch tick,
    /// and stops the change unless it already passed its commit point (then the
    /// statement succeeds).
    async fn run_load<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Database, &ddl::LoadControl) -> crate::error::Result<T> + Send + 'static,
    ) -> DfResult<T> {
        let handle = self.db.inner.engine.query(&self.ctx).cancel_handle();
        let _guard = self.start_statement(&handle);
        let db = self.db.clone();
        let worker = handle.clone();
        let task = self.db.inner.executor.spawn_blocking(move || {
            let commit_point = || {
                if worker.pass_commit_point() {
                    Ok(())
                } else {
                    Err(Error::QueryCanceled(
                        worker.reason().unwrap_or(CancelReason::UserRequest),
                    ))
                }
            };
            let load = ddl::LoadControl {
                cancel: Some(worker.flag()),
                commit_point: &commit_point,
            };
            work(&db, &load)
        })?;
        tokio::select! {
            biased;
            _ = handle.canceled() => Err(canceled_error(&handle)),
            done = task => done
                .map_err(|e| DataFusionError::External(Box::new(e)))?
                .map_err(DataFusionError::from),
        }
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
        // A write is drained to its tag, with the rows it changed.
        let write_tag: Option<fn(u64) -> CommandTag> = match &plan {
            LogicalPlan::Dml(DmlStatement { op, .. }) => match op {
                WriteOp::Insert(_) => Some(CommandTag::Insert),
                WriteOp::Update => Some(CommandTag::Update),
                WriteOp::Delete => Some(CommandTag::Delete),
                WriteOp::Truncate => Some(|_| CommandTag::Truncate),
                _ => None,
            },
            _ => None,
        };
        let handle = query.cancel_handle();
        let mut guard = self.start_statement(&handle);
        let canceled = |e: DataFusionError| {
            if handle.is_canceled() {
                canceled_error(&handle)
            } else {
                e
            }
        };
        let origins_plan = write_tag.is_none().then(|| plan.clone());
        let df = query
            .session()
            .execute_logical_plan(plan)
            .await
            .map_err(canceled)?;
        let task_ctx = Arc::new(df.task_ctx());
        // Physical planning may take long (listing a large table's files): it races
        // the cancel signal too.
        let physical = tokio::select! {
            biased;
            _ = handle.canceled() => return Err(canceled_error(&handle)),
            physical = df.create_physical_plan() => physical.map_err(canceled)?,
        };
        let physical = explain::show_wasm_calls(physical)?;
        let schema = match &origins_plan {
            Some(plan) => {
                with_column_origins(
                    &self.ctx,
                    &self.db.inner.relation_oids,
                    plan,
                    physical.schema(),
                )
                .await
            }
            None => physical.schema(),
        };
        let changes_catalog = plan_contains(&physical, WASM_LOAD_EXEC);
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
        if let Some(tag) = write_tag {
            let batches: Vec<_> = stream.collect().await;
            let batches = batches.into_iter().collect::<DfResult<Vec<_>>>()?;
            return Ok(command(tag(count_rows(&batches))));
        }
        if changes_catalog {
            // Runs to completion now, as a DDL statement would: nobody has to read the
            // rows for the functions to exist.
            let batches: Vec<_> = stream.collect().await;
            let batches = batches.into_iter().collect::<DfResult<Vec<_>>>()?;
            return Ok(Output::Rows(Box::pin(RecordBatchStreamAdapter::new(
                schema,
                futures::stream::iter(batches.into_iter().map(Ok)),
            ))));
        }
        Ok(Output::Rows(Box::pin(RecordBatchStreamAdapter::new(
            schema, stream,
        ))))
    }
}

/// An INSERT's plan with its `VALUES` rows nullable: the planner types them as the
/// target columns, NOT NULL included, and a NULL among them would fail as an Arrow
/// error before the table could report it as PostgreSQL does (23502, naming the column).
fn values_nullable(plan: LogicalPlan) -> DfResult<LogicalPlan> {
    use datafusion::common::tree_node::Transformed;
    plan.transform_up(|node| match node {
        LogicalPlan::Values(mut values) => {
            if values.schema.fields().iter().all(|f| f.is_nullable()) {
                return Ok(Transformed::no(LogicalPlan::Values(values)));
            }
            let fields: Vec<_> = values
                .schema
                .iter()
                .map(|(qualifier, f)| {
                    (
                        qualifier.cloned(),
                        Arc::new(f.as_ref().clone().with_nullable(true)),
                    )
                })
                .collect();
            values.schema = Arc::new(datafusion::common::DFSchema::new_with_metadata(
                fields,
                values.schema.metadata().clone(),
            )?);
            Ok(Transformed::yes(LogicalPlan::Values(values)))
        }
        LogicalPlan::Dml(dml) => Ok(Transformed::no(LogicalPlan::Dml(dml))),
        other => other.recompute_schema().map(Transformed::yes),
    })
    .map(|t| t.data)
}

/// Whether `plan` has a node named `name`.
fn plan_contains(plan: &Arc<dyn ExecutionPlan>, name: &str) -> bool {
    plan.name() == name || plan.children().iter().any(|c| plan_contains(c, name))
}

/// Placeholder types implied by the Wasm functions they are passed to.
fn placeholder_hints(plan: &LogicalPlan) -> DfResult<HashMap<String, DataType>> {
    let mut hints = HashMap::new();
    plan.apply_with_subqueries(|node| {
        // Expressions resolve against the node's input (a Filter's, a Projection's).
        let schema = node
            .inputs()
            .first()
            .map_or_else(|| node.schema().clone(), |input| input.schema().clone());
        node.apply_expressions(|e| {
            e.apply(|e| {
                // `x = ANY($1)` (planned as `array_has($1, x)`): the parameter is an
                // array of x's type, as PostgreSQL infers it.
                if let Expr::ScalarFunction(f) = e {
                    if let (Some(Expr::Placeholder(p)), Some(needle)) =
                        (f.args.first(), f.args.get(1))
                    {
                        if f.func.name() == "array_has" {
                            if let Ok(ty) = needle.get_type(&schema) {
                                hints.entry(p.id.clone()).or_insert(DataType::List(Arc::new(
                                    Field::new_list_field(ty, true),
                                )));
                            }
                        }
                    }
                }
                // `$1::int4`: the parameter is what it is cast to, as PostgreSQL
                // describes it.
                if let Expr::Cast(Cast { expr, field, .. })
                | Expr::TryCast(TryCast { expr, field, .. }) = e
                {
                    if let Expr::Placeholder(p) = expr.as_ref() {
                        hints
                            .entry(p.id.clone())
                            .or_insert(field.data_type().clone());
                    }
                }
                if let Expr::ScalarFunction(f) = e {
                    for (i, arg) in f.args.iter().enumerate() {
                        if let Expr::Placeholder(p) = arg {
                            if let Some(t) =
                                crate::udf::scalar::placeholder_hint(&f.func, f.args.len(), i)
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

/// Plans `statement`, its first placeholders of the given `types` (as SQL PREPARE
/// declares them: DataFusion's planner takes declared types only there).
async fn plan_typed(
    state: &datafusion::execution::SessionState,
    statement: DfStatement,
    types: &[SqlDataType],
) -> DfResult<LogicalPlan> {
    let statement = match statement {
        DfStatement::Statement(inner) if !types.is_empty() => {
            DfStatement::Statement(Box::new(SqlStatement::Prepare {
                name: Ident::new("wasmudf_typed"),
                data_types: types.to_vec(),
                statement: inner,
            }))
        }
        other => return state.statement_to_plan(other).await,
    };
    match state.statement_to_plan(statement).await? {
        LogicalPlan::Statement(PlanStatement::Prepare(prepare)) => {
            Ok(Arc::unwrap_or_clone(prepare.input))
        }
        other => Ok(other),
    }
}

/// The SQL type for a parameter a client declared as Arrow type `dt` (`None` for
/// one SQL cannot name here: it is inferred instead).
fn sql_type(dt: &DataType) -> Option<SqlDataType> {
    use datafusion::sql::sqlparser::ast::{ExactNumberInfo, TimezoneInfo};
    Some(match dt {
        DataType::Boolean => SqlDataType::Boolean,
        DataType::Int16 => SqlDataType::SmallInt(None),
        DataType::Int32 => SqlDataType::Int(None),
        DataType::Int64 => SqlDataType::BigInt(None),
        DataType::Float32 => SqlDataType::Real,
        DataType::Float64 => SqlDataType::DoublePrecision,
        DataType::Utf8 => SqlDataType::Text,
        DataType::Binary => SqlDataType::Bytea,
        DataType::Date32 => SqlDataType::Date,
        DataType::Timestamp(_, None) => SqlDataType::Timestamp(None, TimezoneInfo::None),
        DataType::Timestamp(_, Some(_)) => SqlDataType::Timestamp(None, TimezoneInfo::WithTimeZone),
        DataType::Time64(_) => SqlDataType::Time(None, TimezoneInfo::None),
        DataType::Interval(_) => SqlDataType::Interval {
            fields: None,
            precision: None,
        },
        DataType::Decimal128(p, s) => SqlDataType::Numeric(ExactNumberInfo::PrecisionAndScale(
            u64::from(*p),
            i64::from(*s),
        )),
        _ => return None,
    })
}
