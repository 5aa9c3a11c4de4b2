//! What both targets share: errors with their SQLSTATE, column type letters, cells.

use sqllogictest::DefaultColumnType;
use wasmudf_engine::datafusion::arrow::datatypes::DataType;
use wasmudf_engine::datafusion::error::DataFusionError;
use wasmudf_engine::datafusion::sql::sqlparser::ast::{CopyTarget, Statement as SqlStatement};
use wasmudf_engine::datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use wasmudf_engine::datafusion::sql::sqlparser::parser::Parser;

/// A failed statement: its SQLSTATE (matched by `statement error (XXXXX)`) and message
/// (matched by `statement error <regex>`).
#[derive(Debug, Clone)]
pub struct SqlError {
    /// The SQLSTATE, when the error came from the database.
    pub sqlstate: Option<String>,
    /// The message as a client sees it.
    pub message: String,
}

impl SqlError {
    /// An error the database reported.
    pub fn new(sqlstate: &str, message: String) -> Self {
        SqlError {
            sqlstate: Some(sqlstate.to_string()),
            message,
        }
    }

    /// An engine error, with the SQLSTATE and message the server would send.
    pub fn from_df(e: &DataFusionError) -> Self {
        let message = match wasmudf_engine::find_udf_error(e) {
            Some(udf) => udf.to_string(),
            None => e.find_root().to_string(),
        };
        SqlError::new(wasmudf_engine::sqlstate(e), message)
    }

    /// A failure of the runner itself (connection, restart), not of a statement.
    pub fn runner(message: impl Into<String>) -> Self {
        SqlError {
            sqlstate: None,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.sqlstate {
            Some(code) => write!(f, "{} (SQLSTATE {code})", self.message),
            None => write!(f, "{}", self.message),
        }
    }
}

impl std::error::Error for SqlError {}

/// The column letter for an Arrow type: `I` integer, `R` float or numeric, `T` text,
/// `?` anything else. Matches [`pg_column_type`] for the type the server sends.
pub fn column_type(dt: &DataType) -> DefaultColumnType {
    match dt {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32 => DefaultColumnType::Integer,
        DataType::UInt64
        | DataType::Float16
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal32(_, _)
        | DataType::Decimal64(_, _)
        | DataType::Decimal128(_, _)
        | DataType::Decimal256(_, _) => DefaultColumnType::FloatingPoint,
        // Types the server sends as their own PostgreSQL type.
        DataType::Boolean
        | DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_)
        | DataType::Date32
        | DataType::Date64
        | DataType::Timestamp(_, _)
        | DataType::Time32(_)
        | DataType::Time64(_)
        | DataType::Interval(_)
        | DataType::Duration(_) => DefaultColumnType::Any,
        // Everything else goes over the wire as text (lists, structs; a Null-typed
        // column like PostgreSQL's unknown).
        _ => DefaultColumnType::Text,
    }
}

/// The column letter for a PostgreSQL type (see [`column_type`]).
pub fn pg_column_type(ty: &tokio_postgres::types::Type) -> DefaultColumnType {
    use tokio_postgres::types::Type;
    match *ty {
        Type::INT2 | Type::INT4 | Type::INT8 => DefaultColumnType::Integer,
        Type::FLOAT4 | Type::FLOAT8 | Type::NUMERIC => DefaultColumnType::FloatingPoint,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::JSON | Type::JSONB => {
            DefaultColumnType::Text
        }
        // Arrays print as their text form, as the in-process target types lists.
        _ if matches!(ty.kind(), tokio_postgres::types::Kind::Array(_)) => DefaultColumnType::Text,
        _ => DefaultColumnType::Any,
    }
}

/// A cell as sqllogictest writes it: `NULL`, `(empty)` for the empty string.
pub fn cell(value: Option<&str>) -> String {
    match value {
        None => "NULL".into(),
        Some("") => "(empty)".into(),
        Some(v) => v.into(),
    }
}

/// The one statement `sql` parses to, if it is a COPY (PostgreSQL dialect).
fn parse_copy(sql: &str) -> Option<(bool, CopyTarget)> {
    let statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).ok()?;
    match statements.as_slice() {
        [SqlStatement::Copy { to, target, .. }] => Some((*to, target.clone())),
        _ => None,
    }
}

/// A `COPY ... FROM STDIN` record split into its statement (the first line) and its
/// data: the lines after it up to a line `\.`, as in a psql script or a pg_dump file.
pub fn split_copy_in(sql: &str) -> Option<(&str, String)> {
    let (statement, rest) = sql.split_once('\n').unwrap_or((sql, ""));
    if !matches!(parse_copy(statement), Some((false, CopyTarget::Stdin))) {
        return None;
    }
    let mut data = String::new();
    for line in rest.lines().take_while(|l| *l != "\\.") {
        data.push_str(line);
        data.push('\n');
    }
    Some((statement, data))
}

/// Whether `sql` is a `COPY ... TO STDOUT`, whose output a `query` record compares line
/// by line (one text column).
pub fn is_copy_to_stdout(sql: &str) -> bool {
    matches!(parse_copy(sql), Some((true, CopyTarget::Stdout)))
}

/// The rows of a COPY TO's output: one text cell per line.
pub fn copy_rows(output: &str) -> Vec<Vec<String>> {
    output.lines().map(|line| vec![cell(Some(line))]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_records_are_told_by_parsing() {
        let (statement, data) =
            split_copy_in("COPY public.t (a, b) FROM stdin;\n1\tx\n\\.\n").expect("copy in");
        assert_eq!(statement, "COPY public.t (a, b) FROM stdin;");
        assert_eq!(data, "1\tx\n");
        assert!(split_copy_in("SELECT 'COPY t FROM STDIN'").is_none());
        assert!(split_copy_in("COPY (SELECT 'a FROM STDIN') TO STDOUT").is_none());
        assert!(is_copy_to_stdout("COPY (SELECT 'a FROM STDIN') TO STDOUT;"));
        assert!(is_copy_to_stdout("COPY t TO STDOUT(FORMAT csv)"));
        assert!(!is_copy_to_stdout("SELECT 'COPY t TO STDOUT'"));
    }
}
