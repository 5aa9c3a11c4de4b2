//! Tables, views and schemas that survive a restart.
//!
//! `CREATE TABLE` (with columns or `AS SELECT`) makes a managed table: Parquet files
//! in its own directory under `tables/`, named by the catalog and changed by
//! transactions ([`crate::store::table`]). External tables and views are replayed from
//! their statement text. A table's record and its first files commit together; the
//! record is removed before its files are deleted; directories and files no record
//! names are removed at startup.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::catalog::default_table_source::provider_as_source;
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider, TableProvider};
use datafusion::common::{ScalarValue, TableReference};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{
    CreateMemoryTable, DdlStatement, Expr, ExprSchemable, LogicalPlan, LogicalPlanBuilder,
    TableType,
};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{ObjectName, ObjectNamePart, ObjectType, Statement};

use crate::error::{log_text, Error, Result};
use crate::introspection::default_catalog;
use crate::pg::types::JsonKind;
use crate::sql::database::Database;
use crate::sql::ddl::normalize;
use crate::sql::json::json_kind_of;
use crate::sql::literal_types;
use crate::sql::numeric;
use crate::sql::output::{command, CommandTag, Output};
use crate::sql::session::Session;
use crate::store::catalog::{now, relation_key, RelationKind, RelationRecord, SchemaRecord};
use crate::store::table::{random_id, ManagedTable};
use crate::store::{CATALOG_NAME, DEFAULT_SCHEMA};

/// Schemas the system owns: nothing can be created in or dropped from them.
pub(crate) const SYSTEM_SCHEMAS: &[&str] = &["information_schema", "pg_catalog", "wasm"];

fn check_writable_schema(schema: &str) -> Result<()> {
    if SYSTEM_SCHEMAS.contains(&schema) {
        return Err(Error::InsufficientPrivilege(format!(
            "schema {schema} is a system schema"
        )));
    }
    Ok(())
}

/// `(schema, table)` of a resolved reference in the one catalog.
fn split(name: &TableReference) -> Result<(String, String)> {
    if let Some(c) = name.catalog() {
        if c != CATALOG_NAME {
            return Err(Error::NotSupported(format!(
                "cross-database references are not supported: {name}"
            )));
        }
    }
    Ok((
        name.schema().unwrap_or(DEFAULT_SCHEMA).to_string(),
        name.table().to_string(),
    ))
}

fn schema_provider(session: &Session, schema: &str) -> Result<Arc<dyn SchemaProvider>> {
    default_catalog(&session.ctx)?
        .schema(schema)
        .ok_or_else(|| Error::UndefinedSchema(format!("schema {schema} does not exist")))
}

/// `CREATE [OR REPLACE] TABLE [IF NOT EXISTS] t (cols)` or `... AS query`.
///
/// The new table is filled unregistered, then committed and swapped in at once under
/// the DDL lock: other sessions never see it half-filled, the fill may read the table
/// it replaces, and a failure leaves the old one as it was.
pub(crate) async fn create_table(
    session: &Session,
    mut statement: DfStatement,
) -> DfResult<Output> {
    // CREATE TABLE ... AS a query without column definitions: PostgreSQL's columns then
    // take any value, NULL too, whatever the query's rows happened to hold.
    let from_query = matches!(&statement, DfStatement::Statement(s)
        if matches!(s.as_ref(), Statement::CreateTable(ct) if ct.query.is_some() && ct.columns.is_empty()));
    let json_columns = json_columns_as_text(&mut statement);
    let cmt = memory_table_plan(session, statement).await?;
    let (schema, table) = split(&cmt.name)?;
    check_writable_schema(&schema)?;
    // Checked before OR REPLACE drops the old table: a table whose columns share a name
    // could never be read back.
    let arrow_schema =
        with_json_columns(distinct_columns(session, &cmt, from_query)?, &json_columns);
    let provider = schema_provider(session, &schema)?;
    if provider.table_exist(&table) {
        if cmt.if_not_exists {
            return Ok(command(CommandTag::CreateTable));
        }
        if !cmt.or_replace {
            return Err(Error::DuplicateRelation(format!(
                "relation {schema}.{table} already exists"
            ))
            .into());
        }
    }
    let staged = StagedTable::create(session, &schema, &table, arrow_schema)?;
    let tag = match staged.fill(session, &cmt).await {
        Ok(tag) => tag,
        Err(e) => {
            // CREATE TABLE AS is one statement: a failed fill leaves no table.
            staged.discard();
            return Err(e);
        }
    };
    match staged.swap_in(session, &provider, &cmt) {
        Ok(Swap::Done(Some(old_dir))) => {
            let old = session.db.inner.data_dir.join(&old_dir);
            if let Err(e) = std::fs::remove_dir_all(old) {
                tracing::warn!("could not remove {old_dir} (removed at next start): {e}");
            }
            Ok(command(tag))
        }
        Ok(Swap::Done(None)) => Ok(command(tag)),
        // IF NOT EXISTS, and another session created the table meanwhile: it stays.
        Ok(Swap::Kept) => {
            staged.discard();
            Ok(command(CommandTag::CreateTable))
        }
        Err(e) => {
            staged.discard();
            Err(e.into())
        }
    }
}

/// The `json` / `jsonb` columns a CREATE TABLE defines, each made `text` for the
/// planner (which has no JSON type); [`with_json_columns`] marks them in the schema.
fn json_columns_as_text(statement: &mut DfStatement) -> Vec<(String, JsonKind)> {
    use datafusion::sql::sqlparser::ast::DataType as SqlDataType;
    let DfStatement::Statement(s) = statement else {
        return Vec::new();
    };
    let Statement::CreateTable(ct) = s.as_mut() else {
        return Vec::new();
    };
    let mut json = Vec::new();
    for column in &mut ct.columns {
        let Some(kind) = json_kind_of(&column.data_type) else {
            continue;
        };
        let name = match column.name.quote_style {
            Some(_) => column.name.value.clone(),
            None => column.name.value.to_lowercase(),
        };
        json.push((name, kind));
        column.data_type = SqlDataType::Text;
    }
    json
}

/// `schema` with the `json` / `jsonb` columns marked as such.
fn with_json_columns(schema: SchemaRef, json: &[(String, JsonKind)]) -> SchemaRef {
    if json.is_empty() {
        return schema;
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match json.iter().find(|(name, _)| name == f.name()) {
            Some((_, kind)) => f.as_ref().clone().with_metadata(kind.metadata()),
            None => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// The plan of a CREATE TABLE, refusing the forms wasmudf does not support.
async fn memory_table_plan(
    session: &Session,
    statement: DfStatement,
) -> DfResult<CreateMemoryTable> {
    let plan = session.ctx.state().statement_to_plan(statement).await?;
    let LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(cmt)) = plan else {
        return Err(Error::NotSupported(format!(
            "unexpected plan for CREATE TABLE: {}",
            plan.display()
        ))
        .into());
    };
    if cmt.temporary {
        return Err(Error::NotSupported("temporary tables are not supported".into()).into());
    }
    if !cmt.column_defaults.is_empty() {
        return Err(Error::NotSupported("column DEFAULT values are not supported".into()).into());
    }
    if cmt.if_not_exists && cmt.or_replace {
        return Err(
            Error::Syntax("CREATE OR REPLACE TABLE cannot also say IF NOT EXISTS".into()).into(),
        );
    }
    Ok(cmt)
}

/// The table's Arrow schema, as the fill will produce it (after the analyzer's
/// rules: `AS SELECT 1` makes an int4 column), every column nullable when it is
/// `from_query`; 42701 if two columns share a name.
fn distinct_columns(
    session: &Session,
    cmt: &CreateMemoryTable,
    from_query: bool,
) -> Result<SchemaRef> {
    let state = session.ctx.state();
    let analyzed = state.analyzer().execute_and_check(
        cmt.input.as_ref().clone(),
        state.config_options(),
        |_, _| {},
    );
    let arrow_schema = match &analyzed {
        Ok(plan) => plan.schema().as_arrow().clone(),
        Err(_) => cmt.input.schema().as_arrow().clone(),
    };
    let arrow_schema: SchemaRef = Arc::new(if from_query {
        Schema::new_with_metadata(
            arrow_schema
                .fields()
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let f = f.as_ref().clone().with_nullable(true);
                    match &analyzed {
                        Ok(plan) if from_constants(plan, i) => {
                            let stored = numeric::stored_type(f.data_type());
                            f.with_data_type(stored)
                        }
                        _ => f,
                    }
                })
                .collect::<Vec<_>>(),
            arrow_schema.metadata().clone(),
        )
    } else {
        arrow_schema
    });
    let mut names = HashSet::new();
    if let Some(dup) = arrow_schema
        .fields()
        .iter()
        .find(|f| !names.insert(f.name().as_str()))
    {
        return Err(Error::DuplicateColumn(format!(
            "column \"{}\" specified more than once",
            dup.name()
        )));
    }
    Ok(arrow_schema)
}

/// Whether output column `i` of `plan` is made of constants (`SELECT 1.5 AS price`,
/// a `VALUES` column): a decimal one is typed by its first values' digits, not by a
/// declaration, so its table column takes more ([`numeric::stored_type`]).
fn from_constants(plan: &LogicalPlan, i: usize) -> bool {
    match plan {
        // Constants, or decimal constants brought to the column's common type.
        LogicalPlan::Values(values) => values.values.iter().all(|row| match row.get(i) {
            Some(Expr::Literal(..)) => true,
            Some(Expr::Cast(c)) => matches!(
                c.expr.as_ref(),
                Expr::Literal(
                    ScalarValue::Decimal32(..)
                        | ScalarValue::Decimal64(..)
                        | ScalarValue::Decimal128(..),
                    _
                )
            ),
            _ => false,
        }),
        LogicalPlan::Projection(p) => {
            let mut expr = p.expr.get(i);
            while let Some(Expr::Alias(alias)) = expr {
                expr = Some(alias.expr.as_ref());
            }
            match expr {
                Some(Expr::Literal(..)) => true,
                Some(Expr::Column(c)) => p
                    .input
                    .schema()
                    .index_of_column(c)
                    .is_ok_and(|j| from_constants(&p.input, j)),
                _ => false,
            }
        }
        LogicalPlan::SubqueryAlias(_)
        | LogicalPlan::Sort(_)
        | LogicalPlan::Limit(_)
        | LogicalPlan::Distinct(_) => plan
            .inputs()
            .first()
            .is_some_and(|input| from_constants(input, i)),
        _ => false,
    }
}

/// A new managed table between its directory's creation and its commit: files first,
/// catalog last, so a crash before the commit leaves only an unreferenced directory
/// (removed at the next start), never a half-filled table.
struct StagedTable {
    schema: String,
    table: String,
    /// The new table itself (`provider` is it too).
    managed: ManagedTable,
    /// The table's directory, relative to the data directory (as the record names it).
    dir: String,
    /// The same directory, absolute.
    path: std::path::PathBuf,
    record: RelationRecord,
    provider: Arc<dyn TableProvider>,
}

impl StagedTable {
    fn create(
        session: &Session,
        schema: &str,
        table: &str,
        arrow_schema: SchemaRef,
    ) -> Result<StagedTable> {
        check_storable(&arrow_schema)?;
        let db = &session.db;
        let dir = format!("tables/{}/{}-{}", safe(schema), safe(table), random_id());
        let record = RelationRecord {
            schema: schema.to_string(),
            name: table.to_string(),
            kind: RelationKind::Managed {
                dir: dir.clone(),
                arrow_schema: encode_schema(&arrow_schema)?,
            },
            seq: next_seq(db)?,
            created: now(),
            owner: session.user.clone(),
        };
        let path = db.inner.data_dir.join(&dir);
        match ManagedTable::staged(&db.inner.tables, &dir, arrow_schema) {
            Ok(managed) => Ok(StagedTable {
                schema: schema.to_string(),
                table: table.to_string(),
                provider: Arc::new(managed.clone()),
                managed,
                dir,
                path,
                record,
            }),
            Err(e) => {
                remove_uncommitted(&path, &dir);
                Err(e)
            }
        }
    }

    /// Runs the `AS` query into the table, like any query: on the executor, cancelable,
    /// under statement_timeout (its Wasm calls may be long). The tag PostgreSQL gives:
    /// `SELECT n` after a fill, `CREATE TABLE` without one.
    async fn fill(&self, session: &Session, cmt: &CreateMemoryTable) -> DfResult<CommandTag> {
        let is_query =
            !matches!(cmt.input.as_ref(), LogicalPlan::EmptyRelation(e) if !e.produce_one_row);
        if !is_query {
            return Ok(CommandTag::CreateTable);
        }
        // Typed as the table was created (`distinct_columns`), decimals widened there.
        let rows = literal_types::postgres_output_types(cmt.input.as_ref().clone())?;
        let table = self.provider.schema();
        let columns = rows
            .schema()
            .columns()
            .into_iter()
            .zip(table.fields())
            .map(|(column, field)| {
                let name = column.name.clone();
                Expr::Column(column)
                    .cast_to(field.data_type(), rows.schema())
                    .map(|e| e.alias(name))
            })
            .collect::<DfResult<Vec<_>>>()?;
        let rows = LogicalPlanBuilder::from(rows).project(columns)?.build()?;
        let fill = LogicalPlanBuilder::insert_into(
            rows,
            TableReference::partial(self.schema.as_str(), self.table.as_str()),
            provider_as_source(self.provider.clone()),
            InsertOp::Append,
        )?
        .build()?;
        match session.execute_plan(fill).await? {
            Output::Command(CommandTag::Insert(rows)) => Ok(CommandTag::Select(rows)),
            other => Err(Error::Catalog(format!("unexpected fill result {other:?}")).into()),
        }
    }

    /// Commits the record in place of any old one and registers the table, under the
    /// DDL lock. Anything but `Swap::Done` committed nothing.
    fn swap_in(
        &self,
        session: &Session,
        provider: &Arc<dyn SchemaProvider>,
        cmt: &CreateMemoryTable,
    ) -> Result<Swap> {
        let db = &session.db;
        let _ddl = db.inner.ddl.lock();
        // Checked again: another session may have created or dropped it meanwhile.
        let exists = provider.table_exist(&self.table);
        if exists && cmt.if_not_exists {
            return Ok(Swap::Kept);
        }
        if exists && !cmt.or_replace {
            return Err(Error::DuplicateRelation(format!(
                "relation {}.{} already exists",
                self.schema, self.table
            )));
        }
        let old = if exists {
            let key = relation_key(&self.schema, &self.table);
            db.inner
                .catalog
                .relations()?
                .into_iter()
                .find(|r| r.key() == key)
        } else {
            None
        };
        // One catalog write puts the new record and its files in place of the old one.
        let change = db.inner.catalog.change()?;
        change.put_relation(&self.record)?;
        for file in self.managed.staged_files() {
            change.put_file(&self.dir, &file.name, &file.record)?;
        }
        if let Some(RelationRecord {
            kind: RelationKind::Managed { dir, .. },
            ..
        }) = &old
        {
            change.remove_files_of(dir)?;
        }
        change.commit()?;
        // Committed: from here on nothing is undone (a restart restores from the record).
        self.managed.created();
        if exists {
            if let Ok(Some(old)) = provider.deregister_table(&self.table) {
                mark_dropped(old.as_ref());
            }
        }
        if let Err(e) = provider.register_table(self.table.clone(), self.provider.clone()) {
            tracing::error!(
                "table {}.{} committed but not registered: {e}",
                self.schema,
                self.table
            );
        }
        Ok(Swap::Done(old.and_then(|r| match r.kind {
            RelationKind::Managed { dir, .. } => Some(dir),
            _ => None,
        })))
    }

    /// Removes the uncommitted table's directory.
    fn discard(self) {
        remove_uncommitted(&self.path, &self.dir);
    }
}

/// Refuses (0A000), at CREATE, a column the table files cannot hold, rather than
/// accepting the table and failing its first INSERT. Asks the Parquet writer itself,
/// with one row of nulls: its list of supported types is the one that counts.
fn check_storable(schema: &Schema) -> Result<()> {
    use datafusion::arrow::array::new_null_array;
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::parquet::arrow::ArrowWriter;
    for field in schema.fields() {
        let nullable = Arc::new(Schema::new(vec![field
            .as_ref()
            .clone()
            .with_nullable(true)]));
        let written =
            RecordBatch::try_new(nullable.clone(), vec![new_null_array(field.data_type(), 1)])
                .map_err(|e| e.to_string())
                .and_then(|batch| {
                    let mut writer = ArrowWriter::try_new(Vec::new(), nullable, None)
                        .map_err(|e| e.to_string())?;
                    writer.write(&batch).map_err(|e| e.to_string())?;
                    writer.close().map(drop).map_err(|e| e.to_string())
                });
        if let Err(reason) = written {
            return Err(Error::NotSupported(format!(
                "column \"{}\" of type {} cannot be stored in a table ({})",
                log_text(field.name()),
                crate::pg::types::pg_type_name(crate::pg::types::pg_type_oid(field))
                    .unwrap_or_else(|| field.data_type().to_string()),
                log_text(&reason)
            )));
        }
    }
    Ok(())
}

/// Removes the directory of a table that was never committed; one left behind (a
/// failure here, a crash) is removed at the next start.
fn remove_uncommitted(path: &std::path::Path, dir: &str) {
    if let Err(e) = std::fs::remove_dir_all(path) {
        tracing::warn!("could not remove {dir} (removed at next start): {e}");
    }
}

/// How a new table's commit ended.
enum Swap {
    /// Committed; the managed directory of the relation it replaced, if any.
    Done(Option<String>),
    /// Not committed: IF NOT EXISTS, and the table appeared meanwhile.
    Kept,
}

/// `CREATE EXTERNAL TABLE` and `CREATE VIEW`: run by DataFusion, persisted as text.
pub(crate) async fn create_by_statement(
    session: &Session,
    statement: DfStatement,
    tag: CommandTag,
) -> DfResult<Output> {
    let sql = statement.to_string();
    let state = session.ctx.state();
    let plan = state.statement_to_plan(statement).await?;
    let (name, if_not_exists) = match &plan {
        LogicalPlan::Ddl(DdlStatement::CreateExternalTable(c)) => (c.name.clone(), c.if_not_exists),
        LogicalPlan::Ddl(DdlStatement::CreateView(v)) => {
            if v.temporary {
                return Err(Error::NotSupported("temporary views are not supported".into()).into());
            }
            (v.name.clone(), false)
        }
        other => {
            return Err(Error::NotSupported(format!("unexpected plan: {}", other.display())).into())
        }
    };
    let (schema, table) = split(&name)?;
    check_writable_schema(&schema)?;
    let provider = schema_provider(session, &schema)?;
    let existed = provider.table_exist(&table);
    if existed && if_not_exists {
        return Ok(command(tag));
    }
    let db = &session.db;
    if existed && is_managed(db, &schema, &table)? {
        return Err(
            Error::DuplicateRelation(format!("relation {schema}.{table} already exists")).into(),
        );
    }
    session
        .ctx
        .execute_logical_plan(plan)
        .await?
        .collect()
        .await?;
    let record = RelationRecord {
        schema,
        name: table,
        kind: RelationKind::Statement { sql },
        seq: next_seq(db)?,
        created: now(),
        owner: session.user.clone(),
    };
    let _ddl = db.inner.ddl.lock();
    let change = db.inner.catalog.change()?;
    change.put_relation(&record)?;
    change.commit()?;
    Ok(command(tag))
}

/// `CREATE SCHEMA [IF NOT EXISTS] name`.
pub(crate) async fn create_schema(session: &Session, statement: DfStatement) -> DfResult<Output> {
    let state = session.ctx.state();
    let plan = state.statement_to_plan(statement).await?;
    let LogicalPlan::Ddl(DdlStatement::CreateCatalogSchema(c)) = &plan else {
        return Err(Error::NotSupported(format!("unexpected plan: {}", plan.display())).into());
    };
    let name = match c.schema_name.split_once('.') {
        Some((catalog, schema)) if catalog == CATALOG_NAME => schema.to_string(),
        Some(_) => {
            return Err(Error::NotSupported("schemas live in the one database".into()).into())
        }
        None => c.schema_name.clone(),
    };
    check_writable_schema(&name)?;
    let catalog = default_catalog(&session.ctx)?;
    if catalog.schema(&name).is_some() {
        if c.if_not_exists {
            return Ok(command(CommandTag::CreateSchema));
        }
        return Err(Error::DuplicateSchema(format!("schema {name} already exists")).into());
    }
    let db = &session.db;
    let _ddl = db.inner.ddl.lock();
    let change = db.inner.catalog.change()?;
    change.put_schema(&SchemaRecord {
        name: name.clone(),
        created: now(),
        owner: session.user.clone(),
    })?;
    change.commit()?;
    catalog.register_schema(&name, Arc::new(MemorySchemaProvider::new()))?;
    Ok(command(CommandTag::CreateSchema))
}

/// `DROP TABLE|VIEW [IF EXISTS] a, b`.
pub(crate) fn drop_relations(session: &Session, statement: &Statement) -> Result<CommandTag> {
    let Statement::Drop {
        object_type,
        if_exists,
        names,
        ..
    } = statement
    else {
        return Err(Error::NotSupported(statement.to_string()));
    };
    let want = if *object_type == ObjectType::View {
        TableType::View
    } else {
        TableType::Base
    };
    for name in names {
        let (schema, table) = object_name(name)?;
        check_writable_schema(&schema)?;
        let provider = match schema_provider(session, &schema) {
            Ok(p) => p,
            Err(_) if *if_exists => continue,
            Err(e) => return Err(e),
        };
        if !provider.table_exist(&table) {
            if *if_exists {
                continue;
            }
            return Err(Error::UndefinedRelation(format!(
                "{} {schema}.{table} does not exist",
                if want == TableType::View {
                    "view"
                } else {
                    "table"
                }
            )));
        }
        drop_one(session, &schema, &table, Some(want))?;
    }
    Ok(if *object_type == ObjectType::View {
        CommandTag::DropView
    } else {
        CommandTag::DropTable
    })
}

/// Drops one relation: catalog first, then the live table, then its files.
fn drop_one(session: &Session, schema: &str, table: &str, want: Option<TableType>) -> Result<()> {
    let db = &session.db;
    let provider = schema_provider(session, schema)?;
    if let Some(want) = want {
        let is_view = db_table_type(&provider, table) == Some(TableType::View);
        if is_view != (want == TableType::View) {
            return Err(Error::NotSupported(format!(
                "{schema}.{table} is {}; use DROP {}",
                if is_view { "a view" } else { "a table" },
                if is_view { "VIEW" } else { "TABLE" }
            )));
        }
    }
    let key = relation_key(schema, table);
    let record = db
        .inner
        .catalog
        .relations()?
        .into_iter()
        .find(|r| r.key() == key);
    let _ddl = db.inner.ddl.lock();
    let change = db.inner.catalog.change()?;
    change.remove_relation(&key)?;
    if let Some(RelationRecord {
        kind: RelationKind::Managed { dir, .. },
        ..
    }) = &record
    {
        change.remove_files_of(dir)?;
    }
    change.commit()?;
    if let Some(live) = provider.deregister_table(table)? {
        mark_dropped(live.as_ref());
    }
    if let Some(RelationRecord {
        kind: RelationKind::Managed { dir, .. },
        ..
    }) = record
    {
        if let Err(e) = std::fs::remove_dir_all(db.inner.data_dir.join(&dir)) {
            tracing::warn!("could not remove {dir} (removed at next start): {e}");
        }
    }
    Ok(())
}

fn db_table_type(provider: &Arc<dyn SchemaProvider>, table: &str) -> Option<TableType> {
    // Every provider here is in memory: the future is ready at once.
    futures::executor::block_on(provider.table_type(table))
        .ok()
        .flatten()
}

/// `DROP SCHEMA [IF EXISTS] s [CASCADE]`.
pub(crate) fn drop_schemas(session: &Session, statement: &Statement) -> Result<CommandTag> {
    let Statement::Drop {
        if_exists,
        names,
        cascade,
        ..
    } = statement
    else {
        return Err(Error::NotSupported(statement.to_string()));
    };
    let catalog = default_catalog(&session.ctx)?;
    for name in names {
        let schema = match &name.0[..] {
            [ObjectNamePart::Identifier(i)] => normalize(i),
            _ => return Err(Error::NotSupported(format!("schema name {name}"))),
        };
        check_writable_schema(&schema)?;
        if schema == DEFAULT_SCHEMA {
            return Err(Error::InsufficientPrivilege(format!(
                "schema {DEFAULT_SCHEMA} cannot be dropped"
            )));
        }
        let Some(provider) = catalog.schema(&schema) else {
            if *if_exists {
                continue;
            }
            return Err(Error::UndefinedSchema(format!(
                "schema {schema} does not exist"
            )));
        };
        let tables = provider.table_names();
        if !tables.is_empty() && !cascade {
            return Err(Error::DependentObjects(format!(
                "schema {schema} is not empty ({}); use DROP SCHEMA {schema} CASCADE",
                tables.join(", ")
            )));
        }
        for table in tables {
            drop_one(session, &schema, &table, None)?;
        }
        let db = &session.db;
        let _ddl = db.inner.ddl.lock();
        let change = db.inner.catalog.change()?;
        change.remove_schema(&schema)?;
        change.commit()?;
        catalog.deregister_schema(&schema, true)?;
    }
    Ok(CommandTag::DropSchema)
}

/// Restores schemas and relations at startup and removes unreferenced table files.
pub(crate) async fn restore(db: &Database) -> Result<()> {
    // Replay in a session that sees the restored functions (views may call them).
    let session = db.session("wasmudf");
    session.sync_functions();
    let ctx = &session.ctx;
    let catalog = default_catalog(ctx)?;
    for s in db.inner.catalog.schemas()? {
        if catalog.schema(&s.name).is_none() {
            catalog.register_schema(&s.name, Arc::new(MemorySchemaProvider::new()))?;
        }
    }
    let mut relations = db.inner.catalog.relations()?;
    relations.sort_by_key(|r| r.seq);
    let mut live = HashMap::new();
    for r in relations {
        let restored = match &r.kind {
            RelationKind::Managed { dir, arrow_schema } => {
                let registered = decode_schema(arrow_schema).and_then(|schema| {
                    let table = ManagedTable::open(&db.inner.tables, dir, schema)?;
                    let provider = catalog
                        .schema(&r.schema)
                        .ok_or_else(|| Error::UndefinedSchema(r.schema.clone()))?;
                    provider.register_table(r.name.clone(), Arc::new(table.clone()))?;
                    Ok(table)
                });
                registered
                    .map(|table| {
                        live.insert(db.inner.data_dir.join(dir), table);
                    })
                    .map_err(|e| e.to_string())
            }
            RelationKind::Statement { sql } => match ctx.sql(sql).await {
                Ok(df) => df.collect().await.map(drop).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            },
        };
        if let Err(e) = restored {
            tracing::error!(
                relation = %r.key(),
                error = %log_text(&e.to_string()),
                "cannot restore relation"
            );
        }
    }
    if !db.inner.catalog.files_recorded() {
        // Written by a server that read every Parquet file of a table's directory:
        // those files are the table, recorded now in one commit.
        db.inner.catalog.upgrade_file_records(|change| {
            for table in live.values() {
                table.adopt_directory(change)?;
            }
            Ok(())
        })?;
        tracing::info!(
            tables = live.len(),
            "recorded the files of every table (catalog format upgrade)"
        );
    }
    remove_unnamed_files(db, &live);
    Ok(())
}

/// Removes the directories no table has and, in each table's, the files its last
/// commit does not name: what a crash left of uncommitted writes and of versions a
/// commit replaced.
fn remove_unnamed_files(db: &Database, live: &HashMap<std::path::PathBuf, ManagedTable>) {
    let root = db.inner.data_dir.join("tables");
    let Ok(schemas) = std::fs::read_dir(&root) else {
        return;
    };
    for schema in schemas.flatten() {
        let Ok(tables) = std::fs::read_dir(schema.path()) else {
            continue;
        };
        for table in tables.flatten() {
            let path = table.path();
            let Some(managed) = live.get(&path) else {
                tracing::info!(dir = %path.display(), "removing files of a dropped table");
                if let Err(e) = std::fs::remove_dir_all(&path) {
                    tracing::warn!(dir = %path.display(), "could not remove: {e}");
                }
                continue;
            };
            let named = managed.committed_names();
            let Ok(files) = std::fs::read_dir(&path) else {
                continue;
            };
            for file in files.flatten() {
                let name = file.file_name().to_string_lossy().into_owned();
                if !named.contains(&name) {
                    tracing::info!(file = %file.path().display(), "removing a file no commit names");
                    if let Err(e) = std::fs::remove_file(file.path()) {
                        tracing::warn!(file = %file.path().display(), "could not remove: {e}");
                    }
                }
            }
        }
    }
}

/// Tells a managed table it was dropped (changes pending for it go with it).
fn mark_dropped(provider: &dyn TableProvider) {
    if let Some(table) = provider.downcast_ref::<ManagedTable>() {
        table.dropped();
    }
}

fn is_managed(db: &Database, schema: &str, table: &str) -> Result<bool> {
    let key = relation_key(schema, table);
    Ok(db
        .inner
        .catalog
        .relations()?
        .iter()
        .any(|r| r.key() == key && matches!(r.kind, RelationKind::Managed { .. })))
}

fn next_seq(db: &Database) -> Result<u64> {
    Ok(db
        .inner
        .catalog
        .relations()?
        .iter()
        .map(|r| r.seq)
        .max()
        .map_or(1, |m| m + 1))
}

fn encode_schema(schema: &Schema) -> Result<String> {
    let mut bytes = Vec::new();
    let mut writer = StreamWriter::try_new(&mut bytes, schema)
        .map_err(|e| Error::Catalog(format!("encode schema: {e}")))?;
    writer
        .finish()
        .map_err(|e| Error::Catalog(format!("encode schema: {e}")))?;
    drop(writer);
    Ok(hex::encode(bytes))
}

fn decode_schema(hex_bytes: &str) -> Result<SchemaRef> {
    let bytes = hex::decode(hex_bytes).map_err(|e| Error::Catalog(format!("schema: {e}")))?;
    let reader = StreamReader::try_new(std::io::Cursor::new(bytes), None)
        .map_err(|e| Error::Catalog(format!("schema: {e}")))?;
    Ok(reader.schema())
}

fn object_name(name: &ObjectName) -> Result<(String, String)> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => Ok(normalize(i)),
            other => Err(Error::NotSupported(format!("name {other}"))),
        })
        .collect::<Result<_>>()?;
    match parts.as_slice() {
        [t] => Ok((DEFAULT_SCHEMA.into(), t.clone())),
        [s, t] => Ok((s.clone(), t.clone())),
        [c, s, t] if c == CATALOG_NAME => Ok((s.clone(), t.clone())),
        _ => Err(Error::NotSupported(format!("name {name}"))),
    }
}

/// A file-name-safe rendering of an identifier (the random suffix keeps it unique).
fn safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect()
}
