//! PostgreSQL's ISO input forms for `date`, `timestamp` and `timestamptz`, as the
//! canonical text Arrow's cast parses. Clients send what PostgreSQL accepts: pgjdbc's
//! `setDate` sends `2024-02-29 +00`, `setTimestamp` `2024-02-29 10:00:00.123+05`, psql
//! users write `'2024-02-29 10:00'::date`; Arrow's parser refuses the first (a zone
//! after a date), the second (an hour-only offset) and the third (a time in a date).
//!
//! What PostgreSQL does with the parts, so wasmudf does too: a date ignores a time and
//! a zone after it; a `timestamp` ignores a zone; a `timestamptz` with a zone is that
//! instant (written here in UTC), without one it is left to the cast (the session's
//! zone). Text this grammar does not recognize is left to Arrow's parser unchanged.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeDelta};
use datafusion::arrow::datatypes::DataType;

/// The kind of value a text is read as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatetimeKind {
    /// `date`.
    Date,
    /// `timestamp [without time zone]`.
    Timestamp,
    /// `timestamp with time zone`.
    Timestamptz,
    /// `interval` (PostgreSQL's forms: `1 day 02:00:00`; see [`crate::pg::interval`]).
    Interval,
}

impl DatetimeKind {
    /// The kind of values of Arrow type `dt`, if it is a date or a timestamp.
    pub fn of(dt: &DataType) -> Option<Self> {
        match dt {
            DataType::Date32 | DataType::Date64 => Some(Self::Date),
            DataType::Timestamp(_, None) => Some(Self::Timestamp),
            DataType::Timestamp(_, Some(_)) => Some(Self::Timestamptz),
            DataType::Interval(_) => Some(Self::Interval),
            _ => None,
        }
    }
}

/// The parts of an ISO date/time text.
struct Parts {
    date: NaiveDate,
    /// The clock time and its fraction in microseconds (up to a whole second, when the
    /// fraction rounds up).
    time: Option<(NaiveTime, i64)>,
    /// The zone's offset east of UTC, in seconds.
    offset: Option<i32>,
}

/// `text` as Arrow's cast reads it for a value of `kind` (`YYYY-MM-DD`,
/// `YYYY-MM-DDTHH:MM:SS.ffffff`, with `+00:00` for a zoned `timestamptz`), or `None`
/// when it is not one of the ISO forms this reads (Arrow's parser then has its say).
pub fn canonical_datetime(text: &str, kind: DatetimeKind) -> Option<String> {
    if kind == DatetimeKind::Interval {
        return crate::pg::interval::canonical_interval(text);
    }
    let parts = parse(text.trim())?;
    let (clock, micros) = parts.time.unwrap_or_default();
    let local = parts
        .date
        .and_time(clock)
        .checked_add_signed(TimeDelta::microseconds(micros))?;
    match kind {
        DatetimeKind::Date => Some(parts.date.format("%Y-%m-%d").to_string()),
        DatetimeKind::Timestamp => Some(iso(local)),
        DatetimeKind::Timestamptz => Some(match parts.offset {
            Some(offset) => {
                let utc = local.checked_sub_signed(TimeDelta::seconds(i64::from(offset)))?;
                format!("{}+00:00", iso(utc))
            }
            None => iso(local),
        }),
        DatetimeKind::Interval => None,
    }
}

fn iso(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

fn parse(text: &str) -> Option<Parts> {
    let (date, rest) = split_date(text)?;
    let rest = rest.trim_start_matches([' ', 'T']);
    let (time, rest) = match rest.as_bytes().first() {
        Some(b'0'..=b'9') => {
            let end = rest
                .find(|c: char| !(c.is_ascii_digit() || c == ':' || c == '.'))
                .unwrap_or(rest.len());
            (Some(time(&rest[..end])?), rest[end..].trim_start())
        }
        _ => (None, rest),
    };
    let offset = if rest.is_empty() {
        None
    } else {
        Some(zone(rest)?)
    };
    Some(Parts { date, time, offset })
}

/// `YYYY-MM-DD` (four or more year digits) at the start of `text`, and what follows.
fn split_date(text: &str) -> Option<(NaiveDate, &str)> {
    let mut fields = text.splitn(3, '-');
    let (year, month) = (fields.next()?, fields.next()?);
    let rest = fields.next()?;
    let day_len = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let day = &rest[..day_len];
    let digits = |s: &str, len: std::ops::RangeInclusive<usize>| {
        len.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits(year, 4..=6) || !digits(month, 1..=2) || !digits(day, 1..=2) {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(year.parse().ok()?, month.parse().ok()?, day.parse().ok()?)?;
    Some((date, &rest[day_len..]))
}

/// `HH:MM[:SS[.fraction]]`: the clock time and the fraction in microseconds.
fn time(text: &str) -> Option<(NaiveTime, i64)> {
    let (clock, fraction) = match text.split_once('.') {
        Some((c, f)) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => (c, f),
        Some(_) => return None,
        None => (text, ""),
    };
    let mut fields = clock.split(':');
    let mut field = |max: u32| -> Option<u32> {
        let f = fields.next()?;
        if f.is_empty() || f.len() > 2 || !f.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        f.parse().ok().filter(|v| *v <= max)
    };
    let (h, m) = (field(23)?, field(59)?);
    let s = if clock.matches(':').count() == 2 {
        field(59)?
    } else {
        0
    };
    Some((NaiveTime::from_hms_opt(h, m, s)?, fraction_micros(fraction)))
}

/// The digits after a decimal point as microseconds, as PostgreSQL keeps them (rounded
/// at the seventh digit).
pub(crate) fn fraction_micros(digits: &str) -> i64 {
    let mut micros = 0i64;
    for (i, d) in digits
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(7)
        .enumerate()
    {
        if i < 6 {
            micros = micros * 10 + i64::from(d - b'0');
        } else if d >= b'5' {
            micros += 1;
        }
    }
    micros
}

/// `Z`, `UTC`, `GMT`, `+HH`, `+HH:MM`, `+HH:MM:SS`, `+HHMM` (or `-`), as seconds east.
fn zone(text: &str) -> Option<i32> {
    if ["z", "utc", "gmt", "zulu"]
        .iter()
        .any(|z| text.eq_ignore_ascii_case(z))
    {
        return Some(0);
    }
    let (sign, digits) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let fields: Vec<&str> = if digits.contains(':') {
        digits.split(':').collect()
    } else if digits.len() == 4 {
        vec![&digits[..2], &digits[2..]]
    } else {
        vec![digits]
    };
    if fields.is_empty()
        || fields.len() > 3
        || fields
            .iter()
            .any(|f| f.is_empty() || f.len() > 2 || !f.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let value = |i: usize| fields.get(i).map_or(Some(0), |f| f.parse::<i32>().ok());
    let (h, m, s) = (value(0)?, value(1)?, value(2)?);
    // PostgreSQL's limit: offsets within ±15:59:59.
    if h > 15 || m > 59 || s > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60 + s))
}

#[cfg(test)]
mod tests {
    use super::{canonical_datetime as c, DatetimeKind::*};

    #[test]
    fn client_forms_become_what_arrow_reads() {
        // pgjdbc setDate, setTimestamp; psql habits.
        assert_eq!(c("2024-02-29 +00", Date).as_deref(), Some("2024-02-29"));
        assert_eq!(c("2024-02-29 10:00", Date).as_deref(), Some("2024-02-29"));
        assert_eq!(c("2024-2-9", Date).as_deref(), Some("2024-02-09"));
        assert_eq!(
            c("2024-02-29 10:00:00.123+05", Timestamp).as_deref(),
            Some("2024-02-29T10:00:00.123000")
        );
        assert_eq!(
            c("2024-02-29 10:00:00.123+05", Timestamptz).as_deref(),
            Some("2024-02-29T05:00:00.123000+00:00")
        );
        assert_eq!(
            c("2024-02-29T01:30:00-0330", Timestamptz).as_deref(),
            Some("2024-02-29T05:00:00.000000+00:00")
        );
        assert_eq!(
            c("2024-01-01 00:00:00 UTC", Timestamptz).as_deref(),
            Some("2024-01-01T00:00:00.000000+00:00")
        );
        // No zone: the cast applies the session's.
        assert_eq!(
            c("2024-02-29 23:59:59.9999995", Timestamptz).as_deref(),
            Some("2024-03-01T00:00:00.000000")
        );
    }

    #[test]
    fn what_is_not_iso_is_left_to_arrow() {
        for text in [
            "",
            "yesterday",
            "2024-13-01",
            "2024-02-30",
            "24-02-01",
            "2024-02-29 25:00",
            "2024-02-29 10:00 +16",
            "2024-02-29 10:00 Europe/Paris",
            "2024-02-29 10:00.5x",
        ] {
            assert_eq!(c(text, Timestamptz), None, "{text}");
        }
    }
}
