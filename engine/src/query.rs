//! Query scopes: which query a UDF call belongs to, and how to cancel it.
//!
//! Guest instances are reused only within one query (never across queries, so no
//! guest state leaks), and a running guest call stops within one epoch tick when its
//! query is canceled. Both need to know the query, which DataFusion does not tell a
//! UDF; a [`Query`] carries it in a config extension that every call can read.

use std::any::Any;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Weak};

use datafusion::common::config::{ConfigEntry, ConfigExtension, ExtensionOptions};
use datafusion::dataframe::DataFrame;
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::SessionContext;

use parking_lot::Mutex;

use crate::aggregate::BindWasmAggregates;
use crate::runtime::Engine;
use crate::udf::InstancePool;

static NEXT_QUERY: AtomicU64 = AtomicU64::new(1);

/// The scope of one query, as seen by Wasm UDF calls.
#[derive(Debug, Clone)]
pub(crate) struct QueryScope {
    pub(crate) cancel: Option<Arc<AtomicBool>>,
    /// The query's identity; dropped with the last clone of the scope, when the query
    /// and its plans are gone.
    pub(crate) end: Arc<ScopeEnd>,
}

impl QueryScope {
    /// Which query this is.
    pub(crate) fn id(&self) -> u64 {
        self.end.id
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

/// Cancels a running query from another task or thread.
#[derive(Clone, Debug)]
pub struct CancelHandle {
    flag: Arc<AtomicBool>,
    reason: Arc<AtomicU8>,
    /// Wakes the task streaming the query's results, so a query busy outside Wasm
    /// (a long scan or sort) stops too.
    wake: Arc<tokio::sync::Notify>,
}

/// Why a query was canceled; each reads as PostgreSQL words it (SQLSTATE 57014).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelReason {
    /// A client's CancelRequest (psql's Ctrl-C) or [`CancelHandle::cancel`].
    UserRequest,
    /// The session's `statement_timeout` elapsed.
    StatementTimeout,
}

impl std::fmt::Display for CancelReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CancelReason::UserRequest => "user request",
            CancelReason::StatementTimeout => "statement timeout",
        })
    }
}

impl CancelHandle {
    fn new(flag: Arc<AtomicBool>) -> Self {
        CancelHandle {
            flag,
            reason: Arc::new(AtomicU8::new(0)),
            wake: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Stops the query: a Wasm call in progress traps within one epoch tick with
    /// [`crate::Error::Canceled`], and no further call starts.
    pub fn cancel(&self) {
        self.cancel_for(CancelReason::UserRequest);
    }

    /// As [`CancelHandle::cancel`], recording why (the first reason wins).
    pub fn cancel_for(&self, reason: CancelReason) {
        let code = match reason {
            CancelReason::UserRequest => 1,
            CancelReason::StatementTimeout => 2,
        };
        let _ = self
            .reason
            .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire);
        self.flag.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// Resolves once the query is canceled.
    pub(crate) async fn canceled(&self) {
        while !self.is_canceled() {
            self.wake.notified().await;
        }
    }

    /// Whether [`CancelHandle::cancel`] was called.
    pub fn is_canceled(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    /// Why the query was canceled, if it was.
    pub fn reason(&self) -> Option<CancelReason> {
        match self.reason.load(Ordering::Acquire) {
            0 if self.is_canceled() => Some(CancelReason::UserRequest),
            0 => None,
            2 => Some(CancelReason::StatementTimeout),
            _ => Some(CancelReason::UserRequest),
        }
    }
}

/// One query's view of a session: plan and run SQL with Wasm instances scoped to it.
///
/// Queries run through `SessionContext::sql` directly also work, but without a scope
/// every batch gets a fresh guest instance (safe, slower) and cannot be canceled.
pub struct Query {
    ctx: SessionContext,
    cancel: CancelHandle,
}

impl Engine {
    /// Opens a query scope over `ctx` (sharing its catalogs, tables and functions).
    pub fn query(&self, ctx: &SessionContext) -> Query {
        let cancel = Arc::new(AtomicBool::new(false));
        let mut state = ctx.state();
        state
            .config_mut()
            .options_mut()
            .extensions
            .insert(QueryScope {
                cancel: Some(cancel.clone()),
                end: Arc::new(ScopeEnd {
                    id: NEXT_QUERY.fetch_add(1, Ordering::Relaxed),
                    pools: Mutex::new(Vec::new()),
                }),
            });
        // Accumulators see no configuration: bind each Wasm aggregate to this query
        // when its plans (and those of the views it reads) are analyzed.
        state.add_analyzer_rule(Arc::new(BindWasmAggregates));
        Query {
            ctx: SessionContext::new_with_state(state),
            cancel: CancelHandle::new(cancel),
        }
    }
}

impl Query {
    /// Plans `sql` within this query's scope.
    pub async fn sql(&self, sql: &str) -> Result<DataFrame> {
        self.ctx.sql(sql).await
    }

    /// The session this query plans in.
    pub fn session(&self) -> &SessionContext {
        &self.ctx
    }

    /// A handle that cancels this query.
    pub fn cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }
}
