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

use datafusion::catalog::CatalogProvider;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::prelude::SessionContext;

use crate::error::Result;
use crate::store::catalog::FunctionRecord;
use crate::store::CATALOG_NAME;
use crate::udf::scope::QueryScope;
use crate::wasm::cache::CacheOutcome;
use crate::wasm::tier::CodeTier;

pub(crate) mod pg_catalog;
pub(crate) mod session_info;
pub(crate) mod settings;
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

/// The database a view reads, held weakly: the views live in the database's own
/// session template, which must not keep it alive.
pub(crate) type DatabaseHandle = Weak<dyn DatabaseView>;

/// The database behind `handle`, or an error once it is closed.
pub(crate) fn upgrade(handle: &DatabaseHandle) -> DfResult<Arc<dyn DatabaseView>> {
    handle
        .upgrade()
        .ok_or_else(|| DataFusionError::Execution("the database is closed".into()))
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
