//! The scope of one query as Wasm UDF calls see it.
//!
//! Guest instances are reused only within one query (never across queries, so no
//! guest state leaks), and a running guest call stops within one epoch tick when its
//! query is canceled. Both need to know the query, which DataFusion does not tell a
//! UDF; a [`QueryScope`] carries it in a config extension that every call can read.

use std::any::Any;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use datafusion::common::config::{ConfigEntry, ConfigExtension, ExtensionOptions};
use datafusion::error::{DataFusionError, Result};
use parking_lot::Mutex;

use crate::udf::scalar::InstancePool;

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
}

impl QueryScope {
    /// A new query's scope, canceled when `cancel` is set.
    pub(crate) fn new(cancel: Arc<AtomicBool>, commit: Arc<CommitGate>) -> Self {
        QueryScope {
            cancel: Some(cancel),
            commit: Some(commit),
            end: Arc::new(ScopeEnd {
                id: NEXT_QUERY.fetch_add(1, Ordering::Relaxed),
                pools: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Which query this is.
    pub(crate) fn id(&self) -> u64 {
        self.end.id
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
