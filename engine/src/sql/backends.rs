//! The database's sessions by the process id their clients were given (PostgreSQL's
//! backends): `pg_cancel_backend(pid)` cancels one's running statement,
//! `pg_terminate_backend(pid)` also ends its connection. A role may signal its own
//! sessions; an administrator any.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use datafusion::arrow::array::{BooleanBuilder, Int64Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use parking_lot::Mutex;

use crate::error::Error;
use crate::sql::call::{int64_at, CallArgs};
use crate::udf::query::CancelHandle;

/// What ends a session's connection (set by the wire layer).
pub(crate) type Terminator = Arc<dyn Fn() + Send + Sync>;

/// One session, as another may signal it.
struct Backend {
    session: u64,
    user: String,
    running: Weak<Mutex<Option<CancelHandle>>>,
    terminate: Option<Terminator>,
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
