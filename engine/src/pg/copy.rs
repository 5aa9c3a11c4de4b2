//! `COPY t [(cols)] FROM STDIN` and `COPY {t | (query)} TO STDOUT`, in PostgreSQL's text
//! and CSV formats: the options, parsing incoming data into Arrow, and rendering rows.
//!
//! The wire exchange is the server's; the engine reads the statement, turns the client's
//! bytes into a batch appended to the table, and renders result rows as COPY lines.

use std::sync::Arc;

use datafusion::arrow::array::{new_null_array, ArrayRef, BinaryArray, RecordBatch, StringArray};
use datafusion::arrow::compute::{cast_with_options, CastOptions};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::sql::sqlparser::ast::{
    CopyLegacyCsvOption, CopyLegacyOption, CopyOption, CopySource, CopyTarget,
};

use crate::error::Error;
use crate::pg::datetime_input::{canonical_datetime, DatetimeKind};
use crate::pg::json::{json_checked, jsonb_text};
use crate::pg::text::{bytea_from_text, pg_text};
use crate::pg::types::JsonKind;

/// The data format of a COPY, as its options chose it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyFormat {
    /// CSV (`FORMAT csv`) rather than PostgreSQL's text format.
    pub csv: bool,
    /// Field separator: tab for text, comma for CSV.
    pub delimiter: char,
    /// The string that stands for NULL: `\N` for text, the empty string for CSV.
    pub null: String,
    /// CSV only: the first line names the columns (skipped on input, written on output).
    pub header: bool,
    /// CSV quote character.
    pub quote: char,
    /// CSV escape character inside quotes (defaults to the quote).
    pub escape: char,
}

impl CopyFormat {
    pub(crate) fn text() -> Self {
        CopyFormat {
            csv: false,
            delimiter: '\t',
            null: "\\N".into(),
            header: false,
            quote: '"',
            escape: '"',
        }
    }

    pub(crate) fn csv() -> Self {
        CopyFormat {
            csv: true,
            delimiter: ',',
            null: String::new(),
            ..CopyFormat::text()
        }
    }
}

/// What a COPY statement asks for.
pub(crate) enum CopyRequest {
    /// Rows from the client into a table.
    In {
        table: String,
        columns: Vec<String>,
        format: CopyFormat,
    },
    /// Rows of a table or query to the client.
    Out { query: String, format: CopyFormat },
}

/// Reads a `COPY` statement: STDIN/STDOUT only (server files are refused).
pub(crate) fn request(
    source: &CopySource,
    to: bool,
    target: &CopyTarget,
    options: &[CopyOption],
    legacy: &[CopyLegacyOption],
) -> Result<CopyRequest, Error> {
    match (to, target) {
        (false, CopyTarget::Stdin) | (true, CopyTarget::Stdout) => {}
        _ => {
            return Err(Error::InsufficientPrivilege(
                "COPY to or from a server file or program is not allowed; use COPY ... FROM STDIN / TO STDOUT (psql: \\copy)".into(),
            ))
        }
    }
    let format = format_of(options, legacy)?;
    Ok(match (to, source) {
        (
            false,
            CopySource::Table {
                table_name,
                columns,
            },
        ) => CopyRequest::In {
            table: table_name.to_string(),
            columns: columns.iter().map(|c| c.value.clone()).collect(),
            format,
        },
        (false, CopySource::Query(_)) => {
            return Err(Error::Syntax("COPY FROM needs a table, not a query".into()))
        }
        (
            true,
            CopySource::Table {
                table_name,
                columns,
            },
        ) => {
            let list = if columns.is_empty() {
                "*".to_string()
            } else {
                columns
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            CopyRequest::Out {
                query: format!("SELECT {list} FROM {table_name}"),
                format,
            }
        }
        (true, CopySource::Query(q)) => CopyRequest::Out {
            query: q.to_string(),
            format,
        },
    })
}

fn format_of(options: &[CopyOption], legacy: &[CopyLegacyOption]) -> Result<CopyFormat, Error> {
    let unsupported =
        |what: &str| Error::NotSupported(format!("COPY option {what} is not supported"));
    let csv = options
        .iter()
        .any(|o| matches!(o, CopyOption::Format(f) if f.value.eq_ignore_ascii_case("csv")))
        || legacy.iter().any(|o| matches!(o, CopyLegacyOption::Csv(_)));
    let mut format = if csv {
        CopyFormat::csv()
    } else {
        CopyFormat::text()
    };
    let mut escape = None;
    for option in options {
        match option {
            CopyOption::Format(f) => match f.value.to_ascii_lowercase().as_str() {
                "csv" | "text" => {}
                other => return Err(unsupported(&format!("FORMAT {other}"))),
            },
            CopyOption::Delimiter(c) => format.delimiter = *c,
            CopyOption::Null(s) => format.null = s.clone(),
            CopyOption::Header(h) => format.header = *h,
            CopyOption::Quote(c) => format.quote = *c,
            CopyOption::Escape(c) => escape = Some(*c),
            CopyOption::Encoding(e)
                if e.eq_ignore_ascii_case("utf8") || e.eq_ignore_ascii_case("utf-8") => {}
            other => return Err(unsupported(&other.to_string())),
        }
    }
    for option in legacy {
        match option {
            CopyLegacyOption::Csv(csv_options) => {
                for o in csv_options {
                    match o {
                        CopyLegacyCsvOption::Header => format.header = true,
                        CopyLegacyCsvOption::Quote(c) => format.quote = *c,
                        CopyLegacyCsvOption::Escape(c) => escape = Some(*c),
                        other => return Err(unsupported(&other.to_string())),
                    }
                }
            }
            CopyLegacyOption::Delimiter(c) => format.delimiter = *c,
            CopyLegacyOption::Null(s) => format.null = s.clone(),
            CopyLegacyOption::Header => format.header = true,
            other => return Err(unsupported(&other.to_string())),
        }
    }
    format.escape = escape.unwrap_or(format.quote);
    if format.header && !format.csv {
        return Err(Error::NotSupported(
            "COPY HEADER is available only in CSV mode".into(),
        ));
    }
    Ok(format)
}

/// A COPY FROM STDIN waiting for the client's data: [`crate::Session::copy_in`].
#[derive(Debug, Clone)]
pub struct CopyIn {
    pub(crate) table: String,
    /// The table's columns.
    pub(crate) table_schema: SchemaRef,
    /// The columns the data holds, as indices into the table's, in data order.
    pub(crate) columns: Vec<usize>,
    pub(crate) format: CopyFormat,
}

impl CopyIn {
    /// How many columns each line holds.
    pub fn columns(&self) -> usize {
        self.columns.len()
    }

    /// The data format.
    pub fn format(&self) -> &CopyFormat {
        &self.format
    }
}

fn bad_data(line: usize, message: impl std::fmt::Display) -> DataFusionError {
    Error::InvalidText(format!("COPY data, line {line}: {message}")).into()
}

/// Parses the client's bytes into one batch of the target columns.
pub(crate) fn parse(copy: &CopyIn, data: &[u8]) -> DfResult<RecordBatch> {
    let text = std::str::from_utf8(data).map_err(|e| bad_data(0, format!("not UTF-8 ({e})")))?;
    let rows = if copy.format.csv {
        parse_csv(text, &copy.format)?
    } else {
        parse_text(text, &copy.format)?
    };
    let rows = if copy.format.header && !rows.is_empty() {
        &rows[1..]
    } else {
        &rows[..]
    };
    let n = copy.columns();
    for (i, row) in rows.iter().enumerate() {
        if row.len() != n {
            return Err(bad_data(
                i + 1 + usize::from(copy.format.header),
                format!("{} columns, the table takes {n}", row.len()),
            ));
        }
    }
    let options = CastOptions {
        safe: false,
        ..CastOptions::default()
    };
    // Columns the data leaves out are NULL, as PostgreSQL fills in (absent defaults).
    let columns = copy
        .table_schema
        .fields()
        .iter()
        .enumerate()
        .map(
            |(t, field)| match copy.columns.iter().position(|&c| c == t) {
                Some(c) => {
                    let failed = |e: String| bad_data(0, format!("column {}: {e}", field.name()));
                    let parsed: ArrayRef = if matches!(
                        field.data_type(),
                        DataType::Binary | DataType::LargeBinary | DataType::BinaryView
                    ) {
                        // bytea's own text form (`\x0102`, escapes), not the text's bytes.
                        let mut bytes = Vec::with_capacity(rows.len());
                        for (i, r) in rows.iter().enumerate() {
                            let value = r[c].as_deref().map(bytea_from_text).transpose();
                            bytes.push(value.map_err(|e| {
                                bad_data(
                                    i + 1 + usize::from(copy.format.header),
                                    format!("column {}: {e}", field.name()),
                                )
                            })?);
                        }
                        Arc::new(BinaryArray::from_iter(bytes))
                    } else if let Some(kind) = JsonKind::of(field) {
                        // json / jsonb: checked (22P02 at the line), jsonb in normal form.
                        let mut texts = Vec::with_capacity(rows.len());
                        for (i, r) in rows.iter().enumerate() {
                            let value = r[c].as_deref().map(|t| match kind {
                                JsonKind::Jsonb => jsonb_text(t),
                                JsonKind::Json => json_checked(t).map(str::to_string),
                            });
                            texts.push(value.transpose().map_err(|e| {
                                bad_data(
                                    i + 1 + usize::from(copy.format.header),
                                    format!("column {}: invalid JSON: {e}", field.name()),
                                )
                            })?);
                        }
                        Arc::new(StringArray::from(texts))
                    } else if let Some(kind) = DatetimeKind::of(field.data_type()) {
                        // PostgreSQL's ISO forms Arrow's parser does not read (a zone after
                        // a date, an hour-only offset).
                        Arc::new(
                            rows.iter()
                                .map(|r| {
                                    r[c].as_deref().map(|t| {
                                        canonical_datetime(t, kind).unwrap_or_else(|| t.to_string())
                                    })
                                })
                                .collect::<StringArray>(),
                        )
                    } else {
                        Arc::new(
                            rows.iter()
                                .map(|r| r[c].as_deref())
                                .collect::<StringArray>(),
                        )
                    };
                    cast_with_options(&parsed, field.data_type(), &options)
                        .map_err(|e| failed(e.to_string()))
                }
                None => Ok(new_null_array(field.data_type(), rows.len())),
            },
        )
        .collect::<DfResult<Vec<ArrayRef>>>()?;
    Ok(RecordBatch::try_new(copy.table_schema.clone(), columns)?)
}

type Row = Vec<Option<String>>;

/// PostgreSQL's text format: one row per line, fields split by the delimiter, `\N`
/// for NULL, backslash escapes; a line `\.` ends the data.
fn parse_text(text: &str, format: &CopyFormat) -> DfResult<Vec<Row>> {
    let mut rows = Vec::new();
    let lines = text.split('\n').count();
    for (i, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line == "\\." {
            break;
        }
        if line.is_empty() && i + 1 == lines {
            break;
        }
        let mut row = Vec::new();
        for raw in line.split(format.delimiter) {
            if raw == format.null {
                row.push(None);
                continue;
            }
            let mut out = String::with_capacity(raw.len());
            let mut chars = raw.chars();
            while let Some(c) = chars.next() {
                if c != '\\' {
                    out.push(c);
                    continue;
                }
                match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some('b') => out.push('\u{8}'),
                    Some('f') => out.push('\u{c}'),
                    Some('v') => out.push('\u{b}'),
                    Some(other) => out.push(other),
                    None => return Err(bad_data(i + 1, "line ends in a lone backslash")),
                }
            }
            row.push(Some(out));
        }
        rows.push(row);
    }
    Ok(rows)
}

/// CSV as PostgreSQL reads it: quoted fields may hold delimiters, quotes (doubled or
/// escaped) and newlines; an unquoted field equal to the NULL string is NULL, a quoted
/// one never is.
fn parse_csv(text: &str, format: &CopyFormat) -> DfResult<Vec<Row>> {
    let mut rows = Vec::new();
    let mut row: Row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut in_quotes = false;
    let mut line = 1;
    let mut chars = text.chars().peekable();
    let mut at_line_start = true;
    let finish = |field: &mut String, quoted: &mut bool, row: &mut Row| {
        let value = std::mem::take(field);
        row.push(if !*quoted && value == format.null {
            None
        } else {
            Some(value)
        });
        *quoted = false;
    };
    while let Some(c) = chars.next() {
        if in_quotes {
            // An escaped quote (a doubled quote by default) is a literal quote; a
            // lone quote closes the field.
            if c == format.escape && chars.peek() == Some(&format.quote) {
                chars.next();
                field.push(format.quote);
            } else if c == format.quote {
                in_quotes = false;
            } else {
                if c == '\n' {
                    line += 1;
                }
                field.push(c);
            }
            continue;
        }
        // The end-of-data marker is `\.` alone on its line; `\.,x` is data.
        if at_line_start && c == '\\' && {
            let mut ahead = chars.clone();
            ahead.next() == Some('.') && matches!(ahead.next(), None | Some('\n' | '\r'))
        } {
            break;
        }
        at_line_start = false;
        match c {
            c if c == format.quote => {
                in_quotes = true;
                quoted = true;
            }
            c if c == format.delimiter => finish(&mut field, &mut quoted, &mut row),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                finish(&mut field, &mut quoted, &mut row);
                rows.push(std::mem::take(&mut row));
                line += 1;
                at_line_start = true;
            }
            c => field.push(c),
        }
    }
    if in_quotes {
        return Err(bad_data(line, "unterminated CSV quoted field"));
    }
    if !at_line_start || !field.is_empty() || quoted || !row.is_empty() {
        finish(&mut field, &mut quoted, &mut row);
        rows.push(row);
    }
    Ok(rows)
}

/// Renders every row of `batch` as one COPY line (with its newline).
pub fn copy_lines(batch: &RecordBatch, format: &CopyFormat) -> DfResult<Vec<String>> {
    let columns = batch
        .columns()
        .iter()
        .map(|c| pg_text(c.as_ref()))
        .collect::<DfResult<Vec<_>>>()?;
    Ok((0..batch.num_rows())
        .map(|r| {
            let fields: Vec<String> = columns
                .iter()
                .map(|c| match &c[r] {
                    None => format.null.clone(),
                    Some(v) => escape(v, format),
                })
                .collect();
            let mut line = fields.join(&format.delimiter.to_string());
            line.push('\n');
            line
        })
        .collect())
}

/// The header line of a CSV COPY TO with HEADER.
pub fn copy_header(schema: &Schema, format: &CopyFormat) -> String {
    let names: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| escape(f.name(), format))
        .collect();
    format!("{}\n", names.join(&format.delimiter.to_string()))
}

fn escape(value: &str, format: &CopyFormat) -> String {
    if format.csv {
        // `\.` alone on a line would read back as the end-of-data marker: quoted always
        // (PostgreSQL quotes it only in one-column output, where it can stand alone).
        let needs_quotes = value.is_empty() && format.null.is_empty()
            || value == format.null
            || value == "\\."
            || value.contains(format.delimiter)
            || value.contains(format.quote)
            || value.contains('\n')
            || value.contains('\r');
        if !needs_quotes {
            return value.to_string();
        }
        let mut out = String::with_capacity(value.len() + 2);
        out.push(format.quote);
        for c in value.chars() {
            if c == format.quote || c == format.escape {
                out.push(format.escape);
            }
            out.push(c);
        }
        out.push(format.quote);
        out
    } else {
        let mut out = String::with_capacity(value.len());
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c == format.delimiter => {
                    out.push('\\');
                    out.push(c);
                }
                c => out.push(c),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_nulls_and_newlines() {
        let f = CopyFormat::csv();
        let rows = parse_csv("1,,\"\"\n2,\"a,\"\"b\"\"\nc\",x\n", &f).unwrap();
        assert_eq!(
            rows,
            vec![
                vec![Some("1".into()), None, Some("".into())],
                vec![
                    Some("2".into()),
                    Some("a,\"b\"\nc".into()),
                    Some("x".into())
                ],
            ]
        );
        assert!(parse_csv("1,\"open\n", &f).is_err());
    }

    #[test]
    fn text_escapes_and_end_marker() {
        let f = CopyFormat::text();
        let rows = parse_text("1\t\\N\ta\\tb\n2\tx\\\\y\t\n\\.\nignored\n", &f).unwrap();
        assert_eq!(
            rows,
            vec![
                vec![Some("1".into()), None, Some("a\tb".into())],
                vec![Some("2".into()), Some("x\\y".into()), Some("".into())],
            ]
        );
    }

    /// Found by the round-trip property test: a row starting with a `\.` value read as
    /// the end of the data, so the rows after it (and that one) were lost.
    #[test]
    fn csv_backslash_dot_is_data_unless_alone_on_its_line() {
        let f = CopyFormat::csv();
        let rows = parse_csv("\\.,1\n\\.x,2\n\"\\.\"\n\\.\nignored\n", &f).unwrap();
        assert_eq!(
            rows,
            vec![
                vec![Some("\\.".into()), Some("1".into())],
                vec![Some("\\.x".into()), Some("2".into())],
                vec![Some("\\.".into())],
            ]
        );
        // A lone `\.` value goes out quoted, so a one-column row cannot end the data.
        assert_eq!(escape("\\.", &f), "\"\\.\"");
    }

    #[test]
    fn output_round_trips() {
        let f = CopyFormat::csv();
        assert_eq!(escape("a,b", &f), "\"a,b\"");
        assert_eq!(escape("", &f), "\"\"");
        assert_eq!(escape("say \"hi\"", &f), "\"say \"\"hi\"\"\"");
        let t = CopyFormat::text();
        assert_eq!(escape("a\tb\\", &t), "a\\tb\\\\");
    }

    mod round_trip {
        //! Whatever a table holds, COPY TO renders lines that COPY FROM reads back as
        //! the same values, in both formats, with and without a CSV header.

        use std::sync::Arc;

        use datafusion::arrow::array::{Array, BooleanArray, Float64Array, Int64Array};
        use datafusion::arrow::datatypes::{DataType, Field};
        use proptest::prelude::*;

        use super::*;

        type Row = (Option<String>, Option<i64>, Option<f64>, Option<bool>);

        fn batch(rows: &[Row]) -> RecordBatch {
            let schema = Arc::new(Schema::new(vec![
                Field::new("s", DataType::Utf8, true),
                Field::new("i", DataType::Int64, true),
                Field::new("f", DataType::Float64, true),
                Field::new("b", DataType::Boolean, true),
            ]));
            let columns: Vec<ArrayRef> = vec![
                Arc::new(StringArray::from_iter(rows.iter().map(|r| r.0.clone()))),
                Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.1))),
                Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.2))),
                Arc::new(BooleanArray::from_iter(rows.iter().map(|r| r.3))),
            ];
            RecordBatch::try_new(schema, columns).expect("batch")
        }

        fn row() -> impl Strategy<Value = Row> {
            (
                // Any text, delimiters, quotes, backslashes, CR/LF and `\.` included.
                proptest::option::of("(?s)(.|[\\\t\n\r,\"]|\\\\.|\\\\N){0,12}"),
                proptest::option::of(any::<i64>()),
                proptest::option::of(any::<f64>()),
                proptest::option::of(any::<bool>()),
            )
        }

        proptest! {
            #[test]
            fn copy_out_then_in_gives_the_same_rows(
                rows in proptest::collection::vec(row(), 0..24),
                csv: bool,
                header: bool,
            ) {
                let format = if csv {
                    CopyFormat { header, ..CopyFormat::csv() }
                } else {
                    CopyFormat::text()
                };
                let original = batch(&rows);
                let mut data = String::new();
                if format.header {
                    data.push_str(&copy_header(&original.schema(), &format));
                }
                for line in copy_lines(&original, &format).expect("render") {
                    data.push_str(&line);
                }
                let copy = CopyIn {
                    table: "t".into(),
                    table_schema: original.schema(),
                    columns: (0..original.num_columns()).collect(),
                    format,
                };
                let back = parse(&copy, data.as_bytes())
                    .unwrap_or_else(|e| panic!("{e}\ndata: {data:?}"));
                prop_assert_eq!(back.num_rows(), original.num_rows());
                for (got, want) in back.columns().iter().zip(original.columns()) {
                    // Floats compare by bits: NaN and -0 must survive too.
                    if let Some(want) = want.as_any().downcast_ref::<Float64Array>() {
                        let got = got.as_any().downcast_ref::<Float64Array>().expect("f64");
                        let bits = |a: &Float64Array| -> Vec<Option<u64>> {
                            a.iter().map(|v| v.map(|f| if f.is_nan() { u64::MAX } else { f.to_bits() })).collect()
                        };
                        prop_assert_eq!(bits(got), bits(want), "data: {:?}", data);
                    } else {
                        prop_assert_eq!(got.to_data(), want.to_data(), "data: {:?}", data);
                    }
                }
            }

            /// Whatever bytes a client sends, in either format, into columns of every
            /// kind: rows or a 22P02 naming the problem, never a panic.
            #[test]
            fn any_upload_parses_or_is_refused(
                data in proptest::collection::vec(
                    prop_oneof![
                        any::<u8>(),
                        proptest::sample::select(b"\t\n\r,\"\\.Nx01".to_vec()),
                    ],
                    0..200,
                ),
                csv: bool,
                header: bool,
            ) {
                let schema = Arc::new(Schema::new(vec![
                    Field::new("s", DataType::Utf8, true),
                    Field::new("i", DataType::Int64, true),
                    Field::new("b", DataType::Binary, true),
                    Field::new("d", DataType::Date32, true),
                ]));
                let format = if csv {
                    CopyFormat { header, ..CopyFormat::csv() }
                } else {
                    CopyFormat::text()
                };
                let copy = CopyIn {
                    table: "t".into(),
                    table_schema: schema,
                    columns: vec![0, 1, 2, 3],
                    format,
                };
                if let Err(e) = parse(&copy, &data) {
                    prop_assert_eq!(crate::error::sqlstate(&e), "22P02", "{}", e);
                }
            }
        }
    }
}
