//! Entry points for the fuzz targets in `engine/fuzz` (cargo feature `fuzzing`): the
//! engine's checks of untrusted input, driven by raw bytes, without a component or a
//! server. Each one decodes its input into what a guest or a client could send, runs
//! the engine's check, and panics if the check let through something it must not.
//!
//! Top layer: may import every layer (it reaches into each one's checks).

use datafusion::arrow::array::Array;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use std::sync::Arc;

use crate::pg::copy::{parse as parse_copy, CopyFormat, CopyIn};
use crate::pg::datetime_range::first_out_of_range;
use crate::sql::statement::{parse as parse_sql, Family};
use crate::wasm::abi::{
    BufferOut, ColumnOut, DecimalType, TimeUnit, TimestampType, WitKind, WitNullHandling,
    WitSignature, WitType, WitVolatility,
};
use crate::wasm::convert::{output_array, returnable};
use crate::wasm::engine::{read_description, EngineConfig};

/// Reads values off the fuzzer's bytes; past the end, everything is zero.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u8(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().map_or((0, &[][..]), |(f, r)| (*f, r));
        self.0 = rest;
        first
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.0.len());
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        taken.to_vec()
    }

    fn i32(&mut self) -> i32 {
        i32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    fn text(&mut self, max: u8) -> String {
        let n = usize::from(self.u8() % max.max(1));
        String::from_utf8_lossy(&self.take(n)).into_owned()
    }
}

/// A guest's result column against a declared type: `output_array` must refuse it or
/// return exactly the batch's rows, of the declared type, valid to Arrow's full
/// validation, with every date and timestamp in range.
pub fn guest_output(data: &[u8]) {
    let mut input = Input(data);
    let types = returnable();
    let ty = types[usize::from(input.u8()) % types.len()].clone();
    let rows = usize::from(input.u8() % 16);
    let len = u32::from(input.u8() % 18);
    let validity = (input.u8() & 1 == 1).then(|| {
        let n = usize::from(input.u8() % 4);
        input.take(n)
    });
    let offsets: Vec<i32> = match input.u8() % 3 {
        0 => Vec::new(),
        1 => (0..input.u8() % 20)
            .map(|_| i32::from(input.u8()) - 3)
            .collect(),
        _ => (0..input.u8() % 20).map(|_| input.i32()).collect(),
    };
    let width = input.u8() % 4;
    let n = usize::from(input.u8());
    let bytes = input.take(n);
    let values = match width {
        0 => BufferOut::Bytes(bytes),
        1 => BufferOut::U16s(
            bytes
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect(),
        ),
        2 => BufferOut::U32s(
            bytes
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        _ => BufferOut::U64s(
            bytes
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
        ),
    };
    let out = ColumnOut {
        len,
        validity,
        offsets,
        values,
    };
    if let Ok(array) = output_array(out, rows, &ty, None) {
        assert_eq!(array.len(), rows);
        assert_eq!(array.data_type(), &ty);
        if let Err(e) = array.to_data().validate_full() {
            panic!("accepted an invalid {ty} array: {e}");
        }
        assert!(first_out_of_range(&array).is_none());
    }
}

fn wit_type(input: &mut Input) -> WitType {
    match input.u8() % 16 {
        0 => WitType::Boolean,
        1 => WitType::Int8,
        2 => WitType::Int16,
        3 => WitType::Int32,
        4 => WitType::Int64,
        5 => WitType::Uint8,
        6 => WitType::Uint16,
        7 => WitType::Uint32,
        8 => WitType::Uint64,
        9 => WitType::Float32,
        10 => WitType::Float64,
        11 => WitType::Utf8,
        12 => WitType::Binary,
        13 => WitType::Date32,
        14 => WitType::Timestamp(TimestampType {
            unit: match input.u8() % 4 {
                0 => TimeUnit::Second,
                1 => TimeUnit::Millisecond,
                2 => TimeUnit::Microsecond,
                _ => TimeUnit::Nanosecond,
            },
            timezone: (input.u8() & 1 == 1).then(|| input.text(16)),
        }),
        _ => WitType::Decimal128(DecimalType {
            precision: input.u8(),
            scale: input.u8() as i8,
        }),
    }
}

/// What a component's `describe` returns, against ceilings of 4 functions and 600
/// bytes: refused, or functions with valid, unique, printable names, within the ceilings.
pub fn description(data: &[u8]) {
    let mut input = Input(data);
    let raw: Vec<WitSignature> = (0..input.u8() % 8)
        .map(|_| WitSignature {
            name: input.text(80),
            kind: if input.u8() & 1 == 1 {
                WitKind::Aggregate
            } else {
                WitKind::Scalar
            },
            params: (0..input.u8() % 5).map(|_| wit_type(&mut input)).collect(),
            returns: wit_type(&mut input),
            volatility: match input.u8() % 3 {
                0 => WitVolatility::Immutable,
                1 => WitVolatility::Stable,
                _ => WitVolatility::Volatile,
            },
            null_handling: if input.u8() & 1 == 1 {
                WitNullHandling::Strict
            } else {
                WitNullHandling::CalledOnNull
            },
        })
        .collect();
    let config = EngineConfig {
        max_functions_per_component: 4,
        max_description_size: 600,
        ..EngineConfig::default()
    };
    if let Ok((functions, by_name)) = read_description(raw, &config) {
        assert!(!functions.is_empty() && functions.len() <= 4);
        assert_eq!(by_name.len(), functions.len());
        for f in &functions {
            assert!(!f.name.is_empty() && f.name.len() <= 63);
            assert!(!f.name.chars().any(char::is_control));
        }
    }
}

/// A COPY FROM STDIN upload (first byte: CSV or text, header or not) into columns of
/// every kind: rows, or a 22P02 that names the problem.
pub fn copy_upload(data: &[u8]) {
    let mut input = Input(data);
    let flags = input.u8();
    let format = if flags & 1 == 1 {
        CopyFormat {
            header: flags & 2 == 2,
            ..CopyFormat::csv()
        }
    } else {
        CopyFormat::text()
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("s", DataType::Utf8, true),
        Field::new("i", DataType::Int64, true),
        Field::new("b", DataType::Binary, true),
        Field::new("d", DataType::Date32, true),
        Field::new("f", DataType::Float64, true),
    ]));
    let columns = schema.fields().len();
    let copy = CopyIn {
        table: "t".into(),
        table_schema: schema,
        columns: (0..columns).collect(),
        format,
    };
    if let Err(e) = parse_copy(&copy, input.0) {
        assert_eq!(crate::error::sqlstate(&e), "22P02", "{e}");
    }
}

/// Any statement text (lossily UTF-8): parsed and classified, or refused.
pub fn statements(data: &[u8]) {
    let sql = String::from_utf8_lossy(data);
    if let Ok(statements) = parse_sql(&sql) {
        for s in &statements {
            let _ = Family::of(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// The fuzz targets' short versions, run in CI on random bytes.
        #[test]
        fn fuzz_targets_hold_on_random_input(data in proptest::collection::vec(any::<u8>(), 0..400)) {
            super::guest_output(&data);
            super::description(&data);
            super::copy_upload(&data);
            super::statements(&data);
        }
    }
}
