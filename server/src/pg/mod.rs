//! The PostgreSQL wire protocol over the engine: one session per connection.
//!
//! One module per concern: [`state`] (what connections share, startup of the
//! database), [`auth`] (login and CancelRequests), [`simple`] (the simple query
//! protocol and the responses both protocols send), [`extended`] (Parse, Bind,
//! Describe, Execute), [`copy`] (COPY FROM STDIN / TO STDOUT) and [`encode`] (values
//! in PostgreSQL's text and binary formats).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use pgwire::api::auth::StartupHandler;
use pgwire::api::cancel::CancelHandler;
use pgwire::api::copy::CopyHandler;
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::PgWireServerHandlers;
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::response::TransactionStatus;
use wasmudf_engine::{Session, TransactionState};

mod auth;
mod copy;
pub(crate) mod encode;
mod extended;
mod simple;
mod state;

use auth::Canceller;
use copy::PendingCopy;
use extended::Parser;
pub(crate) use state::RunningStatement;
pub use state::ServerState;

/// One client connection and its own session.
pub struct Connection {
    handler: Arc<QueryHandler>,
    canceller: Arc<Canceller>,
}

impl Connection {
    /// Notified when `pg_terminate_backend` ends this connection: the task serving it
    /// stops (closing the socket).
    pub fn terminated(&self) -> Arc<tokio::sync::Notify> {
        self.handler.terminated.clone()
    }

    /// Whether the client negotiated TLS (then nothing can be written to the socket
    /// outside pgwire's TLS stream).
    pub fn is_secure(&self) -> bool {
        self.handler
            .secure
            .load(std::sync::atomic::Ordering::Relaxed)
    }

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
            reported: Mutex::new((0, Vec::new())),
            terminated: Arc::new(tokio::sync::Notify::new()),
            secure: std::sync::atomic::AtomicBool::new(false),
            prepared_names: Mutex::new(BTreeSet::new()),
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
    pub(crate) cancel_key: Mutex<Option<(i32, Bytes)>>,
    /// The COPY FROM STDIN in progress: its target and the data received so far.
    pub(crate) pending_copy: Mutex<Option<PendingCopy>>,
    /// The session's reported parameters as the client last heard of them (version,
    /// values), to send ParameterStatus for those that change.
    pub(crate) reported: Mutex<(u64, Vec<(&'static str, String)>)>,
    /// The names of the client's prepared statements (for DEALLOCATE ALL, which
    /// pgwire's statement store cannot list).
    pub(crate) prepared_names: Mutex<BTreeSet<String>>,
    /// Notified by `pg_terminate_backend` of this connection's session.
    pub(crate) terminated: Arc<tokio::sync::Notify>,
    /// The client negotiated TLS (set at startup).
    pub(crate) secure: std::sync::atomic::AtomicBool,
}

/// Locks a mutex, going on if a panicking thread poisoned it (the maps stay valid).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The ReadyForQuery status byte of a session's transaction state.
pub(crate) fn wire_status(state: TransactionState) -> TransactionStatus {
    match state {
        TransactionState::Idle => TransactionStatus::Idle,
        TransactionState::InBlock => TransactionStatus::Transaction,
        TransactionState::Failed => TransactionStatus::Error,
    }
}

pub(crate) fn protocol_error(message: &str) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        "08P01".into(),
        message.into(),
    )))
}
