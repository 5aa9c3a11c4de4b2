//! The database's sessions by the process id their clients were given (PostgreSQL's
//! backends): `pg_cancel_backend(pid)` cancels one's running statement,
//! `pg_terminate_backend(pid)` also ends its connection. A role may signal its own
//! sessions; an administrator any.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::SystemTime;

use datafusion::arrow::array::{BooleanBuilder, Int64Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use parking_lot::Mutex;

use crate::error::Error;
use crate::introspection::ActivityRow;
use crate::sql::call::{int64_at, CallArgs};
use crate::sql::transaction::TransactionState;
use crate::udf::query::CancelHandle;

/// What ends a session's connection (set by the wire layer).
pub(crate) type Terminator = Arc<dyn Fn() + Send + Sync>;

/// One session, as another may signal it.
struct Backend {
    session: u64,
    user: String,
    running: Weak<Mutex<Option<CancelHandle>>>,
    terminate: Option<Terminator>,
    activity: Weak<SessionActivity>,
}

/// What a session is doing, as `pg_stat_activity` shows it; the session updates it
/// as each statement starts and ends.
#[derive(Debug)]
pub(crate) struct SessionActivity {
    backend_start: SystemTime,
    now: Mutex<ActivityNow>,
}

#[derive(Debug, Default)]
struct ActivityNow {
    query: String,
    query_start: Option<SystemTime>,
    state_change: Option<SystemTime>,
    xact_start: Option<SystemTime>,
    /// The state between statements.
    idle: Option<TransactionState>,
    application_name: String,
}

impl SessionActivity {
    pub(crate) fn new() -> Arc<Self> {
        let now = SystemTime::now();
        Arc::new(SessionActivity {
            backend_start: now,
            now: Mutex::new(ActivityNow {
                state_change: Some(now),
                ..ActivityNow::default()
            }),
        })
    }

    /// A statement with text `query` starts.
    pub(crate) fn statement_starts(&self, query: &str) {
        let now = SystemTime::now();
        let mut a = self.now.lock();
        a.query.clear();
        a.query.push_str(query);
        a.query_start = Some(now);
        a.state_change = Some(now);
    }

    /// The statement returned (its rows may still stream), leaving the session in
    /// `state`, named `application_name`.
    pub(crate) fn statement_ends(&self, state: TransactionState, application_name: &str) {
        let now = SystemTime::now();
        let mut a = self.now.lock();
        a.xact_start = match state {
            TransactionState::Idle => None,
            _ => a.xact_start.or(a.query_start),
        };
        a.idle = Some(state);
        a.state_change = Some(now);
        if a.application_name != application_name {
            a.application_name = application_name.to_string();
        }
    }
}

/// Every session with a process id.
#[derive(Default)]
pub(crate) struct Backends {
    by_pid: Mutex<HashMap<i32, Backend>>,
}

impl Backends {
    /// Names `session` (of `user`) by `pid`, forgetting any pid it had.
    pub(crate) fn register(
        &self,
        pid: i32,
        session: u64,
        user: &str,
        running: &Arc<Mutex<Option<CancelHandle>>>,
        activity: &Arc<SessionActivity>,
    ) {
        let mut by_pid = self.by_pid.lock();
        let terminate = by_pid
            .iter()
            .find(|(_, b)| b.session == session)
            .and_then(|(_, b)| b.terminate.clone());
        by_pid.retain(|_, b| b.session != session);
        by_pid.insert(
            pid,
            Backend {
                session,
                user: user.to_string(),
                running: Arc::downgrade(running),
                terminate,
                activity: Arc::downgrade(activity),
            },
        );
    }

    /// Sets what ends `session`'s connection.
    pub(crate) fn on_terminate(&self, session: u64, terminate: Terminator) {
        for backend in self.by_pid.lock().values_mut() {
            if backend.session == session {
                backend.terminate = Some(terminate.clone());
            }
        }
    }

    /// Every session, as `pg_stat_activity` shows it, by pid.
    pub(crate) fn activity(&self) -> Vec<ActivityRow> {
        let sessions: Vec<(i32, String, Weak<_>, Weak<SessionActivity>)> = self
            .by_pid
            .lock()
            .iter()
            .map(|(pid, b)| (*pid, b.user.clone(), b.running.clone(), b.activity.clone()))
            .collect();
        let mut rows: Vec<ActivityRow> = sessions
            .into_iter()
            .filter_map(|(pid, user, running, activity)| {
                let activity = activity.upgrade()?;
                let running = running
                    .upgrade()
                    .and_then(|r| r.lock().clone())
                    .filter(|h| !h.is_canceled());
                let a = activity.now.lock();
                let guest = running.as_ref().map(CancelHandle::guest_now);
                let state = match (&running, a.idle) {
                    (Some(_), _) => "active",
                    (None, Some(TransactionState::InBlock)) => "idle in transaction",
                    (None, Some(TransactionState::Failed)) => "idle in transaction (aborted)",
                    (None, _) => "idle",
                };
                Some(ActivityRow {
                    pid,
                    user,
                    application_name: a.application_name.clone(),
                    backend_start: activity.backend_start,
                    // An autocommit statement is its own transaction.
                    xact_start: a.xact_start.or(running.as_ref().and(a.query_start)),
                    query_start: a.query_start,
                    state_change: a.state_change,
                    state,
                    query: a.query.clone(),
                    wasm_function: guest
                        .as_ref()
                        .and_then(|g| g.function.as_ref().map(|f| f.to_string())),
                    wasm_guest: guest.map(|g| g.guest),
                })
            })
            .collect();
        rows.sort_by_key(|r| r.pid);
        rows
    }

    /// Forgets `session` (it ended).
    pub(crate) fn remove(&self, session: u64) {
        self.by_pid.lock().retain(|_, b| b.session != session);
    }

    /// Cancels (and with `terminate`, disconnects) backend `pid` for `caller`; false
    /// if no session has that pid, as PostgreSQL answers.
    fn signal(&self, pid: i32, caller: &str, admin: bool, terminate: bool) -> Result<bool, Error> {
        let (running, terminator) = {
            let by_pid = self.by_pid.lock();
            let Some(backend) = by_pid.get(&pid) else {
                return Ok(false);
            };
            if !admin && backend.user != caller {
                return Err(Error::InsufficientPrivilege(format!(
                    "permission denied to {} of role \"{}\"",
                    if terminate {
                        "terminate the process"
                    } else {
                        "cancel the query"
                    },
                    backend.user
                )));
            }
            (backend.running.upgrade(), backend.terminate.clone())
        };
        if let Some(handle) = running.as_ref().and_then(|r| r.lock().clone()) {
            handle.cancel();
        }
        if terminate {
            if let Some(end) = terminator {
                end();
            }
        }
        Ok(true)
    }
}

/// `pg_cancel_backend(pid)` or `pg_terminate_backend(pid [, timeout])` for a session.
struct SignalFunction {
    name: &'static str,
    terminate: bool,
    signature: Signature,
    backends: Arc<Backends>,
    caller: String,
    admin: bool,
}

impl std::fmt::Debug for SignalFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalFunction")
            .field("name", &self.name)
            .field("caller", &self.caller)
            .finish()
    }
}

impl PartialEq for SignalFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.caller == other.caller && self.admin == other.admin
    }
}

impl Eq for SignalFunction {}

impl std::hash::Hash for SignalFunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.caller.hash(state);
    }
}

impl ScalarUDFImpl for SignalFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let call = CallArgs::new(&args)?;
        let pids = call
            .int64(0)?
            .unwrap_or_else(|| Int64Array::from(Vec::<i64>::new()));
        let mut out = BooleanBuilder::new();
        for i in 0..call.rows {
            let Some(pid) = int64_at(&pids, i) else {
                out.append_null();
                continue;
            };
            let signaled = match i32::try_from(pid) {
                Ok(pid) => self
                    .backends
                    .signal(pid, &self.caller, self.admin, self.terminate)?,
                Err(_) => false,
            };
            out.append_value(signaled);
        }
        call.result(Arc::new(out.finish()))
    }
}

/// `pg_cancel_backend` and `pg_terminate_backend` for a session of `caller`.
pub(crate) fn functions(backends: &Arc<Backends>, caller: &str, admin: bool) -> Vec<ScalarUDF> {
    [
        (
            "pg_cancel_backend",
            false,
            Signature::any(1, Volatility::Volatile),
        ),
        (
            "pg_terminate_backend",
            true,
            Signature::one_of(
                vec![TypeSignature::Any(1), TypeSignature::Any(2)],
                Volatility::Volatile,
            ),
        ),
    ]
    .into_iter()
    .map(|(name, terminate, signature)| {
        ScalarUDF::new_from_impl(SignalFunction {
            name,
            terminate,
            signature,
            backends: backends.clone(),
            caller: caller.to_string(),
            admin,
        })
    })
    .collect()
}
