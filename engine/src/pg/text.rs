//! PostgreSQL's value formats: text output for Arrow values, and the binary NUMERIC
//! (which no Arrow or postgres-types codec covers at full 38-digit precision).
//!
//! The server sends it for text-format result columns, and the in-process sqllogictest
//! target renders with it, so a suite gives the same results in both places as psql
//! shows them: `t`/`f`, `Infinity`, `\x` bytea, `2024-01-01 12:00:00.5+00`.

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{
    DataType, Date64Type, Float16Type, Float32Type, Float64Type, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use std::str::FromStr;

use chrono::Offset;
use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::util::display::{ArrayFormatter, DurationFormat, FormatOptions};
use datafusion::error::Result as DfResult;

use crate::error::Error;
use crate::pg::datetime_range;
use crate::pg::interval::{format_interval, format_time, pg_intervals, pg_times};

/// Renders every value of `array` as PostgreSQL would print it (`None` for NULL).
///
/// ```
/// use std::sync::Arc;
/// use wasmudf_engine::datafusion::arrow::array::{ArrayRef, BooleanArray, Float64Array};
/// use wasmudf_engine::pg_text;
///
/// let b: ArrayRef = Arc::new(BooleanArray::from(vec![Some(true), None]));
/// assert_eq!(pg_text(&b).unwrap(), vec![Some("t".to_string()), None]);
/// let f: ArrayRef = Arc::new(Float64Array::from(vec![f64::INFINITY, 0.1]));
/// assert_eq!(pg_text(&f).unwrap(), vec![Some("Infinity".to_string()), Some("0.1".to_string())]);
/// ```
pub fn pg_text(array: &dyn Array) -> DfResult<Vec<Option<String>>> {
    pg_text_in(array, &TextFormat::default())
}

/// The session settings that change how values print (PostgreSQL's `TimeZone`,
/// `extra_float_digits`, `bytea_output`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextFormat {
    /// Time stamps with a zone print in this zone (an IANA name or `+hh:mm`).
    pub time_zone: String,
    /// Above 0: shortest exact digits; 0 or less: 15 (float8) or 6 (float4) digits
    /// plus this, as PostgreSQL prints them.
    pub extra_float_digits: i32,
    /// `bytea_output = escape`: printable bytes as is, the rest as `\ooo`.
    pub bytea_escape: bool,
}

impl Default for TextFormat {
    fn default() -> Self {
        TextFormat {
            time_zone: "UTC".into(),
            extra_float_digits: 1,
            bytea_escape: false,
        }
    }
}

/// As [`pg_text`], printed as a session with `format` prints.
pub fn pg_text_in(array: &dyn Array, format: &TextFormat) -> DfResult<Vec<Option<String>>> {
    datetime_range::check_datetime_range(array)?;
    // Logical nulls: a Null-typed column (`SELECT NULL`) has no validity buffer.
    let nulls = array.logical_nulls();
    let render = |f: &dyn Fn(usize) -> String| -> Vec<Option<String>> {
        (0..array.len())
            .map(|i| nulls.as_ref().is_none_or(|n| n.is_valid(i)).then(|| f(i)))
            .collect()
    };
    Ok(match array.data_type() {
        DataType::Boolean => {
            let b = array.as_boolean();
            render(&|i| if b.value(i) { "t" } else { "f" }.to_string())
        }
        DataType::Float16 => {
            let f = array.as_primitive::<Float16Type>();
            render(&|i| float8_in(f64::from(f.value(i).to_f32()), format))
        }
        DataType::Float32 => {
            let f = array.as_primitive::<Float32Type>();
            // f32 -> f64 widening would print 0.1f32 as 0.10000000149011612.
            render(&|i| {
                if format.extra_float_digits > 0 {
                    pg_float4(f.value(i))
                } else {
                    rounded(f64::from(f.value(i)), 6 + format.extra_float_digits)
                }
            })
        }
        DataType::Float64 => {
            let f = array.as_primitive::<Float64Type>();
            render(&|i| float8_in(f.value(i), format))
        }
        DataType::Timestamp(unit, tz) => {
            let micros: Box<dyn Fn(usize) -> (i64, u32)> = match unit {
                TimeUnit::Second => {
                    let a = array.as_primitive::<TimestampSecondType>();
                    Box::new(move |i| (a.value(i), 0))
                }
                TimeUnit::Millisecond => {
                    let a = array.as_primitive::<TimestampMillisecondType>();
                    Box::new(move |i| split(a.value(i), 1_000))
                }
                TimeUnit::Microsecond => {
                    let a = array.as_primitive::<TimestampMicrosecondType>();
                    Box::new(move |i| split(a.value(i), 1_000_000))
                }
                TimeUnit::Nanosecond => {
                    let a = array.as_primitive::<TimestampNanosecondType>();
                    Box::new(move |i| split(a.value(i), 1_000_000_000))
                }
            };
            let divisor = match unit {
                TimeUnit::Second => 1,
                TimeUnit::Millisecond => 1_000,
                TimeUnit::Microsecond => 1_000_000,
                TimeUnit::Nanosecond => 1_000_000_000,
            };
            // Instants are UTC underneath: shown in the session's zone, as PostgreSQL
            // shows a timestamptz whatever zone it was written in.
            let zone = tz
                .as_ref()
                .map(|_| Tz::from_str(&format.time_zone).unwrap_or_else(|_| utc()));
            render(&|i| {
                let (secs, frac) = micros(i);
                pg_timestamp(secs, frac, divisor, zone.as_ref())
            })
        }
        // Sent as a timestamp: a Date64 may carry a time of day.
        DataType::Date64 => {
            let a = array.as_primitive::<Date64Type>();
            render(&|i| {
                let (secs, frac) = split(a.value(i), 1_000);
                pg_timestamp(secs, frac, 1_000, None)
            })
        }
        DataType::Time32(_) | DataType::Time64(_) => {
            let times = pg_times(array)?;
            times.into_iter().map(|t| t.map(format_time)).collect()
        }
        DataType::Interval(_) | DataType::Duration(_) => pg_intervals(array)?
            .into_iter()
            .map(|v| v.map(format_interval))
            .collect(),
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(_, _) => {
            return array_text(array, format, render);
        }
        dt => {
            // A NULL inside a struct prints as NULL (a top-level NULL is sent as
            // SQL NULL); durations inside one in words (`730 days 0 hours 0 mins
            // 0.000000000 secs`), closer to PostgreSQL's interval output than ISO 8601.
            let options = FormatOptions::default()
                .with_null("NULL")
                .with_duration_format(DurationFormat::Pretty);
            let formatter = ArrayFormatter::try_new(array, &options)?;
            let binary = matches!(
                dt,
                DataType::Binary
                    | DataType::LargeBinary
                    | DataType::BinaryView
                    | DataType::FixedSizeBinary(_)
            );
            if binary && format.bytea_escape {
                let bytes = datafusion::arrow::compute::cast(array, &DataType::LargeBinary)?;
                let bytes = bytes.as_binary::<i64>();
                return Ok(render(&|i| bytea_escaped(bytes.value(i))));
            }
            render(&|i| {
                let text = formatter.value(i).to_string();
                if binary {
                    format!("\\x{text}")
                } else {
                    text
                }
            })
        }
    })
}

/// As [`pg_text_in`], for a result column `field` (whose metadata may name a type its
/// Arrow type does not tell: an `oidvector` prints as `20 20`).
pub fn pg_field_text(
    field: &datafusion::arrow::datatypes::Field,
    array: &dyn Array,
    format: &TextFormat,
) -> DfResult<Vec<Option<String>>> {
    use crate::pg::types::{pg_type_oid, pg_vector_text, INT2VECTOR, OIDVECTOR};
    match pg_type_oid(field) {
        INT2VECTOR | OIDVECTOR => pg_vector_text(array),
        _ => pg_text_in(array, format),
    }
}

/// Arrays as PostgreSQL prints them: `{1,2,NULL}`, `{"a b","","NULL"}` (quoted where
/// needed), nested lists as `{{1,2},{3}}`.
fn array_text(
    array: &dyn Array,
    format: &TextFormat,
    render: impl Fn(&dyn Fn(usize) -> String) -> Vec<Option<String>>,
) -> DfResult<Vec<Option<String>>> {
    let element = match array.data_type() {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => f.clone(),
        _ => unreachable!("called for list types only"),
    };
    let list = datafusion::arrow::compute::cast(array, &DataType::List(element.clone()))?;
    let list = list.as_list::<i32>();
    let nested = matches!(
        element.data_type(),
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(_, _)
    );
    let values = pg_text_in(list.values().as_ref(), format)?;
    let offsets = list.value_offsets();
    if nested {
        // A PostgreSQL array is rectangular: sub-arrays of one length, none NULL.
        let inner = datafusion::arrow::compute::cast(
            list.values(),
            &DataType::List(match element.data_type() {
                DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
                    f.clone()
                }
                _ => unreachable!("nested means a list of lists"),
            }),
        )?;
        let inner = inner.as_list::<i32>();
        for i in (0..list.len()).filter(|i| list.is_valid(*i)) {
            let entries = offsets[i] as usize..offsets[i + 1] as usize;
            let mut lengths = entries.clone().map(|j| inner.value_length(j));
            let first = lengths.next();
            if entries.clone().any(|j| inner.is_null(j)) || lengths.any(|l| Some(l) != first) {
                return Err(Error::InvalidArray(
                    "multidimensional arrays must have array expressions with matching \
                     dimensions"
                        .into(),
                )
                .into());
            }
        }
    }
    Ok(render(&|i| {
        let (start, end) = (offsets[i] as usize, offsets[i + 1] as usize);
        let mut out = String::from("{");
        for (n, value) in values[start..end].iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            match value {
                None => out.push_str("NULL"),
                Some(v) if nested => out.push_str(v),
                Some(v) => array_element(v, &mut out),
            }
        }
        out.push('}');
        out
    }))
}

/// The text form of an array of `dims` (outermost first; empty for `{}`) holding
/// `elements` (already in their PostgreSQL text form, `None` for NULL) in row-major
/// order, as PostgreSQL's `array_out` prints it: `{{1,2},{3,4}}`, `{"a b",NULL}`.
///
/// ```
/// use wasmudf_engine::array_literal;
/// let items = ["1", "2", "3", "4"].map(|s| Some(s.to_string()));
/// assert_eq!(array_literal(&[2, 2], &items), "{{1,2},{3,4}}");
/// assert_eq!(array_literal(&[2], &[Some("a b".into()), None]), r#"{"a b",NULL}"#);
/// assert_eq!(array_literal(&[], &[]), "{}");
/// ```
pub fn array_literal(dims: &[usize], elements: &[Option<String>]) -> String {
    fn level(dims: &[usize], elements: &[Option<String>], out: &mut String) {
        out.push('{');
        match dims {
            [] | [_] => {
                for (n, e) in elements.iter().enumerate() {
                    if n > 0 {
                        out.push(',');
                    }
                    match e {
                        None => out.push_str("NULL"),
                        Some(v) => array_element(v, out),
                    }
                }
            }
            [outer, inner @ ..] => {
                let size = elements.len() / (*outer).max(1);
                for (n, chunk) in elements.chunks(size.max(1)).enumerate() {
                    if n > 0 {
                        out.push(',');
                    }
                    level(inner, chunk, out);
                }
            }
        }
        out.push('}');
    }
    let mut out = String::new();
    level(dims, elements, &mut out);
    out
}

/// One element of an array's text form, double-quoted when PostgreSQL's `array_out`
/// quotes it (empty, `NULL`, or holding braces, commas, quotes, backslashes or white
/// space), with quotes and backslashes escaped.
fn array_element(text: &str, out: &mut String) {
    let needs_quotes = text.is_empty()
        || text.eq_ignore_ascii_case("null")
        || text.chars().any(|c| {
            matches!(
                c,
                '{' | '}' | ',' | '"' | '\\' | ' ' | '\t' | '\n' | '\r' | '\u{b}' | '\u{c}'
            )
        });
    if !needs_quotes {
        out.push_str(text);
        return;
    }
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// Seconds and the non-negative sub-second remainder of a count of `per_second` units.
fn split(value: i64, per_second: i64) -> (i64, u32) {
    let secs = value.div_euclid(per_second);
    let frac = value.rem_euclid(per_second);
    (secs, u32::try_from(frac).unwrap_or(0))
}

/// UTC, the zone a zone name that does not parse falls back to (names are checked
/// when set).
fn utc() -> Tz {
    Tz::from_str("+00:00").unwrap_or_else(|_| unreachable!("a fixed offset parses"))
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff][+hh[:mm]]`: PostgreSQL prints at most microseconds
/// (rounded), with trailing zeros dropped, and a zone-aware value in the session zone.
fn pg_timestamp(secs: i64, frac: u32, per_second: i64, zone: Option<&Tz>) -> String {
    // Rounded to microseconds, as PostgreSQL stores them.
    let (mut secs, mut micros) = (secs, i64::from(frac));
    if per_second > 1_000_000 {
        let scale = per_second / 1_000_000;
        micros = (micros + scale / 2) / scale;
    } else {
        micros *= 1_000_000 / per_second;
    }
    if micros >= 1_000_000 {
        secs += 1;
        micros -= 1_000_000;
    }
    let Some(utc_time) = chrono::DateTime::from_timestamp(secs, 0) else {
        return format!("{secs} s since epoch (out of range)");
    };
    let (mut out, offset) = match zone {
        Some(tz) => {
            let local = utc_time.with_timezone(tz);
            let offset = local.offset().fix().local_minus_utc();
            (local.format("%Y-%m-%d %H:%M:%S").to_string(), Some(offset))
        }
        None => (utc_time.format("%Y-%m-%d %H:%M:%S").to_string(), None),
    };
    if micros > 0 {
        let digits = format!("{micros:06}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    if let Some(offset) = offset {
        let sign = if offset < 0 { '-' } else { '+' };
        let (h, m, s) = (
            offset.abs() / 3600,
            offset.abs() / 60 % 60,
            offset.abs() % 60,
        );
        out.push_str(&format!("{sign}{h:02}"));
        if m != 0 || s != 0 {
            out.push_str(&format!(":{m:02}"));
        }
        if s != 0 {
            out.push_str(&format!(":{s:02}"));
        }
    }
    out
}

/// A bytea value from PostgreSQL's text input: hex (`\\x00ff`, whitespace between
/// pairs allowed) or the escape format (`\\\\` for a backslash, `\\ooo` octal, the
/// rest as is).
///
/// ```
/// use wasmudf_engine::bytea_from_text;
/// assert_eq!(bytea_from_text("\\x00ff10").unwrap(), vec![0, 255, 16]);
/// assert_eq!(bytea_from_text("a\\\\b\\001").unwrap(), b"a\\b\x01".to_vec());
/// ```
pub fn bytea_from_text(text: &str) -> Result<Vec<u8>, String> {
    if let Some(hex) = text
        .strip_prefix("\\x")
        .or_else(|| text.strip_prefix("\\X"))
    {
        let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        if !digits.len().is_multiple_of(2) {
            return Err("invalid hexadecimal data: odd number of digits".into());
        }
        return digits
            .chunks(2)
            .map(|pair| {
                std::str::from_utf8(pair)
                    .ok()
                    .and_then(|p| u8::from_str_radix(p, 16).ok())
                    .ok_or_else(|| "invalid hexadecimal digit".to_string())
            })
            .collect();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
        } else if bytes.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else {
            let octal = bytes
                .get(i + 1..i + 4)
                .filter(|d| d[0] <= b'3' && d.iter().all(|c| (b'0'..=b'7').contains(c)))
                .ok_or_else(|| "invalid input syntax for type bytea".to_string())?;
            out.push(octal.iter().fold(0u8, |v, d| v * 8 + (d - b'0')));
            i += 4;
        }
    }
    Ok(out)
}

/// The elements of a one-dimensional array in PostgreSQL's text form (`{a,"b c",NULL}`),
/// as the text of each (`None` for NULL), as `array_in` reads it: white space around
/// an unquoted element is dropped, a backslash makes the next character literal, a
/// quoted `"NULL"` is the text NULL. Nested arrays and dimension decorations
/// (`[1:2]={...}`) are refused.
///
/// ```
/// use wasmudf_engine::array_from_text;
/// assert_eq!(
///     array_from_text(r#"{r, "v w" ,NULL,"NULL",a\,b}"#).unwrap(),
///     vec![Some("r".into()), Some("v w".into()), None, Some("NULL".into()), Some("a,b".into())]
/// );
/// assert_eq!(array_from_text("{}").unwrap(), Vec::<Option<String>>::new());
/// assert!(array_from_text("{{1},{2}}").is_err());
/// ```
pub fn array_from_text(text: &str) -> Result<Vec<Option<String>>, String> {
    let malformed = |why: &str| format!("malformed array literal: \"{text}\": {why}");
    let inner = text
        .trim()
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or_else(|| malformed("array value must start with \"{\" and end with \"}\""))?;
    let mut elements = Vec::new();
    if inner.trim().is_empty() {
        return Ok(elements);
    }
    let mut chars = inner.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        let mut quoted = false;
        // Quoted or escaped somewhere: never NULL, never trimmed past that point.
        let mut literal = false;
        // Length of `value` without the trailing white space of an unquoted element.
        let mut kept = 0;
        loop {
            match chars.peek().copied() {
                None | Some(',') if !quoted => break,
                None => return Err(malformed("unexpected end of input")),
                Some('"') => {
                    chars.next();
                    quoted = !quoted;
                    literal = true;
                }
                Some('\\') => {
                    chars.next();
                    let escaped = chars
                        .next()
                        .ok_or_else(|| malformed("unexpected end of input"))?;
                    value.push(escaped);
                    literal = true;
                    kept = value.len();
                }
                Some('{' | '}') if !quoted => {
                    return Err(malformed("multidimensional arrays are not supported"))
                }
                Some(c) => {
                    chars.next();
                    value.push(c);
                    if quoted || !c.is_whitespace() {
                        kept = value.len();
                    }
                }
            }
        }
        value.truncate(kept);
        if !literal && value.is_empty() {
            return Err(malformed("unexpected \",\" character"));
        }
        elements.push((literal || !value.eq_ignore_ascii_case("null")).then_some(value));
        if chars.next().is_none() {
            break;
        }
    }
    Ok(elements)
}

/// bytea in PostgreSQL's escape format: printable ASCII as is, a backslash doubled,
/// every other byte as a three-digit octal escape.
fn bytea_escaped(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\{b:03o}")),
        }
    }
    out
}

/// float8 text as the session prints it.
fn float8_in(v: f64, format: &TextFormat) -> String {
    if format.extra_float_digits > 0 || !v.is_finite() {
        pg_float(v)
    } else {
        rounded(v, 15 + format.extra_float_digits)
    }
}

/// `v` to `digits` significant digits in C's `%g` form, as PostgreSQL prints floats
/// when `extra_float_digits` is 0 or less.
fn rounded(v: f64, digits: i32) -> String {
    if !v.is_finite() {
        return pg_float(v);
    }
    let digits = digits.max(1);
    let precision = usize::try_from(digits - 1).unwrap_or(0);
    let exp_form = format!("{v:.precision$e}");
    let Some((mantissa, exp)) = exp_form.split_once('e') else {
        return exp_form;
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    if exp < -4 || exp >= digits {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa.to_string()), exp.abs())
    } else {
        let decimals = usize::try_from(digits - 1 - exp).unwrap_or(0);
        trim(format!("{v:.decimals$}"))
    }
}

/// PostgreSQL's float8 text: shortest round-trip digits, exponent form outside
/// 1e-4 ..< 1e15, `Infinity`, `NaN`.
pub(crate) fn pg_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        shortest(format!("{v:e}"), || v.to_string(), 15)
    }
}

/// PostgreSQL's float4 text: shortest digits that round-trip as f32, exponent form
/// outside 1e-4 ..< 1e6.
fn pg_float4(v: f32) -> String {
    if v.is_finite() {
        shortest(format!("{v:e}"), || v.to_string(), 6)
    } else {
        pg_float(f64::from(v))
    }
}

/// Chooses between Rust's shortest plain and exponent forms the way PostgreSQL's
/// `float8out` does (exponent `< -4` or `>= digits` prints as `1.5e+20`).
fn shortest(exp_form: String, plain: impl Fn() -> String, digits: i32) -> String {
    let Some((mantissa, exp)) = exp_form.split_once('e') else {
        return plain();
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= digits {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        plain()
    }
}

/// PostgreSQL's binary NUMERIC from a decimal literal (`-12.3400`): base-10000 digit
/// groups around the decimal point, weight of the first group, sign, display scale.
///
/// ```
/// use wasmudf_engine::{numeric_from_binary, numeric_to_binary};
/// let wire = numeric_to_binary("-12.3400");
/// assert_eq!(numeric_from_binary(&wire).unwrap(), "-12.3400");
/// ```
pub fn numeric_to_binary(text: &str) -> Vec<u8> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    let int_part = int_part.trim_start_matches('0');
    let dscale = frac_part.len() as u16;
    let int_pad = (4 - int_part.len() % 4) % 4;
    let frac_pad = (4 - frac_part.len() % 4) % 4;
    let padded = format!(
        "{}{int_part}{frac_part}{}",
        "0".repeat(int_pad),
        "0".repeat(frac_pad)
    );
    let mut groups: Vec<i16> = padded
        .as_bytes()
        .chunks(4)
        .map(|c| {
            c.iter().fold(0i16, |acc, d| {
                acc * 10 + i16::from(d.wrapping_sub(b'0') % 10)
            })
        })
        .collect();
    let mut weight = ((int_part.len() + int_pad) / 4) as i16 - 1;
    while groups.first() == Some(&0) {
        groups.remove(0);
        weight -= 1;
    }
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    let mut out = Vec::with_capacity(8 + 2 * groups.len());
    out.extend_from_slice(&(groups.len() as i16).to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    let sign: u16 = if negative && !groups.is_empty() {
        0x4000
    } else {
        0
    };
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&dscale.to_be_bytes());
    for g in groups {
        out.extend_from_slice(&g.to_be_bytes());
    }
    out
}

/// The decimal literal of a binary NUMERIC (`NaN` included).
pub fn numeric_from_binary(raw: &[u8]) -> Result<String, String> {
    let word = |i: usize| -> Result<i16, String> {
        raw.get(i..i + 2)
            .map(|b| i16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "truncated numeric".to_string())
    };
    let ndigits = word(0)?.max(0) as usize;
    let weight = i32::from(word(2)?);
    let sign = word(4)? as u16;
    let dscale = word(6)?.max(0) as usize;
    if sign == 0xC000 {
        return Ok("NaN".into());
    }
    let groups = (0..ndigits)
        .map(|g| word(8 + 2 * g))
        .collect::<Result<Vec<_>, _>>()?;
    let group = |w: i32| -> i16 {
        let idx = weight - w;
        usize::try_from(idx)
            .ok()
            .and_then(|i| groups.get(i).copied())
            .unwrap_or(0)
    };
    let mut int = String::new();
    for w in (0..=weight.max(0)).rev() {
        int.push_str(&format!("{:04}", group(w)));
    }
    let int = int.trim_start_matches('0');
    let mut frac = String::new();
    let mut w = -1;
    while frac.len() < dscale {
        frac.push_str(&format!("{:04}", group(w)));
        w -= 1;
    }
    frac.truncate(dscale);
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    out.push_str(if int.is_empty() { "0" } else { int });
    if dscale > 0 {
        out.push('.');
        out.push_str(&frac);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{ArrayRef, BinaryArray, Float64Array};

    use super::*;

    #[test]
    fn timestamps_print_like_postgres() {
        assert_eq!(
            pg_timestamp(1_704_110_400, 0, 1_000_000, None),
            "2024-01-01 12:00:00"
        );
        assert_eq!(
            pg_timestamp(1_704_110_400, 500_000, 1_000_000, Some(&utc())),
            "2024-01-01 12:00:00.5+00"
        );
        assert_eq!(
            pg_timestamp(1_704_110_400, 1_000, 1_000_000_000, None),
            "2024-01-01 12:00:00.000001"
        );
        // Nanoseconds round to PostgreSQL's microseconds, carrying into the second.
        assert_eq!(
            pg_timestamp(1_704_110_400, 123_456_789, 1_000_000_000, None),
            "2024-01-01 12:00:00.123457"
        );
        assert_eq!(
            pg_timestamp(1_704_110_400, 999_999_900, 1_000_000_000, None),
            "2024-01-01 12:00:01"
        );
        let zone = |name: &str| Tz::from_str(name).unwrap();
        assert_eq!(
            pg_timestamp(1_704_110_400, 0, 1, Some(&zone("Europe/Paris"))),
            "2024-01-01 13:00:00+01"
        );
        assert_eq!(
            pg_timestamp(1_704_110_400, 0, 1, Some(&zone("Asia/Kolkata"))),
            "2024-01-01 17:30:00+05:30"
        );
        assert_eq!(split(-1, 1_000_000), (-1, 999_999));
    }

    #[test]
    fn floats_print_like_postgres() {
        assert_eq!(pg_float(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(pg_float(f64::NAN), "NaN");
        assert_eq!(pg_float4(0.1), "0.1");
        assert_eq!(pg_float(1e20), "1e+20");
        assert_eq!(pg_float(-1.5e-5), "-1.5e-05");
        assert_eq!(pg_float(123456789012345.0), "123456789012345");
        assert_eq!(pg_float(0.0001), "0.0001");
        assert_eq!(pg_float4(1234567.0), "1.234567e+06");
        assert_eq!(pg_float4(100000.0), "100000");
        // extra_float_digits = 0: 15 significant digits (6 for float4), C's %g.
        assert_eq!(rounded(0.1 + 0.2, 15), "0.3");
        assert_eq!(rounded(1.0 / 3.0, 15), "0.333333333333333");
        assert_eq!(rounded(1e20, 15), "1e+20");
        assert_eq!(rounded(123.456, 2), "1.2e+02");
        assert_eq!(rounded(f64::from(0.1f32), 6), "0.1");
        let format = TextFormat {
            extra_float_digits: 0,
            ..TextFormat::default()
        };
        let f: ArrayRef = Arc::new(Float64Array::from(vec![0.1 + 0.2]));
        assert_eq!(pg_text_in(&f, &format).unwrap(), vec![Some("0.3".into())]);
        assert_eq!(
            pg_text(&f).unwrap(),
            vec![Some("0.30000000000000004".into())]
        );
    }

    #[test]
    fn bytea_prints_in_either_output_format() {
        let b: ArrayRef = Arc::new(BinaryArray::from(vec![&b"a\\\x00\xff"[..]]));
        assert_eq!(pg_text(&b).unwrap(), vec![Some("\\x615c00ff".into())]);
        let escape = TextFormat {
            bytea_escape: true,
            ..TextFormat::default()
        };
        assert_eq!(
            pg_text_in(&b, &escape).unwrap(),
            vec![Some("a\\\\\\000\\377".into())]
        );
    }

    #[test]
    fn numeric_round_trips_through_binary() {
        for text in [
            "0",
            "1",
            "-12.3400",
            "10000",
            "0.0001",
            "123456789.987654321",
            "-0.5",
            "99999999999999999999999999999999999999",
        ] {
            assert_eq!(
                numeric_from_binary(&numeric_to_binary(text)).unwrap(),
                text,
                "{text}"
            );
        }
        // 1.5 = one group before the point, one after: weight 0, digits [1, 5000].
        assert_eq!(
            numeric_to_binary("1.5"),
            vec![0, 2, 0, 0, 0, 0, 0, 1, 0, 1, 0x13, 0x88]
        );
    }
}
