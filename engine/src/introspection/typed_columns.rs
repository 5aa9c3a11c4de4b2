//! The stored columns whose PostgreSQL type is not their Arrow type's: a `json` or
//! `jsonb` column is Arrow text marked with the type in its field metadata. The
//! catalog tables type columns by their Arrow type alone, so `pg_attribute` and
//! `information_schema.columns` take these columns' types from here (psql's `\d`,
//! SQLAlchemy's reflection, pgjdbc's `getColumns`). Their DEFAULTs and identity too
//! ([`column_extras`]).

use std::collections::HashMap;

use datafusion::catalog::CatalogProviderList;
use datafusion::error::Result as DfResult;

use crate::pg::types::{pg_type_oid, pg_type_oid_of};
use crate::store::table::ManagedTable;

/// Schemas whose tables are the system's, not stored ones.
const SYSTEM_SCHEMAS: [&str; 2] = ["pg_catalog", "information_schema"];

/// A column's place: schema, table and column name.
pub(crate) type ColumnKey = (String, String, String);

/// The PostgreSQL type OID of every user column whose type its Arrow type does not
/// tell, by schema, table and column name (usually none: a cheap walk of the catalog).
pub(crate) async fn typed_columns(
    catalogs: &dyn CatalogProviderList,
) -> DfResult<HashMap<ColumnKey, u32>> {
    let mut typed = HashMap::new();
    for catalog_name in catalogs.catalog_names() {
        let Some(catalog) = catalogs.catalog(&catalog_name) else {
            continue;
        };
        for schema_name in catalog.schema_names() {
            if SYSTEM_SCHEMAS.contains(&schema_name.as_str()) {
                continue;
            }
            let Some(schema) = catalog.schema(&schema_name) else {
                continue;
            };
            for table_name in schema.table_names() {
                let Some(table) = schema.table(&table_name).await? else {
                    continue;
                };
                for field in table.schema().fields() {
                    let oid = pg_type_oid(field);
                    if oid != pg_type_oid_of(field.data_type()) {
                        typed.insert(
                            (
                                schema_name.clone(),
                                table_name.clone(),
                                field.name().clone(),
                            ),
                            oid,
                        );
                    }
                }
            }
        }
    }
    Ok(typed)
}

/// What `pg_attribute` and `pg_attrdef` say of a column beyond its type.
#[derive(Debug, Clone)]
pub(crate) struct ColumnExtras {
    /// Its position in the table, from 1 (`attnum`).
    pub attnum: i16,
    /// Its DEFAULT as SQL text (`adbin`, which `pg_get_expr` shows as it is).
    pub default: Option<String>,
    /// `a` (GENERATED ALWAYS AS IDENTITY), `d` (BY DEFAULT) or empty (`attidentity`).
    pub identity: &'static str,
}

/// The columns of managed tables with a DEFAULT or an identity, by schema, table and
/// column name.
pub(crate) async fn column_extras(
    catalogs: &dyn CatalogProviderList,
) -> DfResult<HashMap<ColumnKey, ColumnExtras>> {
    use datafusion::catalog::TableProvider;
    let mut extras = HashMap::new();
    for catalog_name in catalogs.catalog_names() {
        let Some(catalog) = catalogs.catalog(&catalog_name) else {
            continue;
        };
        for schema_name in catalog.schema_names() {
            if SYSTEM_SCHEMAS.contains(&schema_name.as_str()) {
                continue;
            }
            let Some(schema) = catalog.schema(&schema_name) else {
                continue;
            };
            for table_name in schema.table_names() {
                let Some(table) = schema.table(&table_name).await? else {
                    continue;
                };
                let Some(managed) = table.downcast_ref::<ManagedTable>() else {
                    continue;
                };
                for (i, field) in managed.schema().fields().iter().enumerate() {
                    let identity = managed.identity(field.name());
                    // An identity column's default is implicit, as in PostgreSQL.
                    let default = match identity {
                        "" => managed
                            .get_column_default(field.name())
                            .and_then(|e| datafusion::sql::unparser::expr_to_sql(e).ok())
                            .map(|e| e.to_string()),
                        _ => None,
                    };
                    if default.is_none() && identity.is_empty() {
                        continue;
                    }
                    extras.insert(
                        (
                            schema_name.clone(),
                            table_name.clone(),
                            field.name().clone(),
                        ),
                        ColumnExtras {
                            attnum: i16::try_from(i + 1).unwrap_or(i16::MAX),
                            default,
                            identity,
                        },
                    );
                }
            }
        }
    }
    Ok(extras)
}
