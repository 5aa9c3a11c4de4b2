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
use datafusion::sql::sqlparser::ast::{
    Expr as SqlExpr, ObjectName, ObjectNamePart, ObjectType, Statement,
};

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
use crate::store::catalog::{
    now, relation_key, ColumnRecord, KeyRecord, RelationKind, RelationRecord, SchemaRecord,
    SequenceRecord,
};
use crate::store::keys::{SkipConflicts, UniqueKey};
use crate::store::table::{random_id, ManagedTable, TableRules};
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
    let generated = generated_columns(session, &mut statement)?;
    let cmt = memory_table_plan(session, statement).await?;
    let (schema, table) = split(&cmt.name)?;
    check_writable_schema(&schema)?;
    // Checked before OR REPLACE drops the old table: a table whose columns share a name
    // could never be read back.
    let arrow_schema =
        with_json_columns(distinct_columns(session, &cmt, from_query)?, &json_columns);
    check_defaults(session, &cmt, &arrow_schema).await?;
    let keys = table_keys(&table, &arrow_schema, &cmt.constraints);
    let arrow_schema = primary_key_not_null(arrow_schema, &keys);
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
    let staged = StagedTable::create(
        session,
        &schema,
        &table,
        arrow_schema,
        &cmt,
        generated,
        keys,
    )?;
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

/// What CREATE TABLE says of its columns beyond their types: each DEFAULT's text,
/// identity, and the sequences serial and identity columns take.
#[derive(Default)]
struct GeneratedColumns {
    columns: Vec<ColumnRecord>,
    sequences: Vec<SequenceRecord>,
}

/// Rewrites `serial` / `bigserial` / `smallserial` and `GENERATED ... AS IDENTITY`
/// columns as PostgreSQL defines them: a NOT NULL integer column whose DEFAULT is
/// `nextval` of a sequence of its own (`<table>_<column>_seq`, dropped with the
/// table), and collects every column's DEFAULT text for the catalog.
fn generated_columns(session: &Session, statement: &mut DfStatement) -> Result<GeneratedColumns> {
    use datafusion::sql::sqlparser::ast::{
        ColumnOption, ColumnOptionDef, DataType as SqlDataType, GeneratedAs,
    };
    let DfStatement::Statement(s) = statement else {
        return Ok(GeneratedColumns::default());
    };
    let Statement::CreateTable(ct) = s.as_mut() else {
        return Ok(GeneratedColumns::default());
    };
    let (schema, table) = object_name(&ct.name)?;
    // The sequences of a table OR REPLACE replaces go with it: their names are free.
    let replaced = format!("{schema}.{table}.");
    let mut taken: HashSet<String> = session
        .db
        .inner
        .catalog
        .sequences()?
        .into_iter()
        .filter(|s| {
            !(ct.or_replace
                && s.owned_by
                    .as_deref()
                    .is_some_and(|o| o.strip_prefix(&replaced).is_some_and(|c| !c.contains('.'))))
        })
        .map(|s| s.key())
        .collect();
    let mut out = GeneratedColumns::default();
    for column in &mut ct.columns {
        let name = normalize(&column.name);
        let serial = match &column.data_type {
            SqlDataType::Custom(n, args) if args.is_empty() && n.0.len() == 1 => {
                match n.to_string().to_lowercase().as_str() {
                    "serial" | "serial4" => Some((SqlDataType::Integer(None), i64::from(i32::MAX))),
                    "bigserial" | "serial8" => Some((SqlDataType::BigInt(None), i64::MAX)),
                    "smallserial" | "serial2" => {
                        Some((SqlDataType::SmallInt(None), i64::from(i16::MAX)))
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        let identity = column.options.iter().position(|o| {
            matches!(&o.option, ColumnOption::Generated { generated_as, generation_expr: None, .. }
                if matches!(generated_as, GeneratedAs::Always | GeneratedAs::ByDefault))
        });
        let mut record = ColumnRecord {
            name: name.clone(),
            ..ColumnRecord::default()
        };
        let mut sequence_options = Vec::new();
        let max = match (serial, identity) {
            (Some((ty, max)), None) => {
                column.data_type = ty;
                Some(max)
            }
            (None, Some(i)) => {
                let option = column.options.remove(i);
                if let ColumnOption::Generated {
                    generated_as,
                    sequence_options: options,
                    ..
                } = option.option
                {
                    record.identity = Some(
                        if generated_as == GeneratedAs::Always {
                            "always"
                        } else {
                            "by default"
                        }
                        .to_string(),
                    );
                    sequence_options = options.unwrap_or_default();
                }
                Some(match &column.data_type {
                    SqlDataType::SmallInt(_) | SqlDataType::Int2(_) => i64::from(i16::MAX),
                    SqlDataType::Int(_) | SqlDataType::Integer(_) | SqlDataType::Int4(_) => {
                        i64::from(i32::MAX)
                    }
                    SqlDataType::BigInt(_) | SqlDataType::Int8(_) => i64::MAX,
                    other => {
                        return Err(Error::InvalidDefinition(format!(
                            "identity column type must be smallint, integer, or bigint, not {other}"
                        )))
                    }
                })
            }
            (Some(_), Some(_)) => {
                return Err(Error::Syntax(format!(
                    "both default and identity specified for column \"{}\"",
                    log_text(&name)
                )))
            }
            (None, None) => None,
        };
        if let Some(max) = max {
            if column
                .options
                .iter()
                .any(|o| matches!(o.option, ColumnOption::Default(_)))
            {
                return Err(Error::Syntax(format!(
                    "multiple default values specified for column \"{}\"",
                    log_text(&name)
                )));
            }
            let mut sequence = SequenceRecord {
                schema: schema.clone(),
                name: sequence_name(&table, &name, &schema, &taken),
                start: 1,
                increment: 1,
                min: 1,
                max,
                reserved: None,
                owned_by: Some(format!("{schema}.{table}.{name}")),
            };
            apply_sequence_options(&mut sequence, &sequence_options)?;
            taken.insert(sequence.key());
            let nextval = format!(
                "nextval('{}')",
                sequence_reference(&schema, &sequence.name).replace('\'', "''")
            );
            let default = datafusion::sql::sqlparser::parser::Parser::new(
                &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
            )
            .try_with_sql(&nextval)
            .and_then(|mut p| p.parse_expr())
            .map_err(|e| Error::Syntax(e.to_string()))?;
            column
                .options
                .retain(|o| !matches!(o.option, ColumnOption::Null));
            if !column
                .options
                .iter()
                .any(|o| matches!(o.option, ColumnOption::NotNull))
            {
                column.options.push(ColumnOptionDef {
                    name: None,
                    option: ColumnOption::NotNull,
                });
            }
            column.options.push(ColumnOptionDef {
                name: None,
                option: ColumnOption::Default(default),
            });
            out.sequences.push(sequence);
        }
        record.default = column.options.iter().find_map(|o| match &o.option {
            ColumnOption::Default(e) => Some(e.to_string()),
            _ => None,
        });
        if record.default.is_some() {
            out.columns.push(record);
        }
    }
    Ok(out)
}

/// `<table>_<column>_seq`, as PostgreSQL names a serial column's sequence (at most 63
/// bytes), with a number added while the name is taken.
fn sequence_name(table: &str, column: &str, schema: &str, taken: &HashSet<String>) -> String {
    let base: String = format!("{table}_{column}_seq");
    let base = truncate_identifier(&base, 63);
    let mut name = base.clone();
    let mut n = 0;
    while taken.contains(&relation_key(schema, &name)) {
        n += 1;
        let suffix = n.to_string();
        name = format!("{}{suffix}", truncate_identifier(&base, 63 - suffix.len()));
    }
    name
}

fn truncate_identifier(name: &str, bytes: usize) -> String {
    let mut end = name.len().min(bytes);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_string()
}

/// The sequence as a `nextval` argument names it: `schema.name`, each part quoted
/// when it has to be.
fn sequence_reference(schema: &str, name: &str) -> String {
    let quote = |part: &str| {
        let plain = part
            .chars()
            .enumerate()
            .all(|(i, c)| c.is_ascii_lowercase() || c == '_' || (i > 0 && c.is_ascii_digit()));
        if plain {
            part.to_string()
        } else {
            format!("\"{}\"", part.replace('"', "\"\""))
        }
    };
    format!("{}.{}", quote(schema), quote(name))
}

/// `START WITH`, `INCREMENT BY`, `MINVALUE`, `MAXVALUE` of an identity column; 0A000
/// for `CYCLE`, which wasmudf's sequences do not do.
fn apply_sequence_options(
    sequence: &mut SequenceRecord,
    options: &[datafusion::sql::sqlparser::ast::SequenceOptions],
) -> Result<()> {
    use datafusion::sql::sqlparser::ast::SequenceOptions;
    let number = |e: &datafusion::sql::sqlparser::ast::Expr| -> Result<i64> {
        let text = e.to_string().replace(' ', "");
        text.parse::<i64>().map_err(|_| {
            Error::Syntax(format!(
                "sequence option must be an integer, not {}",
                log_text(&text)
            ))
        })
    };
    let type_max = sequence.max;
    let (mut start, mut min, mut max) = (None, None, None);
    for option in options {
        match option {
            SequenceOptions::IncrementBy(e, _) => sequence.increment = number(e)?,
            SequenceOptions::StartWith(e, _) => start = Some(number(e)?),
            SequenceOptions::MinValue(e) => min = e.as_ref().map(number).transpose()?,
            SequenceOptions::MaxValue(e) => max = e.as_ref().map(number).transpose()?,
            SequenceOptions::Cache(_) => {}
            // The flag says NO CYCLE.
            SequenceOptions::Cycle(true) => {}
            SequenceOptions::Cycle(false) => {
                return Err(Error::NotSupported(
                    "CYCLE sequences are not supported".into(),
                ))
            }
        }
    }
    if sequence.increment == 0 {
        return Err(Error::InvalidParameterValue(
            "INCREMENT must not be zero".into(),
        ));
    }
    let type_min = if type_max == i64::MAX {
        i64::MIN
    } else {
        -type_max - 1
    };
    if sequence.increment > 0 {
        sequence.min = min.unwrap_or(1);
        sequence.max = max.unwrap_or(type_max);
    } else {
        sequence.min = min.unwrap_or(type_min);
        sequence.max = max.unwrap_or(-1);
    }
    if sequence.min < type_min || sequence.max > type_max || sequence.min >= sequence.max {
        return Err(Error::InvalidParameterValue(format!(
            "MINVALUE ({}) must be less than MAXVALUE ({}) within the column's type",
            sequence.min, sequence.max
        )));
    }
    sequence.start = start.unwrap_or(if sequence.increment > 0 {
        sequence.min
    } else {
        sequence.max
    });
    if sequence.start < sequence.min || sequence.start > sequence.max {
        return Err(Error::InvalidParameterValue(format!(
            "START value ({}) cannot be outside MINVALUE ({}) and MAXVALUE ({})",
            sequence.start, sequence.min, sequence.max
        )));
    }
    Ok(())
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
    /// The sequences of its serial and identity columns, created with it.
    sequences: Vec<SequenceRecord>,
    provider: Arc<dyn TableProvider>,
}

impl StagedTable {
    fn create(
        session: &Session,
        schema: &str,
        table: &str,
        arrow_schema: SchemaRef,
        cmt: &CreateMemoryTable,
        generated: GeneratedColumns,
        keys: Vec<UniqueKey>,
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
                columns: generated.columns.clone(),
                keys: key_records(&keys, &arrow_schema),
            },
            seq: next_seq(db)?,
            created: now(),
            owner: session.user.clone(),
        };
        let path = db.inner.data_dir.join(&dir);
        let defaults = TableRules {
            exprs: cmt.column_defaults.iter().cloned().collect(),
            always: identity_columns(&generated.columns, "always"),
            by_default: identity_columns(&generated.columns, "by default"),
            keys,
        };
        match ManagedTable::staged(&db.inner.tables, &dir, arrow_schema, defaults) {
            Ok(managed) => Ok(StagedTable {
                schema: schema.to_string(),
                table: table.to_string(),
                provider: Arc::new(managed.clone()),
                managed,
                dir,
                path,
                record,
                sequences: generated.sequences,
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
        // One catalog write puts the new record, its files and its sequences in place of
        // the old one's.
        let change = db.inner.catalog.change()?;
        let old_sequences = if exists {
            owned_sequences(db, &self.schema, &self.table)?
        } else {
            Vec::new()
        };
        for key in &old_sequences {
            change.remove_sequence(key)?;
        }
        for sequence in &self.sequences {
            if db
                .inner
                .catalog
                .sequences()?
                .iter()
                .any(|s| s.key() == sequence.key() && !old_sequences.contains(&s.key()))
            {
                return Err(Error::DuplicateRelation(format!(
                    "relation \"{}\" already exists",
                    log_text(&sequence.name)
                )));
            }
            change.put_sequence(sequence)?;
        }
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
        for key in old_sequences.iter().chain(
            self.sequences
                .iter()
                .map(|s| s.key())
                .collect::<Vec<_>>()
                .iter(),
        ) {
            db.inner.sequences.forget(key);
        }
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
    let sequences = owned_sequences(db, schema, table)?;
    for sequence in &sequences {
        change.remove_sequence(sequence)?;
    }
    change.commit()?;
    for sequence in &sequences {
        db.inner.sequences.forget(sequence);
    }
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
            RelationKind::Managed {
                dir,
                arrow_schema,
                columns,
                keys,
            } => {
                let registered = decode_schema(arrow_schema).and_then(|schema| {
                    let mut defaults = restored_defaults(&session, &r, columns);
                    defaults.keys = restored_keys(keys, &schema)?;
                    let table = ManagedTable::open(&db.inner.tables, dir, schema, defaults)?;
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

/// Refuses, at CREATE, a DEFAULT its column cannot take: one of a type that does not
/// cast to the column's, or a constant one whose value does not (`date DEFAULT 'x'`:
/// computed once here, as PostgreSQL does). A volatile one (`nextval`, any Wasm
/// function) is left to run at each INSERT.
async fn check_defaults(
    session: &Session,
    cmt: &CreateMemoryTable,
    schema: &SchemaRef,
) -> DfResult<()> {
    let empty = datafusion::common::DFSchema::empty();
    for (name, expr) in &cmt.column_defaults {
        let Ok(field) = schema.field_with_name(name) else {
            continue;
        };
        let typed = expr.clone().cast_to(field.data_type(), &empty)?;
        if typed.is_volatile() {
            continue;
        }
        let plan = LogicalPlanBuilder::empty(true)
            .project(vec![typed.alias("default")])?
            .build()?;
        if let Output::Rows(rows) = session.execute_plan(plan).await? {
            crate::sql::output::collect(rows).await?;
        }
    }
    Ok(())
}

/// The PRIMARY KEY and UNIQUE constraints DataFusion planned for `table`, named as
/// PostgreSQL names them (`t_pkey`, `t_a_b_key`).
fn table_keys(
    table: &str,
    schema: &SchemaRef,
    constraints: &datafusion::common::Constraints,
) -> Vec<UniqueKey> {
    use datafusion::common::Constraint;
    let mut keys: Vec<UniqueKey> = Vec::new();
    for constraint in constraints.iter() {
        let (columns, primary) = match constraint {
            Constraint::PrimaryKey(c) => (c.clone(), true),
            Constraint::Unique(c) => (c.clone(), false),
        };
        if keys.iter().any(|k| k.columns == columns) {
            // UNIQUE on the primary key's columns: the same constraint twice.
            continue;
        }
        let name = if primary {
            format!("{table}_pkey")
        } else {
            let names: Vec<&str> = columns
                .iter()
                .map(|&i| schema.field(i).name().as_str())
                .collect();
            format!("{table}_{}_key", names.join("_"))
        };
        keys.push(UniqueKey {
            name: truncate_identifier(&name, 63),
            columns,
            primary,
        });
    }
    keys
}

/// `schema` with the primary key's columns NOT NULL, as PostgreSQL makes them.
fn primary_key_not_null(schema: SchemaRef, keys: &[UniqueKey]) -> SchemaRef {
    let primary: HashSet<usize> = keys
        .iter()
        .filter(|k| k.primary)
        .flat_map(|k| k.columns.iter().copied())
        .collect();
    if primary.is_empty() {
        return schema;
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let f = f.as_ref().clone();
            if primary.contains(&i) {
                f.with_nullable(false)
            } else {
                f
            }
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// The catalog's records of `keys`, naming columns (not positions).
fn key_records(keys: &[UniqueKey], schema: &SchemaRef) -> Vec<KeyRecord> {
    keys.iter()
        .map(|k| KeyRecord {
            name: k.name.clone(),
            columns: k
                .columns
                .iter()
                .map(|&i| schema.field(i).name().clone())
                .collect(),
            primary: k.primary,
        })
        .collect()
}

/// The keys of a restored table.
fn restored_keys(records: &[KeyRecord], schema: &SchemaRef) -> Result<Vec<UniqueKey>> {
    records
        .iter()
        .map(|r| {
            let columns = r
                .columns
                .iter()
                .map(|c| {
                    schema.index_of(c).map_err(|_| {
                        Error::Catalog(format!(
                            "key {} names a column {} the table lacks",
                            log_text(&r.name),
                            log_text(c)
                        ))
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(UniqueKey {
                name: r.name.clone(),
                columns,
                primary: r.primary,
            })
        })
        .collect()
}

/// The identity columns among `columns` generated `kind` (`always`, `by default`).
fn identity_columns(columns: &[ColumnRecord], kind: &str) -> HashSet<String> {
    columns
        .iter()
        .filter(|c| c.identity.as_deref() == Some(kind))
        .map(|c| c.name.clone())
        .collect()
}

/// The DEFAULT expressions of a restored table's columns, planned again from their
/// text; one that no longer plans (a function it calls was dropped) is logged and
/// left out, so the table stays readable.
fn restored_defaults(
    session: &Session,
    relation: &RelationRecord,
    columns: &[ColumnRecord],
) -> TableRules {
    let state = session.ctx.state();
    let empty = datafusion::common::DFSchema::empty();
    let mut defaults = TableRules {
        always: identity_columns(columns, "always"),
        by_default: identity_columns(columns, "by default"),
        ..TableRules::default()
    };
    for column in columns {
        let Some(text) = &column.default else {
            continue;
        };
        match state.create_logical_expr(text, &empty) {
            Ok(expr) => {
                defaults.exprs.insert(column.name.clone(), expr);
            }
            Err(e) => tracing::error!(
                relation = %relation.key(),
                column = %log_text(&column.name),
                error = %log_text(&e.to_string()),
                "cannot restore the column's DEFAULT"
            ),
        }
    }
    defaults
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

/// The keys of the sequences the columns of `schema.table` own.
fn owned_sequences(db: &Database, schema: &str, table: &str) -> Result<Vec<String>> {
    let prefix = format!("{schema}.{table}.");
    Ok(db
        .inner
        .catalog
        .sequences()?
        .into_iter()
        .filter(|s| {
            s.owned_by
                .as_deref()
                .and_then(|o| o.strip_prefix(&prefix))
                .is_some_and(|column| !column.contains('.'))
        })
        .map(|s| s.key())
        .collect())
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

/// An INSERT or UPDATE of a managed table as its columns' rules want it: each
/// `DEFAULT` in a `VALUES` row or a `SET` becomes the column's default expression (or
/// NULL), and a value given for a `GENERATED ALWAYS` identity column is 428C9. An
/// INSERT's `ON CONFLICT DO NOTHING` is taken off (the planner refuses it) and
/// returned, for the table's writer.
pub(crate) async fn prepare_write(
    session: &Session,
    statement: &mut DfStatement,
) -> Result<Option<SkipConflicts>> {
    use datafusion::sql::sqlparser::ast::{AssignmentTarget, SetExpr, TableFactor, TableObject};
    let DfStatement::Statement(s) = statement else {
        return Ok(None);
    };
    let name = match s.as_ref() {
        Statement::Insert(insert) => match &insert.table {
            TableObject::TableName(name) => name.clone(),
            _ => return Ok(None),
        },
        Statement::Update(update) => match &update.table.relation {
            TableFactor::Table { name, .. } => name.clone(),
            _ => return Ok(None),
        },
        _ => return Ok(None),
    };
    let on_conflict = match s.as_mut() {
        Statement::Insert(insert) => insert.on.take(),
        _ => None,
    };
    let Some(managed) = managed_table(session, &name).await else {
        return match on_conflict {
            Some(_) => Err(Error::NotSupported(
                "ON CONFLICT on a relation that is not a table".into(),
            )),
            None => Ok(None),
        };
    };
    let skip = match on_conflict {
        Some(on) => Some(skip_conflicts(&managed, on)?),
        None => None,
    };
    let always = managed.generated_always();
    let default_of = |column: &str| -> Result<SqlExpr> {
        match managed.get_column_default(column) {
            Some(expr) => datafusion::sql::unparser::expr_to_sql(expr).map_err(|e| {
                Error::Runtime(format!(
                    "DEFAULT of column {}: {}",
                    log_text(column),
                    log_text(&e.to_string())
                ))
            }),
            None => Ok(SqlExpr::value(datafusion::sql::sqlparser::ast::Value::Null)),
        }
    };
    // The column given a value it may not take, if any.
    let mut refused: Option<String> = None;
    match s.as_mut() {
        Statement::Insert(insert) => {
            let columns: Vec<String> = if insert.columns.is_empty() {
                managed
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect()
            } else {
                insert
                    .columns
                    .iter()
                    .map(|c| {
                        c.0.last()
                            .and_then(|p| p.as_ident())
                            .map(normalize)
                            .unwrap_or_default()
                    })
                    .collect()
            };
            let values = insert.source.as_mut().and_then(|q| match q.body.as_mut() {
                SetExpr::Values(v) => Some(v),
                _ => None,
            });
            match values {
                Some(values) => {
                    for row in &mut values.rows {
                        for (item, column) in row.content.iter_mut().zip(&columns) {
                            if is_default_keyword(item) {
                                *item = default_of(column)?;
                            } else if always.contains(column) {
                                refused.get_or_insert(column.clone());
                            }
                        }
                    }
                }
                None => refused = columns.into_iter().find(|c| always.contains(c)),
            }
        }
        Statement::Update(update) => {
            for assignment in &mut update.assignments {
                let AssignmentTarget::ColumnName(c) = &assignment.target else {
                    continue;
                };
                let Some(column) = c.0.last().and_then(|p| p.as_ident()).map(normalize) else {
                    continue;
                };
                if is_default_keyword(&assignment.value) {
                    assignment.value = default_of(&column)?;
                } else if always.contains(&column) {
                    return Err(Error::GeneratedAlways(format!(
                        "column \"{}\" can only be updated to DEFAULT",
                        log_text(&column)
                    )));
                }
            }
        }
        _ => {}
    }
    match refused {
        Some(column) => Err(Error::GeneratedAlways(format!(
            "cannot insert a non-DEFAULT value into column \"{}\" (an identity column defined as GENERATED ALWAYS)",
            log_text(&column)
        ))),
        None => Ok(skip),
    }
}

/// What `ON CONFLICT [target] DO NOTHING` skips: conflicts on the key its target names
/// (42P10 if none matches), or on any key. `DO UPDATE` is 0A000 for now.
fn skip_conflicts(
    table: &ManagedTable,
    on: datafusion::sql::sqlparser::ast::OnInsert,
) -> Result<SkipConflicts> {
    use datafusion::sql::sqlparser::ast::{ConflictTarget, OnConflictAction, OnInsert};
    let OnInsert::OnConflict(on) = on else {
        return Err(Error::NotSupported(
            "ON DUPLICATE KEY UPDATE (use ON CONFLICT)".into(),
        ));
    };
    if matches!(on.action, OnConflictAction::DoUpdate(_)) {
        return Err(Error::NotSupported(
            "ON CONFLICT DO UPDATE is not supported yet".into(),
        ));
    }
    let schema = table.schema();
    let keys = table.keys();
    let key = match &on.conflict_target {
        None => None,
        Some(ConflictTarget::Columns(columns)) => {
            let mut wanted = Vec::new();
            for c in columns {
                let name = normalize(c);
                let i = schema.index_of(&name).map_err(|_| {
                    Error::UndefinedColumn(format!("column \"{}\" does not exist", log_text(&name)))
                })?;
                wanted.push(i);
            }
            wanted.sort_unstable();
            let found = keys.iter().position(|k| {
                let mut columns = k.columns.clone();
                columns.sort_unstable();
                columns == wanted
            });
            Some(found.ok_or_else(no_matching_key)?)
        }
        Some(ConflictTarget::OnConstraint(name)) => {
            let wanted = name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .map(normalize)
                .unwrap_or_default();
            Some(keys.iter().position(|k| k.name == wanted).ok_or_else(|| {
                Error::UndefinedObject(format!(
                    "constraint \"{}\" for table does not exist",
                    log_text(&wanted)
                ))
            })?)
        }
    };
    Ok(SkipConflicts { key })
}

/// PostgreSQL's 42P10 for an ON CONFLICT target no key matches.
fn no_matching_key() -> Error {
    Error::InvalidColumnReference(
        "there is no unique or exclusion constraint matching the ON CONFLICT specification".into(),
    )
}

/// The `DEFAULT` keyword where a value goes (`VALUES (DEFAULT, 1)`, `SET x = DEFAULT`).
fn is_default_keyword(expr: &SqlExpr) -> bool {
    matches!(expr, SqlExpr::Identifier(i) if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("default"))
}

/// The managed table `name` refers to, if it is one.
async fn managed_table(session: &Session, name: &ObjectName) -> Option<ManagedTable> {
    let (schema, table) = object_name(name).ok()?;
    let provider = schema_provider(session, &schema).ok()?;
    let provider = provider.table(&table).await.ok()??;
    provider.downcast_ref::<ManagedTable>().cloned()
}

/// The plan of an `INSERT ... <query>` whose query holds a `VALUES` list below its top
/// (`INSERT INTO t (a) SELECT p0 FROM (VALUES ($1, 0), ...) AS s(p0, n) ORDER BY n`,
/// SQLAlchemy's many-row insert): DataFusion's planner types every VALUES list of an
/// INSERT as the target's columns, so it would refuse that one. The query is planned
/// on its own here and fitted to the table as the planner does it: the named columns
/// cast to their types, the others their DEFAULT (or NULL). `None` for any other
/// statement, planned as usual.
pub(crate) async fn insert_with_nested_values(
    state: &datafusion::execution::SessionState,
    statement: &DfStatement,
    plan_query: impl AsyncFnOnce(DfStatement) -> DfResult<LogicalPlan>,
) -> DfResult<Option<LogicalPlan>> {
    use datafusion::sql::sqlparser::ast::{SetExpr, TableObject};
    let DfStatement::Statement(s) = statement else {
        return Ok(None);
    };
    let Statement::Insert(insert) = s.as_ref() else {
        return Ok(None);
    };
    let Some(source) = &insert.source else {
        return Ok(None);
    };
    if matches!(source.body.as_ref(), SetExpr::Values(_)) || !has_values(source.body.as_ref()) {
        return Ok(None);
    }
    let TableObject::TableName(name) = &insert.table else {
        return Ok(None);
    };
    let (schema, table) = object_name(name)?;
    let reference = TableReference::partial(schema.as_str(), table.as_str());
    let provider = state
        .schema_for_ref(reference.clone())?
        .table(&table)
        .await?
        .ok_or_else(|| {
            Error::UndefinedRelation(format!("relation \"{}\" does not exist", log_text(&table)))
        })?;
    let rows = plan_query(DfStatement::Statement(Box::new(Statement::Query(
        source.clone(),
    ))))
    .await?;
    let target = provider.schema();
    let named: Vec<String> = if insert.columns.is_empty() {
        target.fields().iter().map(|f| f.name().clone()).collect()
    } else {
        insert
            .columns
            .iter()
            .map(|c| {
                c.0.last()
                    .and_then(|p| p.as_ident())
                    .map(normalize)
                    .unwrap_or_default()
            })
            .collect()
    };
    if named.len() != rows.schema().fields().len() {
        return Err(Error::Syntax(format!(
            "INSERT has {} target columns but its query gives {}",
            named.len(),
            rows.schema().fields().len()
        ))
        .into());
    }
    let empty = datafusion::common::DFSchema::empty();
    let mut columns = Vec::with_capacity(target.fields().len());
    for field in target.fields() {
        let expr = match named.iter().position(|n| n == field.name()) {
            Some(i) => Expr::Column(datafusion::common::Column::from(
                rows.schema().qualified_field(i),
            ))
            .cast_to(field.data_type(), rows.schema())?,
            None => provider
                .get_column_default(field.name())
                .cloned()
                .unwrap_or(Expr::Literal(ScalarValue::Null, None))
                .cast_to(field.data_type(), &empty)?,
        };
        columns.push(expr.alias(field.name()));
    }
    if let Some(unknown) = named.iter().find(|n| target.field_with_name(n).is_err()) {
        return Err(Error::UndefinedColumn(format!(
            "column \"{}\" of relation \"{}\" does not exist",
            log_text(unknown),
            log_text(&table)
        ))
        .into());
    }
    let rows = LogicalPlanBuilder::from(rows).project(columns)?.build()?;
    let plan = LogicalPlanBuilder::insert_into(
        rows,
        reference,
        provider_as_source(provider),
        InsertOp::Append,
    )?
    .build()?;
    Ok(Some(plan))
}

/// Whether a query body holds a `VALUES` list anywhere (in a derived table, a set
/// operation, a subquery of its FROM).
fn has_values(body: &datafusion::sql::sqlparser::ast::SetExpr) -> bool {
    use datafusion::sql::sqlparser::ast::{SetExpr, TableFactor, TableWithJoins};
    fn in_from(from: &[TableWithJoins]) -> bool {
        from.iter().any(|t| {
            std::iter::once(&t.relation)
                .chain(t.joins.iter().map(|j| &j.relation))
                .any(|r| matches!(r, TableFactor::Derived { subquery, .. } if has_values(&subquery.body)))
        })
    }
    match body {
        SetExpr::Values(_) => true,
        SetExpr::Select(select) => in_from(&select.from),
        SetExpr::Query(query) => has_values(&query.body),
        SetExpr::SetOperation { left, right, .. } => has_values(left) || has_values(right),
        _ => false,
    }
}
