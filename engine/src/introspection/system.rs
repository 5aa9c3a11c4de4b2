//! Catalog introspection: `wasm.functions`, `wasm.modules`, Wasm functions in
//! `information_schema.routines` / `parameters`, and the `wasm_load` table function.
//!
//! DataFusion's own information schema cannot describe a function whose signature is
//! user-defined, so the information schema registered here delegates to DataFusion's
//! and replaces the Wasm functions' rows with full ones from the catalog.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    new_null_array, Array, ArrayRef, AsArray, BooleanArray, Int32Array, RecordBatch, StringArray,
    UInt64Array, UInt8Array,
};
use datafusion::arrow::compute::{cast, concat_batches, filter_record_batch};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use datafusion::catalog::information_schema::InformationSchemaProvider;
use datafusion::catalog::{
    CatalogProviderList, MemTable, MemorySchemaProvider, SchemaProvider, Session as DfSession,
    TableFunctionArgs, TableFunctionImpl, TableProvider,
};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableType, Volatility};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    collect, DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    ReplaceChildrenOptions,
};
use datafusion::prelude::SessionContext;

use crate::error::{guest_text, Error};
use crate::introspection::stats_view::{function_stats_batch, function_stats_schema, StatsReset};
use crate::introspection::typed_columns::typed_columns;
use crate::introspection::{
    caller, default_catalog, records_in_order, upgrade, DatabaseHandle, DatabaseView,
};
use crate::store::catalog::{kind_word, volatility_word, FunctionRecord, StoredLimits};
use crate::store::CATALOG_NAME;
use crate::udf::scope::QueryScope;
use crate::wasm::cache::CacheOutcome;

/// Registers the system schemas and table functions in the database's template.
pub(crate) fn install(ctx: &SessionContext, weak: DatabaseHandle) -> crate::Result<()> {
    let catalog = default_catalog(ctx)?;

    let wasm = MemorySchemaProvider::new();
    wasm.register_table(
        "functions".into(),
        Arc::new(SystemTable::new(
            functions_schema(),
            weak.clone(),
            functions_batch,
        )),
    )?;
    wasm.register_table(
        "modules".into(),
        Arc::new(SystemTable::new(
            modules_schema(),
            weak.clone(),
            modules_batch,
        )),
    )?;
    wasm.register_table(
        "function_stats".into(),
        Arc::new(SystemTable::new(
            function_stats_schema(),
            weak.clone(),
            function_stats_batch,
        )),
    )?;
    catalog.register_schema("wasm", Arc::new(wasm))?;
    ctx.register_udf(datafusion::logical_expr::ScalarUDF::new_from_impl(
        StatsReset::new(weak.clone()),
    ));

    let state = ctx.state();
    let inner = InformationSchemaProvider::new(state.catalog_list().clone())
        .with_table_functions(state.table_functions().clone());
    catalog.register_schema(
        "information_schema",
        Arc::new(InfoSchema {
            inner: Arc::new(inner),
            catalogs: state.catalog_list().clone(),
            db: weak.clone(),
        }),
    )?;
    ctx.register_udtf("wasm_load", Arc::new(WasmLoad { db: weak }));
    Ok(())
}

/// A view's rows, from the live database, for the role the query runs as.
pub(crate) type BatchFn = fn(&dyn DatabaseView, &str) -> DfResult<RecordBatch>;

/// A read-only table computed from the live database at each scan.
#[derive(Debug)]
pub(crate) struct SystemTable {
    schema: SchemaRef,
    db: DatabaseHandle,
    rows: BatchFn,
}

impl SystemTable {
    pub(crate) fn new(schema: SchemaRef, db: DatabaseHandle, rows: BatchFn) -> Self {
        SystemTable { schema, db, rows }
    }
}

#[async_trait]
impl TableProvider for SystemTable {
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
        let batch = (self.rows)(upgrade(&self.db)?.as_ref(), &caller(state.config_options()))?;
        MemTable::try_new(self.schema.clone(), vec![vec![batch]])?
            .scan(state, projection, filters, limit)
            .await
    }
}

fn functions_schema() -> SchemaRef {
    let text = |n: &str, null| Field::new(n, DataType::Utf8, null);
    Arc::new(Schema::new(vec![
        text("schema", false),
        text("name", false),
        text("arguments", false),
        text("returns", false),
        text("kind", false),
        text("volatility", false),
        Field::new("strict", DataType::Boolean, false),
        text("module", false),
        text("export", false),
        Field::new("fuel", DataType::UInt64, true),
        text("memory", true),
        text("timeout", true),
        text("stack", true),
        Field::new("created", DataType::UInt64, false),
        text("owner", false),
    ]))
}

fn functions_batch(db: &dyn DatabaseView, _caller: &str) -> DfResult<RecordBatch> {
    let rs = records_in_order(db);
    let text = |f: &dyn Fn(&FunctionRecord) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rs.iter().map(f)))
    };
    let opt_text = |f: &dyn Fn(&StoredLimits) -> Option<String>| -> ArrayRef {
        Arc::new(StringArray::from_iter(rs.iter().map(|r| f(&r.limits))))
    };
    let columns: Vec<ArrayRef> = vec![
        text(&|r| r.schema.clone()),
        text(&|r| r.name.clone()),
        text(&|r| r.arg_types.join(", ")),
        text(&|r| r.returns.clone()),
        text(&|r| kind_word(r.kind).into()),
        text(&|r| volatility_word(r.volatility).into()),
        Arc::new(BooleanArray::from_iter(rs.iter().map(|r| Some(r.strict)))),
        text(&|r| r.module.clone()),
        text(&|r| r.export.clone()),
        Arc::new(UInt64Array::from_iter(rs.iter().map(|r| r.limits.fuel))),
        opt_text(&|l| l.memory.map(crate::wasm::limits::format_bytes)),
        opt_text(&|l| l.timeout_ms.map(|t| format!("{t}ms"))),
        opt_text(&|l| l.stack.map(crate::wasm::limits::format_bytes)),
        Arc::new(UInt64Array::from_iter_values(rs.iter().map(|r| r.created))),
        text(&|r| r.owner.clone()),
    ];
    Ok(RecordBatch::try_new(functions_schema(), columns)?)
}

fn modules_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("hash", DataType::Utf8, false),
        Field::new("size", DataType::UInt64, false),
        Field::new("functions", DataType::UInt64, false),
        Field::new("exports", DataType::Utf8, false),
        Field::new("artifact", DataType::Utf8, true),
        Field::new("code", DataType::Utf8, true),
    ]))
}

fn modules_batch(db: &dyn DatabaseView, _caller: &str) -> DfResult<RecordBatch> {
    let stored = db.stored_modules()?;
    let rs = records_in_order(db);
    let mut hashes = Vec::new();
    let mut sizes = Vec::new();
    let mut counts = Vec::new();
    let mut exports = Vec::new();
    let mut artifacts = Vec::new();
    let mut codes = Vec::new();
    let outcomes = db.artifact_outcomes();
    let tiers = db.code_tiers();
    for (hash, size) in stored {
        codes.push(tiers.get(&hash).map(|t| t.as_str()));
        artifacts.push(outcomes.get(&hash).map(|o| match o {
            CacheOutcome::Loaded => "cached",
            CacheOutcome::Compiled => "compiled",
            CacheOutcome::Rejected => "recompiled",
        }));
        let using: Vec<&FunctionRecord> = rs.iter().filter(|r| r.module == hash).collect();
        counts.push(using.len() as u64);
        let mut names: Vec<&str> = using.iter().map(|r| r.export.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        exports.push(names.join(", "));
        hashes.push(hash);
        sizes.push(size);
    }
    Ok(RecordBatch::try_new(
        modules_schema(),
        vec![
            Arc::new(StringArray::from(hashes)),
            Arc::new(UInt64Array::from(sizes)),
            Arc::new(UInt64Array::from(counts)),
            Arc::new(StringArray::from(exports)),
            Arc::new(StringArray::from(artifacts)),
            Arc::new(StringArray::from(codes)),
        ],
    )?)
}

/// DataFusion's information schema with full rows for Wasm functions.
#[derive(Debug)]
struct InfoSchema {
    inner: Arc<dyn SchemaProvider>,
    catalogs: Arc<dyn CatalogProviderList>,
    db: DatabaseHandle,
}

#[async_trait]
impl SchemaProvider for InfoSchema {
    fn table_names(&self) -> Vec<String> {
        self.inner.table_names()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let Some(table) = self.inner.table(name).await? else {
            return Ok(None);
        };
        let (key_column, rows): (&str, RowsFn) = match name {
            "routines" => ("routine_name", routine_rows),
            "parameters" => ("specific_name", parameter_rows),
            "columns" => return Ok(Some(Arc::new(PgColumns::new(table, self.catalogs.clone())))),
            _ => return Ok(Some(table)),
        };
        Ok(Some(Arc::new(WithWasmRows {
            inner: table,
            db: self.db.clone(),
            key_column,
            rows,
        })))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.inner.table_exist(name)
    }
}

type RowsFn = fn(&[FunctionRecord]) -> HashMap<&'static str, ArrayRef>;

/// One of DataFusion's information-schema tables, with the Wasm functions' rows
/// (which DataFusion leaves empty) replaced.
#[derive(Debug)]
struct WithWasmRows {
    inner: Arc<dyn TableProvider>,
    db: DatabaseHandle,
    key_column: &'static str,
    rows: RowsFn,
}

#[async_trait]
impl TableProvider for WithWasmRows {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
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
        let schema = self.inner.schema();
        let plan = self.inner.scan(state, None, &[], None).await?;
        let theirs = collect(plan, state.task_ctx()).await?;
        let rs = records_in_order(upgrade(&self.db)?.as_ref());
        let wasm: HashSet<&str> = rs.iter().map(|r| r.name.as_str()).collect();
        let index = schema.index_of(self.key_column)?;
        let mut batches = Vec::with_capacity(theirs.len() + 1);
        for batch in theirs {
            let keys = cast(batch.column(index), &DataType::Utf8)?;
            let keys = keys
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| DataFusionError::Internal("key column".into()))?;
            let keep: BooleanArray = keys
                .iter()
                .map(|k| Some(!k.is_some_and(|k| wasm.contains(k))))
                .collect();
            batches.push(filter_record_batch(&batch, &keep)?);
        }
        batches.push(shape(&schema, (self.rows)(&rs))?);
        let all = concat_batches(&schema, &batches)?;
        MemTable::try_new(schema, vec![vec![all]])?
            .scan(state, projection, filters, limit)
            .await
    }
}

/// DataFusion's `information_schema.columns` as PostgreSQL's: `data_type` is the
/// PostgreSQL type's name (`integer`, `text`, `timestamp with time zone`, `ARRAY`), not
/// Arrow's (`Int32`, `Utf8View`), and `ordinal_position` counts from 1.
#[derive(Debug)]
struct PgColumns {
    inner: Arc<dyn TableProvider>,
    catalogs: Arc<dyn CatalogProviderList>,
    schema: SchemaRef,
}

impl PgColumns {
    fn new(inner: Arc<dyn TableProvider>, catalogs: Arc<dyn CatalogProviderList>) -> Self {
        let fields: Vec<Field> = inner
            .schema()
            .fields()
            .iter()
            .map(|f| match f.name().as_str() {
                "ordinal_position" => f.as_ref().clone().with_data_type(DataType::Int32),
                _ => f.as_ref().clone(),
            })
            .collect();
        PgColumns {
            inner,
            catalogs,
            schema: Arc::new(Schema::new(fields)),
        }
    }
}

/// PostgreSQL's `information_schema` name for the type of values of Arrow type `text`
/// (as DataFusion writes it), the Arrow name itself if it does not parse.
fn pg_data_type(text: &str) -> String {
    use std::str::FromStr;
    match DataType::from_str(text) {
        Ok(DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..)) => {
            "ARRAY".into()
        }
        Ok(dt) => crate::pg::types::pg_type_name(crate::pg::types::pg_type_oid_of(&dt))
            .unwrap_or_else(|| "text".into()),
        Err(_) => text.to_string(),
    }
}

#[async_trait]
impl TableProvider for PgColumns {
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
        let plan = self.inner.scan(state, None, &[], None).await?;
        let ordinal = self.schema.index_of("ordinal_position")?;
        let data_type = self.schema.index_of("data_type")?;
        let typed = typed_columns(self.catalogs.as_ref()).await?;
        let [schema_at, table_at, column_at] =
            ["table_schema", "table_name", "column_name"].map(|c| self.schema.index_of(c));
        let (schema_at, table_at, column_at) = (schema_at?, table_at?, column_at?);
        let mut batches = Vec::new();
        for batch in collect(plan, state.task_ctx()).await? {
            let mut columns = batch.columns().to_vec();
            let positions = cast(&columns[ordinal], &DataType::Int64)?;
            let positions = positions.as_primitive::<Int64Type>();
            columns[ordinal] = Arc::new(
                positions
                    .iter()
                    .map(|p| p.and_then(|p| i32::try_from(p + 1).ok()))
                    .collect::<Int32Array>(),
            );
            let text = |i: usize| cast(&columns[i], &DataType::Utf8);
            let (types, schemas, tables, names) = (
                text(data_type)?,
                text(schema_at)?,
                text(table_at)?,
                text(column_at)?,
            );
            let [types, schemas, tables, names] =
                [&types, &schemas, &tables, &names].map(|a| a.as_string::<i32>());
            // A column whose type its Arrow type does not tell (json) by its own.
            let declared = |row: usize| {
                if typed.is_empty() {
                    return None;
                }
                let key = (
                    schemas.value(row).to_string(),
                    tables.value(row).to_string(),
                    names.value(row).to_string(),
                );
                typed
                    .get(&key)
                    .copied()
                    .and_then(crate::pg::types::pg_type_name)
            };
            columns[data_type] = cast(
                &(Arc::new(
                    (0..types.len())
                        .map(|row| {
                            let arrow = types.is_valid(row).then(|| types.value(row));
                            match declared(row) {
                                Some(name) => Some(name),
                                None => arrow.map(pg_data_type),
                            }
                        })
                        .collect::<StringArray>(),
                ) as ArrayRef),
                self.schema.field(data_type).data_type(),
            )?;
            batches.push(RecordBatch::try_new(self.schema.clone(), columns)?);
        }
        MemTable::try_new(self.schema.clone(), vec![batches])?
            .scan(state, projection, filters, limit)
            .await
    }
}

/// A batch of `schema` from named columns; columns not given are null.
fn shape(
    schema: &SchemaRef,
    mut columns: HashMap<&'static str, ArrayRef>,
) -> DfResult<RecordBatch> {
    let rows = columns.values().next().map_or(0, |a| a.len());
    let arrays = schema
        .fields()
        .iter()
        .map(|f| match columns.remove(f.name().as_str()) {
            Some(a) => Ok(cast(&a, f.data_type())?),
            None => Ok(new_null_array(f.data_type(), rows)),
        })
        .collect::<DfResult<Vec<_>>>()?;
    Ok(RecordBatch::try_new(schema.clone(), arrays)?)
}

fn routine_rows(rs: &[FunctionRecord]) -> HashMap<&'static str, ArrayRef> {
    let text = |f: &dyn Fn(&FunctionRecord) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rs.iter().map(f)))
    };
    HashMap::from([
        ("specific_catalog", text(&|_| CATALOG_NAME.into())),
        ("specific_schema", text(&|r| r.schema.clone())),
        ("specific_name", text(&|r| r.key())),
        ("routine_catalog", text(&|_| CATALOG_NAME.into())),
        ("routine_schema", text(&|r| r.schema.clone())),
        ("routine_name", text(&|r| r.name.clone())),
        ("routine_type", text(&|_| "FUNCTION".into())),
        (
            "is_deterministic",
            Arc::new(BooleanArray::from_iter(
                rs.iter()
                    .map(|r| Some(r.volatility == Volatility::Immutable)),
            )) as ArrayRef,
        ),
        ("data_type", text(&|r| r.returns.clone())),
        ("function_type", text(&|r| kind_word(r.kind).to_uppercase())),
        (
            "description",
            text(&|r| format!("Wasm: export {} of module sha256:{}", r.export, r.module)),
        ),
        (
            "syntax_example",
            text(&|r| format!("{}({})", r.name, r.arg_types.join(", "))),
        ),
    ])
}

fn parameter_rows(rs: &[FunctionRecord]) -> HashMap<&'static str, ArrayRef> {
    let params: Vec<(&FunctionRecord, usize, &String)> = rs
        .iter()
        .flat_map(|r| {
            r.arg_types
                .iter()
                .enumerate()
                .map(move |(i, t)| (r, i + 1, t))
        })
        .collect();
    let text = |f: &dyn Fn(&(&FunctionRecord, usize, &String)) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(params.iter().map(f)))
    };
    HashMap::from([
        ("specific_catalog", text(&|_| CATALOG_NAME.into())),
        ("specific_schema", text(&|p| p.0.schema.clone())),
        ("specific_name", text(&|p| p.0.key())),
        (
            "ordinal_position",
            Arc::new(UInt64Array::from_iter_values(
                params.iter().map(|p| p.1 as u64),
            )) as ArrayRef,
        ),
        ("parameter_mode", text(&|_| "IN".into())),
        ("data_type", text(&|p| p.2.clone())),
        (
            "is_variadic",
            Arc::new(BooleanArray::from_iter(params.iter().map(|_| Some(false)))) as ArrayRef,
        ),
        (
            "rid",
            Arc::new(UInt8Array::from_iter_values(params.iter().map(|_| 0u8))) as ArrayRef,
        ),
    ])
}

/// `SELECT * FROM wasm_load('math.wasm')`: registers every function of a module under
/// its own name with the component's declarations, and lists them.
///
/// Registration happens when the query executes (not when it is planned, described or
/// explained),
/// all or nothing, on a blocking thread of the query executor: a name that already
/// exists with another definition (or is a built-in) fails the whole load; functions
/// the same module already defined identically are left as they are. Canceling the
/// query stops the component's load-time code and, before the commit, the change.
#[derive(Debug)]
struct WasmLoad {
    db: DatabaseHandle,
}

impl TableFunctionImpl for WasmLoad {
    fn call_with_args(&self, args: TableFunctionArgs) -> DfResult<Arc<dyn TableProvider>> {
        let spec = match args.exprs() {
            [Expr::Literal(ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)), _)] => {
                s.clone()
            }
            _ => {
                return Err(Error::InvalidDefinition(
                    "wasm_load takes one string literal: the module ('file.wasm', 'base64:...' or 'sha256:...')".into(),
                )
                .into())
            }
        };
        Ok(Arc::new(WasmLoadTable {
            db: self.db.clone(),
            spec,
        }))
    }
}

/// One `wasm_load(spec)` call: the load runs when its plan executes.
#[derive(Debug)]
struct WasmLoadTable {
    db: DatabaseHandle,
    spec: String,
}

fn wasm_load_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("arguments", DataType::Utf8, false),
        Field::new("returns", DataType::Utf8, false),
        Field::new("volatility", DataType::Utf8, false),
        Field::new("strict", DataType::Boolean, false),
    ]))
}

#[async_trait]
impl TableProvider for WasmLoadTable {
    fn schema(&self) -> SchemaRef {
        wasm_load_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        _state: &dyn DfSession,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let schema = wasm_load_schema();
        let projection = projection.cloned();
        let projected = match &projection {
            Some(p) => Arc::new(schema.project(p)?),
            None => schema,
        };
        Ok(Arc::new(WasmLoadExec {
            db: self.db.clone(),
            spec: self.spec.clone(),
            projection,
            properties: Arc::new(PlanProperties::new(
                EquivalenceProperties::new(projected.clone()),
                Partitioning::UnknownPartitioning(1),
                EmissionType::Final,
                Boundedness::Bounded,
            )),
            schema: projected,
        }))
    }
}

/// The plan of one `wasm_load(spec)`: the module is loaded when the plan executes
/// (EXPLAIN plans it without loading anything).
#[derive(Debug)]
struct WasmLoadExec {
    db: DatabaseHandle,
    spec: String,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl DisplayAs for WasmLoadExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "WasmLoadExec: module={}", guest_text(&self.spec))
    }
}

/// The name of `wasm_load`'s plan node: a query holding one changes the catalog, so it
/// runs to completion when the statement runs, whether its rows are read or not.
pub(crate) const WASM_LOAD_EXEC: &str = "WasmLoadExec";

impl ExecutionPlan for WasmLoadExec {
    fn name(&self) -> &'static str {
        WASM_LOAD_EXEC
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
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
        _: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        _partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let options = context.session_config().options();
        let user = caller(options);
        let scope = options.extensions.get::<QueryScope>().cloned();
        let load = upgrade(&self.db)?.spawn_load(user, self.spec.clone(), scope)?;
        let projection = self.projection.clone();
        let batch = async move {
            let listed = load
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))??;
            let batch = wasm_load_batch(&listed)?;
            match &projection {
                Some(p) => Ok(batch.project(p)?),
                None => Ok(batch),
            }
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            futures::stream::once(batch),
        )))
    }
}

/// The rows `wasm_load` returns: one per function the module defines.
fn wasm_load_batch(listed: &[FunctionRecord]) -> DfResult<RecordBatch> {
    Ok(RecordBatch::try_new(
        wasm_load_schema(),
        vec![
            Arc::new(StringArray::from_iter_values(
                listed.iter().map(|r| r.name.clone()),
            )),
            Arc::new(StringArray::from_iter_values(
                listed.iter().map(|r| r.arg_types.join(", ")),
            )),
            Arc::new(StringArray::from_iter_values(
                listed.iter().map(|r| r.returns.clone()),
            )),
            Arc::new(StringArray::from_iter_values(
                listed.iter().map(|r| volatility_word(r.volatility)),
            )),
            Arc::new(BooleanArray::from_iter(
                listed.iter().map(|r| Some(r.strict)),
            )),
        ],
    )?)
}
