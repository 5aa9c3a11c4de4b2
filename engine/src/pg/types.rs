//! The PostgreSQL type each Arrow value goes out as: one mapping for the wire
//! (RowDescription's type OID), `pg_typeof` and the catalog, so what a driver decodes
//! and what SQL says of a value cannot disagree.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Int64Type};
use datafusion::error::Result as DfResult;

/// Metadata key of an Arrow field whose PostgreSQL type its Arrow type does not tell
/// (`json` and `jsonb` values are `Utf8`): the type's name.
pub const PG_TYPE_KEY: &str = "wasmudf.pg_type";

/// Metadata key of a result column that reads a table's column: the table's OID
/// (RowDescription's table OID).
pub(crate) const PG_TABLE_OID_KEY: &str = "wasmudf.pg_table_oid";
/// Metadata key of a result column that reads a table's column: its number in the
/// table, from 1 (RowDescription's column attribute number).
pub(crate) const PG_ATTNUM_KEY: &str = "wasmudf.pg_attnum";

/// The table OID and column number a result column reads, if it is a plain reference
/// to a table's column (what RowDescription carries; 0 otherwise).
pub fn pg_column_origin(field: &Field) -> Option<(i32, i16)> {
    let metadata = field.metadata();
    let oid = metadata.get(PG_TABLE_OID_KEY)?.parse().ok()?;
    let attnum = metadata.get(PG_ATTNUM_KEY)?.parse().ok()?;
    Some((oid, attnum))
}

/// PostgreSQL's types as wasmudf sends them: OID, array type OID, `format_type` name.
const TYPES: &[(u32, u32, &str)] = &[
    (16, 1000, "boolean"),
    (17, 1001, "bytea"),
    (20, 1016, "bigint"),
    (21, 1005, "smallint"),
    (22, 1006, "int2vector"),
    (23, 1007, "integer"),
    (25, 1009, "text"),
    (30, 1013, "oidvector"),
    (114, 199, "json"),
    (700, 1021, "real"),
    (701, 1022, "double precision"),
    (1082, 1182, "date"),
    (1083, 1183, "time without time zone"),
    (1114, 1115, "timestamp without time zone"),
    (1184, 1185, "timestamp with time zone"),
    (1186, 1187, "interval"),
    (1700, 1231, "numeric"),
    (3802, 3807, "jsonb"),
];

const TEXT: u32 = 25;

/// `json` or `jsonb`: `Utf8` values whose field metadata names the type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum JsonKind {
    Json,
    Jsonb,
}

impl JsonKind {
    /// The type's name, as its metadata and messages write it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            JsonKind::Json => "json",
            JsonKind::Jsonb => "jsonb",
        }
    }

    fn oid(self) -> u32 {
        match self {
            JsonKind::Json => 114,
            JsonKind::Jsonb => 3802,
        }
    }

    /// The kind `field`'s metadata marks it as, if any.
    pub(crate) fn of(field: &Field) -> Option<Self> {
        match field.metadata().get(PG_TYPE_KEY).map(String::as_str) {
            Some("json") => Some(JsonKind::Json),
            Some("jsonb") => Some(JsonKind::Jsonb),
            _ => None,
        }
    }

    /// The metadata that marks a field as this type.
    pub(crate) fn metadata(self) -> std::collections::HashMap<String, String> {
        [(PG_TYPE_KEY.to_string(), self.name().to_string())].into()
    }
}

/// The OID of the PostgreSQL type the values of `field` go out as.
pub fn pg_type_oid(field: &Field) -> u32 {
    if let Some(kind) = JsonKind::of(field) {
        return kind.oid();
    }
    match field.metadata().get(PG_TYPE_KEY).map(String::as_str) {
        Some("int2vector") => INT2VECTOR,
        Some("oidvector") => OIDVECTOR,
        _ => pg_type_oid_of(field.data_type()),
    }
}

/// `int2vector`, an array of `int2` (`pg_index.indkey`).
pub const INT2VECTOR: u32 = 22;
/// `oidvector`, an array of `oid` (`pg_proc.proargtypes`).
pub const OIDVECTOR: u32 = 30;

/// The text form of `int2vector` / `oidvector` values: the elements separated by
/// spaces (`20 20`), as PostgreSQL prints them (not `{20,20}`).
pub fn pg_vector_text(array: &dyn Array) -> DfResult<Vec<Option<String>>> {
    let list = cast(
        array,
        &DataType::List(Arc::new(Field::new_list_field(DataType::Int64, true))),
    )?;
    let list = list.as_list::<i32>();
    Ok((0..list.len())
        .map(|i| {
            list.is_valid(i).then(|| {
                let values = list.value(i);
                let values = values.as_primitive::<Int64Type>();
                values
                    .iter()
                    .map(|v| v.map_or_else(|| "0".to_string(), |v| v.to_string()))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
        })
        .collect())
}

/// The OID of the PostgreSQL type values of Arrow type `dt` go out as: the type that
/// keeps every value (an unsigned 64-bit integer is `numeric`, a 32-bit one `int8`),
/// `text` for a type PostgreSQL has no counterpart for.
pub fn pg_type_oid_of(dt: &DataType) -> u32 {
    match dt {
        DataType::Boolean => 16,
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => 21,
        DataType::Int32 | DataType::UInt16 => 23,
        DataType::Int64 | DataType::UInt32 => 20,
        DataType::UInt64
        | DataType::Decimal32(_, _)
        | DataType::Decimal64(_, _)
        | DataType::Decimal128(_, _)
        | DataType::Decimal256(_, _) => 1700,
        DataType::Float16 | DataType::Float32 => 700,
        DataType::Float64 => 701,
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => 17,
        DataType::Date32 => 1082,
        // A Date64 may carry a time of day, which a `date` would drop.
        DataType::Date64 | DataType::Timestamp(_, None) => 1114,
        DataType::Time32(_) | DataType::Time64(_) => 1083,
        // A duration (`timestamp - timestamp`) is an interval in PostgreSQL.
        DataType::Interval(_) | DataType::Duration(_) => 1186,
        DataType::Timestamp(_, Some(_)) => 1184,
        // A list of lists is a multidimensional array, whose type is its elements'
        // array type, as in PostgreSQL (`int4[]` for `{{1,2},{3,4}}`).
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            let element = pg_type_oid(f);
            if array_element(element).is_some() {
                element
            } else {
                array_of(element).unwrap_or(TEXT)
            }
        }
        _ => TEXT,
    }
}

/// The array type of element type `oid` (`int4` → `int4[]`).
pub fn array_of(oid: u32) -> Option<u32> {
    TYPES.iter().find(|t| t.0 == oid).map(|t| t.1)
}

/// The element type of array type `oid`, if it is one of the arrays wasmudf sends.
pub fn array_element(oid: u32) -> Option<u32> {
    TYPES.iter().find(|t| t.1 == oid).map(|t| t.0)
}

/// PostgreSQL's `format_type` name of type `oid` (`integer`, `text[]`).
pub fn pg_type_name(oid: u32) -> Option<String> {
    if let Some(t) = TYPES.iter().find(|t| t.0 == oid) {
        return Some(t.2.to_string());
    }
    array_element(oid).and_then(pg_type_name).map(|e| e + "[]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_arrow_type_has_the_type_that_keeps_its_values() {
        let list = |dt: DataType| DataType::List(Arc::new(Field::new_list_field(dt, true)));
        let name = |dt: DataType| pg_type_name(pg_type_oid_of(&dt));
        assert_eq!(name(DataType::Int32).as_deref(), Some("integer"));
        assert_eq!(name(DataType::UInt64).as_deref(), Some("numeric"));
        assert_eq!(
            name(DataType::Timestamp(
                datafusion::arrow::datatypes::TimeUnit::Microsecond,
                Some("UTC".into())
            ))
            .as_deref(),
            Some("timestamp with time zone")
        );
        assert_eq!(name(list(DataType::Utf8)).as_deref(), Some("text[]"));
        assert_eq!(
            name(list(list(DataType::Int64))).as_deref(),
            Some("bigint[]")
        );
        assert_eq!(
            name(DataType::Duration(
                datafusion::arrow::datatypes::TimeUnit::Second
            ))
            .as_deref(),
            Some("interval")
        );
        assert_eq!(
            name(DataType::Date64).as_deref(),
            Some("timestamp without time zone")
        );
        assert_eq!(name(DataType::Utf8View).as_deref(), Some("text"));
        let json = Field::new("j", DataType::Utf8, true)
            .with_metadata([(PG_TYPE_KEY.to_string(), "jsonb".to_string())].into());
        assert_eq!(pg_type_name(pg_type_oid(&json)).as_deref(), Some("jsonb"));
    }
}
