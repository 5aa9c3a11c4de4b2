//! `pg_catalog.pg_settings`, live: the reading session's parameters with their current
//! values and where each came from, and the `wasm.*` limits. pgjdbc reads
//! `max_index_keys` from it before it lists keys (`getImportedKeys`), psql's
//! `\dconfig` lists what differs from the defaults.
//!
//! The parameters live in the SQL layer's session; this layer reads them through
//! [`SessionSettings`], which the session puts in its DataFusion config.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    new_null_array, ArrayRef, BooleanArray, Int32Array, ListBuilder, StringArray, StringBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{MemTable, Session as DfSession, TableProvider};
use datafusion::common::config::ExtensionOptions;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;

use crate::udf::settings::WasmSettings;

/// One parameter as `pg_settings` shows it.
#[derive(Clone, Debug, Default)]
pub(crate) struct SettingRow {
    pub name: String,
    /// The current value, in `unit` if it has one.
    pub setting: String,
    pub unit: Option<&'static str>,
    pub category: &'static str,
    pub short_desc: String,
    /// Who may change it: `user` (any session), `internal` (nobody).
    pub context: &'static str,
    /// `bool`, `integer`, `enum` or `string`.
    pub vartype: &'static str,
    /// `default`, `client` (set at connect) or `session` (SET).
    pub source: &'static str,
    /// An enum's values.
    pub enumvals: Option<Vec<&'static str>>,
    /// The built-in default.
    pub boot_val: String,
    /// What RESET returns to.
    pub reset_val: String,
}

/// A session's parameters, as `pg_settings` reads them.
pub(crate) trait SessionSettings: Send + Sync + std::fmt::Debug {
    /// Every parameter, sorted by name.
    fn rows(&self) -> Vec<SettingRow>;
}

/// What a session puts in its DataFusion config (`SessionConfig::set_extension`) so
/// `pg_settings` reads its parameters.
#[derive(Debug)]
pub(crate) struct SettingsOfSession(pub Arc<dyn SessionSettings>);

/// The `pg_settings` view.
#[derive(Debug)]
pub(crate) struct PgSettings {
    schema: SchemaRef,
}

impl PgSettings {
    pub(crate) fn new() -> Self {
        let text = |name: &str| Field::new(name, DataType::Utf8, true);
        let schema = Schema::new(vec![
            Field::new("name", DataType::Utf8, false),
            text("setting"),
            text("unit"),
            text("category"),
            text("short_desc"),
            text("extra_desc"),
            text("context"),
            text("vartype"),
            text("source"),
            text("min_val"),
            text("max_val"),
            Field::new(
                "enumvals",
                DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
                true,
            ),
            text("boot_val"),
            text("reset_val"),
            text("sourcefile"),
            Field::new("sourceline", DataType::Int32, true),
            Field::new("pending_restart", DataType::Boolean, false),
        ]);
        PgSettings {
            schema: Arc::new(schema),
        }
    }
}

/// The `wasm.*` limits of the session, as rows.
fn wasm_rows(state: &dyn DfSession) -> Vec<SettingRow> {
    let Some(settings) = state.config_options().extensions.get::<WasmSettings>() else {
        return Vec::new();
    };
    let entries = settings.entries();
    // The server's defaults: the settings with nothing the session changed.
    let defaults = WasmSettings::new(settings.defaults, settings.ceilings).entries();
    entries
        .into_iter()
        .map(|e| {
            let value = e.value.unwrap_or_default();
            let boot = defaults
                .iter()
                .find(|d| d.key == e.key)
                .and_then(|d| d.value.clone())
                .unwrap_or_default();
            SettingRow {
                source: if value == boot { "default" } else { "session" },
                name: e.key,
                setting: value,
                category: "wasmudf / Wasm function limits",
                short_desc: e.description.to_string(),
                context: "user",
                vartype: "string",
                reset_val: boot.clone(),
                boot_val: boot,
                ..SettingRow::default()
            }
        })
        .collect()
}

#[async_trait]
impl TableProvider for PgSettings {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn DfSession,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let mut rows = state
            .config()
            .get_extension::<SettingsOfSession>()
            .map(|s| s.0.rows())
            .unwrap_or_default();
        rows.extend(wasm_rows(state));
        let text = |f: &dyn Fn(&SettingRow) -> Option<String>| -> ArrayRef {
            Arc::new(rows.iter().map(f).collect::<StringArray>())
        };
        let mut enumvals = ListBuilder::new(StringBuilder::new())
            .with_field(Arc::new(Field::new_list_field(DataType::Utf8, true)));
        for row in &rows {
            match &row.enumvals {
                Some(values) => {
                    for v in values {
                        enumvals.values().append_value(v);
                    }
                    enumvals.append(true);
                }
                None => enumvals.append(false),
            }
        }
        let columns: BTreeMap<&str, ArrayRef> = [
            ("name", text(&|r| Some(r.name.clone()))),
            ("setting", text(&|r| Some(r.setting.clone()))),
            ("unit", text(&|r| r.unit.map(str::to_string))),
            ("category", text(&|r| Some(r.category.to_string()))),
            ("short_desc", text(&|r| Some(r.short_desc.clone()))),
            ("context", text(&|r| Some(r.context.to_string()))),
            ("vartype", text(&|r| Some(r.vartype.to_string()))),
            ("source", text(&|r| Some(r.source.to_string()))),
            ("enumvals", Arc::new(enumvals.finish()) as ArrayRef),
            ("boot_val", text(&|r| Some(r.boot_val.clone()))),
            ("reset_val", text(&|r| Some(r.reset_val.clone()))),
            (
                "pending_restart",
                Arc::new(BooleanArray::from(vec![false; rows.len()])) as ArrayRef,
            ),
            (
                "sourceline",
                Arc::new(Int32Array::new_null(rows.len())) as ArrayRef,
            ),
        ]
        .into_iter()
        .collect();
        let arrays = self
            .schema
            .fields()
            .iter()
            .map(|f| match columns.get(f.name().as_str()) {
                Some(c) => c.clone(),
                None => new_null_array(f.data_type(), rows.len()),
            })
            .collect();
        let batch = RecordBatch::try_new(self.schema.clone(), arrays)?;
        MemTable::try_new(self.schema.clone(), vec![vec![batch]])?
            .scan(state, projection, filters, limit)
            .await
    }
}
