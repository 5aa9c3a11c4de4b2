//! Hostile: functions whose output lies about itself. The host must reject each one
//! with a clear error before DataFusion sees it.

use wasmudf::{batch, scalar, Buffer, Column, Date32, Decimal, TimestampMicros, UdfError};

fn rows_u32(rows: usize) -> u32 {
    rows as u32
}

/// Says it has one more row than the batch.
#[batch(params(i64), returns = i64)]
fn wrong_len(rows: usize, _args: &[Column]) -> Result<Column, UdfError> {
    Ok(Column {
        len: rows_u32(rows) + 1,
        validity: None,
        offsets: vec![],
        values: Buffer::U64s(vec![0; rows + 1]),
    })
}

/// Right row count, too few values.
#[batch(params(i64), returns = i64)]
fn short_values(rows: usize, _args: &[Column]) -> Result<Column, UdfError> {
    Ok(Column {
        len: rows_u32(rows),
        validity: None,
        offsets: vec![],
        values: Buffer::U64s(vec![0; rows / 2]),
    })
}

/// Declares bigint, returns 32-bit words.
#[batch(params(i64), returns = i64)]
fn wrong_type(rows: usize, _args: &[Column]) -> Result<Column, UdfError> {
    Ok(Column {
        len: rows_u32(rows),
        validity: None,
        offsets: vec![],
        values: Buffer::U32s(vec![0; rows]),
    })
}

/// Offsets that run past the data.
#[batch(params(i64), returns = String)]
fn bad_offsets(rows: usize, _args: &[Column]) -> Result<Column, UdfError> {
    Ok(Column {
        len: rows_u32(rows),
        validity: None,
        offsets: (0..=rows as i32).map(|i| i * 1000).collect(),
        values: Buffer::Bytes(b"tiny".to_vec()),
    })
}

/// Offsets that go backwards.
#[batch(params(i64), returns = String)]
fn backwards_offsets(rows: usize, _args: &[Column]) -> Result<Column, UdfError> {
    Ok(Column {
        len: rows_u32(rows),
        validity: None,
        offsets: (0..=rows as i32)
            .map(|i| if i == 0 { 0 } else { 4 - i })
            .collect(),
        values: Buffer::Bytes(b"abcd".to_vec()),
    })
}

/// Text that is not UTF-8.
#[batch(params(i64), returns = String)]
fn bad_utf8(rows: usize, _args: &[Column]) -> Result<Column, UdfError> {
    Ok(Column {
        len: rows_u32(rows),
        validity: None,
        offsets: (0..=rows as i32).map(|i| i * 2).collect(),
        values: Buffer::Bytes(vec![0xFF; rows * 2]),
    })
}

/// A validity bitmap too short for the rows.
#[batch(params(i64), returns = i64)]
fn short_validity(rows: usize, _args: &[Column]) -> Result<Column, UdfError> {
    Ok(Column {
        len: rows_u32(rows),
        validity: Some(vec![]),
        offsets: vec![],
        values: Buffer::U64s(vec![0; rows]),
    })
}

/// numeric(5,2) values that need more than 5 digits.
#[batch(params(i64), returns = Decimal<5, 2>)]
fn decimal_overflow(rows: usize, _args: &[Column]) -> Result<Column, UdfError> {
    let big: u128 = 10_000_000_000;
    Ok(Column {
        len: rows_u32(rows),
        validity: None,
        offsets: vec![],
        values: Buffer::U64s((0..rows).flat_map(|_| [big as u64, 0]).collect()),
    })
}

/// Refuses its input politely, naming a row.
#[batch(params(i64), returns = i64)]
fn refuse(rows: usize, _args: &[Column]) -> Result<Column, UdfError> {
    Err(UdfError {
        message: "input rejected by policy".into(),
        row: Some(rows.saturating_sub(1) as u32),
    })
}

/// A date no calendar has for every row but 0: i32::MIN days before 1970.
#[scalar]
fn date_from_nowhere(x: i64) -> Date32 {
    Date32(if x == 0 { 0 } else { i32::MIN })
}

/// A timestamp past every calendar for every row but 0: i64::MAX microseconds.
#[scalar]
fn timestamp_from_nowhere(x: i64) -> TimestampMicros {
    TimestampMicros(if x == 0 { 0 } else { i64::MAX })
}

wasmudf::export!(
    date_from_nowhere,
    timestamp_from_nowhere,
    wrong_len,
    short_values,
    wrong_type,
    bad_offsets,
    backwards_offsets,
    bad_utf8,
    short_validity,
    decimal_overflow,
    refuse
);
