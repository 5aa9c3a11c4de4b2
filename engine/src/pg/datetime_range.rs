//! The dates and timestamps a client can be given: from PostgreSQL's first day,
//! 4714-11-24 BC, to the last day the host's calendar (chrono) can print, 262142-12-31
//! (PostgreSQL goes on to 294276 AD for timestamps, so every value in this range is
//! one PostgreSQL can hold). A value outside it is an error, never text in a typed column.

use datafusion::arrow::array::Array;
use datafusion::arrow::datatypes::{DataType, TimeUnit};

use crate::error::Error;

/// The range in words, for messages.
pub(crate) const RANGE: &str = "4714-11-24 BC to 262142-12-31 AD";

/// PostgreSQL's first day (Julian day 0, 4714-11-24 BC) in days from 1970-01-01.
const MIN_DAYS: i64 = -2_440_588;

/// 262142-12-31 in days from 1970-01-01 (chrono's `NaiveDate::MAX`).
const MAX_DAYS: i64 = 95_026_236;

const SECONDS_PER_DAY: i64 = 86_400;

fn days_in_range(days: i64) -> bool {
    (MIN_DAYS..=MAX_DAYS).contains(&days)
}

/// Whether a timestamp of `value` units since the epoch is in range.
fn timestamp_in_range(value: i64, per_second: i64) -> bool {
    days_in_range(value.div_euclid(per_second).div_euclid(SECONDS_PER_DAY))
}

/// The first non-null row of a date or timestamp `array` outside the range, with the
/// kind of value ("date", "timestamp"); `None` if all are in range or it is of another
/// type. One pass over the values buffer (every Arrow date and timestamp is a plain
/// `i32` or `i64` buffer), no per-row dispatch.
pub(crate) fn first_out_of_range(array: &dyn Array) -> Option<(usize, &'static str)> {
    let data = array.to_data();
    let (kind, row) = match array.data_type() {
        DataType::Date32 => (
            "date",
            first_invalid(array, data.buffer::<i32>(0), |d| {
                days_in_range(i64::from(d))
            }),
        ),
        DataType::Date64 => (
            "date",
            first_invalid(array, data.buffer::<i64>(0), |ms| {
                timestamp_in_range(ms, 1_000)
            }),
        ),
        DataType::Timestamp(unit, _) => {
            let per_second = match unit {
                TimeUnit::Second => 1,
                TimeUnit::Millisecond => 1_000,
                TimeUnit::Microsecond => 1_000_000,
                TimeUnit::Nanosecond => 1_000_000_000,
            };
            (
                "timestamp",
                first_invalid(array, data.buffer::<i64>(0), |v| {
                    timestamp_in_range(v, per_second)
                }),
            )
        }
        _ => return None,
    };
    row.map(|r| (r, kind))
}

/// The first row of `array` that is not null and whose value (from `values`, the
/// array's own buffer from its offset) fails `ok`.
fn first_invalid<T: Copy>(
    array: &dyn Array,
    values: &[T],
    ok: impl Fn(T) -> bool,
) -> Option<usize> {
    values
        .iter()
        .take(array.len())
        .enumerate()
        .find(|&(i, &v)| !ok(v) && array.is_valid(i))
        .map(|(i, _)| i)
}

/// PostgreSQL's error for a date or timestamp column holding a value outside the
/// range (22008 `date out of range` / `timestamp out of range`); `Ok` for any other
/// column. Text and binary encoders call it before encoding such a column.
pub fn check_datetime_range(array: &dyn Array) -> Result<(), Error> {
    match first_out_of_range(array) {
        Some((_, kind)) => Err(Error::DatetimeOverflow(format!("{kind} out of range"))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bounds_are_the_calendars() {
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
        // PostgreSQL's UNIX_EPOCH_JDATE: 1970-01-01 is Julian day 2440588.
        assert_eq!(MIN_DAYS, -2_440_588);
        assert!(epoch
            .checked_sub_days(chrono::Days::new(MIN_DAYS.unsigned_abs()))
            .is_some());
        assert_eq!(
            chrono::NaiveDate::MAX
                .signed_duration_since(epoch)
                .num_days(),
            MAX_DAYS
        );
        assert!(timestamp_in_range(MIN_DAYS * SECONDS_PER_DAY, 1));
        assert!(!timestamp_in_range(MIN_DAYS * SECONDS_PER_DAY - 1, 1));
        assert!(timestamp_in_range((MAX_DAYS + 1) * SECONDS_PER_DAY - 1, 1));
        assert!(!timestamp_in_range((MAX_DAYS + 1) * SECONDS_PER_DAY, 1));
        assert!(!timestamp_in_range(i64::MAX, 1_000_000));
        assert!(!timestamp_in_range(i64::MIN, 1));
        // Every nanosecond timestamp fits (i64 nanoseconds span 1677-2262).
        assert!(timestamp_in_range(i64::MIN, 1_000_000_000));
    }
}
