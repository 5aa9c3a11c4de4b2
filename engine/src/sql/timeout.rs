//! PostgreSQL's `statement_timeout`: `SET statement_timeout = '2s' | 500 | 0 | DEFAULT`,
//! `RESET statement_timeout`, `SHOW statement_timeout`. DataFusion knows no such
//! setting, so the engine reads these statements itself.

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::StringArray;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::Result as DfResult;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::sql::parser::{ResetStatement, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::{Expr, Set, Statement as SqlStatement, Value};

use crate::error::Error;
use crate::sql::output::Output;
use crate::wasm::limits::{format_duration, parse_duration_or_zero};

const NAME: &str = "statement_timeout";

/// A statement about `statement_timeout`.
pub(crate) enum TimeoutStatement {
    /// SET or RESET: the new value (`None`: no timeout).
    Set(Option<Duration>),
    /// SHOW.
    Show,
}

/// Recognizes a SET / RESET / SHOW of `statement_timeout`.
pub(crate) fn recognize(statement: &DfStatement) -> Option<Result<TimeoutStatement, Error>> {
    match statement {
        DfStatement::Reset(ResetStatement::Variable(name))
            if name.to_string().eq_ignore_ascii_case(NAME) =>
        {
            Some(Ok(TimeoutStatement::Set(None)))
        }
        DfStatement::Statement(s) => match s.as_ref() {
            SqlStatement::ShowVariable { variable }
                if variable.len() == 1 && variable[0].value.eq_ignore_ascii_case(NAME) =>
            {
                Some(Ok(TimeoutStatement::Show))
            }
            SqlStatement::Set(Set::SingleAssignment {
                variable, values, ..
            }) if variable.to_string().eq_ignore_ascii_case(NAME) => {
                Some(parse_value(values).map(TimeoutStatement::Set))
            }
            _ => None,
        },
        _ => None,
    }
}

fn parse_value(values: &[Expr]) -> Result<Option<Duration>, Error> {
    let text = match values {
        [Expr::Value(v)] => match &v.value {
            Value::Number(n, _) => n.to_string(),
            Value::SingleQuotedString(s) => s.clone(),
            other => other.to_string(),
        },
        [Expr::Identifier(id)] => id.value.clone(),
        _ => String::new(),
    };
    if text.eq_ignore_ascii_case("default") {
        return Ok(None);
    }
    // 0 (in any unit) turns the timeout off, as in PostgreSQL.
    let limit = parse_duration_or_zero(&text).map_err(|_| {
        Error::InvalidLimit(format!(
            "invalid value for parameter \"statement_timeout\": \"{text}\" (examples: 500, '2s', '1min', 0 for none)"
        ))
    })?;
    Ok((!limit.is_zero()).then_some(limit))
}

/// The value as PostgreSQL shows it: `0` (no timeout), `500ms`, `2s`, `1min`.
pub(crate) fn show(value: Option<Duration>) -> String {
    value.map_or_else(|| "0".into(), format_duration)
}

/// The one-column result of `SHOW <name>`, as PostgreSQL returns it.
pub(crate) fn setting_schema(name: &str) -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(name, DataType::Utf8, false)]))
}

/// `SHOW <name>` as rows: one column named after the setting, one row.
pub(crate) fn setting_output(name: &str, value: String) -> DfResult<Output> {
    let schema = setting_schema(name);
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(StringArray::from(vec![value]))],
    )?;
    Ok(Output::Rows(Box::pin(RecordBatchStreamAdapter::new(
        schema,
        futures::stream::iter([Ok(batch)]),
    ))))
}

/// The one-column result of `SHOW statement_timeout`.
pub(crate) fn schema() -> SchemaRef {
    setting_schema(NAME)
}

/// `SHOW statement_timeout` as rows.
pub(crate) fn show_output(value: Option<Duration>) -> DfResult<Output> {
    setting_output(NAME, show(value))
}

/// The `wasm.*` setting a `SHOW` names, if it does (`SHOW wasm.fuel`).
pub(crate) fn shown_wasm_setting(statement: &DfStatement) -> Option<String> {
    match statement {
        DfStatement::Statement(s) => match s.as_ref() {
            SqlStatement::ShowVariable { variable } => {
                let name = variable
                    .iter()
                    .map(|i| i.value.to_lowercase())
                    .collect::<Vec<_>>()
                    .join(".");
                name.starts_with("wasm.").then_some(name)
            }
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_like_postgres() {
        assert_eq!(show(None), "0");
        assert_eq!(show(Some(Duration::from_millis(250))), "250ms");
        assert_eq!(show(Some(Duration::from_secs(2))), "2s");
        assert_eq!(show(Some(Duration::from_secs(120))), "2min");
    }
}
