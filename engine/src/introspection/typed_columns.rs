//! The stored columns whose PostgreSQL type is not their Arrow type's: a `json` or
//! `jsonb` column is Arrow text marked with the type in its field metadata. The
//! catalog tables type columns by their Arrow type alone, so `pg_attribute` and
//! `information_schema.columns` take these columns' types from here (psql's `\d`,
//! SQLAlchemy's reflection, pgjdbc's `getColumns`).

use std::collections::HashMap;

use datafusion::catalog::CatalogProviderList;
use datafusion::error::Result as DfResult;

use crate::pg::types::{pg_type_oid, pg_type_oid_of};

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
