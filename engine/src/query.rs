//! Query scopes: which query a UDF call belongs to, and how to cancel it.
//!
//! Guest instances are reused only within one query (never across queries, so no
//! guest state leaks), and a running guest call stops within one epoch tick when its
//! query is canceled. Both need to know the query, which DataFusion does not tell a
//! UDF; a [`Query`] carries it in a config extension that every call can read.

use std::any::Any;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use datafusion::common::config::{ConfigEntry, ConfigExtension, ExtensionOptions};
use datafusion::dataframe::DataFrame;
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::SessionContext;

use crate::runtime::Engine;

static NEXT_QUERY: AtomicU64 = AtomicU64::new(1);

/// The scope of one query, as seen by Wasm UDF calls.
#[derive(Debug, Clone, Default)]
pub(crate) struct QueryScope {
    pub(crate) id: u64,
    pub(crate) cancel: Option<Arc<AtomicBool>>,
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
pub struct CancelHandle(Arc<AtomicBool>);

impl CancelHandle {
    /// Stops the query: a Wasm call in progress traps within one epoch tick with
    /// [`crate::Error::Canceled`], and no further call starts.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`CancelHandle::cancel`] was called.
    pub fn is_canceled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
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
                id: NEXT_QUERY.fetch_add(1, Ordering::Relaxed),
                cancel: Some(cancel.clone()),
            });
        Query {
            ctx: SessionContext::new_with_state(state),
            cancel: CancelHandle(cancel),
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
