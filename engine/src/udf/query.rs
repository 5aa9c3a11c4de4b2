//! [`Query`]: one query's view of a session, and the [`CancelHandle`] that stops it.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;

use datafusion::dataframe::DataFrame;
use datafusion::error::Result;
use datafusion::prelude::SessionContext;

use crate::error::CancelReason;
use crate::udf::bind;
use crate::udf::scope::{CommitGate, GuestActivity, GuestNow, QueryScope};
use crate::udf::stats::PerFunction;
use crate::wasm::engine::Engine;

/// Cancels a running query from another task or thread.
#[derive(Clone, Debug)]
pub struct CancelHandle {
    flag: Arc<AtomicBool>,
    reason: Arc<AtomicU8>,
    /// Wakes the task streaming the query's results, so a query busy outside Wasm
    /// (a long scan or sort) stops too.
    wake: Arc<tokio::sync::Notify>,
    /// Past this point a catalog change is made whatever cancels arrive.
    commit: Arc<CommitGate>,
    /// The guest function the query is in now.
    activity: Arc<GuestActivity>,
}

impl CancelHandle {
    fn new(flag: Arc<AtomicBool>, commit: Arc<CommitGate>, activity: Arc<GuestActivity>) -> Self {
        CancelHandle {
            activity,
            flag,
            reason: Arc::new(AtomicU8::new(0)),
            wake: Arc::new(tokio::sync::Notify::new()),
            commit,
        }
    }

    /// Passes the statement's commit point: false if it was canceled first (then the
    /// change must not be made); after it, cancels are ignored.
    pub(crate) fn pass_commit_point(&self) -> bool {
        self.commit.pass(&self.flag)
    }

    /// The Wasm function the query is in now and its guest time so far.
    pub(crate) fn guest_now(&self) -> GuestNow {
        self.activity.now()
    }

    /// What the query's guest calls have cost so far, per function.
    pub(crate) fn guest_totals(&self) -> PerFunction {
        self.activity.totals()
    }

    /// Whether `other` is a handle of the same query.
    pub(crate) fn same_query(&self, other: &CancelHandle) -> bool {
        Arc::ptr_eq(&self.flag, &other.flag)
    }

    /// The flag a guest call watches to stop when this query is canceled.
    pub(crate) fn flag(&self) -> &Arc<AtomicBool> {
        &self.flag
    }

    /// Stops the query: a Wasm call in progress traps within one epoch tick with
    /// [`crate::Error::Canceled`], and no further call starts.
    pub fn cancel(&self) {
        self.cancel_for(CancelReason::UserRequest);
    }

    /// As [`CancelHandle::cancel`], recording why (the first reason wins).
    /// A cancel that comes after a catalog change passed its commit point is ignored.
    pub fn cancel_for(&self, reason: CancelReason) {
        let code = match reason {
            CancelReason::UserRequest => 1,
            CancelReason::StatementTimeout => 2,
        };
        let canceled = self.commit.cancel_unless_passed(|| {
            let _ = self
                .reason
                .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire);
            self.flag.store(true, Ordering::Release);
        });
        if canceled {
            self.wake.notify_one();
        }
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
/// Queries run through `SessionContext::sql` directly also work: in a context set up by
/// [`Engine::register`] (or [`Engine::scope_queries`]) each gets a scope of its own, with
/// instances pooled as here, but nothing can cancel it before its `wasm.timeout`; in
/// any other context every batch gets a fresh guest instance (safe, slower).
pub struct Query {
    ctx: SessionContext,
    cancel: CancelHandle,
}

impl Engine {
    /// Opens a query scope over `ctx` (sharing its catalogs, tables and functions).
    pub fn query(&self, ctx: &SessionContext) -> Query {
        let cancel = Arc::new(AtomicBool::new(false));
        let commit = Arc::new(CommitGate::default());
        let activity = Arc::new(GuestActivity::default());
        let mut state = ctx.state();
        state
            .config_mut()
            .options_mut()
            .extensions
            .insert(QueryScope::new(
                cancel.clone(),
                commit.clone(),
                activity.clone(),
            ));
        // Accumulators see no configuration: bind each Wasm aggregate to this query
        // when its plans (and those of the views it reads) are analyzed.
        bind::add_rule(&mut state);
        Query {
            ctx: SessionContext::new_with_state(state),
            cancel: CancelHandle::new(cancel, commit, activity),
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
