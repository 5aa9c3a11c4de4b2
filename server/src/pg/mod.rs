//! The PostgreSQL wire protocol over the engine: one session per connection.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use datafusion::error::DataFusionError;
use futures::{stream, Sink, SinkExt, StreamExt};
use pgwire::api::auth::noop::NoopStartupHandler;
use pgwire::api::auth::sasl::scram::{gen_salted_password, ScramAuth};
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::{
    AuthSource, DefaultServerParameterProvider, LoginInfo, Password, StartupHandler,
};
use pgwire::api::cancel::CancelHandler;
use pgwire::api::copy::CopyHandler;
use pgwire::api::portal::Format;
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{CopyResponse, QueryResponse, Response, Tag};
use pgwire::api::store::PortalStore;
use pgwire::api::{
    ClientInfo, ClientPortalStore, PgWireConnectionState, PgWireServerHandlers, METADATA_USER,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use wasmudf_engine::datafusion;
use wasmudf_engine::datafusion::execution::SendableRecordBatchStream;
use wasmudf_engine::{
    copy_header, copy_lines, parse_bytes, parse_duration, parse_stack, CopyFormat, CopyIn,
    Database, DatabaseConfig, EngineConfig, Limits, Output, Session,
};

use crate::config::{AuthMethod, ServeArgs};
use crate::encode;
use crate::extended::Parser;

/// What every connection shares: the database, and the sessions a CancelRequest can
/// reach by the (process id, secret key) pair their connection was given.
pub struct ServerState {
    db: Database,
    /// SCRAM authentication, when configured (else trust).
    scram: Option<Arc<SASLAuthStartupHandler<DefaultServerParameterProvider>>>,
    cancel_keys: Mutex<HashMap<(i32, Bytes), Weak<Session>>>,
    /// Statements executing now (a graceful shutdown waits for them).
    running: AtomicUsize,
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
            ..EngineConfig::default()
        };
        config.target_partitions = args.target_partitions;
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
        })
    }
}

/// The administrator role every session runs as until authentication lands.
const ADMIN_ROLE: &str = "wasmudf";

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

/// One client connection and its own session.
pub struct Connection {
    handler: Arc<QueryHandler>,
    canceller: Arc<Canceller>,
}

impl Connection {
    pub fn new(state: Arc<ServerState>) -> Self {
        let session = Arc::new(ConnectionSession::default());
        let handler = Arc::new(QueryHandler {
            parser: Arc::new(Parser {
                session: session.clone(),
            }),
            session,
            state: state.clone(),
            cancel_key: Mutex::new(None),
            pending_copy: Mutex::new(None),
        });
        Connection {
            handler,
            canceller: Arc::new(Canceller { state }),
        }
    }
}

/// A connection's session, opened once the client has logged in (as its role).
#[derive(Default)]
pub struct ConnectionSession(OnceLock<Arc<Session>>);

impl ConnectionSession {
    /// The session; an error before login (which the protocol does not allow).
    pub fn get(&self) -> PgWireResult<&Arc<Session>> {
        self.0
            .get()
            .ok_or_else(|| protocol_error("no session before login"))
    }
}

impl PgWireServerHandlers for Connection {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.handler.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.handler.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.handler.clone()
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        self.canceller.clone()
    }

    fn copy_handler(&self) -> Arc<impl CopyHandler> {
        self.handler.clone()
    }
}

/// Runs one connection's statements, in both query protocols.
pub struct QueryHandler {
    pub(crate) session: Arc<ConnectionSession>,
    pub(crate) parser: Arc<Parser>,
    pub(crate) state: Arc<ServerState>,
    /// This connection's key in [`ServerState::cancel_keys`], once started up.
    cancel_key: Mutex<Option<(i32, Bytes)>>,
    /// The COPY FROM STDIN in progress: its target and the data received so far.
    pub(crate) pending_copy: Mutex<Option<PendingCopy>>,
}

/// A COPY FROM STDIN between its CopyInResponse and the client's CopyDone.
pub(crate) struct PendingCopy {
    copy: CopyIn,
    data: BytesMut,
}

/// Trust authentication: pgwire's no-op startup (parameters, keys, ReadyForQuery).
struct Trust;

impl NoopStartupHandler for Trust {}

#[async_trait]
impl StartupHandler for QueryHandler {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match &self.state.scram {
            Some(scram) => scram.on_startup(client, message).await?,
            None => Trust.on_startup(client, message).await?,
        }
        // Logged in: open the session as the login role, reachable by CancelRequests
        // with this connection's key.
        if matches!(client.state(), PgWireConnectionState::ReadyForQuery)
            && lock(&self.cancel_key).is_none()
        {
            let user = client
                .metadata()
                .get(METADATA_USER)
                .cloned()
                .unwrap_or_else(|| ADMIN_ROLE.to_string());
            let session = Arc::new(self.state.db.session(&user));
            let (pid, secret) = client.pid_and_secret_key();
            let key = (pid, secret.to_bytes());
            lock(&self.state.cancel_keys).insert(key.clone(), Arc::downgrade(&session));
            *lock(&self.cancel_key) = Some(key);
            if self.session.0.set(session).is_err() {
                return Err(protocol_error("session opened twice"));
            }
            tracing::info!(user, "logged in");
        }
        Ok(())
    }
}

/// The password of role `wasmudf`, salted once at startup for SCRAM.
#[derive(Debug)]
struct AdminPassword {
    salt: Vec<u8>,
    salted: Vec<u8>,
}

#[async_trait]
impl AuthSource for AdminPassword {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        match login.user() {
            Some(ADMIN_ROLE) => Ok(Password::new(Some(self.salt.clone()), self.salted.clone())),
            other => Err(PgWireError::InvalidPassword(
                other.unwrap_or("").to_string(),
            )),
        }
    }
}

/// SCRAM iterations: PostgreSQL's default.
const SCRAM_ITERATIONS: usize = 4096;

fn scram_handler(
    password: &str,
) -> Result<SASLAuthStartupHandler<DefaultServerParameterProvider>, String> {
    let mut salt = vec![0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("random salt: {e}"))?;
    let salted = gen_salted_password(password, &salt, SCRAM_ITERATIONS);
    let mut scram = ScramAuth::new(Arc::new(AdminPassword { salt, salted }));
    scram.set_iterations(SCRAM_ITERATIONS);
    Ok(
        SASLAuthStartupHandler::new(Arc::new(DefaultServerParameterProvider::default()))
            .with_scram(scram),
    )
}

impl Drop for QueryHandler {
    fn drop(&mut self) {
        if let Some(key) = lock(&self.cancel_key).take() {
            lock(&self.state.cancel_keys).remove(&key);
        }
    }
}

/// Answers CancelRequests (psql's Ctrl-C): the statement running on the connection
/// with that key stops with 57014, a Wasm call in it within one epoch tick.
pub struct Canceller {
    state: Arc<ServerState>,
}

#[async_trait]
impl CancelHandler for Canceller {
    async fn on_cancel_request(&self, request: CancelRequest) {
        let key = (request.pid, request.secret_key.to_bytes());
        let session = lock(&self.state.cancel_keys)
            .get(&key)
            .and_then(Weak::upgrade);
        match session {
            Some(session) => {
                tracing::info!(pid = request.pid, "cancel request");
                session.cancel_current();
            }
            None => tracing::info!(pid = request.pid, "cancel request for no known connection"),
        }
    }
}

/// Locks a mutex, going on if a panicking thread poisoned it (the maps stay valid).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[async_trait]
impl SimpleQueryHandler for QueryHandler {
    async fn do_query<C>(&self, _client: &mut C, sql: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
    {
        let session = self.session.get()?;
        let statements = match session.parse(sql) {
            Ok(s) => s,
            Err(e) => return Ok(vec![error_response(&e)]),
        };
        let _running = RunningStatement::start(&self.state);
        let mut responses = Vec::new();
        for statement in statements {
            // Each statement finishes before the next starts (its rows are collected):
            // a failure stops the rest, as in PostgreSQL.
            let response = respond(
                session.run(statement).await,
                &Format::UnifiedText,
                true,
                &self.pending_copy,
                None,
            )
            .await;
            let failed = matches!(response, Response::Error(_));
            responses.push(response);
            if failed {
                break;
            }
        }
        Ok(responses)
    }
}

/// The wire response for a statement's outcome; rows in the client's `format`,
/// collected first (`collect`) or streamed as they are computed.
pub(crate) async fn respond(
    output: Result<Output, DataFusionError>,
    format: &Format,
    collect: bool,
    pending: &Mutex<Option<PendingCopy>>,
    running: Option<RunningStatement>,
) -> Response {
    let stream = match output {
        Err(e) => {
            tracing::info!(error = %e, "statement failed");
            return error_response(&e);
        }
        Ok(Output::Command(tag)) => {
            return match tag.as_str() {
                "BEGIN" => Response::TransactionStart(Tag::new(&tag)),
                "COMMIT" | "ROLLBACK" => Response::TransactionEnd(Tag::new(&tag)),
                _ => Response::Execution(Tag::new(&tag)),
            }
        }
        Ok(Output::Rows(stream)) => stream,
        Ok(Output::CopyIn(copy)) => {
            let columns = copy.columns();
            *lock(pending) = Some(PendingCopy {
                copy,
                data: BytesMut::new(),
            });
            return Response::CopyIn(CopyResponse::new(0, columns, stream::empty()));
        }
        Ok(Output::CopyOut { format, rows }) => return copy_out(format, rows),
        Ok(other) => {
            return error_response(&DataFusionError::NotImplemented(format!(
                "the server cannot send {other:?}"
            )))
        }
    };
    let fields = encode::fields(&stream.schema(), format);
    if collect {
        let batches = match wasmudf_engine::collect(stream).await {
            Ok(b) => b,
            Err(e) => {
                tracing::info!(error = %e, "statement failed");
                return error_response(&e);
            }
        };
        let mut rows = Vec::new();
        for batch in &batches {
            match encode::encode_batch(batch, &fields) {
                Ok(r) => rows.extend(r.into_iter().map(Ok)),
                Err(e) => return error_response(&e),
            }
        }
        return Response::Query(QueryResponse::new(fields, stream::iter(rows)));
    }
    let row_fields = fields.clone();
    let rows = stream.flat_map(move |batch| {
        let _running = &running;
        let encoded = batch.and_then(|b| encode::encode_batch(&b, &row_fields));
        match encoded {
            Ok(rows) => stream::iter(rows.into_iter().map(Ok)).left_stream(),
            Err(e) => {
                tracing::info!(error = %e, "statement failed");
                stream::once(async move { Err(user_error(&e)) }).right_stream()
            }
        }
    });
    Response::Query(QueryResponse::new(fields, rows))
}

#[async_trait]
impl CopyHandler for QueryHandler {
    async fn on_copy_data<C>(&self, _client: &mut C, copy_data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match lock(&self.pending_copy).as_mut() {
            Some(pending) => {
                pending.data.extend_from_slice(&copy_data.data);
                Ok(())
            }
            None => Err(protocol_error(
                "CopyData without a COPY FROM STDIN in progress",
            )),
        }
    }

    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let pending = lock(&self.pending_copy).take();
        let Some(pending) = pending else {
            return Err(protocol_error(
                "CopyDone without a COPY FROM STDIN in progress",
            ));
        };
        match self
            .session
            .get()?
            .copy_in(&pending.copy, &pending.data)
            .await
        {
            Ok(rows) => {
                let tag = Tag::new("COPY").with_rows(rows as usize);
                client
                    .send(PgWireBackendMessage::CommandComplete(tag.into()))
                    .await?;
                Ok(())
            }
            Err(e) => {
                tracing::info!(error = %e, "COPY failed");
                Err(user_error(&e))
            }
        }
    }

    async fn on_copy_fail<C>(&self, _client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        lock(&self.pending_copy).take();
        PgWireError::UserError(Box::new(ErrorInfo::new(
            "ERROR".into(),
            "57014".into(),
            format!("COPY from stdin failed: {}", fail.message),
        )))
    }
}

fn protocol_error(message: &str) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        "08P01".into(),
        message.into(),
    )))
}

/// COPY ... TO STDOUT: one CopyData message per row (the header, if asked for, rides
/// with the first so the row count stays right).
fn copy_out(format: CopyFormat, rows: SendableRecordBatchStream) -> Response {
    let schema = rows.schema();
    let columns = schema.fields().len();
    // The header comes first even when the query returns no rows, as in PostgreSQL.
    let header = format
        .header
        .then(|| Ok(CopyData::new(Bytes::from(copy_header(&schema, &format)))));
    let data = rows.flat_map(move |batch| {
        let lines = batch.and_then(|b| copy_lines(&b, &format));
        match lines {
            Ok(lines) => {
                let messages: Vec<PgWireResult<CopyData>> = lines
                    .into_iter()
                    .map(|line| Ok(CopyData::new(Bytes::from(line))))
                    .collect();
                stream::iter(messages).left_stream()
            }
            Err(e) => stream::once(async move { Err(user_error(&e)) }).right_stream(),
        }
    });
    Response::CopyOut(CopyResponse::new(
        0,
        columns,
        stream::iter(header).chain(data),
    ))
}

/// The ErrorResponse fields for an engine error: its SQLSTATE, and the guest's own
/// error when a Wasm function failed.
fn error_info(e: &DataFusionError) -> ErrorInfo {
    let code = wasmudf_engine::sqlstate(e);
    let message = match wasmudf_engine::find_udf_error(e) {
        Some(udf) => udf.to_string(),
        None => e.find_root().to_string(),
    };
    ErrorInfo::new("ERROR".into(), code.into(), message)
}

fn error_response(e: &DataFusionError) -> Response {
    Response::Error(Box::new(error_info(e)))
}

/// An engine error as a pgwire error (sent as an ErrorResponse).
pub(crate) fn user_error(e: &DataFusionError) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(e)))
}
