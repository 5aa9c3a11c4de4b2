//! PRIMARY KEY and UNIQUE: the set of each key's committed values, kept in memory,
//! and what each change does to it.
//!
//! A change counts, per key value, the rows it adds and removes ([`KeyDelta`]): an
//! INSERT adds its rows' keys, a DELETE removes them, an UPDATE both. A statement is
//! checked when it ends, against the committed values and its transaction's earlier
//! statements; the commit checks again, under the commit lock, against what other
//! transactions committed meanwhile, so two transactions that insert the same key
//! cannot both commit. Rows with a NULL in the key are not checked (UNIQUE lets NULLs
//! repeat; a PRIMARY KEY's columns are NOT NULL). The committed set is built from the
//! table's files at the first change that needs it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::error::Result as DfResult;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::arrow::ProjectionMask;
use parking_lot::Mutex;

use crate::error::{log_text, Error, Result};

/// One encoded key value (the key columns of one row, in Arrow's row format).
pub(crate) type Key = Box<[u8]>;

/// `INSERT ... ON CONFLICT DO NOTHING`, in the statement's configuration: rows whose
/// key some row already holds are skipped, for the key at this index of the table's
/// keys (`ON CONFLICT (columns)`) or for any of them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SkipConflicts {
    pub(crate) key: Option<usize>,
}

crate::store::internal_extension!(SkipConflicts, "wasmudf_skip_conflicts");

/// A PRIMARY KEY or UNIQUE constraint of a table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UniqueKey {
    /// The constraint's name (`t_pkey`, `t_a_key`), as errors and the catalog name it.
    pub(crate) name: String,
    /// Its columns, by index in the table's schema.
    pub(crate) columns: Vec<usize>,
    pub(crate) primary: bool,
}

/// A key and the values of it committed.
pub(crate) struct KeyIndex {
    pub(crate) key: UniqueKey,
    converter: RowConverter,
    /// `None` until a change first needs it.
    committed: Mutex<Option<HashSet<Key>>>,
}

impl std::fmt::Debug for KeyIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyIndex({})", self.key.name)
    }
}

/// What a change does to one key's values: rows added (positive) or removed
/// (negative) per value.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyDelta(HashMap<Key, i64>);

impl KeyDelta {
    pub(crate) fn add(&mut self, key: Key, n: i64) {
        *self.0.entry(key).or_default() += n;
    }

    pub(crate) fn absorb(&mut self, more: &KeyDelta) {
        for (k, n) in &more.0 {
            *self.0.entry(k.clone()).or_default() += n;
        }
    }
}

impl KeyIndex {
    pub(crate) fn new(key: UniqueKey, schema: &SchemaRef) -> Result<KeyIndex> {
        let fields = key
            .columns
            .iter()
            .map(|&i| SortField::new(schema.field(i).data_type().clone()))
            .collect();
        let converter = RowConverter::new(fields)
            .map_err(|e| Error::NotSupported(format!("a key of these column types: {e}")))?;
        Ok(KeyIndex {
            key,
            converter,
            committed: Mutex::new(None),
        })
    }

    /// Adds `sign` (1 or -1) per row of `batch` (the table's columns) to `delta`.
    pub(crate) fn count(
        &self,
        batch: &RecordBatch,
        sign: i64,
        delta: &mut KeyDelta,
    ) -> DfResult<()> {
        let columns: Vec<ArrayRef> = self
            .key
            .columns
            .iter()
            .map(|&i| batch.column(i).clone())
            .collect();
        self.count_columns(&columns, sign, delta)
    }

    fn count_columns(&self, columns: &[ArrayRef], sign: i64, delta: &mut KeyDelta) -> DfResult<()> {
        let rows = self.converter.convert_columns(columns)?;
        for (i, row) in rows.iter().enumerate() {
            if columns.iter().any(|c| c.is_null(i)) {
                continue;
            }
            *delta.0.entry(row.data().into()).or_default() += sign;
        }
        Ok(())
    }

    /// The key of each row of `batch` (the table's columns); `None` where it holds a
    /// NULL.
    pub(crate) fn keys_of(&self, batch: &RecordBatch) -> DfResult<Vec<Option<Key>>> {
        let columns: Vec<ArrayRef> = self
            .key
            .columns
            .iter()
            .map(|&i| batch.column(i).clone())
            .collect();
        let rows = self.converter.convert_columns(&columns)?;
        Ok(rows
            .iter()
            .enumerate()
            .map(|(i, row)| (!columns.iter().any(|c| c.is_null(i))).then(|| row.data().into()))
            .collect())
    }

    /// Whether a row holds `key`: a committed one, with `before` (the transaction's
    /// earlier changes) and `delta` (the statement's) counted.
    pub(crate) fn held(
        &self,
        files: &[std::path::PathBuf],
        key: &[u8],
        before: Option<&KeyDelta>,
        delta: &KeyDelta,
    ) -> Result<bool> {
        let mut committed = self.committed.lock();
        let set = self.built(&mut committed, files)?;
        let count = |d: Option<&KeyDelta>| d.and_then(|d| d.0.get(key)).copied().unwrap_or(0);
        Ok(i64::from(set.contains(key)) + count(before) + count(Some(delta)) > 0)
    }

    /// 23505 if a value of `delta` (with `before`, the transaction's earlier changes)
    /// would be held by more than one row, counting the committed ones. Builds the
    /// committed set first if need be, from `files`.
    pub(crate) fn check(
        &self,
        files: &[std::path::PathBuf],
        before: Option<&KeyDelta>,
        delta: &KeyDelta,
        schema: &SchemaRef,
    ) -> Result<()> {
        let mut committed = self.committed.lock();
        let set = self.built(&mut committed, files)?;
        for (k, n) in &delta.0 {
            if *n <= 0 {
                continue;
            }
            let earlier = before.and_then(|b| b.0.get(k)).copied().unwrap_or(0);
            let held = i64::from(set.contains(k)) + earlier + n;
            if held > 1 {
                return Err(self.violation(k, schema));
            }
        }
        Ok(())
    }

    /// Makes `delta` part of the committed values (after its commit).
    pub(crate) fn apply(&self, delta: &KeyDelta) {
        let mut committed = self.committed.lock();
        let Some(set) = committed.as_mut() else {
            // Not built yet: it will be, from the files this commit left.
            return;
        };
        for (k, n) in &delta.0 {
            match n.cmp(&0) {
                std::cmp::Ordering::Greater => {
                    set.insert(k.clone());
                }
                std::cmp::Ordering::Less => {
                    set.remove(k);
                }
                std::cmp::Ordering::Equal => {}
            }
        }
    }

    fn built<'a>(
        &self,
        committed: &'a mut Option<HashSet<Key>>,
        files: &[std::path::PathBuf],
    ) -> Result<&'a HashSet<Key>> {
        if committed.is_none() {
            let mut delta = KeyDelta::default();
            for path in files {
                self.read_keys(path, 1, &mut delta)?;
            }
            *committed = Some(delta.0.into_keys().collect());
        }
        committed
            .as_ref()
            .ok_or_else(|| Error::Runtime("key index not built".into()))
    }

    /// Adds `sign` per row of one table file to `delta`.
    pub(crate) fn read_keys(
        &self,
        path: &std::path::Path,
        sign: i64,
        delta: &mut KeyDelta,
    ) -> Result<()> {
        let io =
            |e: &dyn std::fmt::Display| Error::Io(format!("table file {}: {e}", path.display()));
        let file = std::fs::File::open(path).map_err(|e| io(&e))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| io(&e))?;
        let mask =
            ProjectionMask::roots(builder.parquet_schema(), self.key.columns.iter().copied());
        // The projection keeps the schema's order: map each key column to its place.
        let mut order: Vec<usize> = self.key.columns.clone();
        order.sort_unstable();
        let reader = builder.with_projection(mask).build().map_err(|e| io(&e))?;
        for batch in reader {
            let batch = batch.map_err(|e| io(&e))?;
            let columns: Vec<ArrayRef> = self
                .key
                .columns
                .iter()
                .filter_map(|c| order.iter().position(|o| o == c))
                .map(|i| batch.column(i).clone())
                .collect();
            self.count_columns(&columns, sign, delta)
                .map_err(|e| io(&e))?;
        }
        Ok(())
    }

    /// PostgreSQL's 23505, naming the key and the value.
    fn violation(&self, key: &[u8], schema: &SchemaRef) -> Error {
        let names: Vec<&str> = self
            .key
            .columns
            .iter()
            .map(|&i| schema.field(i).name().as_str())
            .collect();
        let parser = self.converter.parser();
        let values = self
            .converter
            .convert_rows([parser.parse(key)])
            .map(|columns| {
                columns
                    .iter()
                    .map(|c| {
                        datafusion::arrow::util::display::array_value_to_string(c, 0)
                            .unwrap_or_default()
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        Error::UniqueViolation(format!(
            "duplicate key value violates unique constraint \"{}\" (Key ({})=({}) already exists)",
            log_text(&self.key.name),
            log_text(&names.join(", ")),
            log_text(&values)
        ))
    }
}

/// The key indexes of a table with `keys`.
pub(crate) fn indexes(keys: &[UniqueKey], schema: &SchemaRef) -> Result<Vec<Arc<KeyIndex>>> {
    keys.iter()
        .map(|k| KeyIndex::new(k.clone(), schema).map(Arc::new))
        .collect()
}
