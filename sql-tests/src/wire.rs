//! The pgwire target: tokio-postgres over the extended protocol (Parse, Describe, Bind,
//! Execute), results decoded from the binary format and printed as psql prints them.

use std::sync::Arc;

use async_trait::async_trait;
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType};
use tokio::sync::Mutex;
use tokio_postgres::types::{FromSql, Kind, Type};
use tokio_postgres::{Client, NoTls};
use wasmudf_engine::datafusion::arrow::array::{
    ArrayRef, Date32Array, Float32Array, Float64Array, IntervalMonthDayNanoArray,
    Time64MicrosecondArray, TimestampMicrosecondArray,
};
use wasmudf_engine::{array_literal, numeric_from_binary, pg_text, PgInterval};

use crate::arrays;
use crate::render::{cell, copy_rows, is_copy_to_stdout, pg_column_type, split_copy_in, SqlError};
use crate::upstream::{expand_row, DfCell};
use futures::{SinkExt, StreamExt};

/// Where connections go; a restart moves it (new port) and bumps the generation so
/// every connection reconnects before its next statement.
pub struct Endpoint {
    state: Mutex<(String, u64)>,
    conventions: Conventions,
}

/// How results and errors are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conventions {
    /// As psql prints them (the project's own suites).
    Psql,
    /// As DataFusion's runner prints them (upstream files in the conformance suite):
    /// see [`crate::upstream`].
    DataFusion,
}

impl Endpoint {
    /// An endpoint at a `postgres://` URL.
    pub fn new(url: String, conventions: Conventions) -> Arc<Self> {
        Arc::new(Endpoint {
            state: Mutex::new((url, 0)),
            conventions,
        })
    }

    /// Points every connection at `url` from its next statement on.
    pub async fn moved(&self, url: String) {
        let mut state = self.state.lock().await;
        state.0 = url;
        state.1 += 1;
    }

    /// A new connection (connected on first use).
    pub fn connect(self: &Arc<Self>) -> Conn {
        Conn {
            endpoint: self.clone(),
            client: None,
        }
    }
}

/// One connection of the pgwire target.
pub struct Conn {
    endpoint: Arc<Endpoint>,
    client: Option<(u64, Client)>,
}

impl Conn {
    async fn client(&mut self) -> Result<&Client, SqlError> {
        let (mut url, generation) = self.endpoint.state.lock().await.clone();
        if self.client.as_ref().map(|(g, _)| *g) != Some(generation) {
            if self.endpoint.conventions == Conventions::DataFusion {
                // Upstream files are written for DataFusion's float literals (`1.5` a
                // float8); the server's default is PostgreSQL's numeric literals,
                // tested in the project's own suites.
                url.push_str(" options='-c datafusion.sql_parser.parse_float_as_decimal=false'");
            }
            let (client, connection) = tokio_postgres::connect(&url, NoTls)
                .await
                .map_err(|e| SqlError::runner(format!("cannot connect to {url}: {e}")))?;
            tokio::spawn(async move {
                // Ends when the client is dropped or the server goes away.
                let _ = connection.await;
            });
            self.client = Some((generation, client));
        }
        match &self.client {
            Some((_, client)) => Ok(client),
            None => Err(SqlError::runner("not connected")),
        }
    }
}

fn sql_error(e: tokio_postgres::Error) -> SqlError {
    match e.as_db_error() {
        Some(db) => SqlError::new(db.code().code(), db.message().to_string()),
        None => SqlError::runner(e.to_string()),
    }
}

#[async_trait]
impl AsyncDB for Conn {
    type Error = SqlError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SqlError> {
        match self.endpoint.conventions {
            Conventions::Psql => self.run_psql(sql).await,
            Conventions::DataFusion => self.run_upstream(sql).await.map_err(|e| match e.sqlstate {
                // DataFusion's runner prints its errors with this prefix, and upstream
                // files match on it.
                // Without the SQLSTATE suffix: upstream multi-line expectations match the
                // whole message.
                Some(_) => SqlError {
                    message: format!("DataFusion error: {}", e.message),
                    sqlstate: None,
                },
                None => e,
            }),
        }
    }

    async fn shutdown(&mut self) {
        self.client = None;
    }

    fn engine_name(&self) -> &str {
        "server"
    }

    async fn sleep(dur: std::time::Duration) {
        tokio::time::sleep(dur).await
    }

    fn error_sql_state(err: &SqlError) -> Option<String> {
        err.sqlstate.clone()
    }
}

impl Conn {
    /// A statement with psql's rendering.
    async fn run_psql(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SqlError> {
        let client = self.client().await?;
        // COPY's data travels in CopyData messages, as psql's \copy sends and receives it.
        if let Some((statement, data)) = split_copy_in(sql) {
            let sink = client
                .copy_in::<_, std::io::Cursor<Vec<u8>>>(statement)
                .await
                .map_err(sql_error)?;
            futures::pin_mut!(sink);
            sink.send(std::io::Cursor::new(data.into_bytes()))
                .await
                .map_err(sql_error)?;
            let rows = sink.finish().await.map_err(sql_error)?;
            return Ok(DBOutput::StatementComplete(rows));
        }
        if is_copy_to_stdout(sql) {
            let stream = client.copy_out(sql).await.map_err(sql_error)?;
            futures::pin_mut!(stream);
            let mut text = Vec::new();
            while let Some(chunk) = stream.next().await {
                text.extend_from_slice(&chunk.map_err(sql_error)?);
            }
            return Ok(DBOutput::Rows {
                types: vec![DefaultColumnType::Text],
                rows: copy_rows(&String::from_utf8_lossy(&text)),
            });
        }
        let statement = client.prepare(sql).await.map_err(sql_error)?;
        if statement.columns().is_empty() {
            let count = client.execute(&statement, &[]).await.map_err(sql_error)?;
            return Ok(DBOutput::StatementComplete(count));
        }
        let types = statement
            .columns()
            .iter()
            .map(|c| pg_column_type(c.type_()))
            .collect();
        let rows = client
            .query(&statement, &[])
            .await
            .map_err(sql_error)?
            .iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| {
                        row.try_get::<_, PgCell>(i)
                            .map(|c| cell(c.0.as_deref()))
                            .map_err(|e| SqlError::runner(format!("column {i}: {e}")))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(DBOutput::Rows { types, rows })
    }

    /// A statement with DataFusion's rendering: a DML count comes back as a one-cell row
    /// (DataFusion answers INSERT with a `count` column), a multi-line last cell as extra
    /// rows.
    async fn run_upstream(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SqlError> {
        let client = self.client().await?;
        let statement = client.prepare(sql).await.map_err(sql_error)?;
        if statement.columns().is_empty() {
            let count = client.execute(&statement, &[]).await.map_err(sql_error)?;
            let first = sql.split_whitespace().next().unwrap_or("");
            let dml = ["insert", "update", "delete"]
                .iter()
                .any(|k| first.eq_ignore_ascii_case(k));
            return Ok(if dml {
                DBOutput::Rows {
                    types: vec![DefaultColumnType::Integer],
                    rows: vec![vec![count.to_string()]],
                }
            } else {
                DBOutput::StatementComplete(count)
            });
        }
        let types = statement
            .columns()
            .iter()
            .map(|c| pg_column_type(c.type_()))
            .collect();
        let mut rows = Vec::new();
        for row in client.query(&statement, &[]).await.map_err(sql_error)? {
            let cells = (0..row.len())
                .map(|i| {
                    row.try_get::<_, DfCell>(i)
                        .map(|c| c.0)
                        .map_err(|e| SqlError::runner(format!("column {i}: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            rows.extend(expand_row(cells));
        }
        Ok(DBOutput::Rows { types, rows })
    }
}

/// A result value decoded from PostgreSQL's binary format into the text psql prints.
struct PgCell(Option<String>);

/// Days and microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
const PG_EPOCH_DAYS: i32 = 10_957;
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

type DecodeError = Box<dyn std::error::Error + Sync + Send>;

fn fixed<const N: usize>(raw: &[u8]) -> Result<[u8; N], DecodeError> {
    raw.try_into()
        .map_err(|_| format!("expected {N} bytes, got {}", raw.len()).into())
}

/// Text of a one-value Arrow array, through the same renderer the in-process target uses.
fn via_arrow(array: ArrayRef) -> Result<String, DecodeError> {
    Ok(pg_text(array.as_ref())?.pop().flatten().unwrap_or_default())
}

/// interval_send's microseconds, days and months as a one-value Arrow interval.
pub(crate) fn interval_array(raw: &[u8]) -> Result<IntervalMonthDayNanoArray, DecodeError> {
    let value = PgInterval::from_binary(raw)
        .ok_or("an interval is 16 bytes")?
        .to_month_day_nano()
        .ok_or("interval out of range")?;
    Ok(IntervalMonthDayNanoArray::from(vec![value]))
}

impl<'a> FromSql<'a> for PgCell {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, DecodeError> {
        let text = match *ty {
            Type::BOOL => if fixed::<1>(raw)?[0] != 0 { "t" } else { "f" }.to_string(),
            Type::INT2 => i16::from_be_bytes(fixed(raw)?).to_string(),
            Type::INT4 => i32::from_be_bytes(fixed(raw)?).to_string(),
            Type::OID => u32::from_be_bytes(fixed(raw)?).to_string(),
            // int2vector / oidvector print their elements between spaces.
            Type::INT2_VECTOR | Type::OID_VECTOR => {
                let array = arrays::decode(raw)?;
                array
                    .items
                    .iter()
                    .map(|item| match item {
                        Some(bytes) => {
                            PgCell::from_sql(&array.element, bytes).map(|c| c.0.unwrap_or_default())
                        }
                        None => Ok(String::new()),
                    })
                    .collect::<Result<Vec<_>, _>>()?
                    .join(" ")
            }
            Type::INT8 => i64::from_be_bytes(fixed(raw)?).to_string(),
            Type::FLOAT4 => via_arrow(Arc::new(Float32Array::from(vec![f32::from_be_bytes(
                fixed(raw)?,
            )])))?,
            Type::FLOAT8 => via_arrow(Arc::new(Float64Array::from(vec![f64::from_be_bytes(
                fixed(raw)?,
            )])))?,
            Type::NUMERIC => numeric_from_binary(raw)?,
            Type::BYTEA => {
                let mut s = String::from("\\x");
                for b in raw {
                    s.push_str(&format!("{b:02x}"));
                }
                s
            }
            Type::DATE => via_arrow(Arc::new(Date32Array::from(vec![
                i32::from_be_bytes(fixed(raw)?) + PG_EPOCH_DAYS,
            ])))?,
            Type::TIMESTAMP => via_arrow(Arc::new(TimestampMicrosecondArray::from(vec![
                i64::from_be_bytes(fixed(raw)?) + PG_EPOCH_MICROS,
            ])))?,
            Type::TIMESTAMPTZ => via_arrow(Arc::new(
                TimestampMicrosecondArray::from(vec![
                    i64::from_be_bytes(fixed(raw)?) + PG_EPOCH_MICROS,
                ])
                .with_timezone("+00:00"),
            ))?,
            Type::TIME => via_arrow(Arc::new(Time64MicrosecondArray::from(vec![
                i64::from_be_bytes(fixed(raw)?),
            ])))?,
            Type::INTERVAL => via_arrow(Arc::new(interval_array(raw)?))?,
            _ if matches!(ty.kind(), Kind::Array(_)) => {
                let array = arrays::decode(raw)?;
                let items = array
                    .items
                    .iter()
                    .map(|item| match item {
                        Some(bytes) => PgCell::from_sql(&array.element, bytes).map(|c| c.0),
                        None => Ok(None),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                array_literal(&array.dims, &items)
            }
            // jsonb's binary form: a version byte, then the text.
            Type::JSONB => match raw.split_first() {
                Some((1, text)) => std::str::from_utf8(text)?.to_string(),
                _ => return Err("jsonb without version 1".into()),
            },
            // Text types, and every other type the server sends as text.
            _ => std::str::from_utf8(raw)?.to_string(),
        };
        Ok(PgCell(Some(text)))
    }

    fn from_sql_null(_: &Type) -> Result<Self, DecodeError> {
        Ok(PgCell(None))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}
