//! Managed tables: Parquet files the catalog names, read as the last commit left them
//! plus the reading session's own uncommitted changes.
//!
//! No statement changes a file in place. INSERT writes a new file; DELETE and UPDATE
//! write a new version of each file they change; TRUNCATE names none. A change becomes
//! the table's at one catalog commit ([`TableStore::commit`]): at the end of the
//! statement outside a transaction block, at COMMIT inside one. Until then only its
//! session sees it; ROLLBACK (or a session that ends) forgets it. A file nothing
//! references any more (a rolled-back write, a version a commit replaced) is deleted
//! when the last query reading it ends ([`DataFile`]'s drop), and any file the catalog
//! does not name is deleted at startup, so a crash at any point leaves the tables as the
//! last commit made them.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, UInt64Array};
use datafusion::arrow::buffer::BooleanBuffer;
use datafusion::arrow::compute::kernels::zip::zip;
use datafusion::arrow::compute::{cast, filter_record_batch, prep_null_mask_filter};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::config::{ParquetColumnOptions, TableParquetOptions};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DFSchema, DataFusionError};
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::sink::{DataSink, DataSinkExec};
use datafusion::error::Result as DfResult;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::parquet::arrow::{AsyncArrowWriter, ParquetRecordBatchStreamBuilder};
use datafusion::parquet::file::properties::WriterPropertiesBuilder;
use datafusion::physical_expr::{create_physical_expr, EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::StreamExt;
use parking_lot::{Mutex, RwLock};

use crate::error::{CancelReason, Error, Result};
use crate::store::catalog::{Catalog, FileRecord};
use crate::store::keys::{self, KeyDelta, KeyIndex, SkipConflicts, UniqueKey};
use crate::store::transaction::{StatementTransaction, TransactionOfSession};
use crate::store::written::WrittenRows;
use crate::udf::scope::QueryScope;

/// Where the managed tables live, and the lock their commits take.
pub(crate) struct TableStore {
    data_dir: PathBuf,
    /// The database's catalog. Weak: a table provider can outlive its database (a
    /// session context kept somewhere), and must not keep the catalog file locked.
    catalog: Weak<Catalog>,
    /// Serializes commits: each checks what it removes against the state it writes.
    commit: Mutex<()>,
}

impl TableStore {
    /// The tables of the database in `data_dir`, committed in `catalog`.
    pub(crate) fn new(data_dir: PathBuf, catalog: &Arc<Catalog>) -> Arc<TableStore> {
        Arc::new(TableStore {
            data_dir,
            catalog: Arc::downgrade(catalog),
            commit: Mutex::new(()),
        })
    }

    fn catalog(&self) -> Result<Arc<Catalog>> {
        self.catalog
            .upgrade()
            .ok_or_else(|| Error::Catalog("the database is closed".into()))
    }

    /// [`Self::commit`], then the compaction of every table it added files to that
    /// now has many small ones ([`TableData::compact`]).
    pub(crate) async fn commit_and_compact(&self, changes: &[TableChange]) -> Result<()> {
        self.commit(changes)?;
        for change in changes {
            if !change.added.is_empty() {
                change.table.compact().await;
            }
        }
        Ok(())
    }

    /// Makes `changes` the tables' at once, in one catalog commit; 40001 if another
    /// transaction committed a change to a file one of them replaces or removes (it
    /// would be lost). Changes to a table dropped meanwhile are dropped with it.
    pub(crate) fn commit(&self, changes: &[TableChange]) -> Result<()> {
        let changes: Vec<&TableChange> = changes
            .iter()
            .filter(|c| !c.table.dropped.load(Ordering::Acquire))
            .filter(|c| !(c.added.is_empty() && c.removed.is_empty()))
            .collect();
        if changes.is_empty() {
            return Ok(());
        }
        let _commit = self.commit.lock();
        for change in &changes {
            let committed = change.table.committed.read().clone();
            if let Some(gone) = change.replaced_meanwhile(&committed) {
                return Err(concurrent_update(&gone.name));
            }
            // Against what other transactions committed meanwhile too.
            change.table.check_keys(&committed, None, &change.keys)?;
        }
        let write = self.catalog()?.change()?;
        for change in &changes {
            let dir = &change.table.dir;
            for file in &change.removed {
                write.remove_file(dir, &file.name)?;
            }
            for file in &change.added {
                write.put_file(dir, &file.name, &file.record)?;
            }
        }
        write.commit()?;
        // Durable: from here on the new versions are the tables'.
        for change in &changes {
            let mut committed = change.table.committed.write();
            for file in &change.added {
                file.delete_on_drop.store(false, Ordering::Release);
            }
            for file in &change.removed {
                file.delete_on_drop.store(true, Ordering::Release);
            }
            *committed = Arc::new(change.apply(&committed));
            for (index, delta) in change.table.keys.iter().zip(&change.keys) {
                index.apply(delta);
            }
        }
        Ok(())
    }
}

/// One data file of a table. Deleted from disk when dropped unless it is committed as
/// part of its table: the last holder of a rolled-back write or of a replaced version
/// (a query still reading it, a transaction) removes it.
pub(crate) struct DataFile {
    /// Its name in the table's directory.
    pub(crate) name: String,
    path: PathBuf,
    pub(crate) record: FileRecord,
    delete_on_drop: AtomicBool,
}

impl DataFile {
    /// A file of `table` the catalog names.
    fn committed(table: &TableData, name: String, record: FileRecord) -> Arc<DataFile> {
        Arc::new(DataFile {
            path: table.path.join(&name),
            name,
            record,
            delete_on_drop: AtomicBool::new(false),
        })
    }
}

impl Drop for DataFile {
    fn drop(&mut self) {
        if self.delete_on_drop.load(Ordering::Acquire) {
            if let Err(e) = std::fs::remove_file(&self.path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(file = %self.path.display(), "could not remove (removed at next start): {e}");
                }
            }
        }
    }
}

impl std::fmt::Debug for DataFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataFile({})", self.name)
    }
}

/// A version of a table's files.
type FileSet = Arc<Vec<Arc<DataFile>>>;

/// What one transaction (or statement) changes in one table.
#[derive(Clone, Debug)]
pub(crate) struct TableChange {
    pub(crate) table: Arc<TableData>,
    /// Files it wrote.
    pub(crate) added: Vec<Arc<DataFile>>,
    /// Committed files it replaces or removes.
    pub(crate) removed: Vec<Arc<DataFile>>,
    /// What it does to each key's values (one per key of the table; empty for a
    /// change that does not change rows, like a compaction's).
    pub(crate) keys: Vec<KeyDelta>,
}

impl TableChange {
    /// Adds `more` (a later statement's change of the same table) to this change: a
    /// file this change wrote and `more` removes is simply no longer written.
    pub(crate) fn absorb(&mut self, more: TableChange) {
        for file in more.removed {
            match self.added.iter().position(|f| Arc::ptr_eq(f, &file)) {
                Some(i) => {
                    self.added.swap_remove(i);
                }
                None => self.removed.push(file),
            }
        }
        self.added.extend(more.added);
        if self.keys.is_empty() {
            self.keys = more.keys;
        } else {
            for (mine, theirs) in self.keys.iter_mut().zip(&more.keys) {
                mine.absorb(theirs);
            }
        }
    }

    /// A file this change removes that is no longer among `committed`: another
    /// transaction changed it since (committing this change would lose that update).
    fn replaced_meanwhile(&self, committed: &[Arc<DataFile>]) -> Option<&Arc<DataFile>> {
        let names: HashSet<&str> = committed.iter().map(|f| f.name.as_str()).collect();
        self.removed
            .iter()
            .find(|f| !names.contains(f.name.as_str()))
    }

    /// `files` as this change leaves them.
    fn apply(&self, files: &[Arc<DataFile>]) -> Vec<Arc<DataFile>> {
        let removed: HashSet<&str> = self.removed.iter().map(|f| f.name.as_str()).collect();
        files
            .iter()
            .filter(|f| !removed.contains(f.name.as_str()))
            .chain(&self.added)
            .cloned()
            .collect()
    }
}

static NEXT_TABLE: AtomicU64 = AtomicU64::new(1);

/// The state of one managed table, shared by its provider and the transactions that
/// change it.
pub(crate) struct TableData {
    store: Arc<TableStore>,
    /// Identifies the table among this process's (transactions key changes by it).
    pub(crate) id: u64,
    /// Its directory relative to the data directory: also its files' catalog key.
    pub(crate) dir: String,
    path: PathBuf,
    schema: SchemaRef,
    /// What INSERT fills in for the columns it is not given.
    defaults: TableRules,
    /// Its keys' committed values, one index per key of `defaults.keys`.
    keys: Vec<Arc<KeyIndex>>,
    parquet: TableParquetOptions,
    committed: RwLock<FileSet>,
    /// Between CREATE TABLE [AS] and its commit: what the fill wrote, committed with the
    /// table's record.
    staged: Mutex<Option<Vec<Arc<DataFile>>>>,
    /// Set when the table is dropped: changes pending for it are dropped too.
    dropped: AtomicBool,
    /// Set while a compaction of the table runs (one at a time).
    compacting: AtomicBool,
}

impl std::fmt::Debug for TableData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TableData({})", self.dir)
    }
}

/// A file of fewer rows is small: single-row INSERTs each write one, and a scan pays
/// for every file it opens.
const SMALL_FILE_ROWS: u64 = 65_536;
/// A table with this many small files has them merged into one after a commit.
const COMPACT_AT: usize = 16;

impl TableData {
    /// Merges the table's small files into one, committed like any other change (a
    /// query reading the old files keeps them until it ends). Runs after the commit
    /// of the statement or block that wrote them; its failure fails nothing (the files
    /// stay as they were, merged at a later commit), and a commit that changed one of
    /// them meanwhile wins. A block still open with a change to one of them fails with
    /// 40001 at its next statement, as it would for any other concurrent commit.
    async fn compact(self: &Arc<Self>) {
        let small: Vec<Arc<DataFile>> = self
            .committed
            .read()
            .iter()
            .filter(|f| f.record.rows < SMALL_FILE_ROWS)
            .cloned()
            .collect();
        if small.len() < COMPACT_AT || self.dropped.load(Ordering::Acquire) {
            return;
        }
        if self.compacting.swap(true, Ordering::AcqRel) {
            return;
        }
        let merged = self.merge(small).await;
        self.compacting.store(false, Ordering::Release);
        match merged {
            Ok(()) | Err(Error::SerializationFailure(_)) => {}
            Err(e) => {
                tracing::warn!(table = %self.dir, "compaction failed (retried at a later commit): {e}")
            }
        }
    }

    /// 23505 if `deltas` (with `before`, the transaction's earlier changes) would give
    /// a key value to two rows, counting those of the `committed` files.
    fn check_keys(
        &self,
        committed: &[Arc<DataFile>],
        before: Option<&[KeyDelta]>,
        deltas: &[KeyDelta],
    ) -> Result<()> {
        if deltas.is_empty() {
            return Ok(());
        }
        let paths: Vec<PathBuf> = committed.iter().map(|f| f.path.clone()).collect();
        for (i, (index, delta)) in self.keys.iter().zip(deltas).enumerate() {
            let earlier = before.and_then(|b| b.get(i));
            index.check(&paths, earlier, delta, &self.schema)?;
        }
        Ok(())
    }

    /// The rows of `batch` no row holds the key of (`skip`'s key, or any), counting
    /// the committed rows, `transaction`'s earlier changes and the statement's own
    /// (`keys`, to which the rows kept are added): ON CONFLICT DO NOTHING.
    fn without_conflicts(
        &self,
        batch: RecordBatch,
        skip: SkipConflicts,
        transaction: Option<&StatementTransaction>,
        keys: &mut [KeyDelta],
    ) -> DfResult<RecordBatch> {
        let committed = self.committed.read().clone();
        let paths: Vec<PathBuf> = committed.iter().map(|f| f.path.clone()).collect();
        // Each key's values, read a row at a time across the keys.
        let mut encoded = self
            .keys
            .iter()
            .map(|index| index.keys_of(&batch).map(Vec::into_iter))
            .collect::<DfResult<Vec<_>>>()?;
        let in_block = transaction.filter(|t| t.in_block());
        let mut keep = Vec::with_capacity(batch.num_rows());
        for _ in 0..batch.num_rows() {
            let row: Vec<Option<keys::Key>> =
                encoded.iter_mut().map(|k| k.next().flatten()).collect();
            let mut conflict = false;
            for (i, (index, key)) in self.keys.iter().zip(&row).enumerate() {
                let Some(key) = key else {
                    continue;
                };
                if skip.key.is_some_and(|k| k != i) {
                    continue;
                }
                let held = match in_block {
                    Some(t) => t.with_keys_of(self.id, |before| {
                        index.held(&paths, key, before.and_then(|b| b.get(i)), &keys[i])
                    })?,
                    None => index.held(&paths, key, None, &keys[i])?,
                };
                if held {
                    conflict = true;
                    break;
                }
            }
            keep.push(!conflict);
            if !conflict {
                for (delta, key) in keys.iter_mut().zip(row) {
                    if let Some(key) = key {
                        delta.add(key, 1);
                    }
                }
            }
        }
        Ok(filter_record_batch(&batch, &BooleanArray::from(keep))?)
    }

    /// Writes the rows of `small` into one new file and commits it in their place.
    async fn merge(self: &Arc<Self>, small: Vec<Arc<DataFile>>) -> Result<()> {
        let table = ManagedTable(self.clone());
        let io = |file: &DataFile, e: &dyn std::fmt::Display| {
            Error::Io(format!("table file {}: {e}", file.path.display()))
        };
        let mut batches = Vec::new();
        for file in &small {
            let input = tokio::fs::File::open(&file.path)
                .await
                .map_err(|e| io(file, &e))?;
            let mut reader = ParquetRecordBatchStreamBuilder::new(input)
                .await
                .and_then(|b| b.build())
                .map_err(|e| io(file, &e))?;
            while let Some(batch) = reader.next().await {
                batches.push(batch.map_err(DataFusionError::from));
            }
        }
        let merged = table
            .write_file(futures::stream::iter(batches), Ok)
            .await
            .map_err(|e| Error::Io(format!("compaction of {}: {e}", self.dir)))?;
        self.store.commit(&[TableChange {
            table: self.clone(),
            added: merged.into_iter().collect(),
            removed: small,
            keys: Vec::new(),
        }])
    }
}

/// What a table's writes follow beyond its column types: the values its columns take
/// when an INSERT does not give them, and its keys.
#[derive(Debug, Default, Clone)]
pub(crate) struct TableRules {
    /// Each DEFAULT expression (`nextval(...)` for serial and identity columns).
    pub(crate) exprs: HashMap<String, Expr>,
    /// The `GENERATED ALWAYS` identity columns, which take no other value.
    pub(crate) always: HashSet<String>,
    /// The `GENERATED BY DEFAULT` identity columns.
    pub(crate) by_default: HashSet<String>,
    /// Its PRIMARY KEY and UNIQUE constraints.
    pub(crate) keys: Vec<UniqueKey>,
}

/// A managed table, as DataFusion reads and writes it.
#[derive(Debug, Clone)]
pub(crate) struct ManagedTable(Arc<TableData>);

impl ManagedTable {
    /// The committed table in `dir` (relative to the data directory) with `schema`
    /// and column `defaults`, its files as the catalog names them.
    pub(crate) fn open(
        store: &Arc<TableStore>,
        dir: &str,
        schema: SchemaRef,
        defaults: TableRules,
    ) -> Result<Self> {
        let table = Self::new(store, dir, schema, defaults, false)?;
        let files = store
            .catalog()?
            .table_files(dir)?
            .into_iter()
            .map(|(name, record)| DataFile::committed(&table.0, name, record))
            .collect();
        *table.0.committed.write() = Arc::new(files);
        Ok(table)
    }

    /// A new table being created: empty, writes kept for [`Self::staged_files`].
    pub(crate) fn staged(
        store: &Arc<TableStore>,
        dir: &str,
        schema: SchemaRef,
        defaults: TableRules,
    ) -> Result<Self> {
        Self::new(store, dir, schema, defaults, true)
    }

    fn new(
        store: &Arc<TableStore>,
        dir: &str,
        schema: SchemaRef,
        defaults: TableRules,
        staged: bool,
    ) -> Result<Self> {
        let path = store.data_dir.join(dir);
        std::fs::create_dir_all(&path)
            .map_err(|e| Error::Io(format!("table directory {dir}: {e}")))?;
        // No min/max statistics for float columns: Parquet leaves NaN out of them, and
        // DataFusion takes them as exact bounds, so a column holding NaN and +Infinity
        // read back as all +Infinity and a range filter could prune a row group holding
        // a matching NaN (apache/datafusion#24804).
        let mut parquet = TableParquetOptions::default();
        for field in schema.fields() {
            if field.data_type().is_floating() {
                parquet.column_specific_options.insert(
                    field.name().clone(),
                    ParquetColumnOptions {
                        statistics_enabled: Some("none".into()),
                        ..Default::default()
                    },
                );
            }
        }
        Ok(ManagedTable(Arc::new(TableData {
            store: store.clone(),
            id: NEXT_TABLE.fetch_add(1, Ordering::Relaxed),
            dir: dir.to_string(),
            path,
            keys: keys::indexes(&defaults.keys, &schema)?,
            schema,
            defaults,
            parquet,
            committed: RwLock::new(Arc::new(Vec::new())),
            staged: Mutex::new(staged.then(Vec::new)),
            dropped: AtomicBool::new(false),
            compacting: AtomicBool::new(false),
        })))
    }

    /// Records every Parquet file of the table's directory as committed: the upgrade
    /// of a table written by a server that read its whole directory.
    pub(crate) fn adopt_directory(&self, change: &crate::store::catalog::Change) -> Result<()> {
        let entries = std::fs::read_dir(&self.0.path)
            .map_err(|e| Error::Io(format!("table directory {}: {e}", self.0.dir)))?;
        let mut files = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".parquet") {
                continue;
            }
            let bytes = entry.metadata().map(|m| m.len()).unwrap_or(0);
            let rows = parquet_rows(&entry.path()).unwrap_or(0);
            let record = FileRecord { bytes, rows };
            change.put_file(&self.0.dir, &name, &record)?;
            files.push(DataFile::committed(&self.0, name, record));
        }
        *self.0.committed.write() = Arc::new(files);
        Ok(())
    }

    /// The files a staged table's fill wrote, for the commit that creates the table;
    /// they are the table's once that commit is done ([`Self::created`]).
    pub(crate) fn staged_files(&self) -> Vec<Arc<DataFile>> {
        self.0.staged.lock().clone().unwrap_or_default()
    }

    /// The commit that created the table is done: what its fill wrote is its first
    /// version, and from now on it is a table like any other.
    pub(crate) fn created(&self) {
        let files = self.0.staged.lock().take().unwrap_or_default();
        for file in &files {
            file.delete_on_drop.store(false, Ordering::Release);
        }
        *self.0.committed.write() = Arc::new(files);
    }

    /// The table was dropped: changes pending for it are dropped too, and its files go
    /// with its directory.
    pub(crate) fn dropped(&self) {
        self.0.dropped.store(true, Ordering::Release);
    }

    /// The table's PRIMARY KEY and UNIQUE constraints.
    pub(crate) fn keys(&self) -> &[UniqueKey] {
        &self.0.defaults.keys
    }

    /// PostgreSQL's `attidentity` of `column`: `a` (ALWAYS), `d` (BY DEFAULT) or empty.
    pub(crate) fn identity(&self, column: &str) -> &'static str {
        if self.0.defaults.always.contains(column) {
            "a"
        } else if self.0.defaults.by_default.contains(column) {
            "d"
        } else {
            ""
        }
    }

    /// The `GENERATED ALWAYS AS IDENTITY` columns: a statement may not set them.
    pub(crate) fn generated_always(&self) -> &HashSet<String> {
        &self.0.defaults.always
    }

    /// The names of the files the last commit left (startup removes the others).
    pub(crate) fn committed_names(&self) -> HashSet<String> {
        self.0
            .committed
            .read()
            .iter()
            .map(|f| f.name.clone())
            .collect()
    }

    /// The files a statement of `state`'s session sees: the committed version (as of
    /// now: each statement reads the latest commit) with its transaction's changes.
    /// 40001 if another transaction has since committed a change to a file this one
    /// replaced: the two versions would both be read (rows twice), and this
    /// transaction's commit is bound to fail anyway.
    fn files_for(&self, state: &dyn Session) -> Result<FileSet> {
        if let Some(staged) = &*self.0.staged.lock() {
            return Ok(Arc::new(staged.clone()));
        }
        let committed = self.0.committed.read().clone();
        let Some(change) = transaction_of(state).and_then(|t| t.change_of(self.0.id)) else {
            return Ok(committed);
        };
        if let Some(gone) = change.replaced_meanwhile(&committed) {
            return Err(concurrent_update(&gone.name));
        }
        Ok(Arc::new(change.apply(&committed)))
    }

    /// A DataFusion listing table over exactly `files`.
    fn listing(&self, files: &[Arc<DataFile>]) -> DfResult<ListingTable> {
        let urls = files
            .iter()
            .map(|f| ListingTableUrl::parse(f.path.display().to_string()))
            .collect::<DfResult<Vec<_>>>()?;
        let format = datafusion::datasource::file_format::parquet::ParquetFormat::default()
            .with_options(self.0.parquet.clone());
        let options = ListingOptions::new(Arc::new(format)).with_file_extension(".parquet");
        let config = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(options)
            .with_schema(self.0.schema.clone());
        ListingTable::try_new(config)
    }
}

/// The transaction of the session `state` plans for, if it set one.
fn transaction_of(state: &dyn Session) -> Option<StatementTransaction> {
    state
        .config()
        .get_extension::<TransactionOfSession>()
        .map(|t| t.0.for_statement())
}

/// Where the statement `state` plans for keeps the rows it writes, if it has a
/// RETURNING clause.
fn written_of(state: &dyn Session) -> Option<WrittenRows> {
    state
        .config_options()
        .extensions
        .get::<WrittenRows>()
        .cloned()
}

/// The scope of the query `context` runs for.
fn scope_of(context: &TaskContext) -> Option<QueryScope> {
    context
        .session_config()
        .options()
        .extensions
        .get::<QueryScope>()
        .cloned()
}

/// Keeps `files` on disk until `state`'s query ends, so a commit that replaces them
/// meanwhile does not delete what its scan has yet to open.
fn keep_for_query(state: &dyn Session, files: &FileSet) {
    if let Some(scope) = state.config_options().extensions.get::<QueryScope>() {
        scope.keep_until_end(Arc::new(files.clone()));
    }
}

/// The rows in a Parquet file's footer.
fn parquet_rows(path: &std::path::Path) -> Option<u64> {
    let file = std::fs::File::open(path).ok()?;
    let reader = datafusion::parquet::file::reader::SerializedFileReader::new(file).ok()?;
    use datafusion::parquet::file::reader::FileReader;
    u64::try_from(reader.metadata().file_metadata().num_rows()).ok()
}

#[async_trait::async_trait]
impl TableProvider for ManagedTable {
    fn schema(&self) -> SchemaRef {
        self.0.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn get_column_default(&self, column: &str) -> Option<&Expr> {
        self.0.defaults.exprs.get(column)
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // The Parquet scan prunes with them; the rows are filtered again above it.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let files = self.files_for(state)?;
        if files.is_empty() {
            let schema = match projection {
                Some(p) => Arc::new(self.0.schema.project(p)?),
                None => self.0.schema.clone(),
            };
            return Ok(Arc::new(EmptyExec::new(schema)));
        }
        keep_for_query(state, &files);
        self.listing(&files)?
            .scan(state, projection, filters, limit)
            .await
    }

    async fn insert_into(
        &self,
        state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if insert_op != InsertOp::Append {
            return Err(Error::NotSupported(format!("{insert_op} into a table")).into());
        }
        let sink = TableSink {
            table: self.clone(),
            transaction: transaction_of(state),
            written: written_of(state),
            skip: state
                .config_options()
                .extensions
                .get::<SkipConflicts>()
                .copied(),
            accepts: Arc::new(Schema::new_with_metadata(
                self.0
                    .schema
                    .fields()
                    .iter()
                    .map(|f| f.as_ref().clone().with_nullable(true))
                    .collect::<Vec<_>>(),
                self.0.schema.metadata().clone(),
            )),
        };
        Ok(Arc::new(DataSinkExec::new(input, Arc::new(sink), None)))
    }

    async fn delete_from(
        &self,
        state: &dyn Session,
        filters: Vec<Expr>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let filter = self.condition(state, &filters)?;
        RewriteExec::plan(self, state, Rewrite::Delete { filter }).await
    }

    async fn update(
        &self,
        state: &dyn Session,
        assignments: Vec<(String, Expr)>,
        filters: Vec<Expr>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let filter = self.condition(state, &filters)?;
        let mut set = Vec::new();
        for (name, expr) in assignments {
            let index = self.0.schema.index_of(&name).map_err(|_| {
                Error::UndefinedColumn(format!(
                    "column \"{}\" of the table does not exist",
                    crate::error::log_text(&name)
                ))
            })?;
            // An assignment of the column to itself is what the planner gives for the
            // columns the statement does not set.
            if matches!(&expr, Expr::Column(c) if c.name == name) {
                continue;
            }
            set.push((index, self.physical(state, &expr)?));
        }
        RewriteExec::plan(self, state, Rewrite::Update { filter, set }).await
    }

    async fn truncate(&self, state: &dyn Session) -> DfResult<Arc<dyn ExecutionPlan>> {
        RewriteExec::plan(self, state, Rewrite::Truncate).await
    }
}

impl ManagedTable {
    /// The WHERE of a DELETE or UPDATE as one predicate (`None`: every row).
    fn condition(
        &self,
        state: &dyn Session,
        filters: &[Expr],
    ) -> DfResult<Option<Arc<dyn PhysicalExpr>>> {
        let Some(all) = filters.iter().cloned().reduce(Expr::and) else {
            return Ok(None);
        };
        Ok(Some(self.physical(state, &all)?))
    }

    /// `expr`, over the table's columns, as the rewrite evaluates it.
    fn physical(&self, state: &dyn Session, expr: &Expr) -> DfResult<Arc<dyn PhysicalExpr>> {
        let df_schema = DFSchema::try_from(self.0.schema.clone())?;
        create_physical_expr(
            expr,
            &df_schema,
            state.execution_props(),
            &PhysicalPlanningContext::default(),
        )
    }

    /// Ends a statement's change of this table: into its session's transaction block,
    /// or committed now, past the statement's commit point (`scope`'s): a cancel before
    /// it stops the change, one after it is ignored, so a client is never told
    /// "canceled" about a change that was committed (nor while compaction runs).
    async fn finish(
        &self,
        transaction: Option<&StatementTransaction>,
        scope: Option<&QueryScope>,
        change: TableChange,
    ) -> Result<()> {
        if let Some(staged) = &mut *self.0.staged.lock() {
            // A CREATE TABLE AS's fill: committed with the table, its keys checked
            // against none (the table is new).
            self.0.check_keys(&[], None, &change.keys)?;
            for (index, delta) in self.0.keys.iter().zip(&change.keys) {
                index.apply(delta);
            }
            staged.extend(change.added);
            return Ok(());
        }
        match transaction {
            Some(t) if t.in_block() => {
                // Checked now, so the statement that breaks a key is the one that fails
                // (the commit checks again against what others committed meanwhile).
                if !change.keys.is_empty() {
                    let committed = self.0.committed.read().clone();
                    t.with_keys_of(self.0.id, |before| {
                        self.0.check_keys(&committed, before, &change.keys)
                    })?;
                }
                t.add(change)
            }
            _ => {
                if scope.is_some_and(|s| !s.pass_commit_point()) {
                    return Err(Error::QueryCanceled(CancelReason::UserRequest));
                }
                self.0.store.commit_and_compact(&[change]).await
            }
        }
    }

    /// Writes `batches` into a new file of the table; `None` if they held no row. Each
    /// batch, in the table's types, goes through `admit` first: what it returns is
    /// stored (all its rows, or those it keeps).
    async fn write_file(
        &self,
        mut batches: impl futures::Stream<Item = DfResult<RecordBatch>> + Unpin,
        mut admit: impl FnMut(RecordBatch) -> DfResult<RecordBatch>,
    ) -> DfResult<Option<Arc<DataFile>>> {
        let name = format!("{}.parquet", random_id());
        let path = self.0.path.join(&name);
        // Deleted if anything below fails, or if the write is never committed.
        let mut file = DataFile {
            path: path.clone(),
            name,
            record: FileRecord { bytes: 0, rows: 0 },
            delete_on_drop: AtomicBool::new(true),
        };
        let out = tokio::fs::File::create(&path)
            .await
            .map_err(|e| Error::Io(format!("table file {}: {e}", path.display())))?;
        let mut options = self.0.parquet.clone();
        options.arrow_schema(&self.0.schema);
        let properties = WriterPropertiesBuilder::try_from(&options)?.build();
        let mut writer = AsyncArrowWriter::try_new(out, self.0.schema.clone(), Some(properties))?;
        let mut rows = 0u64;
        while let Some(batch) = batches.next().await {
            let batch = admit(self.conform(batch?)?)?;
            if batch.num_rows() == 0 {
                continue;
            }
            rows += batch.num_rows() as u64;
            writer.write(&batch).await?;
        }
        if rows == 0 {
            return Ok(None);
        }
        // The footer, then the data flushed to the file.
        writer.finish().await?;
        let out = writer.into_inner();
        // Durable before a commit names it.
        out.sync_all()
            .await
            .map_err(|e| Error::Io(format!("table file {}: {e}", path.display())))?;
        let bytes = out.metadata().await.map(|m| m.len()).unwrap_or(0);
        file.record = FileRecord { bytes, rows };
        Ok(Some(Arc::new(file)))
    }

    /// `batch` with the table's own schema; 23502 for a NULL in a NOT NULL column.
    fn conform(&self, batch: RecordBatch) -> DfResult<RecordBatch> {
        let schema = &self.0.schema;
        let mut columns = Vec::with_capacity(batch.num_columns());
        for (column, field) in batch.columns().iter().zip(schema.fields()) {
            if !field.is_nullable() && column.null_count() > 0 {
                return Err(not_null_violation(field.name()).into());
            }
            columns.push(if column.data_type() == field.data_type() {
                column.clone()
            } else {
                cast(column, field.data_type())?
            });
        }
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }
}

/// PostgreSQL's 40001 for a transaction that would lose another's update of `file`.
fn concurrent_update(file: &str) -> Error {
    Error::SerializationFailure(format!(
        "could not serialize access due to concurrent update (file {file} of the table was changed by another transaction)"
    ))
}

/// PostgreSQL's 23502 for a NULL into column `name`.
fn not_null_violation(name: &str) -> Error {
    Error::NotNullViolation(format!(
        "null value in column \"{}\" violates not-null constraint",
        crate::error::log_text(name)
    ))
}

/// INSERT's destination: one new file per statement.
#[derive(Debug)]
struct TableSink {
    table: ManagedTable,
    transaction: Option<StatementTransaction>,
    /// Where a RETURNING clause takes the inserted rows from.
    written: Option<WrittenRows>,
    /// ON CONFLICT DO NOTHING.
    skip: Option<SkipConflicts>,
    /// The table's schema with every column nullable: DataFusion checks NOT NULL
    /// against the sink's schema with an error of its own, where the table reports
    /// PostgreSQL's 23502 naming the column ([`ManagedTable::conform`]).
    accepts: SchemaRef,
}

impl DisplayAs for TableSink {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "TableSink({})", self.table.0.dir)
    }
}

#[async_trait::async_trait]
impl DataSink for TableSink {
    fn schema(&self) -> &SchemaRef {
        &self.accepts
    }

    async fn write_all(
        &self,
        data: SendableRecordBatchStream,
        context: &Arc<TaskContext>,
    ) -> DfResult<u64> {
        let table = &self.table.0;
        let mut keys = vec![KeyDelta::default(); table.keys.len()];
        let admit = |batch: RecordBatch| {
            let batch = match self.skip {
                Some(skip) => {
                    table.without_conflicts(batch, skip, self.transaction.as_ref(), &mut keys)?
                }
                None => {
                    for (index, delta) in table.keys.iter().zip(keys.iter_mut()) {
                        index.count(&batch, 1, delta)?;
                    }
                    batch
                }
            };
            if let Some(written) = &self.written {
                written.add(batch.clone());
            }
            Ok(batch)
        };
        let Some(file) = self.table.write_file(data, admit).await? else {
            return Ok(0);
        };
        let rows = file.record.rows;
        let change = TableChange {
            table: table.clone(),
            added: vec![file],
            removed: Vec::new(),
            keys,
        };
        self.table
            .finish(
                self.transaction.as_ref(),
                scope_of(context).as_ref(),
                change,
            )
            .await?;
        Ok(rows)
    }
}

/// What a [`RewriteExec`] does to each file.
enum Rewrite {
    /// Removes the rows `filter` is true for (every row without one).
    Delete {
        filter: Option<Arc<dyn PhysicalExpr>>,
    },
    /// Sets columns (by index) to their expressions where `filter` is true.
    Update {
        filter: Option<Arc<dyn PhysicalExpr>>,
        set: Vec<(usize, Arc<dyn PhysicalExpr>)>,
    },
    /// Removes every file.
    Truncate,
}

/// A file a rewrite sees, with the plan that reads it whole (none for TRUNCATE).
type FileToRewrite = (Arc<DataFile>, Option<Arc<dyn ExecutionPlan>>);

/// DELETE, UPDATE and TRUNCATE of a managed table: each file with a row to change is
/// replaced by a new version without it (or with it changed); the statement's change
/// is committed (or kept in its transaction) when every file is done. One row, the
/// count of rows changed.
struct RewriteExec {
    table: ManagedTable,
    transaction: Option<StatementTransaction>,
    /// Where a RETURNING clause takes the deleted rows or the updated rows' new
    /// versions from.
    written: Option<WrittenRows>,
    rewrite: Arc<Rewrite>,
    /// Each file the statement sees.
    files: Vec<FileToRewrite>,
    properties: Arc<PlanProperties>,
}

impl std::fmt::Debug for RewriteExec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RewriteExec({})", self.table.0.dir)
    }
}

impl RewriteExec {
    async fn plan(
        table: &ManagedTable,
        state: &dyn Session,
        rewrite: Rewrite,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let seen = table.files_for(state)?;
        keep_for_query(state, &seen);
        let mut files = Vec::with_capacity(seen.len());
        for file in seen.iter() {
            let read = match rewrite {
                Rewrite::Truncate => None,
                _ => Some(
                    table
                        .listing(std::slice::from_ref(file))?
                        .scan(state, None, &[], None)
                        .await?,
                ),
            };
            files.push((file.clone(), read));
        }
        let schema = Arc::new(Schema::new(vec![Field::new(
            "count",
            DataType::UInt64,
            false,
        )]));
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        Ok(Arc::new(RewriteExec {
            table: table.clone(),
            transaction: transaction_of(state),
            written: written_of(state),
            rewrite: Arc::new(rewrite),
            files,
            properties: Arc::new(properties),
        }))
    }

    /// Runs the rewrite; returns the rows changed.
    async fn run(
        table: ManagedTable,
        transaction: Option<StatementTransaction>,
        written: Option<WrittenRows>,
        rewrite: Arc<Rewrite>,
        files: Vec<FileToRewrite>,
        context: Arc<TaskContext>,
    ) -> DfResult<u64> {
        let keys = &table.0.keys;
        let mut change = TableChange {
            table: table.0.clone(),
            added: Vec::new(),
            removed: Vec::new(),
            keys: vec![KeyDelta::default(); keys.len()],
        };
        let detail = written.is_some() || !keys.is_empty();
        let mut changed = 0u64;
        for (file, read) in files {
            let Some(read) = read else {
                // TRUNCATE: the file goes whole, its keys with it.
                changed += file.record.rows;
                for (index, delta) in keys.iter().zip(change.keys.iter_mut()) {
                    index.read_keys(&file.path, -1, delta)?;
                }
                change.removed.push(file);
                continue;
            };
            let mut batches = Vec::new();
            let mut file_changed = 0u64;
            for partition in 0..read.properties().partitioning.partition_count() {
                let mut stream = read.execute(partition, context.clone())?;
                while let Some(batch) = stream.next().await {
                    let applied = rewrite.apply(batch?, detail)?;
                    file_changed += applied.changed;
                    batches.push(applied.kept);
                    for (index, delta) in keys.iter().zip(change.keys.iter_mut()) {
                        if let Some(before) = &applied.before {
                            index.count(before, -1, delta)?;
                        }
                        if let Some(after) = &applied.after {
                            index.count(after, 1, delta)?;
                        }
                    }
                    if let Some(written) = &written {
                        // RETURNING: the rows as the statement leaves them, or deleted.
                        if let Some(rows) = applied.after.or(applied.before) {
                            written.add(rows);
                        }
                    }
                }
            }
            if file_changed == 0 {
                continue;
            }
            changed += file_changed;
            let kept = futures::stream::iter(batches.into_iter().map(Ok));
            if let Some(new) = table.write_file(kept, Ok).await? {
                change.added.push(new);
            }
            change.removed.push(file);
        }
        table
            .finish(transaction.as_ref(), scope_of(&context).as_ref(), change)
            .await?;
        Ok(changed)
    }
}

/// One batch as a rewrite leaves it.
struct Applied {
    /// The batch's rows as they stay in the table.
    kept: RecordBatch,
    /// How many it changed.
    changed: u64,
    /// The rows changed, as they were (deleted or updated), when asked for.
    before: Option<RecordBatch>,
    /// The rows updated, as they become, when asked for.
    after: Option<RecordBatch>,
}

impl Applied {
    fn unchanged(batch: RecordBatch) -> Applied {
        Applied {
            kept: batch,
            changed: 0,
            before: None,
            after: None,
        }
    }
}

impl Rewrite {
    /// `batch` as the statement leaves it, with how many of its rows it changed and,
    /// when `detail` asks, those rows before and after.
    fn apply(&self, batch: RecordBatch, detail: bool) -> DfResult<Applied> {
        let rows = batch.num_rows();
        let mask = |filter: &Option<Arc<dyn PhysicalExpr>>| -> DfResult<BooleanArray> {
            Ok(match filter {
                None => BooleanArray::new(BooleanBuffer::new_set(rows), None),
                Some(filter) => {
                    let values = filter.evaluate(&batch)?.into_array(rows)?;
                    let values =
                        values
                            .as_any()
                            .downcast_ref::<BooleanArray>()
                            .ok_or_else(|| {
                                DataFusionError::Plan("WHERE must be a boolean condition".into())
                            })?;
                    // NULL is not true: the row stays as it is (the kernel needs nulls).
                    match values.nulls() {
                        Some(_) => prep_null_mask_filter(values),
                        None => values.clone(),
                    }
                }
            })
        };
        match self {
            Rewrite::Delete { filter } => {
                let hit = mask(filter)?;
                let n = hit.true_count() as u64;
                let keep = datafusion::arrow::compute::not(&hit)?;
                let before = match detail && n > 0 {
                    true => Some(filter_record_batch(&batch, &hit)?),
                    false => None,
                };
                Ok(Applied {
                    kept: filter_record_batch(&batch, &keep)?,
                    changed: n,
                    before,
                    after: None,
                })
            }
            Rewrite::Update { filter, set } => {
                let hit = mask(filter)?;
                let n = hit.true_count() as u64;
                if n == 0 {
                    return Ok(Applied::unchanged(batch));
                }
                let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
                for (index, expr) in set {
                    let field = batch.schema().field(*index).clone();
                    // Evaluated only on the rows it changes: a division by zero in a row
                    // the WHERE leaves alone is not an error.
                    let new = expr.evaluate_selection(&batch, &hit)?.into_array(rows)?;
                    let new = if new.data_type() == field.data_type() {
                        new
                    } else {
                        cast(&new, field.data_type())?
                    };
                    let column = zip(&hit, &new.as_ref(), &columns[*index].as_ref())?;
                    if !field.is_nullable() && column.null_count() > 0 {
                        return Err(not_null_violation(field.name()).into());
                    }
                    columns[*index] = column;
                }
                let updated = RecordBatch::try_new(batch.schema(), columns)?;
                let (before, after) = match detail {
                    true => (
                        Some(filter_record_batch(&batch, &hit)?),
                        Some(filter_record_batch(&updated, &hit)?),
                    ),
                    false => (None, None),
                };
                Ok(Applied {
                    kept: updated,
                    changed: n,
                    before,
                    after,
                })
            }
            Rewrite::Truncate => Ok(Applied::unchanged(batch)),
        }
    }

    fn expressions(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        match self {
            Rewrite::Delete { filter } => filter.iter().collect(),
            Rewrite::Update { filter, set } => {
                filter.iter().chain(set.iter().map(|(_, e)| e)).collect()
            }
            Rewrite::Truncate => Vec::new(),
        }
    }
}

impl DisplayAs for RewriteExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let what = match *self.rewrite {
            Rewrite::Delete { .. } => "Delete",
            Rewrite::Update { .. } => "Update",
            Rewrite::Truncate => "Truncate",
        };
        write!(f, "TableRewriteExec: {what}, files={}", self.files.len())
    }
}

impl ExecutionPlan for RewriteExec {
    fn name(&self) -> &'static str {
        "TableRewriteExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        for expr in self.rewrite.expressions() {
            if f(expr)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        _: Vec<Arc<dyn ExecutionPlan>>,
        _: ReplaceChildrenOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        _partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let schema = self.properties.eq_properties.schema().clone();
        let run = Self::run(
            self.table.clone(),
            self.transaction.clone(),
            self.written.clone(),
            self.rewrite.clone(),
            self.files.clone(),
            context,
        );
        let out = schema.clone();
        let stream = futures::stream::once(async move {
            let changed = run.await?;
            let count: ArrayRef = Arc::new(UInt64Array::from(vec![changed]));
            Ok(RecordBatch::try_new(out, vec![count])?)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}

/// A random name for a new file or directory.
pub(crate) fn random_id() -> String {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        b = crate::store::catalog::now().to_le_bytes();
    }
    hex::encode(b)
}
