//! Money and time: decimals and timestamps.

use wasmudf::{scalar, Date32, Decimal, TimestampMicros, TimestampTzMicros};

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Adds VAT at a rate in basis points, rounding half away from zero to cents:
/// `with_vat(100.00, 2000) = 120.00`.
#[scalar]
fn with_vat(amount: Decimal<12, 2>, rate_bp: i32) -> Result<Decimal<14, 2>, String> {
    let scaled = amount
        .0
        .checked_mul(10_000 + rate_bp as i128)
        .ok_or("amount too large")?;
    let rounded = (scaled + scaled.signum() * 5_000) / 10_000;
    if rounded.abs() >= 10i128.pow(14) {
        return Err(format!("result {rounded} does not fit numeric(14,2)"));
    }
    Ok(Decimal(rounded))
}

/// Truncates a timestamp to the start of its (UTC) day.
#[scalar]
fn day_start(ts: TimestampTzMicros) -> TimestampTzMicros {
    TimestampTzMicros(ts.0.div_euclid(MICROS_PER_DAY) * MICROS_PER_DAY)
}

/// Whole days from `a` to `b`.
#[scalar]
fn days_between(a: Date32, b: Date32) -> i32 {
    b.0 - a.0
}

/// The date of a timestamp.
#[scalar]
fn to_day(ts: TimestampMicros) -> Date32 {
    Date32(ts.0.div_euclid(MICROS_PER_DAY) as i32)
}

wasmudf::export!(with_vat, day_start, days_between, to_day);
