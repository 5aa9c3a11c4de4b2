//! PostgreSQL's advisory locks (`pg_advisory_lock` and friends): real locks, shared by
//! every session of the database, re-entrant within a session, exclusive or shared;
//! session-level ones are held until unlocked or the session ends, transaction-level
//! ones (`pg_advisory_xact_lock`) until the transaction ends (in autocommit, the
//! statement). And `pg_backend_pid()`, which names the session as the wire's
//! BackendKeyData does.

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

/// How a lock is held: PostgreSQL's shared or exclusive mode, for the session or for
/// the transaction (released when it ends; in autocommit, with the statement).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Mode {
    shared: bool,
    xact: bool,
}

const SESSION: Mode = Mode {
    shared: false,
    xact: false,
};
const SESSION_SHARED: Mode = Mode {
    shared: true,
    xact: false,
};
const XACT: Mode = Mode {
    shared: false,
    xact: true,
};
const XACT_SHARED: Mode = Mode {
    shared: true,
    xact: true,
};

/// How many times each (session, mode) holds one lock key.
type Holders = HashMap<(u64, Mode), u64>;

/// Which sessions hold each lock, in which modes, and how many times.
#[derive(Default)]
pub(crate) struct AdvisoryLocks {
    held: Mutex<HashMap<i64, Holders>>,
    released: Condvar,
}

impl AdvisoryLocks {
    /// Takes `key` for `session` in `mode` unless another session holds it in a
    /// conflicting mode (exclusive conflicts with any other holder, shared with
    /// exclusive ones); a session never conflicts with itself.
    fn try_lock(&self, session: u64, key: i64, mode: Mode) -> bool {
        let mut held = self.held.lock();
        let holders = held.entry(key).or_default();
        let conflict = holders
            .keys()
            .any(|(owner, m)| *owner != session && !(mode.shared && m.shared));
        if conflict {
            if holders.is_empty() {
                held.remove(&key);
            }
            return false;
        }
        *holders.entry((session, mode)).or_default() += 1;
        true
    }

    /// Waits for `key`, waking each 50 ms to see whether the statement was canceled.
    fn lock(
        &self,
        session: u64,
        key: i64,
        mode: Mode,
        running: &Mutex<Option<CancelHandle>>,
    ) -> Result<(), Error> {
        loop {
            if self.try_lock(session, key, mode) {
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

    /// Releases one session-level hold of `key` in `mode` by `session`; false if it
    /// held none.
    fn unlock(&self, session: u64, key: i64, mode: Mode) -> bool {
        let mut held = self.held.lock();
        let Some(holders) = held.get_mut(&key) else {
            return false;
        };
        let Some(count) = holders.get_mut(&(session, mode)) else {
            return false;
        };
        *count -= 1;
        if *count == 0 {
            holders.remove(&(session, mode));
            if holders.is_empty() {
                held.remove(&key);
            }
            self.released.notify_all();
        }
        true
    }

    /// Releases the holds of `session` whose mode `which` selects.
    fn release(&self, session: u64, which: impl Fn(Mode) -> bool) {
        let mut held = self.held.lock();
        let mut released = false;
        held.retain(|_, holders| {
            holders.retain(|(owner, mode), _| {
                let keep = *owner != session || !which(*mode);
                released |= !keep;
                keep
            });
            !holders.is_empty()
        });
        // Every autocommit statement ends here: waiters wake only if a lock went.
        if released {
            self.released.notify_all();
        }
    }

    /// Releases every session-level lock of `session` (`pg_advisory_unlock_all`).
    pub(crate) fn release_session_locks(&self, session: u64) {
        self.release(session, |mode| !mode.xact);
    }

    /// Releases the transaction-level locks of `session` (its transaction ended).
    pub(crate) fn release_transaction_locks(&self, session: u64) {
        self.release(session, |mode| mode.xact);
    }

    /// Releases every lock of `session` (it ended).
    pub(crate) fn release_all(&self, session: u64) {
        self.release(session, |_| true);
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
    Lock(Mode),
    TryLock(Mode),
    Unlock(Mode),
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
            Op::Lock(_) | Op::UnlockAll => DataType::Utf8,
            Op::TryLock(_) | Op::Unlock(_) => DataType::Boolean,
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
                l.locks.release_session_locks(l.session);
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
                Op::Lock(mode) => {
                    l.locks.lock(l.session, k, mode, &l.running)?;
                    out.append_value(true);
                }
                Op::TryLock(mode) => out.append_value(l.locks.try_lock(l.session, k, mode)),
                Op::Unlock(mode) => out.append_value(l.locks.unlock(l.session, k, mode)),
                Op::UnlockAll | Op::BackendPid => {}
            }
        }
        if matches!(self.op, Op::Lock(_)) {
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
        ("pg_advisory_lock", Op::Lock(SESSION), keyed()),
        ("pg_advisory_lock_shared", Op::Lock(SESSION_SHARED), keyed()),
        ("pg_advisory_xact_lock", Op::Lock(XACT), keyed()),
        (
            "pg_advisory_xact_lock_shared",
            Op::Lock(XACT_SHARED),
            keyed(),
        ),
        ("pg_try_advisory_lock", Op::TryLock(SESSION), keyed()),
        (
            "pg_try_advisory_lock_shared",
            Op::TryLock(SESSION_SHARED),
            keyed(),
        ),
        ("pg_try_advisory_xact_lock", Op::TryLock(XACT), keyed()),
        (
            "pg_try_advisory_xact_lock_shared",
            Op::TryLock(XACT_SHARED),
            keyed(),
        ),
        ("pg_advisory_unlock", Op::Unlock(SESSION), keyed()),
        (
            "pg_advisory_unlock_shared",
            Op::Unlock(SESSION_SHARED),
            keyed(),
        ),
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

    const X: Mode = SESSION;
    const S: Mode = SESSION_SHARED;

    #[test]
    fn locks_are_reentrant_per_session_and_exclusive_between_sessions() {
        let locks = AdvisoryLocks::default();
        assert!(locks.try_lock(1, 42, X));
        assert!(locks.try_lock(1, 42, X));
        assert!(!locks.try_lock(2, 42, X));
        assert!(locks.unlock(1, 42, X));
        assert!(!locks.try_lock(2, 42, X), "still held once");
        assert!(locks.unlock(1, 42, X));
        assert!(!locks.unlock(1, 42, X), "held no more");
        assert!(locks.try_lock(2, 42, X));
        locks.release_all(2);
        assert!(locks.try_lock(1, 42, X));
    }

    #[test]
    fn shared_holders_exclude_only_exclusive_ones() {
        let locks = AdvisoryLocks::default();
        assert!(locks.try_lock(1, 7, S));
        assert!(locks.try_lock(2, 7, S), "shared with shared");
        assert!(
            !locks.try_lock(3, 7, X),
            "exclusive waits for shared holders"
        );
        assert!(!locks.try_lock(1, 7, X), "another session holds it shared");
        assert!(
            !locks.unlock(2, 7, X),
            "an unlock names the mode it releases"
        );
        assert!(locks.unlock(2, 7, S));
        assert!(
            locks.try_lock(1, 7, X),
            "a session does not conflict with itself"
        );
        assert!(
            !locks.try_lock(3, 7, S),
            "shared waits for an exclusive holder"
        );
        locks.release_session_locks(1);
        assert!(locks.try_lock(3, 7, X));
    }

    #[test]
    fn transaction_locks_end_with_the_transaction_not_with_unlock_all() {
        let locks = AdvisoryLocks::default();
        assert!(locks.try_lock(1, 9, XACT));
        assert!(locks.try_lock(1, 10, X));
        locks.release_session_locks(1);
        assert!(
            !locks.try_lock(2, 9, X),
            "unlock_all leaves transaction locks"
        );
        assert!(locks.try_lock(2, 10, X));
        assert!(
            !locks.unlock(1, 9, X),
            "pg_advisory_unlock does not release them"
        );
        locks.release_transaction_locks(1);
        assert!(locks.try_lock(2, 9, X));
    }
}
