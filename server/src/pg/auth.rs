//! Login (trust, or SCRAM-SHA-256 for the administrator role) and CancelRequests.

use std::fmt::Debug;
use std::sync::{Arc, Weak};

use async_trait::async_trait;
use futures::Sink;
use pgwire::api::auth::noop::NoopStartupHandler;
use pgwire::api::auth::sasl::scram::{gen_salted_password, ScramAuth};
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::{
    AuthSource, DefaultServerParameterProvider, LoginInfo, Password, StartupHandler,
};
use pgwire::api::cancel::CancelHandler;
use pgwire::api::{ClientInfo, PgWireConnectionState, METADATA_USER};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use crate::pg::{lock, protocol_error, QueryHandler, ServerState};

/// The administrator role: the one SCRAM knows a password for, and the role a client
/// that names none logs in as.
pub(crate) const ADMIN_ROLE: &str = "wasmudf";

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

pub(crate) fn scram_handler(
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
    pub(crate) state: Arc<ServerState>,
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
