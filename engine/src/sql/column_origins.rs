//! The table and column each result column reads, as PostgreSQL's RowDescription says
//! (its table OID and column number): pgjdbc's `getTableName` / `isNullable` and
//! psycopg's `Column.table_oid` look them up in the catalog by these numbers.
//!
//! A result column has an origin when it is a plain reference to a column of a table
//! or view in FROM (through any alias of it, grouping or ordering); an expression, a
//! subquery's column or a set operation's has none (0, as PostgreSQL sends).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::TableReference;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use parking_lot::Mutex;

use crate::introspection::pg_catalog::relation_oids;
use crate::pg::types::{PG_ATTNUM_KEY, PG_TABLE_OID_KEY};
use crate::store::{CATALOG_NAME, DEFAULT_SCHEMA};

/// pg_class OIDs of the user's relations by (schema, name), as the catalog hands them
/// out (it keeps a relation's OID while it exists). Looked up in `pg_class` once and
/// kept until a table or view is created or dropped, so a query pays nothing for it.
#[derive(Default)]
pub(crate) struct RelationOids {
    known: Mutex<Known>,
}

#[derive(Default)]
struct Known {
    /// Counts [`RelationOids::forget`]: a lookup that started before one is not kept.
    generation: u64,
    oids: Option<HashMap<(String, String), i32>>,
}

impl RelationOids {
    /// Forgets the OIDs: relations were created or dropped.
    pub(crate) fn forget(&self) {
        let mut known = self.known.lock();
        known.generation += 1;
        known.oids = None;
    }

    async fn get(&self, ctx: &SessionContext, schema: &str, table: &str) -> Option<i32> {
        let key = (schema.to_string(), table.to_string());
        let generation = {
            let known = self.known.lock();
            if let Some(oids) = &known.oids {
                return oids.get(&key).copied();
            }
            known.generation
        };
        let pg_catalog = ctx.catalog(CATALOG_NAME)?.schema("pg_catalog")?;
        let oids = relation_oids(pg_catalog.as_ref(), &ctx.state())
            .await
            .ok()?;
        let oid = oids.get(&key).copied();
        let mut known = self.known.lock();
        if known.generation == generation {
            known.oids = Some(oids);
        }
        oid
    }
}

/// For each output column of `plan`, the relation and column name it reads, if it is a
/// plain column reference to a table or view.
fn base_columns(plan: &LogicalPlan) -> Vec<Option<(TableReference, String)>> {
    // Relations in FROM by the name their columns are qualified with: a scan by its
    // own name, an alias of a scan by the alias. Any other alias (of a subquery) names
    // columns that are not a table's.
    let mut scans: HashMap<TableReference, TableReference> = HashMap::new();
    let mut other_aliases: HashSet<TableReference> = HashSet::new();
    let mut set_operation = false;
    let _ = plan.apply(|node| {
        match node {
            LogicalPlan::TableScan(scan) => {
                scans
                    .entry(scan.table_name.clone())
                    .or_insert_with(|| scan.table_name.clone());
            }
            LogicalPlan::SubqueryAlias(alias) => match alias.input.as_ref() {
                LogicalPlan::TableScan(scan) => {
                    scans.insert(alias.alias.clone(), scan.table_name.clone());
                }
                _ => {
                    other_aliases.insert(alias.alias.clone());
                }
            },
            LogicalPlan::Union(_) => set_operation = true,
            _ => {}
        }
        Ok(TreeNodeRecursion::Continue)
    });
    plan.schema()
        .iter()
        .map(|(qualifier, field)| {
            let qualifier = qualifier?;
            if set_operation || other_aliases.contains(qualifier) {
                return None;
            }
            let table = scans.get(qualifier)?;
            Some((table.clone(), field.name().clone()))
        })
        .collect()
}

/// `schema` (the columns of `plan`'s result) with each column's table OID and column
/// number in its metadata, where it has an origin.
pub(crate) async fn with_column_origins(
    ctx: &SessionContext,
    oids: &RelationOids,
    plan: &LogicalPlan,
    schema: SchemaRef,
) -> SchemaRef {
    let origins = base_columns(plan);
    if origins.len() != schema.fields().len() || origins.iter().all(Option::is_none) {
        return schema;
    }
    // Each table's OID and columns, looked up once however many of its columns show.
    let mut tables: HashMap<TableReference, Option<(i32, SchemaRef)>> = HashMap::new();
    let mut fields: Vec<Field> = Vec::with_capacity(origins.len());
    for (field, origin) in schema.fields().iter().zip(origins) {
        let mut field = field.as_ref().clone();
        if let Some((table, column)) = origin {
            if !tables.contains_key(&table) {
                let found = table_numbers(ctx, oids, &table).await;
                tables.insert(table.clone(), found);
            }
            let numbers = tables
                .get(&table)
                .and_then(Option::as_ref)
                .and_then(|(oid, columns)| {
                    let attnum = i16::try_from(columns.index_of(&column).ok()? + 1).ok()?;
                    Some((*oid, attnum))
                });
            if let Some((oid, attnum)) = numbers {
                let mut metadata = field.metadata().clone();
                metadata.insert(PG_TABLE_OID_KEY.to_string(), oid.to_string());
                metadata.insert(PG_ATTNUM_KEY.to_string(), attnum.to_string());
                field = field.with_metadata(metadata);
            }
        }
        fields.push(field);
    }
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// The OID of `table` and its columns (numbered from 1 in this order).
async fn table_numbers(
    ctx: &SessionContext,
    oids: &RelationOids,
    table: &TableReference,
) -> Option<(i32, SchemaRef)> {
    if table.catalog().is_some_and(|c| c != CATALOG_NAME) {
        return None;
    }
    let schema = table.schema().unwrap_or(DEFAULT_SCHEMA);
    let provider = ctx.table_provider(table.clone()).await.ok()?;
    let oid = oids.get(ctx, schema, table.table()).await?;
    Some((oid, provider.schema()))
}
