//! PostgreSQL's session-level advisory locks (`pg_advisory_lock` and friends): real
//! locks, shared by every session of the database, re-entrant within a session, held
//! until unlocked or the session ends. And `pg_backend_pid()`, which names the
//! session as the wire's BackendKeyData does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{BooleanBuilder, Int64Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use parking_lot::{Condvar, Mutex};

use crate::error::{CancelReason, Error};
use crate::sql::call::{int64_at, void, CallArgs};
use crate::udf::query::CancelHandle;

/// Which session holds each lock, and how many times.
#[derive(Default)]
pub(crate) struct AdvisoryLocks {
    held: Mutex<HashMap<i64, (u64, u64)>>,
    released: Condvar,
}

impl AdvisoryLocks {
    /// Takes `key` for `session` if it is free or already the session's.
    fn try_lock(&self, session: u64, key: i64) -> bool {
        let mut held = self.held.lock();
        match held.get_mut(&key) {
            Some((owner, count)) if *owner == session => {
                *count += 1;
                true
            }
            Some(_) => false,
            None => {
                held.insert(key, (session, 1));
                true
            }
        }
    }

    /// Waits for `key`, waking each 50 ms to see whether the statement was canceled.
    fn lock(
        &self,
        session: u64,
        key: i64,
        running: &Mutex<Option<CancelHandle>>,
    ) -> Result<(), Error> {
        loop {
            if self.try_lock(session, key) {
                return Ok(());
            }
            if let Some(handle) = running.lock().as_ref() {
                if handle.is_canceled() {
                    return Err(Error::QueryCanceled(
                        handle.reason().unwrap_or(CancelReason::UserRequest),
                    ));
                }
            }
            let mut held = self.held.lock();
            if held.contains_key(&key) {
                self.released.wait_for(&mut held, Duration::from_millis(50));
            }
        }
    }

    /// Releases one hold of `key` by `session`; false if it held none.
    fn unlock(&self, session: u64, key: i64) -> bool {
        let mut held = self.held.lock();
        match held.get_mut(&key) {
            Some((owner, count)) if *owner == session => {
                *count -= 1;
                if *count == 0 {
                    held.remove(&key);
                    self.released.notify_all();
                }
                true
            }
            _ => false,
        }
    }

    /// Releases every lock of `session` (`pg_advisory_unlock_all`, session end).
    pub(crate) fn release_all(&self, session: u64) {
        let mut held = self.held.lock();
        held.retain(|_, (owner, _)| *owner != session);
        self.released.notify_all();
    }
}

/// What the lock functions of one session share.
#[derive(Clone)]
pub(crate) struct SessionLocks {
    pub(crate) locks: Arc<AdvisoryLocks>,
    pub(crate) session: u64,
    /// The statement the session is running, to stop a wait when it is canceled.
    pub(crate) running: Arc<Mutex<Option<CancelHandle>>>,
    /// The process id the client was given (BackendKeyData).
    pub(crate) backend_pid: Arc<AtomicI32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Op {
    Lock,
    TryLock,
    Unlock,
    UnlockAll,
    BackendPid,
}

struct LockFunction {
    name: &'static str,
    op: Op,
    signature: Signature,
    locks: SessionLocks,
}

impl std::fmt::Debug for LockFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockFunction")
            .field("name", &self.name)
            .field("session", &self.locks.session)
            .finish()
    }
}

impl PartialEq for LockFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.locks.session == other.locks.session
    }
}

impl Eq for LockFunction {}

impl std::hash::Hash for LockFunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.locks.session.hash(state);
    }
}

/// The lock key of row `i`: one bigint, or two ints packed as PostgreSQL packs them;
/// `None` for a NULL part.
fn key(parts: &[Int64Array], i: usize) -> DfResult<Option<i64>> {
    let values: Option<Vec<i64>> = parts.iter().map(|p| int64_at(p, i)).collect();
    Ok(match values.as_deref() {
        Some([k]) => Some(*k),
        Some([a, b]) => match (i32::try_from(*a), i32::try_from(*b)) {
            (Ok(a), Ok(b)) => Some((i64::from(a) << 32) | i64::from(b as u32)),
            _ => {
                return Err(Error::InvalidLimit(
                    "advisory lock keys of two parts are integers (int4)".into(),
                )
                .into())
            }
        },
        _ => None,
    })
}

impl ScalarUDFImpl for LockFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(match self.op {
            Op::Lock | Op::UnlockAll => DataType::Utf8,
            Op::TryLock | Op::Unlock => DataType::Boolean,
            Op::BackendPid => DataType::Int32,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let l = &self.locks;
        match self.op {
            Op::BackendPid => {
                return Ok(ColumnarValue::Scalar(ScalarValue::Int32(Some(
                    l.backend_pid.load(Ordering::Relaxed),
                ))))
            }
            Op::UnlockAll => {
                l.locks.release_all(l.session);
                return Ok(ColumnarValue::Scalar(ScalarValue::Utf8(
                    Some(String::new()),
                )));
            }
            _ => {}
        }
        let call = CallArgs::new(&args)?;
        // Each key part cast once for the batch.
        let parts: Vec<Int64Array> = (0..call.len())
            .filter_map(|i| call.int64(i).transpose())
            .collect::<DfResult<_>>()?;
        let mut out = BooleanBuilder::new();
        for i in 0..call.rows {
            let Some(k) = key(&parts, i)? else {
                out.append_null();
                continue;
            };
            match self.op {
                Op::Lock => {
                    l.locks.lock(l.session, k, &l.running)?;
                    out.append_value(true);
                }
                Op::TryLock => out.append_value(l.locks.try_lock(l.session, k)),
                Op::Unlock => out.append_value(l.locks.unlock(l.session, k)),
                Op::UnlockAll | Op::BackendPid => {}
            }
        }
        if self.op == Op::Lock {
            return call.result(void(call.rows));
        }
        call.result(Arc::new(out.finish()))
    }
}

/// The advisory lock functions and `pg_backend_pid()` of one session.
pub(crate) fn functions(locks: &SessionLocks) -> Vec<ScalarUDF> {
    let keyed = || {
        Signature::one_of(
            // One bigint key or two int keys; literals arrive as bigints, so any
            // integers are taken and checked when the key is built.
            vec![TypeSignature::Any(1), TypeSignature::Any(2)],
            Volatility::Volatile,
        )
    };
    [
        ("pg_advisory_lock", Op::Lock, keyed()),
        ("pg_try_advisory_lock", Op::TryLock, keyed()),
        ("pg_advisory_unlock", Op::Unlock, keyed()),
        (
            "pg_advisory_unlock_all",
            Op::UnlockAll,
            Signature::nullary(Volatility::Volatile),
        ),
        (
            "pg_backend_pid",
            Op::BackendPid,
            Signature::nullary(Volatility::Stable),
        ),
    ]
    .into_iter()
    .map(|(name, op, signature)| {
        ScalarUDF::new_from_impl(LockFunction {
            name,
            op,
            signature,
            locks: locks.clone(),
        })
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_are_reentrant_per_session_and_exclusive_between_sessions() {
        let locks = AdvisoryLocks::default();
        assert!(locks.try_lock(1, 42));
        assert!(locks.try_lock(1, 42));
        assert!(!locks.try_lock(2, 42));
        assert!(locks.unlock(1, 42));
        assert!(!locks.try_lock(2, 42), "still held once");
        assert!(locks.unlock(1, 42));
        assert!(!locks.unlock(1, 42), "held no more");
        assert!(locks.try_lock(2, 42));
        locks.release_all(2);
        assert!(locks.try_lock(1, 42));
    }
}
