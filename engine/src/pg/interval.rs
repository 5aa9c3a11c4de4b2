//! PostgreSQL's `interval` and `time`: their input forms (as text Arrow's cast reads)
//! and their output (the `postgres` IntervalStyle, `HH:MM:SS[.ffffff]`).
//!
//! Arrow's interval parser reads `1 day 2 hours` but not what PostgreSQL prints and
//! clients send back: `1 day 02:00:00` (psql, pgjdbc's PGInterval), `1 day 2:00:00`
//! (psycopg's `timedelta`), `-1 days +02:03:00`, `P1DT2H` (ISO 8601), `@ 1 hour ago`.
//! PostgreSQL's grammar is small and documented, so it is read here by hand; what it
//! does not cover is left to Arrow's parser unchanged.

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{
    DataType, DurationMicrosecondType, DurationMillisecondType, DurationNanosecondType,
    DurationSecondType, IntervalDayTimeType, IntervalMonthDayNano, IntervalMonthDayNanoType,
    IntervalUnit, IntervalYearMonthType, Time32MillisecondType, Time32SecondType,
    Time64MicrosecondType, Time64NanosecondType, TimeUnit,
};
use datafusion::error::{DataFusionError, Result as DfResult};

use crate::pg::datetime_input::fraction_micros;

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

/// An interval as PostgreSQL keeps one: months, days and microseconds, each signed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PgInterval {
    /// Months (a year is 12).
    pub months: i32,
    /// Days.
    pub days: i32,
    /// Microseconds.
    pub micros: i64,
}

impl PgInterval {
    /// PostgreSQL's binary form (`interval_send`): microseconds, days, months.
    pub fn to_binary(self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.micros.to_be_bytes());
        out[8..12].copy_from_slice(&self.days.to_be_bytes());
        out[12..].copy_from_slice(&self.months.to_be_bytes());
        out
    }

    /// An interval from its binary form; `None` unless `raw` is 16 bytes.
    pub fn from_binary(raw: &[u8]) -> Option<Self> {
        let raw: &[u8; 16] = raw.try_into().ok()?;
        let (micros, rest) = raw.split_first_chunk::<8>()?;
        let (days, months) = rest.split_first_chunk::<4>()?;
        Some(PgInterval {
            micros: i64::from_be_bytes(*micros),
            days: i32::from_be_bytes(*days),
            months: i32::from_be_bytes(months.try_into().ok()?),
        })
    }

    /// As Arrow's `IntervalMonthDayNano`; `None` if the nanoseconds overflow.
    pub fn to_month_day_nano(self) -> Option<IntervalMonthDayNano> {
        Some(IntervalMonthDayNano {
            months: self.months,
            days: self.days,
            nanoseconds: self.micros.checked_mul(1000)?,
        })
    }
}

/// `text` (PostgreSQL interval input) as the text Arrow's cast reads
/// (`14 months 3 days 3600000000 microseconds`), or `None` when it is not one of
/// PostgreSQL's forms.
pub(crate) fn canonical_interval(text: &str) -> Option<String> {
    let v = parse_interval(text)?;
    Some(format!(
        "{} months {} days {} microseconds",
        v.months, v.days, v.micros
    ))
}

/// PostgreSQL's interval input: `[@] quantity unit [quantity unit ...] [ago]` with
/// `[+-]H:MM[:SS[.f]]` time parts, the SQL standard's `Y-M` and `D H:MM:SS`, and ISO
/// 8601's `P1Y2M3DT4H5M6S`.
pub fn parse_interval(text: &str) -> Option<PgInterval> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Some(iso) = text.strip_prefix(['P', 'p']) {
        return parse_iso(iso);
    }
    let text = text.strip_prefix('@').unwrap_or(text);
    let mut tokens: Vec<String> = Vec::new();
    // A unit may follow its number without a space (`1day`, `5min`).
    for word in text.split([' ', '\t', ',']).filter(|w| !w.is_empty()) {
        let numeric = word.starts_with(|c: char| c.is_ascii_digit() || "+-.".contains(c));
        let split = word
            .char_indices()
            .find(|(i, c)| numeric && c.is_ascii_alphabetic() && *i > 0)
            .map(|(i, _)| i);
        match split {
            Some(i) if !word.contains(':') => {
                tokens.push(word[..i].to_string());
                tokens.push(word[i..].to_string());
            }
            _ => tokens.push(word.to_string()),
        }
    }
    let mut ago = false;
    if tokens.last().is_some_and(|t| t.eq_ignore_ascii_case("ago")) {
        ago = true;
        tokens.pop();
    }
    let mut acc = Accumulator::default();
    let mut i = 0;
    while i < tokens.len() {
        let token = &tokens[i];
        if token.contains(':') {
            acc.micros = acc.micros.checked_add(clock(token)?)?;
            i += 1;
            continue;
        }
        if let Some((y, m)) = year_month(token) {
            acc.months = acc.months.checked_add(y.checked_mul(12)?.checked_add(m)?)?;
            i += 1;
            continue;
        }
        let number: f64 = token.parse().ok().filter(|n: &f64| n.is_finite())?;
        match tokens.get(i + 1) {
            Some(next) if next.chars().all(|c| c.is_ascii_alphabetic()) => {
                acc.add(number, unit(next)?)?;
                i += 2;
            }
            // `3 4:05:06`: a bare number before a time is days.
            Some(next) if next.contains(':') => {
                acc.add(number, Unit::Day)?;
                i += 1;
            }
            // A bare number is seconds.
            _ => {
                acc.add(number, Unit::Second)?;
                i += 1;
            }
        }
    }
    let v = acc.finish()?;
    Some(if ago { negate(v)? } else { v })
}

fn negate(v: PgInterval) -> Option<PgInterval> {
    Some(PgInterval {
        months: v.months.checked_neg()?,
        days: v.days.checked_neg()?,
        micros: v.micros.checked_neg()?,
    })
}

#[derive(Clone, Copy)]
enum Unit {
    Millennium,
    Century,
    Decade,
    Year,
    Month,
    Week,
    Day,
    Hour,
    Minute,
    Second,
    Millisecond,
    Microsecond,
}

/// PostgreSQL's interval units and their abbreviations (`deltatktbl`).
fn unit(word: &str) -> Option<Unit> {
    Some(match word.to_ascii_lowercase().as_str() {
        "millennium" | "millennia" | "mil" | "mils" => Unit::Millennium,
        "century" | "centuries" | "cent" | "c" => Unit::Century,
        "decade" | "decades" | "dec" | "decs" => Unit::Decade,
        "year" | "years" | "yr" | "yrs" | "y" => Unit::Year,
        "month" | "months" | "mon" | "mons" => Unit::Month,
        "week" | "weeks" | "w" => Unit::Week,
        "day" | "days" | "d" => Unit::Day,
        "hour" | "hours" | "hr" | "hrs" | "h" => Unit::Hour,
        "minute" | "minutes" | "min" | "mins" | "m" => Unit::Minute,
        "second" | "seconds" | "sec" | "secs" | "s" => Unit::Second,
        "millisecond" | "milliseconds" | "millisecon" | "ms" | "msec" | "msecs" | "mseconds" => {
            Unit::Millisecond
        }
        "microsecond" | "microseconds" | "microsecon" | "us" | "usec" | "usecs" | "useconds" => {
            Unit::Microsecond
        }
        _ => return None,
    })
}

/// Sums the parts in wide types; fractions spill down as PostgreSQL's do (half a
/// month is 15 days, half a day 12 hours).
#[derive(Default)]
struct Accumulator {
    months: i64,
    days: i64,
    micros: i64,
    /// Fractional microseconds, rounded once at the end.
    spill: f64,
}

impl Accumulator {
    fn add(&mut self, n: f64, unit: Unit) -> Option<()> {
        let months = |years: f64| n * years * 12.0;
        match unit {
            Unit::Millennium => self.add_months(months(1000.0))?,
            Unit::Century => self.add_months(months(100.0))?,
            Unit::Decade => self.add_months(months(10.0))?,
            // A fraction of a year is whole months (PostgreSQL rounds it).
            Unit::Year => {
                let whole = n.trunc();
                self.months = self.months.checked_add(to_i64(whole * 12.0)?)?;
                self.months = self
                    .months
                    .checked_add(to_i64(((n - whole) * 12.0).round())?)?;
            }
            Unit::Month => self.add_months(n)?,
            Unit::Week => self.add_days(n * 7.0)?,
            Unit::Day => self.add_days(n)?,
            Unit::Hour => self.add_micros(n * 3600.0 * 1e6)?,
            Unit::Minute => self.add_micros(n * 60.0 * 1e6)?,
            Unit::Second => self.add_micros(n * 1e6)?,
            Unit::Millisecond => self.add_micros(n * 1e3)?,
            Unit::Microsecond => self.add_micros(n)?,
        }
        Some(())
    }

    fn add_months(&mut self, months: f64) -> Option<()> {
        let whole = months.trunc();
        self.months = self.months.checked_add(to_i64(whole)?)?;
        self.add_days((months - whole) * 30.0)
    }

    fn add_days(&mut self, days: f64) -> Option<()> {
        let whole = days.trunc();
        self.days = self.days.checked_add(to_i64(whole)?)?;
        self.add_micros((days - whole) * MICROS_PER_DAY as f64)
    }

    fn add_micros(&mut self, micros: f64) -> Option<()> {
        let whole = micros.trunc();
        self.micros = self.micros.checked_add(to_i64(whole)?)?;
        self.spill += micros - whole;
        Some(())
    }

    fn finish(self) -> Option<PgInterval> {
        Some(PgInterval {
            months: i32::try_from(self.months).ok()?,
            days: i32::try_from(self.days).ok()?,
            micros: self.micros.checked_add(to_i64(self.spill.round())?)?,
        })
    }
}

fn to_i64(v: f64) -> Option<i64> {
    (v.is_finite() && v.abs() < 9.2e18).then_some(v as i64)
}

/// `[+-]H:MM[:SS[.fraction]]` as microseconds (hours unbounded, as in an interval).
fn clock(token: &str) -> Option<i64> {
    let (negative, body) = match token.as_bytes().first()? {
        b'-' => (true, &token[1..]),
        b'+' => (false, &token[1..]),
        _ => (false, token),
    };
    let fields: Vec<&str> = body.split(':').collect();
    if !(2..=3).contains(&fields.len()) {
        return None;
    }
    let int = |s: &str| -> Option<i64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let hours = int(fields[0])?;
    let minutes = int(fields[1]).filter(|m| *m < 60)?;
    let seconds = match fields.get(2) {
        Some(s) => {
            let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
            if !fraction.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let whole = int(whole).filter(|s| *s < 60)?;
            whole * MICROS_PER_SECOND + fraction_micros(fraction)
        }
        None => 0,
    };
    let micros = hours
        .checked_mul(3600 * MICROS_PER_SECOND)?
        .checked_add(minutes * 60 * MICROS_PER_SECOND + seconds)?;
    Some(if negative { -micros } else { micros })
}

/// The SQL standard's `[+-]Y-M` (years and months).
fn year_month(token: &str) -> Option<(i64, i64)> {
    let (negative, body) = match token.as_bytes().first()? {
        b'-' => (true, &token[1..]),
        b'+' => (false, &token[1..]),
        _ => (false, token),
    };
    let (y, m) = body.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(y) || !digits(m) {
        return None;
    }
    let (y, m): (i64, i64) = (y.parse().ok()?, m.parse().ok().filter(|m| *m < 12)?);
    Some(if negative { (-y, -m) } else { (y, m) })
}

/// ISO 8601's `nYnMnWnDTnHnMnS` (after the `P`).
fn parse_iso(text: &str) -> Option<PgInterval> {
    let mut acc = Accumulator::default();
    let mut in_time = false;
    let mut number = String::new();
    let mut any = false;
    for c in text.chars() {
        match c {
            'T' | 't' if number.is_empty() && !in_time => in_time = true,
            '0'..='9' | '.' | '-' | '+' => number.push(c),
            _ => {
                let n: f64 = number.parse().ok()?;
                number.clear();
                let unit = match (c.to_ascii_uppercase(), in_time) {
                    ('Y', false) => Unit::Year,
                    ('M', false) => Unit::Month,
                    ('W', false) => Unit::Week,
                    ('D', false) => Unit::Day,
                    ('H', true) => Unit::Hour,
                    ('M', true) => Unit::Minute,
                    ('S', true) => Unit::Second,
                    _ => return None,
                };
                acc.add(n, unit)?;
                any = true;
            }
        }
    }
    if !number.is_empty() || !any {
        return None;
    }
    acc.finish()
}

/// `value` as PostgreSQL prints an interval in the `postgres` IntervalStyle:
/// `1 year 2 mons 3 days 04:05:06.5`, `-1 days +02:03:00`, `00:00:00`.
pub fn format_interval(value: PgInterval) -> String {
    let mut out = String::new();
    // Whether the last part printed was negative: a positive part after it gets a `+`.
    let mut before_negative = false;
    let mut part = |out: &mut String, n: i64, unit: &str| {
        if n == 0 {
            return;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        if before_negative && n > 0 {
            out.push('+');
        }
        out.push_str(&format!("{n} {unit}{}", if n == 1 { "" } else { "s" }));
        before_negative = n < 0;
    };
    let months = i64::from(value.months);
    part(&mut out, months / 12, "year");
    part(&mut out, months % 12, "mon");
    part(&mut out, i64::from(value.days), "day");
    if out.is_empty() || value.micros != 0 {
        if !out.is_empty() {
            out.push(' ');
        }
        let micros = value.micros;
        if micros < 0 {
            out.push('-');
        } else if before_negative {
            out.push('+');
        }
        let abs = micros.unsigned_abs();
        let total_seconds = abs / 1_000_000;
        let fraction = abs % 1_000_000;
        out.push_str(&format!(
            "{:02}:{:02}:{:02}",
            total_seconds / 3600,
            total_seconds / 60 % 60,
            total_seconds % 60
        ));
        push_fraction(&mut out, fraction);
    }
    out
}

/// `.ffffff` with trailing zeros dropped (nothing for a whole second).
fn push_fraction(out: &mut String, micros: u64) {
    if micros > 0 {
        let digits = format!("{micros:06}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
}

/// Microseconds since midnight as PostgreSQL prints a `time`: `HH:MM:SS[.ffffff]`.
pub fn format_time(micros: i64) -> String {
    let micros = micros.rem_euclid(MICROS_PER_DAY) as u64;
    let seconds = micros / 1_000_000;
    let mut out = format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    );
    push_fraction(&mut out, micros % 1_000_000);
    out
}

/// Nanoseconds rounded to microseconds, as PostgreSQL keeps time.
fn nanos_to_micros(nanos: i64) -> i64 {
    let (q, r) = (nanos.div_euclid(1000), nanos.rem_euclid(1000));
    if r >= 500 {
        q + 1
    } else {
        q
    }
}

/// Every value of an Arrow interval or duration column as PostgreSQL's interval (a
/// duration, which `timestamp - timestamp` gives, with whole days split off as
/// PostgreSQL's subtraction does); `None` for a NULL.
pub fn pg_intervals(array: &dyn Array) -> DfResult<Vec<Option<PgInterval>>> {
    let nulls = array.logical_nulls();
    let each = |f: &dyn Fn(usize) -> PgInterval| -> Vec<Option<PgInterval>> {
        (0..array.len())
            .map(|i| nulls.as_ref().is_none_or(|n| n.is_valid(i)).then(|| f(i)))
            .collect()
    };
    let duration = |micros: i64| PgInterval {
        months: 0,
        days: (micros / MICROS_PER_DAY) as i32,
        micros: micros % MICROS_PER_DAY,
    };
    Ok(match array.data_type() {
        DataType::Interval(IntervalUnit::YearMonth) => {
            let a = array.as_primitive::<IntervalYearMonthType>();
            each(&|i| PgInterval {
                months: a.value(i),
                ..PgInterval::default()
            })
        }
        DataType::Interval(IntervalUnit::DayTime) => {
            let a = array.as_primitive::<IntervalDayTimeType>();
            each(&|i| {
                let v = a.value(i);
                PgInterval {
                    months: 0,
                    days: v.days,
                    micros: i64::from(v.milliseconds) * 1000,
                }
            })
        }
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let a = array.as_primitive::<IntervalMonthDayNanoType>();
            each(&|i| {
                let v = a.value(i);
                PgInterval {
                    months: v.months,
                    days: v.days,
                    micros: nanos_to_micros(v.nanoseconds),
                }
            })
        }
        DataType::Duration(TimeUnit::Second) => {
            let a = array.as_primitive::<DurationSecondType>();
            each(&|i| duration(a.value(i).saturating_mul(MICROS_PER_SECOND)))
        }
        DataType::Duration(TimeUnit::Millisecond) => {
            let a = array.as_primitive::<DurationMillisecondType>();
            each(&|i| duration(a.value(i).saturating_mul(1000)))
        }
        DataType::Duration(TimeUnit::Microsecond) => {
            let a = array.as_primitive::<DurationMicrosecondType>();
            each(&|i| duration(a.value(i)))
        }
        DataType::Duration(TimeUnit::Nanosecond) => {
            let a = array.as_primitive::<DurationNanosecondType>();
            each(&|i| duration(nanos_to_micros(a.value(i))))
        }
        other => {
            return Err(DataFusionError::Internal(format!(
                "{other} is not an interval"
            )))
        }
    })
}

/// Every value of an Arrow time-of-day column as microseconds since midnight.
pub fn pg_times(array: &dyn Array) -> DfResult<Vec<Option<i64>>> {
    let nulls = array.logical_nulls();
    let each = |f: &dyn Fn(usize) -> i64| -> Vec<Option<i64>> {
        (0..array.len())
            .map(|i| nulls.as_ref().is_none_or(|n| n.is_valid(i)).then(|| f(i)))
            .collect()
    };
    Ok(match array.data_type() {
        DataType::Time32(TimeUnit::Second) => {
            let a = array.as_primitive::<Time32SecondType>();
            each(&|i| i64::from(a.value(i)) * MICROS_PER_SECOND)
        }
        DataType::Time32(_) => {
            let a = array.as_primitive::<Time32MillisecondType>();
            each(&|i| i64::from(a.value(i)) * 1000)
        }
        DataType::Time64(TimeUnit::Nanosecond) => {
            let a = array.as_primitive::<Time64NanosecondType>();
            each(&|i| nanos_to_micros(a.value(i)))
        }
        DataType::Time64(_) => {
            let a = array.as_primitive::<Time64MicrosecondType>();
            each(&|i| a.value(i))
        }
        other => return Err(DataFusionError::Internal(format!("{other} is not a time"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(months: i32, days: i32, micros: i64) -> PgInterval {
        PgInterval {
            months,
            days,
            micros,
        }
    }

    const HOUR: i64 = 3600 * MICROS_PER_SECOND;

    #[test]
    fn postgres_input_forms() {
        let p = |t: &str| parse_interval(t);
        assert_eq!(p("1 day 02:00:00"), Some(iv(0, 1, 2 * HOUR)));
        // psycopg's timedelta, commas and all.
        assert_eq!(p("1 day, 2:00:00"), Some(iv(0, 1, 2 * HOUR)));
        assert_eq!(
            p("-1 days +02:03:00"),
            Some(iv(0, -1, 2 * HOUR + 180_000_000))
        );
        assert_eq!(p("1 year 2 mons 3 days"), Some(iv(14, 3, 0)));
        assert_eq!(p("02:03:04.5"), Some(iv(0, 0, 2 * HOUR + 184_500_000)));
        assert_eq!(p("@ 1 hour ago"), Some(iv(0, 0, -HOUR)));
        assert_eq!(p("1.5 days"), Some(iv(0, 1, 12 * HOUR)));
        assert_eq!(p("1.5 months"), Some(iv(1, 15, 0)));
        assert_eq!(p("1.5 years"), Some(iv(18, 0, 0)));
        assert_eq!(p("2 weeks"), Some(iv(0, 14, 0)));
        assert_eq!(p("5"), Some(iv(0, 0, 5_000_000)));
        assert_eq!(p("10min"), Some(iv(0, 0, 600_000_000)));
        assert_eq!(p("1-2"), Some(iv(14, 0, 0)));
        assert_eq!(p("3 4:05:06"), Some(iv(0, 3, 4 * HOUR + 306_000_000)));
        assert_eq!(p("P1Y2M3DT4H5M6S"), Some(iv(14, 3, 4 * HOUR + 306_000_000)));
        assert_eq!(p("PT0.5S"), Some(iv(0, 0, 500_000)));
        // A trailing bare number is seconds, as in PostgreSQL.
        assert_eq!(p("1 day 2"), Some(iv(0, 1, 2_000_000)));
        for bad in ["", "1 fortnight", "1:60", "P", "P1H", "day", "yesterday"] {
            assert_eq!(p(bad), None, "{bad}");
        }
    }

    #[test]
    fn postgres_output_style() {
        let f = |m, d, us| format_interval(iv(m, d, us));
        assert_eq!(f(0, 0, 0), "00:00:00");
        assert_eq!(f(0, 1, 2 * HOUR), "1 day 02:00:00");
        assert_eq!(f(14, 3, 0), "1 year 2 mons 3 days");
        assert_eq!(f(0, -1, 2 * HOUR + 180_000_000), "-1 days +02:03:00");
        assert_eq!(f(0, 0, -HOUR - 500_000), "-01:00:00.5");
        assert_eq!(f(0, 0, 100 * HOUR), "100:00:00");
        assert_eq!(f(-1, 0, 0), "-1 mons");
        assert_eq!(format_time(HOUR * 10 + 672_500_000), "10:11:12.5");
        assert_eq!(format_time(0), "00:00:00");
    }

    #[test]
    fn binary_form_round_trips() {
        let v = iv(-14, 3, -5);
        assert_eq!(PgInterval::from_binary(&v.to_binary()), Some(v));
        assert_eq!(PgInterval::from_binary(&[0; 15]), None);
    }

    #[test]
    fn output_reads_back() {
        for v in [
            iv(0, -1, 2 * HOUR + 180_000_000),
            iv(-14, 3, -5),
            iv(25, -40, 100 * HOUR + 1),
        ] {
            assert_eq!(parse_interval(&format_interval(v)), Some(v));
        }
    }
}
