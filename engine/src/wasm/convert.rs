//! Arrow arrays to WIT columns (borrowed, no copy) and guest columns back to Arrow
//! (validated before anything reaches DataFusion).

use datafusion::arrow::array::{make_array, Array, ArrayData, ArrayRef, Decimal128Array};
use datafusion::arrow::buffer::{BooleanBuffer, Buffer, NullBuffer};
use datafusion::arrow::datatypes::{DataType, Decimal128Type, DecimalType};

use crate::pg::datetime_range;
use crate::wasm::abi::{BufferOut, BufferRef, ColumnOut, ColumnRef};

/// Element width of a column's value buffer on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Width {
    /// Bit-packed booleans, bytes, or string data.
    Bytes,
    U16,
    U32,
    /// One u64 per value, or two for decimal128.
    U64,
}

fn wire_width(dt: &DataType) -> Option<Width> {
    Some(match dt {
        DataType::Boolean | DataType::Int8 | DataType::UInt8 => Width::Bytes,
        DataType::Utf8 | DataType::Binary => Width::Bytes,
        DataType::Int16 | DataType::UInt16 => Width::U16,
        DataType::Int32 | DataType::UInt32 | DataType::Float32 | DataType::Date32 => Width::U32,
        DataType::Int64
        | DataType::UInt64
        | DataType::Float64
        | DataType::Timestamp(_, _)
        | DataType::Decimal128(_, _) => Width::U64,
        _ => return None,
    })
}

/// One argument's buffers, sliced to offset 0 and aligned for their element type.
/// Cloning Arrow buffers only bumps reference counts; data is copied only when an
/// input is sliced at a non-byte bit offset, misaligned, or has non-zero-based offsets.
pub(crate) struct ArgColumn {
    len: u32,
    validity: Option<Buffer>,
    offsets: Option<Buffer>,
    values: Buffer,
    width: Width,
}

impl ArgColumn {
    /// Prepares `array` (already of its declared wire type) for lowering.
    pub(crate) fn new(array: &dyn Array) -> Result<Self, String> {
        let dt = array.data_type();
        let width =
            wire_width(dt).ok_or_else(|| format!("type {dt} cannot be passed to a guest"))?;
        let len = array.len();
        let wire_len = u32::try_from(len).map_err(|_| "batch too large".to_string())?;
        let data = array.to_data();
        let validity = data
            .nulls()
            .filter(|n| n.null_count() > 0)
            .map(|n| n.inner().sliced());
        let offset = data.offset();
        let (offsets, values) = match dt {
            DataType::Boolean => (
                None,
                BooleanBuffer::new(data.buffers()[0].clone(), offset, len).sliced(),
            ),
            DataType::Utf8 | DataType::Binary => {
                let raw = data.buffers()[0].slice_with_length(offset * 4, (len + 1) * 4);
                let raw = aligned(raw, 4);
                let offs: &[i32] = raw.typed_data();
                let (first, last) = (offs[0] as usize, offs[len] as usize);
                let bytes = data.buffers()[1].slice_with_length(first, last - first);
                let offsets = if first == 0 {
                    raw
                } else {
                    Buffer::from_iter(offs.iter().map(|o| o - first as i32))
                };
                (Some(offsets), bytes)
            }
            _ => {
                let size = dt
                    .primitive_width()
                    .ok_or_else(|| format!("type {dt} has no fixed width"))?;
                let values = data.buffers()[0].slice_with_length(offset * size, len * size);
                let align = match width {
                    Width::Bytes => 1,
                    Width::U16 => 2,
                    Width::U32 => 4,
                    Width::U64 => 8,
                };
                (None, aligned(values, align))
            }
        };
        Ok(ArgColumn {
            len: wire_len,
            validity,
            offsets,
            values,
            width,
        })
    }

    /// The borrowed WIT view of these buffers.
    pub(crate) fn as_wire(&self) -> ColumnRef<'_> {
        let values = match self.width {
            Width::Bytes => BufferRef::Bytes(self.values.as_slice()),
            Width::U16 => BufferRef::U16s(self.values.typed_data()),
            Width::U32 => BufferRef::U32s(self.values.typed_data()),
            Width::U64 => BufferRef::U64s(self.values.typed_data()),
        };
        ColumnRef {
            len: self.len,
            validity: self.validity.as_ref().map(|b| b.as_slice()),
            offsets: self.offsets.as_ref().map(|b| b.typed_data()).unwrap_or(&[]),
            values,
        }
    }
}

fn aligned(buf: Buffer, align: usize) -> Buffer {
    if (buf.as_ptr() as usize).is_multiple_of(align) {
        buf
    } else {
        Buffer::from_slice_ref(buf.as_slice())
    }
}

/// Turns a guest's result into an Arrow array of type `dt` with exactly `rows` rows,
/// or says precisely why it is not one. `host_nulls` (from strict null handling) are
/// merged into the result's validity.
pub(crate) fn output_array(
    out: ColumnOut,
    rows: usize,
    dt: &DataType,
    host_nulls: Option<&NullBuffer>,
) -> Result<ArrayRef, String> {
    if out.len as usize != rows {
        return Err(format!(
            "returned {} rows for a batch of {rows} rows",
            out.len
        ));
    }
    let width = wire_width(dt).ok_or_else(|| format!("type {dt} cannot be returned by a guest"))?;
    let guest_nulls = match out.validity {
        None => None,
        Some(bits) => {
            if bits.len() < rows.div_ceil(8) {
                return Err(format!(
                    "validity bitmap has {} bytes, {rows} rows need {}",
                    bits.len(),
                    rows.div_ceil(8)
                ));
            }
            Some(NullBuffer::new(BooleanBuffer::new(
                Buffer::from_vec(bits),
                0,
                rows,
            )))
        }
    };
    let nulls = NullBuffer::union(guest_nulls.as_ref(), host_nulls);
    let (got_width, values) = match out.values {
        BufferOut::Bytes(v) => (Width::Bytes, Buffer::from_vec(v)),
        BufferOut::U16s(v) => (Width::U16, Buffer::from_vec(v)),
        BufferOut::U32s(v) => (Width::U32, Buffer::from_vec(v)),
        BufferOut::U64s(v) => (Width::U64, Buffer::from_vec(v)),
    };
    if got_width != width {
        return Err(format!(
            "value buffer is {got_width:?}-wide but {dt} needs {width:?}"
        ));
    }
    let mut buffers = Vec::with_capacity(2);
    let variable = matches!(dt, DataType::Utf8 | DataType::Binary);
    if !variable && !out.offsets.is_empty() {
        return Err(format!("offsets given for {dt}, which has none"));
    }
    match dt {
        DataType::Utf8 | DataType::Binary => {
            if out.offsets.len() != rows + 1 {
                return Err(format!(
                    "{} offsets for {rows} rows (need {})",
                    out.offsets.len(),
                    rows + 1
                ));
            }
            buffers.push(Buffer::from_vec(out.offsets));
        }
        DataType::Boolean => {
            if values.len() < rows.div_ceil(8) {
                return Err(format!(
                    "boolean bitmap has {} bytes, {rows} rows need {}",
                    values.len(),
                    rows.div_ceil(8)
                ));
            }
        }
        _ => {
            let want = rows * dt.primitive_width().unwrap_or(1);
            if values.len() != want {
                return Err(format!(
                    "value buffer has {} bytes, {rows} rows of {dt} need {want}",
                    values.len()
                ));
            }
        }
    }
    buffers.push(values);
    // `build` runs Arrow's full validation: buffer sizes, offsets monotonic and in
    // bounds, UTF-8. `align_buffers` copies a buffer only if the allocator under-aligned it.
    let data = ArrayData::builder(dt.clone())
        .len(rows)
        .nulls(nulls)
        .buffers(buffers)
        .align_buffers(true)
        .build()
        .map_err(|e| e.to_string())?;
    let array = make_array(data);
    if let DataType::Decimal128(precision, _) = dt {
        check_decimal_precision(&array, *precision)?;
    }
    if let Some((row, kind)) = datetime_range::first_out_of_range(&array) {
        return Err(format!(
            "row {row}: {kind} outside the range a client can be given ({})",
            datetime_range::RANGE
        ));
    }
    Ok(array)
}

fn check_decimal_precision(array: &ArrayRef, precision: u8) -> Result<(), String> {
    let decimals = array
        .as_any()
        .downcast_ref::<Decimal128Array>()
        .ok_or("decimal output is not a decimal array")?;
    for (row, value) in decimals.iter().enumerate() {
        if let Some(v) = value {
            if !Decimal128Type::is_valid_decimal_precision(v, precision) {
                return Err(format!(
                    "row {row}: value {v} does not fit decimal precision {precision}"
                ));
            }
        }
    }
    Ok(())
}

/// Every type a guest may return (for the property tests and fuzz targets).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn returnable() -> Vec<DataType> {
    vec![
        DataType::Boolean,
        DataType::Int8,
        DataType::Int16,
        DataType::Int32,
        DataType::Int64,
        DataType::UInt8,
        DataType::UInt16,
        DataType::UInt32,
        DataType::UInt64,
        DataType::Float32,
        DataType::Float64,
        DataType::Utf8,
        DataType::Binary,
        DataType::Date32,
        DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Second, None),
        DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Millisecond, None),
        DataType::Timestamp(
            datafusion::arrow::datatypes::TimeUnit::Microsecond,
            Some("+00:00".into()),
        ),
        DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Nanosecond, None),
        DataType::Decimal128(5, 2),
        DataType::Decimal128(38, 10),
    ]
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn buffer() -> impl Strategy<Value = BufferOut> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..80).prop_map(BufferOut::Bytes),
            proptest::collection::vec(any::<u16>(), 0..40).prop_map(BufferOut::U16s),
            proptest::collection::vec(any::<u32>(), 0..20).prop_map(BufferOut::U32s),
            proptest::collection::vec(any::<u64>(), 0..20).prop_map(BufferOut::U64s),
        ]
    }

    fn column() -> impl Strategy<Value = ColumnOut> {
        (
            0u32..12,
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..3)),
            prop_oneof![
                Just(Vec::new()),
                proptest::collection::vec(-3i32..90, 0..14),
                proptest::collection::vec(any::<i32>(), 0..14),
            ],
            buffer(),
        )
            .prop_map(|(len, validity, offsets, values)| ColumnOut {
                len,
                validity,
                offsets,
                values,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Whatever a guest returns, for whatever declared type: an error or a valid
        /// array of exactly the batch's rows and the declared type, never a panic.
        #[test]
        fn guest_output_is_validated_not_trusted(
            out in column(),
            rows in 0usize..12,
            ty in proptest::sample::select(returnable()),
        ) {
            if let Ok(array) = output_array(out, rows, &ty, None) {
                prop_assert_eq!(array.len(), rows);
                prop_assert_eq!(array.data_type(), &ty);
                array.to_data().validate_full().map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert!(datetime_range::first_out_of_range(&array).is_none());
            }
        }
    }
}
