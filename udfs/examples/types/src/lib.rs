//! One identity function per supported type (strict and null-aware), for round-trip
//! tests, plus `calls()`: a volatile zero-argument function that counts its own rows in
//! guest memory, which shows whether guest state survives from one query to the next.

use std::sync::atomic::{AtomicI64, Ordering};

use wasmudf::{
    scalar, Date32, Decimal, TimestampMicros, TimestampNanos, TimestampTzMicros, TimestampTzNanos,
};

macro_rules! echo {
    ($($strict:ident, $nullable:ident: $t:ty => $out:ty, $conv:expr;)*) => {$(
        #[scalar]
        fn $strict(v: $t) -> $out {
            let conv: fn($t) -> $out = $conv;
            conv(v)
        }
        #[scalar]
        fn $nullable(v: Option<$t>) -> Option<$out> {
            let conv: fn($t) -> $out = $conv;
            v.map(conv)
        }
    )*};
}

echo! {
    echo_bool, echo_bool_n: bool => bool, |v| v;
    echo_i8, echo_i8_n: i8 => i8, |v| v;
    echo_i16, echo_i16_n: i16 => i16, |v| v;
    echo_i32, echo_i32_n: i32 => i32, |v| v;
    echo_i64, echo_i64_n: i64 => i64, |v| v;
    echo_u8, echo_u8_n: u8 => u8, |v| v;
    echo_u16, echo_u16_n: u16 => u16, |v| v;
    echo_u32, echo_u32_n: u32 => u32, |v| v;
    echo_u64, echo_u64_n: u64 => u64, |v| v;
    echo_f32, echo_f32_n: f32 => f32, |v| v;
    echo_f64, echo_f64_n: f64 => f64, |v| v;
    echo_text, echo_text_n: &str => String, |v: &str| v.to_string();
    echo_bytes, echo_bytes_n: &[u8] => Vec<u8>, |v: &[u8]| v.to_vec();
    echo_date, echo_date_n: Date32 => Date32, |v| v;
    echo_ts_us, echo_ts_us_n: TimestampMicros => TimestampMicros, |v| v;
    echo_ts_ns, echo_ts_ns_n: TimestampNanos => TimestampNanos, |v| v;
    echo_tstz_us, echo_tstz_us_n: TimestampTzMicros => TimestampTzMicros, |v| v;
    echo_tstz_ns, echo_tstz_ns_n: TimestampTzNanos => TimestampTzNanos, |v| v;
    echo_dec, echo_dec_n: Decimal<20, 4> => Decimal<20, 4>, |v| v;
}

static CALLS: AtomicI64 = AtomicI64::new(0);

/// 1, 2, 3, ... across every row this instance has produced.
#[scalar(volatility = "volatile")]
fn calls() -> i64 {
    CALLS.fetch_add(1, Ordering::Relaxed) + 1
}

/// Whether the argument is null (called on null: sees every row).
#[scalar]
fn is_missing(v: Option<i64>) -> bool {
    v.is_none()
}

/// Coalesces two nullable texts.
#[scalar]
fn first_text(a: Option<&str>, b: Option<&str>) -> Option<String> {
    a.or(b).map(str::to_string)
}

wasmudf::export!(
    echo_bool,
    echo_bool_n,
    echo_i8,
    echo_i8_n,
    echo_i16,
    echo_i16_n,
    echo_i32,
    echo_i32_n,
    echo_i64,
    echo_i64_n,
    echo_u8,
    echo_u8_n,
    echo_u16,
    echo_u16_n,
    echo_u32,
    echo_u32_n,
    echo_u64,
    echo_u64_n,
    echo_f32,
    echo_f32_n,
    echo_f64,
    echo_f64_n,
    echo_text,
    echo_text_n,
    echo_bytes,
    echo_bytes_n,
    echo_date,
    echo_date_n,
    echo_ts_us,
    echo_ts_us_n,
    echo_ts_ns,
    echo_ts_ns_n,
    echo_tstz_us,
    echo_tstz_us_n,
    echo_tstz_ns,
    echo_tstz_ns_n,
    echo_dec,
    echo_dec_n,
    calls,
    is_missing,
    first_text,
);
