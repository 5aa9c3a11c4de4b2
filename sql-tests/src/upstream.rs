//! DataFusion's own sqllogictest conventions, for the conformance suite: upstream
//! `datafusion-sqllogictest` files keep their expected results verbatim, and a pgwire
//! result cell is printed the way DataFusion's runner prints the Arrow value.
//!
//! Every branch names the rule it mirrors in datafusion-sqllogictest 55.2.0:
//! `normalize.rs::cell_to_string` and `conversion.rs` (`bool_to_str`, `varchar_to_str`,
//! `f32_to_str`/`f64_to_str`, `arrow_decimal_to_str`, `big_decimal_to_str`), and for
//! what falls into `cell_to_string`'s `_ =>` arm, arrow's `ArrayFormatter` with
//! DataFusion's format options (date `%Y-%m-%d`, timestamp `%Y-%m-%dT%H:%M:%S%.f`,
//! timestamptz RFC 3339).
//!
//! The wire does not carry everything DataFusion prints: a timestamptz's zone (PostgreSQL
//! sends UTC), nanoseconds (binary timestamps are microseconds), nested values and
//! intervals (sent as text). Files that depend on those are excluded from the suite
//! (sql-tests/conformance/README.md).

use std::str::FromStr;

use bigdecimal::BigDecimal;
use chrono::{DateTime, NaiveDate, SecondsFormat};
use std::sync::Arc;

use tokio_postgres::types::{FromSql, Kind, Type};
use wasmudf_engine::datafusion::arrow::array::{
    ArrayRef, Float32Array, Float64Array, Time64NanosecondArray,
};
use wasmudf_engine::datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use wasmudf_engine::numeric_from_binary;

use crate::arrays;

type DecodeError = Box<dyn std::error::Error + Sync + Send>;

/// Days and microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
const PG_EPOCH_DAYS: i64 = 10_957;
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// conversion.rs `NULL_STR`.
const NULL_STR: &str = "NULL";

/// A result value decoded from PostgreSQL's binary format into DataFusion's slt text.
pub(crate) struct DfCell(pub(crate) String);

fn fixed<const N: usize>(raw: &[u8]) -> Result<[u8; N], DecodeError> {
    raw.try_into()
        .map_err(|_| format!("expected {N} bytes, got {}", raw.len()).into())
}

/// conversion.rs `big_decimal_to_str`: round to `digits` places (12 when the caller has
/// no scale), drop trailing zeros, print without exponent.
fn big_decimal_to_str(value: BigDecimal, digits: i64) -> String {
    value.round(digits).normalized().to_plain_string()
}

/// conversion.rs `f64_to_str` / `f32_to_str`: NaN without sign, `Infinity`,
/// `-Infinity`, else Rust's shortest `to_string()` (never an exponent) through
/// `big_decimal_to_str(_, None)` = 12 decimal places. `-0.0` prints `0`.
fn float_to_str(is_nan: bool, pos_inf: bool, neg_inf: bool, shortest: String) -> String {
    if is_nan {
        "NaN".into()
    } else if pos_inf {
        "Infinity".into()
    } else if neg_inf {
        "-Infinity".into()
    } else {
        match BigDecimal::from_str(&shortest) {
            Ok(v) => big_decimal_to_str(v, 12),
            Err(_) => shortest,
        }
    }
}

/// conversion.rs `varchar_to_str`: `(empty)` for "", trailing newlines trimmed,
/// NUL escaped as `\0`.
fn varchar_to_str(value: &str) -> String {
    if value.is_empty() {
        "(empty)".into()
    } else {
        value.trim_end_matches('\n').replace('\u{0000}', "\\0")
    }
}

impl<'a> FromSql<'a> for DfCell {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, DecodeError> {
        let text = match *ty {
            // normalize.rs DataType::Boolean => bool_to_str: `true` / `false`.
            Type::BOOL => if fixed::<1>(raw)?[0] != 0 {
                "true"
            } else {
                "false"
            }
            .to_string(),
            // Integers fall into cell_to_string's `_` arm: ArrayFormatter, plain digits.
            Type::INT2 => i16::from_be_bytes(fixed(raw)?).to_string(),
            Type::INT4 => i32::from_be_bytes(fixed(raw)?).to_string(),
            Type::INT8 => i64::from_be_bytes(fixed(raw)?).to_string(),
            // normalize.rs DataType::Float16/Float32 => f16_to_str/f32_to_str (the
            // server widens Float16 to FLOAT4, which prints the same digits).
            Type::FLOAT4 => {
                let v = f32::from_be_bytes(fixed(raw)?);
                float_to_str(
                    v.is_nan(),
                    v == f32::INFINITY,
                    v == f32::NEG_INFINITY,
                    v.to_string(),
                )
            }
            // normalize.rs DataType::Float64 => f64_to_str.
            Type::FLOAT8 => {
                let v = f64::from_be_bytes(fixed(raw)?);
                float_to_str(
                    v.is_nan(),
                    v == f64::INFINITY,
                    v == f64::NEG_INFINITY,
                    v.to_string(),
                )
            }
            // normalize.rs DataType::Decimal128/256 => arrow_decimal_to_str(value, scale):
            // big_decimal_to_str(_, Some(scale)). The wire's display scale is the
            // column's scale, so rounding to it is a no-op and only `normalized()`
            // matters: trailing zeros go (`1.500` -> `1.5`, `100.00` -> `100`).
            // UInt64 is also sent as NUMERIC (scale 0): prints the plain integer, as
            // DataFusion's ArrayFormatter does.
            Type::NUMERIC => {
                let text = numeric_from_binary(raw)?;
                if text == "NaN" {
                    text
                } else {
                    let scale = text.split_once('.').map_or(0, |(_, f)| f.len() as i64);
                    big_decimal_to_str(BigDecimal::from_str(&text)?, scale)
                }
            }
            // `_` arm, ArrayFormatter on Binary*: lowercase hex, no `\x` prefix.
            Type::BYTEA => raw.iter().map(|b| format!("{b:02x}")).collect(),
            // `_` arm, Date32 with DataFusion's date_format `%Y-%m-%d`.
            Type::DATE => {
                let days = i64::from(i32::from_be_bytes(fixed(raw)?)) + PG_EPOCH_DAYS;
                NaiveDate::from_ymd_opt(1970, 1, 1)
                    .and_then(|d| d.checked_add_signed(chrono::Duration::days(days)))
                    .map(|d| d.format("%Y-%m-%d").to_string())
                    .ok_or("date out of range")?
            }
            // `_` arm, Timestamp(_, None) with timestamp_format `%Y-%m-%dT%H:%M:%S%.f`
            // (`%.f`: no fraction when zero, else 3, 6 or 9 digits).
            Type::TIMESTAMP => {
                let micros = i64::from_be_bytes(fixed(raw)?) + PG_EPOCH_MICROS;
                DateTime::from_timestamp_micros(micros)
                    .ok_or("timestamp out of range")?
                    .naive_utc()
                    .format("%Y-%m-%dT%H:%M:%S%.f")
                    .to_string()
            }
            // `_` arm, Timestamp(_, Some(tz)) with timestamp_tz_format None: arrow
            // prints `to_rfc3339_opts(SecondsFormat::AutoSi, true)` in the column's zone.
            // The wire only carries UTC, so this is exact for `+00:00`/`UTC` columns
            // (`2024-01-01T12:00:00Z`) and shifted for any other zone.
            Type::TIMESTAMPTZ => {
                let micros = i64::from_be_bytes(fixed(raw)?) + PG_EPOCH_MICROS;
                DateTime::from_timestamp_micros(micros)
                    .ok_or("timestamp out of range")?
                    .to_rfc3339_opts(SecondsFormat::AutoSi, true)
            }
            // `_` arm, ArrayFormatter on Time64 (DataFusion's times are nanoseconds;
            // the wire carries microseconds).
            Type::TIME => formatted(Arc::new(Time64NanosecondArray::from(vec![
                i64::from_be_bytes(fixed(raw)?)
                    .checked_mul(1000)
                    .ok_or("time out of range")?,
            ])))?,
            // `_` arm, ArrayFormatter on an Interval(MonthDayNano) (`1 mons 2 days`). A
            // Duration is sent as an interval too and prints that way here, not as
            // DataFusion's ISO 8601 duration.
            Type::INTERVAL => formatted(Arc::new(crate::wire::interval_array(raw)?))?,
            // `_` arm, ArrayFormatter on List*: `[1, 2]`, nested `[[1, 2], [3, 4]]`,
            // elements as ArrayFormatter prints their type, NULL as `NULL`.
            _ if matches!(ty.kind(), Kind::Array(_)) => {
                let array = arrays::decode(raw)?;
                let items = array
                    .items
                    .iter()
                    .map(|item| list_element(&array.element, *item))
                    .collect::<Result<Vec<_>, _>>()?;
                arrays::datafusion_list(&array.dims, &items)
            }
            // normalize.rs Utf8/LargeUtf8/Utf8View (and Dictionary of them, which
            // recurses into the values) => varchar_to_str. Every other type the server
            // sends as TEXT (lists, structs, intervals, ...) goes through the same
            // function: DataFusion's `_` arm does not apply varchar_to_str, but an empty
            // ArrayFormatter output cannot occur for those types.
            _ => varchar_to_str(std::str::from_utf8(raw)?),
        };
        Ok(DfCell(text))
    }

    /// normalize.rs: `if col.is_null(row) { NULL_STR }`.
    fn from_sql_null(_: &Type) -> Result<Self, DecodeError> {
        Ok(DfCell(NULL_STR.to_string()))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// A one-value array as DataFusion's sqllogictest prints it (`ArrayFormatter`).
fn formatted(array: ArrayRef) -> Result<String, DecodeError> {
    let options = FormatOptions::default().with_null(NULL_STR);
    Ok(ArrayFormatter::try_new(array.as_ref(), &options)?
        .value(0)
        .to_string())
}

/// One element of a list as arrow's `ArrayFormatter` prints it inside the list (with
/// DataFusion's null text): floats keep their `.0`, strings are not escaped.
fn list_element(ty: &Type, raw: Option<&[u8]>) -> Result<String, DecodeError> {
    let Some(raw) = raw else {
        return Ok(NULL_STR.to_string());
    };
    let array: ArrayRef = match *ty {
        Type::FLOAT4 => Arc::new(Float32Array::from(vec![f32::from_be_bytes(fixed(raw)?)])),
        Type::FLOAT8 => Arc::new(Float64Array::from(vec![f64::from_be_bytes(fixed(raw)?)])),
        Type::TEXT | Type::VARCHAR => {
            return Ok(std::str::from_utf8(raw)?.to_string());
        }
        // ArrayFormatter prints a decimal with its scale (`1.0000`), which the wire's
        // display scale is.
        Type::NUMERIC => return Ok(numeric_from_binary(raw)?),
        _ => return Ok(DfCell::from_sql(ty, raw)?.0),
    };
    let options = FormatOptions::default().with_null(NULL_STR);
    let text = ArrayFormatter::try_new(array.as_ref(), &options)?
        .value(0)
        .to_string();
    Ok(text)
}

/// normalize.rs `expand_row`: if the *last* cell holds newlines (EXPLAIN plans,
/// multi-line strings), it becomes extra one-cell rows `01)line`, leading spaces turned
/// into `-`. Apply to each row after decoding.
pub(crate) fn expand_row(mut row: Vec<String>) -> Vec<Vec<String>> {
    let Some(last) = row.pop() else {
        return vec![row];
    };
    let lines: Vec<&str> = last.split('\n').collect();
    if lines.len() < 2 {
        row.push(last);
        return vec![row];
    }
    let mut out = vec![row];
    for (idx, line) in lines.iter().enumerate() {
        let content = line.trim_start();
        let prefix = "-".repeat(line.len() - content.len());
        out.push(vec![format!("{:02}){prefix}{content}", idx + 1)]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn df(ty: Type, raw: &[u8]) -> String {
        DfCell::from_sql(&ty, raw).unwrap().0
    }

    #[test]
    fn mirrors_datafusion_normalize() {
        assert_eq!(df(Type::BOOL, &[1]), "true");
        assert_eq!(df(Type::FLOAT8, &(0.1f64 + 0.2).to_be_bytes()), "0.3");
        assert_eq!(
            df(Type::FLOAT8, &(1.0f64 / 3.0).to_be_bytes()),
            "0.333333333333"
        );
        assert_eq!(
            df(Type::FLOAT8, &1e20f64.to_be_bytes()),
            "100000000000000000000"
        );
        assert_eq!(df(Type::FLOAT8, &(-0.0f64).to_be_bytes()), "0");
        assert_eq!(df(Type::FLOAT4, &0.1f32.to_be_bytes()), "0.1");
        assert_eq!(df(Type::FLOAT8, &f64::NAN.to_be_bytes()), "NaN");
        assert_eq!(
            df(
                Type::NUMERIC,
                &wasmudf_engine::numeric_to_binary("-12.3400")
            ),
            "-12.34"
        );
        assert_eq!(
            df(Type::NUMERIC, &wasmudf_engine::numeric_to_binary("100.00")),
            "100"
        );
        assert_eq!(df(Type::BYTEA, b"abc"), "616263");
        assert_eq!(df(Type::TEXT, b""), "(empty)");
        assert_eq!(df(Type::TEXT, b"a\n"), "a");
        assert_eq!(df(Type::DATE, &0i32.to_be_bytes()), "2000-01-01");
        assert_eq!(
            df(Type::TIMESTAMP, &500_000i64.to_be_bytes()),
            "2000-01-01T00:00:00.500"
        );
        assert_eq!(
            df(Type::TIMESTAMPTZ, &0i64.to_be_bytes()),
            "2000-01-01T00:00:00Z"
        );
        assert_eq!(
            expand_row(vec!["a".into(), "x\n  y".into()]),
            vec![
                vec!["a".to_string()],
                vec!["01)x".into()],
                vec!["02)--y".into()]
            ]
        );
    }
}
