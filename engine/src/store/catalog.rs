//! The persistent catalog: functions, module bytes, tables and schemas in one redb file.
//!
//! Every DDL statement is one redb write transaction (copy-on-write B-trees, fsync on
//! commit), so a process killed at any instant leaves either the state before the
//! statement or the state after it. Module bytes live in the same file, keyed by
//! their SHA-256: a module is written in the transaction that first references it and
//! deleted in the transaction that drops its last reference, so no orphan can survive
//! a crash.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use datafusion::logical_expr::Volatility;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::wasm::signature::FunctionKind;
pub(crate) use crate::wasm::signature::{kind_word, volatility_word};

const FUNCTIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("functions");
const MODULES: TableDefinition<&str, &[u8]> = TableDefinition::new("modules");
const RELATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("relations");
const SCHEMAS: TableDefinition<&str, &[u8]> = TableDefinition::new("schemas");
const META: TableDefinition<&str, &str> = TableDefinition::new("meta");
/// The data files of every managed table: `<table dir>/<file name>` → [`FileRecord`].
/// A file is part of its table exactly when it has a record here.
const TABLE_FILES: TableDefinition<&str, &[u8]> = TableDefinition::new("table_files");
/// Sequences (of serial and identity columns): `schema.name` → [`SequenceRecord`].
const SEQUENCES: TableDefinition<&str, &[u8]> = TableDefinition::new("sequences");

/// Bumped when a record layout changes incompatibly; an unknown version refuses to open.
/// Version 2 names each table's files in [`TABLE_FILES`]; version 1 read whatever
/// Parquet files a table's directory held, and is upgraded at the first start
/// ([`Catalog::files_recorded`]).
const FORMAT_VERSION: &str = "2";
/// The version before, whose tables are upgraded by recording their files.
const FORMAT_UNRECORDED_FILES: &str = "1";

/// One SQL function as stored: enough to rebuild it from its module after a restart.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct FunctionRecord {
    /// SQL name, already identifier-normalized.
    pub name: String,
    /// Schema the function was created in.
    pub schema: String,
    /// SQL spelling of the argument types (the overload key).
    pub arg_types: Vec<String>,
    /// SQL spelling of the result type.
    pub returns: String,
    /// Scalar or aggregate, stored as `scalar` / `aggregate`.
    #[serde(with = "kind_words")]
    pub kind: FunctionKind,
    /// Hex SHA-256 of the module.
    pub module: String,
    /// The function's name inside the component.
    pub export: String,
    /// Stored as `immutable`, `stable` or `volatile`.
    #[serde(with = "volatility_words")]
    pub volatility: Volatility,
    /// Strict (null on null input) or called on null input.
    pub strict: bool,
    /// Per-function limit overrides.
    pub limits: StoredLimits,
    /// Seconds since the Unix epoch.
    pub created: u64,
    /// Creation order: overloads are listed (and tried on ties) in this order.
    #[serde(default)]
    pub seq: u64,
    /// Role that created it.
    pub owner: String,
}

impl FunctionRecord {
    /// The catalog key: one entry per overload.
    pub fn key(&self) -> String {
        overload_key(&self.name, &self.arg_types)
    }
}

/// Serde for one enum field stored as its catalog word: an unknown word is a corrupt
/// record (an error at load), never a silent default.
macro_rules! stored_as_word {
    ($module:ident, $ty:ty, $word:path, [$($variant:expr),+]) => {
        mod $module {
            use super::*;

            pub fn serialize<S: serde::Serializer>(v: &$ty, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str($word(*v))
            }

            pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
                let word = String::deserialize(d)?;
                [$($variant),+]
                    .into_iter()
                    .find(|v| $word(*v) == word)
                    .ok_or_else(|| {
                        let known: Vec<&str> = [$($variant),+].into_iter().map($word).collect();
                        serde::de::Error::custom(format!(
                            "unknown word \"{word}\" (expected one of: {})",
                            known.join(", ")
                        ))
                    })
            }
        }
    };
}

stored_as_word!(
    kind_words,
    FunctionKind,
    kind_word,
    [FunctionKind::Scalar, FunctionKind::Aggregate]
);
stored_as_word!(
    volatility_words,
    Volatility,
    volatility_word,
    [
        Volatility::Immutable,
        Volatility::Stable,
        Volatility::Volatile
    ]
);

/// The key of one overload: `name(type, type)`.
pub(crate) fn overload_key(name: &str, arg_types: &[String]) -> String {
    format!("{name}({})", arg_types.join(", "))
}

/// Limit overrides as stored (milliseconds for durations).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct StoredLimits {
    pub fuel: Option<u64>,
    pub memory: Option<u64>,
    pub timeout_ms: Option<u64>,
    /// Absent in catalogs written before functions could set their stack.
    #[serde(default)]
    pub stack: Option<u64>,
}

/// A table, view or external table.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct RelationRecord {
    pub schema: String,
    pub name: String,
    pub kind: RelationKind,
    /// Creation order: views are restored after what they read.
    pub seq: u64,
    pub created: u64,
    pub owner: String,
}

impl RelationRecord {
    pub fn key(&self) -> String {
        relation_key(&self.schema, &self.name)
    }
}

pub(crate) fn relation_key(schema: &str, name: &str) -> String {
    format!("{schema}.{name}")
}

/// How a relation is rebuilt at startup.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum RelationKind {
    /// Data owned by the server: Parquet files in `dir` (relative to the data
    /// directory), with this Arrow schema (IPC-encoded, hex).
    Managed {
        dir: String,
        arrow_schema: String,
        /// What the Arrow schema does not say of the columns: DEFAULT expressions and
        /// identity. Absent in catalogs written before tables had them.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        columns: Vec<ColumnRecord>,
        /// Its PRIMARY KEY and UNIQUE constraints.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        keys: Vec<KeyRecord>,
    },
    /// Replayed from its statement text (CREATE EXTERNAL TABLE, CREATE VIEW).
    Statement { sql: String },
}

/// A column's DEFAULT and identity, as CREATE TABLE declared them.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct ColumnRecord {
    pub name: String,
    /// The DEFAULT expression's SQL text (`nextval('public.t_id_seq')` for serial and
    /// identity columns).
    #[serde(default)]
    pub default: Option<String>,
    /// `always` or `by default` for a `GENERATED ... AS IDENTITY` column.
    #[serde(default)]
    pub identity: Option<String>,
}

/// A PRIMARY KEY or UNIQUE constraint of a table.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct KeyRecord {
    pub name: String,
    pub columns: Vec<String>,
    pub primary: bool,
}

/// A sequence: its options, and the value up to which it may have handed out values.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct SequenceRecord {
    pub schema: String,
    pub name: String,
    pub start: i64,
    pub increment: i64,
    pub min: i64,
    pub max: i64,
    /// Every value up to this one (in the increment's direction) may have been given
    /// out: after a crash, the sequence goes on past it (PostgreSQL's gaps too).
    /// `None` before the first `nextval`.
    pub reserved: Option<i64>,
    /// `schema.table.column` of the serial or identity column that owns it (dropped
    /// with its table).
    #[serde(default)]
    pub owned_by: Option<String>,
}

impl SequenceRecord {
    pub fn key(&self) -> String {
        relation_key(&self.schema, &self.name)
    }
}

/// One data file of a managed table, as committed.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct FileRecord {
    /// Its size (the scan needs it and is spared a `stat`).
    pub bytes: u64,
    /// Rows it holds.
    pub rows: u64,
}

fn file_key(dir: &str, file: &str) -> String {
    format!("{dir}/{file}")
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct SchemaRecord {
    pub name: String,
    pub created: u64,
    pub owner: String,
}

/// The catalog file.
pub(crate) struct Catalog {
    db: redb::Database,
    /// False for a catalog of format 1 until [`Catalog::upgrade_file_records`] commits.
    files_recorded: std::sync::atomic::AtomicBool,
}

fn from<E: Into<redb::Error>>(context: &str) -> impl Fn(E) -> Error + '_ {
    move |e| Error::Catalog(format!("{context}: {}", e.into()))
}

impl Catalog {
    /// Opens (creating if needed) the catalog at `path`.
    pub fn open(path: &Path) -> Result<Catalog> {
        let db = redb::Database::create(path).map_err(|e| {
            Error::Catalog(format!(
                "cannot open catalog {}: {}",
                path.display(),
                redb::Error::from(e)
            ))
        })?;
        let txn = db.begin_write().map_err(from("begin"))?;
        let mut files_recorded = true;
        {
            let mut meta = txn.open_table(META).map_err(from("meta"))?;
            let version = meta
                .get("format")
                .map_err(from("meta"))?
                .map(|v| v.value().to_string());
            match version.as_deref() {
                None => {
                    meta.insert("format", FORMAT_VERSION)
                        .map_err(from("meta"))?;
                }
                Some(FORMAT_VERSION) => {}
                Some(FORMAT_UNRECORDED_FILES) => files_recorded = false,
                Some(other) => {
                    return Err(Error::Catalog(format!(
                        "catalog {} has format version {other}; this server reads version {FORMAT_VERSION}",
                        path.display()
                    )))
                }
            }
            for def in [
                FUNCTIONS,
                MODULES,
                RELATIONS,
                SCHEMAS,
                TABLE_FILES,
                SEQUENCES,
            ] {
                txn.open_table(def).map_err(from("create tables"))?;
            }
        }
        txn.commit().map_err(from("commit"))?;
        Ok(Catalog {
            db,
            files_recorded: std::sync::atomic::AtomicBool::new(files_recorded),
        })
    }

    /// Whether tables' files are recorded; false for a catalog written by a server of
    /// format 1, whose tables were every Parquet file of their directory.
    pub fn files_recorded(&self) -> bool {
        self.files_recorded
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Upgrades a catalog of format 1: `record` records every table's files, and the
    /// same commit marks the catalog as of this format (a crash before it redoes it all).
    pub fn upgrade_file_records(&self, record: impl FnOnce(&Change) -> Result<()>) -> Result<()> {
        let change = self.change()?;
        record(&change)?;
        {
            let mut meta = change.txn.open_table(META).map_err(from("meta"))?;
            meta.insert("format", FORMAT_VERSION)
                .map_err(from("meta"))?;
        }
        change.commit()?;
        self.files_recorded
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// The committed files of the table in `dir`, by name.
    pub fn table_files(&self, dir: &str) -> Result<Vec<(String, FileRecord)>> {
        let txn = self.db.begin_read().map_err(from("read"))?;
        let table = txn.open_table(TABLE_FILES).map_err(from("read"))?;
        let prefix = format!("{dir}/");
        let mut out = Vec::new();
        for entry in table.range(prefix.as_str()..).map_err(from("read"))? {
            let (key, value) = entry.map_err(from("read"))?;
            let Some(name) = key.value().strip_prefix(&prefix) else {
                break;
            };
            let record = serde_json::from_slice(value.value()).map_err(|e| {
                Error::Catalog(format!("corrupt catalog entry {}: {e}", key.value()))
            })?;
            out.push((name.to_string(), record));
        }
        Ok(out)
    }

    fn read_all<T: for<'a> Deserialize<'a>>(
        &self,
        def: TableDefinition<&str, &[u8]>,
    ) -> Result<Vec<T>> {
        let txn = self.db.begin_read().map_err(from("read"))?;
        let table = txn.open_table(def).map_err(from("read"))?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(from("read"))? {
            let (key, value) = entry.map_err(from("read"))?;
            out.push(serde_json::from_slice(value.value()).map_err(|e| {
                Error::Catalog(format!("corrupt catalog entry {}: {e}", key.value()))
            })?);
        }
        Ok(out)
    }

    pub fn functions(&self) -> Result<Vec<FunctionRecord>> {
        self.read_all(FUNCTIONS)
    }

    pub fn relations(&self) -> Result<Vec<RelationRecord>> {
        self.read_all(RELATIONS)
    }

    pub fn schemas(&self) -> Result<Vec<SchemaRecord>> {
        self.read_all(SCHEMAS)
    }

    pub fn sequences(&self) -> Result<Vec<SequenceRecord>> {
        self.read_all(SEQUENCES)
    }

    /// The bytes of a stored module.
    pub fn module(&self, hash: &str) -> Result<Option<Vec<u8>>> {
        let txn = self.db.begin_read().map_err(from("read"))?;
        let table = txn.open_table(MODULES).map_err(from("read"))?;
        let bytes = table.get(hash).map_err(from("read"))?;
        Ok(bytes.map(|b| b.value().to_vec()))
    }

    /// Whether a module is stored (some function uses it).
    pub fn has_module(&self, hash: &str) -> Result<bool> {
        let txn = self.db.begin_read().map_err(from("read"))?;
        let table = txn.open_table(MODULES).map_err(from("read"))?;
        Ok(table.get(hash).map_err(from("read"))?.is_some())
    }

    /// Hash and size of every stored module.
    pub fn modules(&self) -> Result<Vec<(String, u64)>> {
        let txn = self.db.begin_read().map_err(from("read"))?;
        let table = txn.open_table(MODULES).map_err(from("read"))?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(from("read"))? {
            let (k, v) = entry.map_err(from("read"))?;
            out.push((k.value().to_string(), v.value().len() as u64));
        }
        Ok(out)
    }

    /// Starts a change; nothing is visible (or durable) until [`Change::commit`].
    pub fn change(&self) -> Result<Change> {
        Ok(Change {
            txn: self.db.begin_write().map_err(from("begin"))?,
        })
    }
}

/// One atomic catalog change.
pub(crate) struct Change {
    txn: redb::WriteTransaction,
}

impl Change {
    fn put<T: Serialize>(&self, def: TableDefinition<&str, &[u8]>, key: &str, v: &T) -> Result<()> {
        let bytes = serde_json::to_vec(v).map_err(|e| Error::Catalog(e.to_string()))?;
        let mut table = self.txn.open_table(def).map_err(from("write"))?;
        table.insert(key, bytes.as_slice()).map_err(from("write"))?;
        Ok(())
    }

    fn remove(&self, def: TableDefinition<&str, &[u8]>, key: &str) -> Result<bool> {
        let mut table = self.txn.open_table(def).map_err(from("write"))?;
        let removed = table.remove(key).map_err(from("write"))?.is_some();
        Ok(removed)
    }

    pub fn put_function(&self, f: &FunctionRecord) -> Result<()> {
        self.put(FUNCTIONS, &f.key(), f)
    }

    pub fn remove_function(&self, key: &str) -> Result<bool> {
        self.remove(FUNCTIONS, key)
    }

    /// Stores module bytes under their hash (a no-op if already stored).
    pub fn put_module(&self, hash: &str, bytes: &[u8]) -> Result<()> {
        let mut table = self.txn.open_table(MODULES).map_err(from("write"))?;
        if table.get(hash).map_err(from("write"))?.is_none() {
            table.insert(hash, bytes).map_err(from("write"))?;
        }
        Ok(())
    }

    /// Deletes every module no function references; returns their hashes.
    pub fn collect_modules(&self) -> Result<Vec<String>> {
        let functions = self.txn.open_table(FUNCTIONS).map_err(from("gc"))?;
        let mut used = BTreeSet::new();
        for entry in functions.iter().map_err(from("gc"))? {
            let (_, v) = entry.map_err(from("gc"))?;
            let f: FunctionRecord = serde_json::from_slice(v.value())
                .map_err(|e| Error::Catalog(format!("corrupt function entry: {e}")))?;
            used.insert(f.module);
        }
        drop(functions);
        let mut modules = self.txn.open_table(MODULES).map_err(from("gc"))?;
        let mut unused = Vec::new();
        for entry in modules.iter().map_err(from("gc"))? {
            let (k, _) = entry.map_err(from("gc"))?;
            if !used.contains(k.value()) {
                unused.push(k.value().to_string());
            }
        }
        for hash in &unused {
            modules.remove(hash.as_str()).map_err(from("gc"))?;
        }
        Ok(unused)
    }

    pub fn put_relation(&self, r: &RelationRecord) -> Result<()> {
        self.put(RELATIONS, &r.key(), r)
    }

    pub fn remove_relation(&self, key: &str) -> Result<bool> {
        self.remove(RELATIONS, key)
    }

    pub fn put_schema(&self, s: &SchemaRecord) -> Result<()> {
        self.put(SCHEMAS, &s.name, s)
    }

    pub fn remove_schema(&self, name: &str) -> Result<bool> {
        self.remove(SCHEMAS, name)
    }

    pub fn put_sequence(&self, s: &SequenceRecord) -> Result<()> {
        self.put(SEQUENCES, &s.key(), s)
    }

    pub fn remove_sequence(&self, key: &str) -> Result<bool> {
        self.remove(SEQUENCES, key)
    }

    /// Records `file` as part of the table in `dir`.
    pub fn put_file(&self, dir: &str, file: &str, record: &FileRecord) -> Result<()> {
        self.put(TABLE_FILES, &file_key(dir, file), record)
    }

    /// `file` is no longer part of the table in `dir`.
    pub fn remove_file(&self, dir: &str, file: &str) -> Result<bool> {
        self.remove(TABLE_FILES, &file_key(dir, file))
    }

    /// Forgets every file of the table in `dir` (dropped).
    pub fn remove_files_of(&self, dir: &str) -> Result<()> {
        let mut table = self.txn.open_table(TABLE_FILES).map_err(from("write"))?;
        let prefix = format!("{dir}/");
        let mut keys = Vec::new();
        for entry in table.range(prefix.as_str()..).map_err(from("write"))? {
            let key = entry.map_err(from("write"))?.0.value().to_string();
            if !key.starts_with(&prefix) {
                break;
            }
            keys.push(key);
        }
        for key in keys {
            table.remove(key.as_str()).map_err(from("write"))?;
        }
        Ok(())
    }

    /// Makes the change durable and visible.
    pub fn commit(self) -> Result<()> {
        self.txn.commit().map_err(from("commit"))
    }
}

/// Seconds since the Unix epoch, for `created` fields.
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
