//! The Rust types a UDF can take and return, and their SQL types.

use std::fmt::Display;
use std::ops::{Index, Range};

use crate::column::{bit, BoolBuilder, OutputBuilder, VarBuilder, WordBuilder};
use crate::{error, Buffer, Column, DataType, DecimalType, TimeUnit, TimestampType, UdfError};

/// A Rust type with a SQL (Arrow) type.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no SQL type in wasmudf",
    label = "not a type a wasmudf function can take or return",
    note = "supported: bool, i8, i16, i32, i64, u8, u16, u32, u64, f32, f64, Decimal<P, S>, Date32, TimestampMicros, TimestampNanos, TimestampTzMicros, TimestampTzNanos, &str and String (text), &[u8] and Vec<u8> (bytea); wrap one in Option<...> to see nulls"
)]
pub trait SqlType {
    /// The column type on the wire.
    fn data_type() -> DataType;
}

/// A type an argument column can be read as.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an argument of a wasmudf function",
    label = "unsupported argument type",
    note = "arguments may be: bool, i8, i16, i32, i64, u8, u16, u32, u64, f32, f64, Decimal<P, S>, Date32, TimestampMicros, TimestampNanos, TimestampTzMicros, TimestampTzNanos, &str (text), &[u8] (bytea), or Option<...> of one of them to see nulls"
)]
pub trait ArgType<'a>: SqlType {
    /// What one row reads as.
    type Item;
    /// The column's value buffers, borrowed.
    #[doc(hidden)]
    type Values;
    #[doc(hidden)]
    fn values(col: &'a Column, len: usize) -> Result<Self::Values, UdfError>;
    #[doc(hidden)]
    fn get(values: &Self::Values, i: usize) -> Self::Item;
    /// Every row in order, for a full (not broadcast) column of `len` rows.
    #[doc(hidden)]
    fn iter(values: &Self::Values, len: usize) -> impl Iterator<Item = Self::Item> + '_;
}

/// A type a result column can be built from.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be returned by a wasmudf function",
    label = "unsupported result type",
    note = "results may be: bool, i8, i16, i32, i64, u8, u16, u32, u64, f32, f64, Decimal<P, S>, Date32, TimestampMicros, TimestampNanos, TimestampTzMicros, TimestampTzNanos, String (text), Vec<u8> (bytea)"
)]
pub trait ReturnType: SqlType + Sized + Default {
    /// Its column builder.
    #[doc(hidden)]
    type Builder: OutputBuilder<Self>;
}

/// What a scalar function may return: `T`, `Option<T>`, `Result<T, E>` or
/// `Result<Option<T>, E>` for a [`ReturnType`] `T` and `E: Display`.
#[diagnostic::on_unimplemented(
    message = "a wasmudf scalar function cannot return `{Self}`",
    label = "unsupported return type",
    note = "return T, Option<T>, Result<T, E> or Result<Option<T>, E>, where E: Display and T is one of: bool, i8, i16, i32, i64, u8, u16, u32, u64, f32, f64, Decimal<P, S>, Date32, TimestampMicros, TimestampNanos, TimestampTzMicros, TimestampTzNanos, String, Vec<u8>"
)]
pub trait IntoOutput {
    /// The column type.
    type Value: ReturnType;
    /// True for `T` and `Result<T, E>` (never null): such functions get a vectorizable
    /// fast path when no argument has nulls.
    #[doc(hidden)]
    const NEVER_NULL: bool = false;
    /// `Ok(None)` is a null; `Err` fails the query with the message.
    fn into_output(self) -> Result<Option<Self::Value>, String>;
    /// For `NEVER_NULL` outputs: the value, or `None` for an error (whose message the
    /// slow path then reports); never called otherwise.
    #[doc(hidden)]
    fn into_value(self) -> Option<Self::Value>;
}

macro_rules! into_output {
    ($([$($g:tt)*] $t:ty),* $(,)?) => {$(
        impl<$($g)*> IntoOutput for $t {
            type Value = $t;
            const NEVER_NULL: bool = true;
            #[inline(always)]
            fn into_output(self) -> Result<Option<$t>, String> { Ok(Some(self)) }
            #[inline(always)]
            fn into_value(self) -> Option<$t> { Some(self) }
        }
        impl<$($g)*> IntoOutput for Option<$t> {
            type Value = $t;
            #[inline(always)]
            fn into_output(self) -> Result<Option<$t>, String> { Ok(self) }
            fn into_value(self) -> Option<$t> { unreachable!("nullable output") }
        }
        impl<E: Display, $($g)*> IntoOutput for Result<$t, E> {
            type Value = $t;
            const NEVER_NULL: bool = true;
            #[inline(always)]
            fn into_output(self) -> Result<Option<$t>, String> {
                self.map(Some).map_err(|e| e.to_string())
            }
            #[inline(always)]
            fn into_value(self) -> Option<$t> { self.ok() }
        }
        impl<E: Display, $($g)*> IntoOutput for Result<Option<$t>, E> {
            type Value = $t;
            #[inline(always)]
            fn into_output(self) -> Result<Option<$t>, String> {
                self.map_err(|e| e.to_string())
            }
            fn into_value(self) -> Option<$t> { unreachable!("nullable output") }
        }
    )*};
}

fn wrong_buffer(expected: &str) -> UdfError {
    error(format!("argument column is not laid out as {expected}"))
}

macro_rules! fixed_width {
    ($($t:ty => $variant:ident($w:ty), $dt:expr, |$a:ident| $to_wire:expr, |$b:ident| $from_wire:expr;)*) => {$(
        impl SqlType for $t {
            fn data_type() -> DataType { $dt }
        }
        impl<'a> ArgType<'a> for $t {
            type Item = $t;
            type Values = &'a [$w];
            fn values(col: &'a Column, len: usize) -> Result<&'a [$w], UdfError> {
                match &col.values {
                    Buffer::$variant(v) if v.len() >= len => Ok(&v[..len]),
                    _ => Err(wrong_buffer(stringify!($t))),
                }
            }
            #[inline(always)]
            fn get(values: &&'a [$w], i: usize) -> $t {
                let $b = values[i];
                $from_wire
            }
            #[inline(always)]
            fn iter<'b>(values: &'b &'a [$w], len: usize) -> impl Iterator<Item = $t> + 'b {
                values[..len].iter().map(|&$b| $from_wire)
            }
        }
        impl OutputBuilder<$t> for WordBuilder<$w> {
            fn with_capacity(rows: usize) -> Self { WordBuilder::with_capacity(rows) }
            #[inline(always)]
            fn from_iter(values: impl Iterator<Item = $t>) -> Self {
                WordBuilder::from_words(values.map(|$a| $to_wire).collect())
            }
            #[inline(always)]
            fn push(&mut self, $a: $t) { self.push_word($to_wire) }
            fn push_placeholder(&mut self) { self.push_word(0) }
            fn finish(self) -> Result<(Vec<i32>, Buffer), UdfError> {
                Ok((Vec::new(), Buffer::$variant(self.into_words())))
            }
        }
        impl ReturnType for $t {
            type Builder = WordBuilder<$w>;
        }
        into_output!([] $t);
    )*};
}

/// Days since 1970-01-01 (SQL `date`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Date32(pub i32);

/// Microseconds since the epoch, no time zone (SQL `timestamp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TimestampMicros(pub i64);

/// Nanoseconds since the epoch, no time zone (SQL `timestamp(9)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TimestampNanos(pub i64);

/// Microseconds since the epoch, a UTC instant (SQL `timestamptz`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TimestampTzMicros(pub i64);

/// Nanoseconds since the epoch, a UTC instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TimestampTzNanos(pub i64);

/// SQL `numeric(P, S)`: the unscaled value (`123.45` in `numeric(10,2)` is `12345`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Decimal<const P: u8, const S: i8>(pub i128);

fn timestamp(unit: TimeUnit, tz: bool) -> DataType {
    DataType::Timestamp(TimestampType {
        unit,
        timezone: tz.then(|| "UTC".to_string()),
    })
}

fixed_width! {
    i8 => Bytes(u8), DataType::Int8, |v| v as u8, |w| w as i8;
    u8 => Bytes(u8), DataType::Uint8, |v| v, |w| w;
    i16 => U16s(u16), DataType::Int16, |v| v as u16, |w| w as i16;
    u16 => U16s(u16), DataType::Uint16, |v| v, |w| w;
    i32 => U32s(u32), DataType::Int32, |v| v as u32, |w| w as i32;
    u32 => U32s(u32), DataType::Uint32, |v| v, |w| w;
    f32 => U32s(u32), DataType::Float32, |v| v.to_bits(), |w| f32::from_bits(w);
    Date32 => U32s(u32), DataType::Date32, |v| v.0 as u32, |w| Date32(w as i32);
    i64 => U64s(u64), DataType::Int64, |v| v as u64, |w| w as i64;
    u64 => U64s(u64), DataType::Uint64, |v| v, |w| w;
    f64 => U64s(u64), DataType::Float64, |v| v.to_bits(), |w| f64::from_bits(w);
    TimestampMicros => U64s(u64), timestamp(TimeUnit::Microsecond, false), |v| v.0 as u64, |w| TimestampMicros(w as i64);
    TimestampNanos => U64s(u64), timestamp(TimeUnit::Nanosecond, false), |v| v.0 as u64, |w| TimestampNanos(w as i64);
    TimestampTzMicros => U64s(u64), timestamp(TimeUnit::Microsecond, true), |v| v.0 as u64, |w| TimestampTzMicros(w as i64);
    TimestampTzNanos => U64s(u64), timestamp(TimeUnit::Nanosecond, true), |v| v.0 as u64, |w| TimestampTzNanos(w as i64);
}

impl SqlType for bool {
    fn data_type() -> DataType {
        DataType::Boolean
    }
}

impl<'a> ArgType<'a> for bool {
    type Item = bool;
    type Values = &'a [u8];
    fn values(col: &'a Column, len: usize) -> Result<&'a [u8], UdfError> {
        match &col.values {
            Buffer::Bytes(v) if v.len() * 8 >= len => Ok(v),
            _ => Err(wrong_buffer("bool")),
        }
    }
    #[inline(always)]
    fn get(values: &&'a [u8], i: usize) -> bool {
        bit(values, i)
    }
    fn iter<'b>(values: &'b &'a [u8], len: usize) -> impl Iterator<Item = bool> + 'b {
        (0..len).map(move |i| bit(values, i))
    }
}

impl ReturnType for bool {
    type Builder = BoolBuilder;
}

into_output!([] bool);

impl<const P: u8, const S: i8> SqlType for Decimal<P, S> {
    fn data_type() -> DataType {
        DataType::Decimal128(DecimalType {
            precision: P,
            scale: S,
        })
    }
}

impl<'a, const P: u8, const S: i8> ArgType<'a> for Decimal<P, S> {
    type Item = Decimal<P, S>;
    type Values = &'a [u64];
    fn values(col: &'a Column, len: usize) -> Result<&'a [u64], UdfError> {
        match &col.values {
            Buffer::U64s(v) if v.len() >= 2 * len => Ok(&v[..2 * len]),
            _ => Err(wrong_buffer("decimal128")),
        }
    }
    #[inline(always)]
    fn get(values: &&'a [u64], i: usize) -> Self {
        let lo = values[2 * i] as u128;
        let hi = values[2 * i + 1] as u128;
        Decimal(((hi << 64) | lo) as i128)
    }
    fn iter<'b>(values: &'b &'a [u64], len: usize) -> impl Iterator<Item = Self> + 'b {
        values[..2 * len]
            .chunks_exact(2)
            .map(|w| Decimal((((w[1] as u128) << 64) | w[0] as u128) as i128))
    }
}

impl<const P: u8, const S: i8> OutputBuilder<Decimal<P, S>> for WordBuilder<u64> {
    fn with_capacity(rows: usize) -> Self {
        WordBuilder::with_capacity(2 * rows)
    }
    #[inline(always)]
    fn push(&mut self, value: Decimal<P, S>) {
        let v = value.0 as u128;
        self.push_word(v as u64);
        self.push_word((v >> 64) as u64);
    }
    fn push_placeholder(&mut self) {
        self.push_word(0);
        self.push_word(0);
    }
    fn finish(self) -> Result<(Vec<i32>, Buffer), UdfError> {
        Ok((Vec::new(), Buffer::U64s(self.into_words())))
    }
}

impl<const P: u8, const S: i8> ReturnType for Decimal<P, S> {
    type Builder = WordBuilder<u64>;
}

into_output!([const P: u8, const S: i8] Decimal<P, S>);

/// Checks offsets once per column so that reading a row cannot fail.
fn var_values(col: &Column, len: usize) -> Result<(&[i32], &[u8]), UdfError> {
    let Buffer::Bytes(data) = &col.values else {
        return Err(wrong_buffer("text or bytes"));
    };
    let offsets = col
        .offsets
        .get(..len + 1)
        .ok_or_else(|| wrong_buffer("offsets"))?;
    let mut prev = 0i32;
    for &o in offsets {
        if o < prev || o as usize > data.len() {
            return Err(error("argument offsets are not monotonic or out of bounds"));
        }
        prev = o;
    }
    Ok((offsets, data))
}

/// Row `i` of a text or bytes column (offsets were checked in `var_values`).
#[inline(always)]
fn var_get<'a, T: ?Sized + Index<Range<usize>, Output = T>>(
    values: &(&'a [i32], &'a T),
    i: usize,
) -> &'a T {
    let (offsets, data) = *values;
    &data[offsets[i] as usize..offsets[i + 1] as usize]
}

/// Every row of a text or bytes column.
fn var_iter<'a, 'b, T: ?Sized + Index<Range<usize>, Output = T>>(
    values: &'b (&'a [i32], &'a T),
    len: usize,
) -> impl Iterator<Item = &'a T> + 'b {
    let (offsets, data) = *values;
    offsets[..=len]
        .windows(2)
        .map(move |w| &data[w[0] as usize..w[1] as usize])
}

impl SqlType for &str {
    fn data_type() -> DataType {
        DataType::Utf8
    }
}

impl<'a> ArgType<'a> for &'a str {
    type Item = &'a str;
    type Values = (&'a [i32], &'a str);
    fn values(col: &'a Column, len: usize) -> Result<Self::Values, UdfError> {
        let (offsets, data) = var_values(col, len)?;
        let text = std::str::from_utf8(data).map_err(|_| error("argument is not valid UTF-8"))?;
        if !offsets.iter().all(|&o| text.is_char_boundary(o as usize)) {
            return Err(error("argument offsets split a UTF-8 character"));
        }
        Ok((offsets, text))
    }
    #[inline(always)]
    fn get(values: &Self::Values, i: usize) -> &'a str {
        var_get(values, i)
    }
    fn iter(values: &Self::Values, len: usize) -> impl Iterator<Item = &'a str> + '_ {
        var_iter(values, len)
    }
}

impl SqlType for &[u8] {
    fn data_type() -> DataType {
        DataType::Binary
    }
}

impl<'a> ArgType<'a> for &'a [u8] {
    type Item = &'a [u8];
    type Values = (&'a [i32], &'a [u8]);
    fn values(col: &'a Column, len: usize) -> Result<Self::Values, UdfError> {
        var_values(col, len)
    }
    #[inline(always)]
    fn get(values: &Self::Values, i: usize) -> &'a [u8] {
        var_get(values, i)
    }
    fn iter(values: &Self::Values, len: usize) -> impl Iterator<Item = &'a [u8]> + '_ {
        var_iter(values, len)
    }
}

impl SqlType for String {
    fn data_type() -> DataType {
        DataType::Utf8
    }
}

impl SqlType for Vec<u8> {
    fn data_type() -> DataType {
        DataType::Binary
    }
}

impl ReturnType for String {
    type Builder = VarBuilder<String>;
}

impl ReturnType for Vec<u8> {
    type Builder = VarBuilder<Vec<u8>>;
}

into_output!([] String, [] Vec<u8>);
