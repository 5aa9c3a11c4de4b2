//! What a client can ask the database about itself: `pg_catalog` for psql and the
//! drivers, `information_schema` with full rows for Wasm functions, the `wasm.*`
//! views, `wasm_load`, and the session information functions (`current_user`, ...).
//!
//! Layer 5: imports [`crate::store`], [`crate::udf`], [`crate::wasm`], [`crate::pg`]
//! and [`crate::error`]. The live database is above this layer; the views read it
//! through [`DatabaseView`], which the SQL layer implements (as DataFusion's
//! information schema reads a `CatalogProviderList`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use datafusion::catalog::CatalogProvider;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::prelude::SessionContext;

use crate::error::Result;
use crate::store::catalog::FunctionRecord;
use crate::store::CATALOG_NAME;
use crate::udf::scope::QueryScope;
use crate::udf::stats::StatsSnapshot;
use crate::wasm::cache::CacheOutcome;
use crate::wasm::tier::CodeTier;

pub(crate) mod activity;
pub(crate) mod pg_catalog;
pub(crate) mod session_info;
pub(crate) mod settings;
pub(crate) mod stats_view;
pub(crate) mod system;
pub(crate) mod typed_columns;

/// What the introspection views read of the live database, and the one action they
/// take (`wasm_load`, a table function that defines functions).
pub(crate) trait DatabaseView: Send + Sync + std::fmt::Debug {
    /// Every Wasm function overload, in no particular order.
    fn function_records(&self) -> Vec<FunctionRecord>;
    /// Every stored module: hex hash and size in bytes.
    fn stored_modules(&self) -> Result<Vec<(String, u64)>>;
    /// How each module loaded in this process got its machine code, by hex hash.
    fn artifact_outcomes(&self) -> HashMap<String, CacheOutcome>;
    /// Which compiler made the code of each module loaded now, by hex hash.
    fn code_tiers(&self) -> HashMap<String, CodeTier>;
    /// What the Wasm function overloads have cost, by catalog key (an overload without
    /// figures has cost nothing).
    fn function_stats(&self) -> HashMap<String, StatsSnapshot>;
    /// Sets every function's figures back to zero (`wasm_stats_reset()`).
    fn reset_function_stats(&self);
    /// Every session, as `pg_stat_activity` shows it.
    fn activity(&self) -> Vec<ActivityRow>;
    /// Whether `user` is an administrator.
    fn is_admin(&self, user: &str) -> bool;
    /// The data directory (for `pg_database_size`).
    fn data_dir(&self) -> &Path;
    /// `wasm_load(spec)` run by `user` in the query `scope`: loads the module, defines
    /// every function it describes under its own name, and returns their records. The
    /// work runs on a blocking thread of the query executor; canceling the query
    /// stops the component's load-time code and, before the commit, the change.
    fn spawn_load(
        self: Arc<Self>,
        user: String,
        spec: String,
        scope: Option<QueryScope>,
    ) -> Result<tokio::task::JoinHandle<Result<Vec<FunctionRecord>>>>;
}

/// One session as `pg_stat_activity` shows it.
#[derive(Debug, Clone)]
pub(crate) struct ActivityRow {
    pub pid: i32,
    pub user: String,
    pub application_name: String,
    pub backend_start: SystemTime,
    pub xact_start: Option<SystemTime>,
    pub query_start: Option<SystemTime>,
    pub state_change: Option<SystemTime>,
    /// `active`, `idle`, `idle in transaction`, `idle in transaction (aborted)`.
    pub state: &'static str,
    /// The running statement, or the last one when idle.
    pub query: String,
    /// The Wasm function the running statement is in now.
    pub wasm_function: Option<String>,
    /// Guest time of the running (or last) statement so far.
    pub wasm_guest: Option<Duration>,
}

/// The database a view reads, held weakly: the views live in the database's own
/// session template, which must not keep it alive.
pub(crate) type DatabaseHandle = Weak<dyn DatabaseView>;

/// The database behind `handle`, or an error once it is closed.
pub(crate) fn upgrade(handle: &DatabaseHandle) -> DfResult<Arc<dyn DatabaseView>> {
    handle
        .upgrade()
        .ok_or_else(|| DataFusionError::Execution("the database is closed".into()))
}

/// The role a query runs as (empty outside a session).
pub(crate) fn caller(options: &datafusion::common::config::ConfigOptions) -> String {
    options
        .extensions
        .get::<crate::udf::settings::WasmSettings>()
        .map(|s| s.user.clone())
        .unwrap_or_default()
}

/// Every Wasm function overload in creation order.
pub(crate) fn records_in_order(db: &dyn DatabaseView) -> Vec<FunctionRecord> {
    let mut all = db.function_records();
    all.sort_by_key(|r| (r.seq, r.key()));
    all
}

/// The default catalog of a session.
pub(crate) fn default_catalog(ctx: &SessionContext) -> DfResult<Arc<dyn CatalogProvider>> {
    ctx.catalog(CATALOG_NAME)
        .ok_or_else(|| DataFusionError::Internal("default catalog missing".into()))
}
