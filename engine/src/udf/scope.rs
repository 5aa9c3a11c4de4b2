//! The scope of one query as Wasm UDF calls see it.
//!
//! Guest instances are reused only within one query (never across queries, so no
//! guest state leaks), and a running guest call stops within one epoch tick when its
//! query is canceled. Both need to know the query, which DataFusion does not tell a
//! UDF; a [`QueryScope`] carries it in a config extension that every call can read.

use std::any::Any;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use datafusion::common::config::{ConfigEntry, ConfigExtension, ExtensionOptions};
use datafusion::error::{DataFusionError, Result};
use parking_lot::Mutex;
use thread_local::ThreadLocal;

use crate::udf::scalar::InstancePool;
use crate::udf::stats::{CallFigures, PerFunction};

static NEXT_QUERY: AtomicU64 = AtomicU64::new(1);

/// The scope of one query, as seen by Wasm UDF calls.
#[derive(Debug, Clone)]
pub(crate) struct QueryScope {
    pub(crate) cancel: Option<Arc<AtomicBool>>,
    /// Where a statement that changes the catalog commits (see [`CommitGate`]).
    pub(crate) commit: Option<Arc<CommitGate>>,
    /// The query's identity; dropped with the last clone of the scope, when the query
    /// and its plans are gone.
    pub(crate) end: Arc<ScopeEnd>,
    /// Which guest function the query is in now (`pg_stat_activity`).
    pub(crate) activity: Arc<GuestActivity>,
}

impl QueryScope {
    /// A new query's scope, canceled when `cancel` is set.
    pub(crate) fn new(
        cancel: Arc<AtomicBool>,
        commit: Arc<CommitGate>,
        activity: Arc<GuestActivity>,
    ) -> Self {
        QueryScope {
            activity,
            cancel: Some(cancel),
            commit: Some(commit),
            end: Arc::new(ScopeEnd {
                id: NEXT_QUERY.fetch_add(1, Ordering::Relaxed),
                pools: Mutex::new(Vec::new()),
                kept: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Which query this is.
    pub(crate) fn id(&self) -> u64 {
        self.end.id
    }

    /// Keeps `thing` until the query and its plans are gone.
    pub(crate) fn keep_until_end(&self, thing: Arc<dyn Any + Send + Sync>) {
        self.end.kept.lock().push(thing);
    }

    /// Passes the query's commit point (see [`CommitGate::pass`]); false if it was
    /// canceled first.
    pub(crate) fn pass_commit_point(&self) -> bool {
        match (&self.commit, &self.cancel) {
            (Some(gate), Some(flag)) => gate.pass(flag),
            _ => true,
        }
    }
}

/// The guest call a query is in now, and what its calls have cost so far: what
/// `pg_stat_activity` and the slow-statement log show of a statement running Wasm.
///
/// Each thread running the query's partitions has its own part, locked only by it and
/// by a reader: a call takes no lock another core's calls write, and a reader adds the
/// parts up.
#[derive(Debug, Default)]
pub(crate) struct GuestActivity {
    per_thread: ThreadLocal<Mutex<ActivityInner>>,
}

#[derive(Debug, Default)]
struct ActivityInner {
    /// The running call: its function's slot in `finished`, and its start. (A slot, not
    /// the function's `Arc`: cloning that on every call would write its count, a line
    /// every partition calling the function shares.)
    current: Option<(usize, Instant)>,
    finished: PerFunction,
}

/// What [`GuestActivity::now`] reports.
#[derive(Debug, Clone)]
pub(crate) struct GuestNow {
    /// The function being called now (the call that started last, if partitions are in
    /// several), if any.
    pub function: Option<Arc<str>>,
    /// Guest time of the query so far, the running calls' included.
    pub guest: Duration,
}

impl GuestActivity {
    /// A call of `function` starts at `started`.
    pub(crate) fn enter(&self, function: &Arc<str>, started: Instant) {
        let mut inner = self.per_thread.get_or_default().lock();
        let slot = inner.finished.slot(function);
        inner.current = Some((slot, started));
    }

    /// The call of `function` that started at `started` returned.
    pub(crate) fn leave(&self, function: &Arc<str>, started: Instant, call: &CallFigures) {
        let mut inner = self.per_thread.get_or_default().lock();
        inner.finished.add(function, call);
        if inner.current.as_ref().is_some_and(|(_, s)| *s == started) {
            inner.current = None;
        }
    }

    /// The function running now and the guest time so far.
    pub(crate) fn now(&self) -> GuestNow {
        let mut guest = Duration::ZERO;
        let mut latest: Option<(Instant, Arc<str>)> = None;
        for part in self.per_thread.iter() {
            let inner = part.lock();
            guest += inner
                .finished
                .0
                .iter()
                .map(|(_, t)| t.guest)
                .sum::<Duration>();
            if let Some((slot, started)) = &inner.current {
                guest += started.elapsed();
                if latest.as_ref().is_none_or(|(at, _)| started > at) {
                    if let Some((f, _)) = inner.finished.0.get(*slot) {
                        latest = Some((*started, f.clone()));
                    }
                }
            }
        }
        GuestNow {
            function: latest.map(|(_, f)| f),
            guest,
        }
    }

    /// The calls that returned, per function (a function entered but not returned from
    /// yet has none), in the order the query first called them on each thread.
    pub(crate) fn totals(&self) -> PerFunction {
        let mut totals = PerFunction::default();
        for part in self.per_thread.iter() {
            for (function, t) in &part.lock().finished.0 {
                if t.calls > 0 {
                    totals.merge(function, t);
                }
            }
        }
        totals
    }
}

/// The point of no return of a statement that changes the catalog. A cancel
/// (CancelRequest, `statement_timeout`) that comes before it stops the change; one
/// that comes after is ignored and the statement succeeds, so a client is never told
/// "canceled" about a change that was made (PostgreSQL holds interrupts during commit
/// the same way).
#[derive(Debug, Default)]
pub(crate) struct CommitGate {
    passed: Mutex<bool>,
}

impl CommitGate {
    /// Passes the point unless `canceled` is already set; from then on cancels are ignored.
    pub(crate) fn pass(&self, canceled: &AtomicBool) -> bool {
        let mut passed = self.passed.lock();
        if canceled.load(Ordering::Acquire) {
            return false;
        }
        *passed = true;
        true
    }

    /// Runs `cancel` unless the point was passed; returns whether it ran.
    pub(crate) fn cancel_unless_passed(&self, cancel: impl FnOnce()) -> bool {
        let passed = self.passed.lock();
        if *passed {
            return false;
        }
        cancel();
        true
    }
}

/// The pools a query left idle instances in. When the query ends they are dropped, so
/// they hold neither memory nor instance slots (`max_instances`) after it.
#[derive(Debug)]
pub(crate) struct ScopeEnd {
    id: u64,
    pools: Mutex<Vec<Weak<InstancePool>>>,
    /// What the query's plans read and must outlive them (a table version's files).
    kept: Mutex<Vec<Arc<dyn Any + Send + Sync>>>,
}

impl ScopeEnd {
    /// Notes that `pool` holds idle instances of this query.
    pub(crate) fn register(&self, pool: &Arc<InstancePool>) {
        let mut pools = self.pools.lock();
        if !pools
            .iter()
            .any(|p| std::ptr::eq(p.as_ptr(), Arc::as_ptr(pool)))
        {
            pools.push(Arc::downgrade(pool));
        }
    }
}

impl Drop for ScopeEnd {
    fn drop(&mut self) {
        for pool in self.pools.get_mut().drain(..) {
            if let Some(pool) = pool.upgrade() {
                pool.purge(self.id);
            }
        }
    }
}

impl ExtensionOptions for QueryScope {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(self.clone())
    }

    fn set(&mut self, key: &str, _value: &str) -> Result<()> {
        Err(DataFusionError::Configuration(format!(
            "{}.{key} is internal and cannot be set",
            Self::PREFIX
        )))
    }

    fn entries(&self) -> Vec<ConfigEntry> {
        Vec::new()
    }
}

impl ConfigExtension for QueryScope {
    const PREFIX: &'static str = "wasmudf_query";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activity_adds_up_the_threads_and_shows_the_running_call() {
        let activity = GuestActivity::default();
        let (f, g): (Arc<str>, Arc<str>) = ("f(bigint)".into(), "g(text)".into());
        let call = CallFigures {
            rows: 5,
            guest: Duration::from_millis(2),
            fuel: 7,
        };
        std::thread::scope(|s| {
            s.spawn(|| {
                let started = Instant::now();
                activity.enter(&g, started);
                activity.leave(&g, started, &call);
            });
        });
        let started = Instant::now();
        activity.enter(&f, started);
        let now = activity.now();
        assert_eq!(now.function.as_deref(), Some("f(bigint)"));
        assert!(now.guest >= Duration::from_millis(2));
        let totals = activity.totals();
        assert_eq!(totals.0.len(), 1, "{totals}");
        assert_eq!(&*totals.0[0].0, "g(text)");
        activity.leave(&f, started, &call);
        assert_eq!(activity.now().function, None);
        assert_eq!(activity.totals().0.len(), 2);
        assert_eq!(activity.now().guest, Duration::from_millis(4));
    }
}
