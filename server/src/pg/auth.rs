//! Login (trust, or SCRAM-SHA-256 for the administrator role) and CancelRequests.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, LazyLock, Weak};

use async_trait::async_trait;
use futures::Sink;
use pgwire::api::auth::sasl::scram::{gen_salted_password, ScramAuth};
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::{
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata, AuthSource,
    LoginInfo, Password, ServerParameterProvider, StartupHandler,
};
use pgwire::api::cancel::CancelHandler;
use pgwire::api::{
    ClientInfo, PgWireConnectionState, PidSecretKeyGenerator, RandomPidSecretKeyGenerator,
    METADATA_DATABASE, METADATA_USER,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::startup::Startup;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use wasmudf_engine::{log_text, Session};

use crate::pg::{lock, protocol_error, QueryHandler, ServerState};

/// The administrator role: the one SCRAM knows a password for, and the role a client
/// that names none logs in as.
pub(crate) const ADMIN_ROLE: &str = "wasmudf";

/// The session a client gets, opened at its startup packet (so its parameters are
/// checked, and reported at login, as the session will have them).
struct PendingSession(Arc<Session>);

/// ParameterStatus at login: the session's reported parameters, as set at startup.
#[derive(Debug, Default)]
pub(crate) struct SessionParameters;

impl ServerParameterProvider for SessionParameters {
    fn server_parameters<C>(&self, client: &C) -> Option<HashMap<String, String>>
    where
        C: ClientInfo,
    {
        let pending = client.session_extensions().get::<PendingSession>()?;
        let (_, reported) = pending.0.reported_parameters();
        Some(
            reported
                .into_iter()
                .map(|(name, value)| (name.to_string(), value))
                .collect(),
        )
    }
}

/// PostgreSQL's FATAL error for a startup it refuses: sent, then the connection closes.
fn fatal(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".into(),
        code.into(),
        message,
    )))
}

/// The `name=value` settings of a startup packet's `options` (`-c name=value`,
/// `-cname=value`, `--name=value`; a backslash escapes the next character, as libpq
/// writes spaces in values).
fn startup_options(options: &str) -> Result<Vec<(String, String)>, PgWireError> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = options.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => word.extend(chars.next()),
            c if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    let mut settings = Vec::new();
    let mut words = words.into_iter();
    while let Some(w) = words.next() {
        let setting = if w == "-c" {
            words.next().unwrap_or_default()
        } else if let Some(rest) = w.strip_prefix("--") {
            rest.to_string()
        } else if let Some(rest) = w.strip_prefix("-c") {
            rest.to_string()
        } else {
            return Err(fatal(
                "42601",
                format!(
                    "invalid command-line argument for server process: {}",
                    log_text(&w)
                ),
            ));
        };
        let Some((name, value)) = setting.split_once('=') else {
            return Err(fatal(
                "42601",
                format!("-c {} requires a value", log_text(&setting)),
            ));
        };
        settings.push((name.replace('-', "_"), value.to_string()));
    }
    Ok(settings)
}

/// The session for a startup packet, with every parameter it carries applied;
/// PostgreSQL's FATAL error for one it cannot take.
fn open_session(state: &ServerState, startup: &Startup) -> PgWireResult<Arc<Session>> {
    let user = startup
        .parameters
        .get(METADATA_USER)
        .cloned()
        .unwrap_or_else(|| ADMIN_ROLE.to_string());
    let session = Arc::new(state.db.session(&user));
    let mut settings = Vec::new();
    for (name, value) in &startup.parameters {
        match name.as_str() {
            METADATA_USER | METADATA_DATABASE => {}
            "replication" => {
                if !matches!(value.to_lowercase().as_str(), "false" | "off" | "no" | "0") {
                    return Err(fatal(
                        "08P01",
                        "replication connections are not supported".into(),
                    ));
                }
            }
            "options" => settings.extend(startup_options(value)?),
            _ => settings.push((name.clone(), value.clone())),
        }
    }
    for (name, value) in settings {
        session
            .set_startup_parameter(&name, &value)
            .map_err(|e| fatal(e.sqlstate(), e.to_string()))?;
    }
    Ok(session)
}

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
        if let PgWireFrontendMessage::Startup(startup) = &message {
            self.secure
                .store(client.is_secure(), std::sync::atomic::Ordering::Relaxed);
            let session = open_session(&self.state, startup)?;
            client.session_extensions().insert(PendingSession(session));
        }
        match (&self.state.scram, &message) {
            (Some(scram), _) => scram.on_startup(client, message).await?,
            // Trust: no password; parameters, keys, ReadyForQuery.
            (None, PgWireFrontendMessage::Startup(startup)) => {
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                let (pid, secret) = PIDS.generate(client);
                client.set_pid_and_secret_key(pid, secret);
                finish_authentication(client, &SessionParameters).await?;
            }
            (None, _) => {}
        }
        // Logged in: the session is this connection's, reachable by CancelRequests
        // with its key.
        if matches!(client.state(), PgWireConnectionState::ReadyForQuery)
            && lock(&self.cancel_key).is_none()
        {
            let session = client
                .session_extensions()
                .get::<PendingSession>()
                .map(|p| p.0.clone())
                .ok_or_else(|| protocol_error("no session opened at startup"))?;
            let (pid, secret) = client.pid_and_secret_key();
            session.set_backend_pid(pid);
            let terminated = self.terminated.clone();
            session.on_terminate(move || terminated.notify_one());
            let key = (pid, secret.to_bytes());
            lock(&self.state.cancel_keys).insert(key.clone(), Arc::downgrade(&session));
            *lock(&self.cancel_key) = Some(key);
            *lock(&self.reported) = session.reported_parameters();
            let user = session.user().to_string();
            if self.session.0.set(session).is_err() {
                return Err(protocol_error("session opened twice"));
            }
            tracing::info!(user = %log_text(&user), "logged in");
        }
        Ok(())
    }
}

/// Process ids for BackendKeyData.
static PIDS: LazyLock<RandomPidSecretKeyGenerator> =
    LazyLock::new(RandomPidSecretKeyGenerator::default);

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
) -> Result<SASLAuthStartupHandler<SessionParameters>, String> {
    let mut salt = vec![0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("random salt: {e}"))?;
    let salted = gen_salted_password(password, &salt, SCRAM_ITERATIONS);
    let mut scram = ScramAuth::new(Arc::new(AdminPassword { salt, salted }));
    scram.set_iterations(SCRAM_ITERATIONS);
    Ok(SASLAuthStartupHandler::new(Arc::new(SessionParameters)).with_scram(scram))
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

#[cfg(test)]
mod tests {
    //! Property-test versions of the fuzzing of what a client sends before it has a
    //! session (the `pgwire_messages` target in `engine/fuzz` runs the decoding for
    //! millions of inputs): whatever the bytes, decoding and the `options` parser end
    //! in a value or an error, never a panic.
    use super::startup_options;
    use bytes::BytesMut;
    use pgwire::messages::{DecodeContext, PgWireFrontendMessage};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn frontend_messages_decode_or_fail(data in proptest::collection::vec(any::<u8>(), 0..300), started: bool) {
            let mut context = DecodeContext::default();
            if started {
                context.awaiting_frontend_ssl = false;
                context.awaiting_frontend_startup = false;
            }
            let mut buf = BytesMut::from(&data[..]);
            for _ in 0..16 {
                match PgWireFrontendMessage::decode(&mut buf, &context) {
                    Ok(Some(_)) => {
                        context.awaiting_frontend_ssl = false;
                        context.awaiting_frontend_startup = false;
                    }
                    Ok(None) | Err(_) => break,
                }
            }
        }

        #[test]
        fn any_options_parse_or_fail(options in "\\PC{0,80}") {
            let _ = startup_options(&options);
        }

        #[test]
        fn options_libpq_writes_read_back(
            pairs in proptest::collection::vec(("[a-z_]{1,12}", "[ -~]{0,12}"), 0..5)
        ) {
            // libpq's PGOPTIONS form: `-c name=value`, spaces and backslashes escaped.
            let options: Vec<String> = pairs
                .iter()
                .map(|(n, v)| format!("-c {n}={}", v.replace('\\', "\\\\").replace(' ', "\\ ")))
                .collect();
            let parsed = startup_options(&options.join(" ")).map_err(|e| e.to_string());
            prop_assert_eq!(parsed, Ok(pairs.clone()));
        }
    }
}
