//! Arrow values on the wire: the PostgreSQL type each column is announced as, each
//! value in text or binary format, and Bind parameters back into Arrow scalars.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use pgwire::api::portal::Format;
use pgwire::api::results::{FieldFormat, FieldInfo};
use pgwire::api::Type;
use pgwire::messages::data::DataRow;
use postgres_types::Kind;
use wasmudf_engine::datafusion::arrow::array::{Array, ArrayRef, AsArray};
use wasmudf_engine::datafusion::arrow::compute::cast;
use wasmudf_engine::datafusion::arrow::datatypes::{
    DataType, Date32Type, Field, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    IntervalUnit, Schema, TimeUnit, TimestampMicrosecondType,
};
use wasmudf_engine::datafusion::arrow::record_batch::RecordBatch;
use wasmudf_engine::datafusion::common::ScalarValue;
use wasmudf_engine::datafusion::error::{DataFusionError, Result as DfResult};
use wasmudf_engine::{
    array_from_text, bytea_from_text, canonical_datetime, check_datetime_range,
    numeric_from_binary, numeric_to_binary, pg_column_origin, pg_intervals, pg_text, pg_text_in,
    pg_times, pg_type_oid, pg_type_oid_of, pg_vector_text, DatetimeKind, Error, PgInterval,
    TextFormat,
};

/// Days and microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
const PG_EPOCH_DAYS: i32 = 10_957;
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// The PostgreSQL type a column of `dt` is sent as.
pub fn pg_type(dt: &DataType) -> Type {
    Type::from_oid(pg_type_oid_of(dt)).unwrap_or(Type::TEXT)
}

/// The PostgreSQL type of a result column: its Arrow type's, or the one its
/// metadata names (`json`, `jsonb`).
pub fn pg_field_type(field: &Field) -> Type {
    Type::from_oid(pg_type_oid(field)).unwrap_or(Type::TEXT)
}

/// The element type of PostgreSQL array type `ty`, if it is one.
fn element_of(ty: &Type) -> Option<&Type> {
    match ty.kind() {
        Kind::Array(element) => Some(element),
        _ => None,
    }
}

/// The Arrow type a parameter of PostgreSQL type `ty` arrives as.
pub fn arrow_type(ty: &Type) -> Option<DataType> {
    Some(match *ty {
        Type::BOOL => DataType::Boolean,
        Type::INT2 => DataType::Int16,
        Type::INT4 => DataType::Int32,
        Type::INT8 => DataType::Int64,
        Type::FLOAT4 => DataType::Float32,
        Type::FLOAT8 => DataType::Float64,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::JSON | Type::JSONB => {
            DataType::Utf8
        }
        Type::BYTEA => DataType::Binary,
        Type::DATE => DataType::Date32,
        Type::TIMESTAMP => DataType::Timestamp(TimeUnit::Microsecond, None),
        Type::TIMESTAMPTZ => DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
        Type::TIME => DataType::Time64(TimeUnit::Microsecond),
        Type::INTERVAL => DataType::Interval(IntervalUnit::MonthDayNano),
        Type::NUMERIC => DataType::Decimal128(38, 10),
        // `"char"` (pg_class.relkind) is text here.
        Type::CHAR => DataType::Utf8,
        _ => match element_of(ty) {
            Some(element) => {
                DataType::List(Arc::new(Field::new_list_field(arrow_type(element)?, true)))
            }
            None => return None,
        },
    })
}

/// RowDescription fields for `schema`, each in the format the client asked for.
pub fn fields(schema: &Schema, format: &Format) -> Arc<Vec<FieldInfo>> {
    Arc::new(
        schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let origin = pg_column_origin(f);
                FieldInfo::new(
                    f.name().clone(),
                    origin.map(|o| o.0),
                    origin.map(|o| o.1),
                    pg_field_type(f),
                    format.format_for(i),
                )
            })
            .collect(),
    )
}

/// Encodes every row of `batch` as DataRow messages in the fields' formats.
pub fn encode_batch(
    batch: &RecordBatch,
    fields: &[FieldInfo],
    text: &TextFormat,
) -> DfResult<Vec<DataRow>> {
    let columns: Vec<Vec<Option<Vec<u8>>>> = batch
        .columns()
        .iter()
        .zip(fields)
        .map(|(column, field)| match field.format() {
            FieldFormat::Text
                if matches!(*field.datatype(), Type::OID_VECTOR | Type::INT2_VECTOR) =>
            {
                Ok(pg_vector_text(column.as_ref())?
                    .into_iter()
                    .map(|v| v.map(String::into_bytes))
                    .collect())
            }
            FieldFormat::Text => Ok(pg_text_in(column.as_ref(), text)?
                .into_iter()
                .map(|v| v.map(String::into_bytes))
                .collect()),
            FieldFormat::Binary => binary_column(column, field.datatype()),
        })
        .collect::<DfResult<_>>()?;
    let field_count = i16::try_from(fields.len())
        .map_err(|_| DataFusionError::Execution("too many result columns".into()))?;
    Ok((0..batch.num_rows())
        .map(|row| {
            let mut data = BytesMut::new();
            for column in &columns {
                match &column[row] {
                    None => data.put_i32(-1),
                    Some(bytes) => {
                        data.put_i32(bytes.len() as i32);
                        data.put_slice(bytes);
                    }
                }
            }
            DataRow::new(data, field_count)
        })
        .collect())
}

/// PostgreSQL's binary format of every value of `column`, sent as `ty`.
fn binary_column(column: &ArrayRef, ty: &Type) -> DfResult<Vec<Option<Vec<u8>>>> {
    // Logical nulls: a Null-typed column (`SELECT NULL`) has no validity buffer.
    let nulls = column.logical_nulls();
    let valid = |i: usize| nulls.as_ref().is_none_or(|n| n.is_valid(i));
    let each = |f: &dyn Fn(usize) -> Vec<u8>| -> Vec<Option<Vec<u8>>> {
        (0..column.len()).map(|i| valid(i).then(|| f(i))).collect()
    };
    Ok(match *ty {
        Type::BOOL => {
            let a = column.as_boolean();
            each(&|i| vec![u8::from(a.value(i))])
        }
        Type::INT2 => {
            let a = cast(column, &DataType::Int16)?;
            let a = a.as_primitive::<Int16Type>();
            each(&|i| a.value(i).to_be_bytes().to_vec())
        }
        // An oid (an oidvector's element) has int4's four bytes.
        Type::INT4 | Type::OID => {
            let a = cast(column, &DataType::Int32)?;
            let a = a.as_primitive::<Int32Type>();
            each(&|i| a.value(i).to_be_bytes().to_vec())
        }
        Type::INT8 => {
            let a = cast(column, &DataType::Int64)?;
            let a = a.as_primitive::<Int64Type>();
            each(&|i| a.value(i).to_be_bytes().to_vec())
        }
        Type::FLOAT4 => {
            let a = cast(column, &DataType::Float32)?;
            let a = a.as_primitive::<Float32Type>();
            each(&|i| a.value(i).to_be_bytes().to_vec())
        }
        Type::FLOAT8 => {
            let a = column.as_primitive::<Float64Type>();
            each(&|i| a.value(i).to_be_bytes().to_vec())
        }
        Type::BYTEA => {
            let a = cast(column, &DataType::LargeBinary)?;
            let a = a.as_binary::<i64>();
            each(&|i| a.value(i).to_vec())
        }
        Type::DATE => {
            check_datetime_range(column.as_ref())?;
            let a = cast(column, &DataType::Date32)?;
            let a = a.as_primitive::<Date32Type>();
            each(&|i| (a.value(i) - PG_EPOCH_DAYS).to_be_bytes().to_vec())
        }
        Type::TIMESTAMP | Type::TIMESTAMPTZ => {
            check_datetime_range(column.as_ref())?;
            let zone = match column.data_type() {
                DataType::Timestamp(_, tz) => tz.clone(),
                _ => None,
            };
            let a = cast(column, &DataType::Timestamp(TimeUnit::Microsecond, zone))?;
            let a = a.as_primitive::<TimestampMicrosecondType>();
            each(&|i| (a.value(i) - PG_EPOCH_MICROS).to_be_bytes().to_vec())
        }
        Type::TIME => pg_times(column.as_ref())?
            .into_iter()
            .map(|v| v.map(|micros| micros.to_be_bytes().to_vec()))
            .collect(),
        // interval_send: microseconds, days, months.
        Type::INTERVAL => pg_intervals(column.as_ref())?
            .into_iter()
            .map(|v| v.map(|v| v.to_binary().to_vec()))
            .collect(),
        Type::NUMERIC => pg_text(column.as_ref())?
            .into_iter()
            .map(|v| v.map(|text| numeric_to_binary(&text)))
            .collect(),
        // jsonb's binary form: a version byte (1), then the text.
        Type::JSONB => pg_text(column.as_ref())?
            .into_iter()
            .map(|v| {
                v.map(|text| {
                    let mut bytes = Vec::with_capacity(text.len() + 1);
                    bytes.push(1);
                    bytes.extend_from_slice(text.as_bytes());
                    bytes
                })
            })
            .collect(),
        _ if element_of(ty).is_some() => binary_arrays(column, ty)?,
        // TEXT, and every type sent as text: the binary format of text is its UTF-8.
        _ => pg_text(column.as_ref())?
            .into_iter()
            .map(|v| v.map(String::into_bytes))
            .collect(),
    })
}

/// `dt` with every list level a `List` (not Large or FixedSize), to walk one way.
fn plain_lists(dt: &DataType) -> DataType {
    match dt {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            DataType::List(Arc::new(Field::new_list_field(
                plain_lists(f.data_type()),
                true,
            )))
        }
        other => other.clone(),
    }
}

/// PostgreSQL's binary array format (`array_send`) of every list in `column`: the
/// number of dimensions (0 when empty), whether any element is NULL, the element OID,
/// each dimension's length and lower bound (1), then each element as its length (-1
/// for NULL) and its binary form. A list of lists is a multidimensional array, which
/// must be rectangular with no NULL sub-array, as PostgreSQL's are (2202E otherwise).
fn binary_arrays(column: &ArrayRef, ty: &Type) -> DfResult<Vec<Option<Vec<u8>>>> {
    let element_type = element_of(ty)
        .cloned()
        .ok_or_else(|| DataFusionError::Internal(format!("{ty} is not an array type")))?;
    let column = cast(column, &plain_lists(column.data_type()))?;
    // The list levels, outermost first, and the leaf elements' binary forms.
    let mut levels = Vec::new();
    let mut leaf: ArrayRef = column.clone();
    while let DataType::List(_) = leaf.data_type() {
        let list = leaf.as_list::<i32>().clone();
        leaf = list.values().clone();
        levels.push(list);
    }
    let elements = binary_column(&leaf, &element_type)?;
    let nulls = column.logical_nulls();
    (0..column.len())
        .map(|row| {
            if nulls.as_ref().is_some_and(|n| n.is_null(row)) {
                return Ok(None);
            }
            let mut dims = Vec::with_capacity(levels.len());
            let (mut start, mut end) = (row, row + 1);
            for (depth, list) in levels.iter().enumerate() {
                let offsets = list.value_offsets();
                let mut length = None;
                for entry in start..end {
                    if depth > 0 && list.is_null(entry) {
                        return Err(ragged("a NULL sub-array"));
                    }
                    let n = (offsets[entry + 1] - offsets[entry]) as usize;
                    if *length.get_or_insert(n) != n {
                        return Err(ragged("sub-arrays of different lengths"));
                    }
                }
                dims.push(length.unwrap_or(0));
                (start, end) = (offsets[start] as usize, offsets[end] as usize);
            }
            let items = &elements[start..end];
            let mut out = BytesMut::new();
            let empty = items.is_empty();
            out.put_i32(if empty { 0 } else { dims.len() as i32 });
            out.put_i32(i32::from(items.iter().any(Option::is_none)));
            out.put_u32(element_type.oid());
            if !empty {
                for dim in &dims {
                    out.put_i32(*dim as i32);
                    out.put_i32(1);
                }
            }
            for item in items {
                match item {
                    None => out.put_i32(-1),
                    Some(bytes) => {
                        out.put_i32(bytes.len() as i32);
                        out.put_slice(bytes);
                    }
                }
            }
            Ok(Some(out.to_vec()))
        })
        .collect()
}

/// A list of lists that no PostgreSQL array can hold.
fn ragged(what: &str) -> DataFusionError {
    DataFusionError::External(Box::new(Error::InvalidArray(format!(
        "multidimensional arrays must have array expressions with matching dimensions \
         (this one has {what})"
    ))))
}

/// A Bind parameter as an Arrow scalar: decoded as the PostgreSQL type it was sent
/// as, then cast to the type the statement expects there (if it determines one).
pub fn decode_param(
    raw: Option<&Bytes>,
    format: FieldFormat,
    sent_as: &Type,
    expected: Option<&DataType>,
) -> Result<ScalarValue, String> {
    let arrow = expected.cloned().or_else(|| arrow_type(sent_as));
    let Some(raw) = raw else {
        return Ok(match &arrow {
            Some(dt) => ScalarValue::try_from(dt).unwrap_or(ScalarValue::Null),
            None => ScalarValue::Null,
        });
    };
    if let Some(DataType::List(element) | DataType::LargeList(element)) = &arrow {
        let value = array_param(raw, format, sent_as, element.data_type())?;
        return match arrow {
            Some(dt) if dt != value.data_type() => value
                .cast_to(&dt)
                .map_err(|e| format!("invalid input for type {}: {e}", sent_as.name())),
            _ => Ok(value),
        };
    }
    let bytea = matches!(
        arrow,
        Some(DataType::Binary | DataType::LargeBinary | DataType::BinaryView)
    );
    let value = match format {
        // bytea's text input is hex (`\x00ff`) or the escape format, not the bytes of
        // the text.
        FieldFormat::Text if bytea => ScalarValue::Binary(Some(bytea_from_text(
            std::str::from_utf8(raw).map_err(|_| "parameter is not valid UTF-8".to_string())?,
        )?)),
        FieldFormat::Text => {
            let text =
                std::str::from_utf8(raw).map_err(|_| "parameter is not valid UTF-8".to_string())?;
            // PostgreSQL's ISO date/time forms Arrow's cast does not read (pgjdbc's
            // setDate sends `2024-02-29 +00`).
            let kind = arrow.as_ref().and_then(DatetimeKind::of);
            ScalarValue::Utf8(Some(
                kind.and_then(|k| canonical_datetime(text, k))
                    .unwrap_or_else(|| text.to_string()),
            ))
        }
        FieldFormat::Binary => binary_param(raw, sent_as)?,
    };
    match arrow {
        Some(dt) if dt != value.data_type() => value
            .cast_to(&dt)
            .map_err(|e| format!("invalid input for type {}: {e}", sent_as.name())),
        _ => Ok(value),
    }
}

/// An array parameter (`relkind = ANY($1)` with a `text[]`) as a list of `element`:
/// from its text form (`{r,v}`) or PostgreSQL's binary array format (one dimension).
fn array_param(
    raw: &[u8],
    format: FieldFormat,
    sent_as: &Type,
    element: &DataType,
) -> Result<ScalarValue, String> {
    let element_sent_as = element_of(sent_as).cloned().unwrap_or(Type::TEXT);
    let values: Vec<ScalarValue> = match format {
        FieldFormat::Text => {
            let text =
                std::str::from_utf8(raw).map_err(|_| "parameter is not valid UTF-8".to_string())?;
            array_from_text(text)?
                .into_iter()
                .map(|item| {
                    let bytes = item.map(|t| Bytes::from(t.into_bytes()));
                    decode_param(
                        bytes.as_ref(),
                        FieldFormat::Text,
                        &element_sent_as,
                        Some(element),
                    )
                })
                .collect::<Result<_, _>>()?
        }
        FieldFormat::Binary => {
            let mut input = raw;
            let mut int = |what: &str| take_i32(&mut input, what);
            let dimensions = int("dimensions")?;
            let _has_nulls = int("null flag")?;
            let oid = int("element type")? as u32;
            let element_sent_as = Type::from_oid(oid).unwrap_or(element_sent_as);
            let length = match dimensions {
                0 => 0,
                1 => {
                    let length = int("length")?;
                    let _lower_bound = int("lower bound")?;
                    usize::try_from(length)
                        .map_err(|_| "binary array parameter has a negative length".to_string())?
                }
                _ => return Err("multidimensional array parameters are not supported".into()),
            };
            let mut values = Vec::with_capacity(length.min(raw.len() / 4));
            for _ in 0..length {
                let size = take_i32(&mut input, "element length")?;
                let bytes = if size < 0 {
                    None
                } else {
                    let size = size as usize;
                    if input.len() < size {
                        return Err("binary array parameter ends inside an element".into());
                    }
                    let (item, rest) = input.split_at(size);
                    input = rest;
                    Some(Bytes::copy_from_slice(item))
                };
                values.push(decode_param(
                    bytes.as_ref(),
                    FieldFormat::Binary,
                    &element_sent_as,
                    Some(element),
                )?);
            }
            if !input.is_empty() {
                return Err("binary array parameter has bytes after its last element".into());
            }
            values
        }
    };
    Ok(ScalarValue::List(ScalarValue::new_list_nullable(
        &values, element,
    )))
}

/// The next big-endian int32 of a binary parameter.
fn take_i32(input: &mut &[u8], what: &str) -> Result<i32, String> {
    let (head, rest) = input
        .split_first_chunk::<4>()
        .ok_or_else(|| format!("binary array parameter ends before its {what}"))?;
    *input = rest;
    Ok(i32::from_be_bytes(*head))
}

fn binary_param(raw: &[u8], ty: &Type) -> Result<ScalarValue, String> {
    fn fixed<const N: usize>(raw: &[u8], ty: &Type) -> Result<[u8; N], String> {
        raw.try_into()
            .map_err(|_| format!("binary {} parameter must be {N} bytes", ty.name()))
    }
    Ok(match *ty {
        Type::BOOL => ScalarValue::Boolean(Some(fixed::<1>(raw, ty)?[0] != 0)),
        Type::INT2 => ScalarValue::Int16(Some(i16::from_be_bytes(fixed(raw, ty)?))),
        Type::INT4 => ScalarValue::Int32(Some(i32::from_be_bytes(fixed(raw, ty)?))),
        Type::INT8 => ScalarValue::Int64(Some(i64::from_be_bytes(fixed(raw, ty)?))),
        Type::FLOAT4 => ScalarValue::Float32(Some(f32::from_be_bytes(fixed(raw, ty)?))),
        Type::FLOAT8 => ScalarValue::Float64(Some(f64::from_be_bytes(fixed(raw, ty)?))),
        Type::BYTEA => ScalarValue::Binary(Some(raw.to_vec())),
        Type::DATE => {
            ScalarValue::Date32(Some(i32::from_be_bytes(fixed(raw, ty)?) + PG_EPOCH_DAYS))
        }
        Type::TIMESTAMP => ScalarValue::TimestampMicrosecond(
            Some(i64::from_be_bytes(fixed(raw, ty)?) + PG_EPOCH_MICROS),
            None,
        ),
        Type::TIMESTAMPTZ => ScalarValue::TimestampMicrosecond(
            Some(i64::from_be_bytes(fixed(raw, ty)?) + PG_EPOCH_MICROS),
            Some("+00:00".into()),
        ),
        Type::TIME => ScalarValue::Time64Microsecond(Some(i64::from_be_bytes(fixed(raw, ty)?))),
        Type::INTERVAL => ScalarValue::IntervalMonthDayNano(Some(
            PgInterval::from_binary(raw)
                .ok_or("binary interval parameter must be 16 bytes")?
                .to_month_day_nano()
                .ok_or("binary interval parameter is out of range")?,
        )),
        Type::NUMERIC => ScalarValue::Utf8(Some(numeric_from_binary(raw)?)),
        Type::JSONB => match raw.split_first() {
            Some((1, text)) => ScalarValue::Utf8(Some(
                std::str::from_utf8(text)
                    .map_err(|_| "parameter is not valid UTF-8".to_string())?
                    .to_string(),
            )),
            _ => return Err("binary jsonb parameter must start with version 1".into()),
        },
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN | Type::JSON => {
            ScalarValue::Utf8(Some(
                std::str::from_utf8(raw)
                    .map_err(|_| "parameter is not valid UTF-8".to_string())?
                    .to_string(),
            ))
        }
        _ => {
            return Err(format!(
                "parameters of type {} are not supported",
                ty.name()
            ))
        }
    })
}
