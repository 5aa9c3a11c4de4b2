//! Resource limits for guest calls: defaults, ceilings and per-function overrides.

use std::time::Duration;

use crate::error::{Error, Result};

/// The smallest Wasm stack a function may be given: room for the host's entry
/// trampolines and the guest's allocator, with a little to spare.
pub const MIN_STACK: usize = 64 << 10;

/// The largest Wasm stack the engine supports (each call may need a native stack
/// segment of this size).
pub const MAX_STACK: usize = 1 << 30;

/// The limits one guest call runs under.
///
/// Every field has a default suited to batch-at-a-time UDFs; an [`crate::EngineConfig`]
/// sets process-wide defaults and ceilings, and [`LimitOverrides`] narrows them per function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Fuel per call (one batch). Roughly one unit per Wasm instruction; an i64 row costs
    /// ~10, a 16-byte string row ~740. Default 2 000 000 000.
    pub fuel: u64,
    /// Linear-memory size per instance in bytes. Default 256 MiB.
    pub memory: u64,
    /// Wasm stack per call in bytes. Default 1 MiB; from [`MIN_STACK`] to
    /// [`MAX_STACK`], rounded up to a power of two (each size in use is a wasmtime
    /// engine, so the sizes are kept few). The call always runs on a native stack with
    /// room for it, whatever thread makes it.
    pub stack: usize,
    /// Wall-clock deadline per call. Default 10 s.
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 2_000_000_000,
            memory: 256 << 20,
            stack: 1 << 20,
            timeout: Duration::from_secs(10),
        }
    }
}

impl Limits {
    /// The largest values the engine allows any function to use by default.
    pub fn default_ceilings() -> Self {
        Limits {
            fuel: u64::MAX,
            memory: 4 << 30,
            stack: 8 << 20,
            timeout: Duration::from_secs(3600),
        }
    }

    /// Applies `overrides` on top of `self`, refusing anything above `ceiling`.
    pub fn with_overrides(&self, overrides: &LimitOverrides, ceiling: &Limits) -> Result<Limits> {
        let mut out = *self;
        if let Some(fuel) = overrides.fuel {
            check("wasm.fuel", fuel, ceiling.fuel, |v| v.to_string())?;
            out.fuel = fuel;
        }
        if let Some(memory) = overrides.memory {
            check("wasm.memory", memory, ceiling.memory, |v| {
                format!("{v} bytes")
            })?;
            out.memory = memory;
        }
        if let Some(stack) = overrides.stack {
            let stack = round_stack(stack)?;
            check("wasm.stack", stack, ceiling.stack, |v| format!("{v} bytes"))?;
            out.stack = stack;
        }
        if let Some(timeout) = overrides.timeout {
            check("wasm.timeout", timeout, ceiling.timeout, |v| {
                format!("{}ms", v.as_millis())
            })?;
            out.timeout = timeout;
        }
        Ok(out)
    }
}

fn check<T: PartialOrd + Copy>(
    name: &str,
    value: T,
    ceiling: T,
    show: impl Fn(T) -> String,
) -> Result<()> {
    if value > ceiling {
        return Err(Error::InvalidLimit(format!(
            "{name} = {} is above the server's ceiling of {}",
            show(value),
            show(ceiling)
        )));
    }
    Ok(())
}

/// Per-function (or per-session) changes to the default [`Limits`]; `None` keeps the default.
///
/// Built with `LimitOverrides::default()` and [`LimitOverrides::set`] (limits may be
/// added in later versions).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct LimitOverrides {
    /// Fuel per call.
    pub fuel: Option<u64>,
    /// Memory per instance in bytes.
    pub memory: Option<u64>,
    /// Wall-clock deadline per call.
    pub timeout: Option<Duration>,
    /// Wasm stack per call in bytes.
    pub stack: Option<usize>,
}

impl LimitOverrides {
    /// Sets one limit from its SQL spelling: `fuel` (a count), `memory` and `stack`
    /// (`64MB`, `1GiB`, bytes), `timeout` (`500ms`, `2s`, `1min`, or milliseconds).
    pub fn set(&mut self, name: &str, value: &str) -> Result<()> {
        match name {
            "fuel" => self.fuel = Some(parse_count(value)?),
            "memory" => self.memory = Some(parse_bytes(value)?),
            "timeout" => self.timeout = Some(parse_duration(value)?),
            "stack" => self.stack = Some(parse_stack(value)?),
            other => return Err(unknown_limit(other)),
        }
        Ok(())
    }

    /// Clears one limit (`SET wasm.x TO DEFAULT`): the default applies again.
    pub fn reset(&mut self, name: &str) -> Result<()> {
        match name {
            "fuel" => self.fuel = None,
            "memory" => self.memory = None,
            "timeout" => self.timeout = None,
            "stack" => self.stack = None,
            other => return Err(unknown_limit(other)),
        }
        Ok(())
    }

    /// Sets one limit to its value in `limits` (`SET wasm.x FROM CURRENT`).
    pub fn set_from(&mut self, name: &str, limits: &Limits) -> Result<()> {
        match name {
            "fuel" => self.fuel = Some(limits.fuel),
            "memory" => self.memory = Some(limits.memory),
            "timeout" => self.timeout = Some(limits.timeout),
            "stack" => self.stack = Some(limits.stack),
            other => return Err(unknown_limit(other)),
        }
        Ok(())
    }
}

fn unknown_limit(name: &str) -> Error {
    Error::InvalidLimit(format!(
        "unknown limit \"wasm.{name}\" (known: wasm.fuel, wasm.memory, wasm.timeout, wasm.stack)"
    ))
}

/// Parses a Wasm stack size (as [`parse_bytes`]) and rounds it as [`round_stack`].
pub fn parse_stack(value: &str) -> Result<usize> {
    let bytes = parse_bytes(value)?;
    round_stack(usize::try_from(bytes).unwrap_or(usize::MAX))
}

/// A Wasm stack size as the engine uses it: rounded up to a power of two, refused
/// below [`MIN_STACK`] or above [`MAX_STACK`].
pub fn round_stack(stack: usize) -> Result<usize> {
    if stack < MIN_STACK {
        return Err(Error::InvalidLimit(format!(
            "wasm.stack = {stack} bytes is below the minimum of {MIN_STACK} bytes"
        )));
    }
    if stack > MAX_STACK {
        return Err(Error::InvalidLimit(format!(
            "wasm.stack = {stack} bytes is above the largest supported, {MAX_STACK} bytes"
        )));
    }
    Ok(stack.next_power_of_two())
}

fn parse_count(value: &str) -> Result<u64> {
    parse_number(value)
        .filter(|v| *v > 0)
        .ok_or_else(|| Error::InvalidLimit(format!("\"{value}\" is not a positive integer")))
}

/// A whole number, `_` allowed between digits; zero included.
fn parse_number(value: &str) -> Option<u64> {
    let cleaned: String = value.trim().chars().filter(|c| *c != '_').collect();
    cleaned.parse::<u64>().ok()
}

/// Parses a byte size: `1048576`, `64kB`, `16MB`, `1GB` (PostgreSQL's 1024-based units),
/// and the IEC spellings `KiB`, `MiB`, `GiB`.
pub fn parse_bytes(value: &str) -> Result<u64> {
    let v = value.trim();
    let split = v
        .find(|c: char| !c.is_ascii_digit() && c != '_')
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let num = parse_count(num).map_err(|_| bad_size(value))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "kib" | "k" => 1 << 10,
        "mb" | "mib" | "m" => 1 << 20,
        "gb" | "gib" | "g" => 1 << 30,
        "tb" | "tib" => 1 << 40,
        _ => return Err(bad_size(value)),
    };
    num.checked_mul(mult).ok_or_else(|| bad_size(value))
}

fn bad_size(value: &str) -> Error {
    Error::InvalidLimit(format!(
        "\"{value}\" is not a memory size (examples: 67108864, 64MB, 1GB)"
    ))
}

/// Parses a duration: `250ms`, `2s`, `1min`, `1h`, or a bare number of milliseconds
/// (as PostgreSQL's `statement_timeout`).
pub fn parse_duration(value: &str) -> Result<Duration> {
    let duration = parse_duration_or_zero(value)?;
    if duration.is_zero() {
        return Err(not_a_duration(value));
    }
    Ok(duration)
}

/// As [`parse_duration`], taking zero too (`statement_timeout = 0` turns it off).
pub(crate) fn parse_duration_or_zero(value: &str) -> Result<Duration> {
    let v = value.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let bad = || not_a_duration(value);
    let n = parse_number(num).ok_or_else(bad)?;
    let d = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "ms" => Duration::from_millis(n),
        "s" | "sec" | "secs" => Duration::from_secs(n),
        "min" | "mins" => Duration::from_secs(n.checked_mul(60).ok_or_else(bad)?),
        "h" => Duration::from_secs(n.checked_mul(3600).ok_or_else(bad)?),
        "us" => Duration::from_micros(n),
        _ => return Err(bad()),
    };
    Ok(d)
}

fn not_a_duration(value: &str) -> Error {
    Error::InvalidLimit(format!(
        "\"{value}\" is not a duration (examples: 500ms, 2s, 1min)"
    ))
}

/// `16MB`-style spelling when exact, bytes otherwise (PostgreSQL's units).
pub(crate) fn format_bytes(v: u64) -> String {
    for (unit, shift) in [("GB", 30), ("MB", 20), ("kB", 10)] {
        if v >= 1 << shift && v.is_multiple_of(1 << shift) {
            return format!("{}{unit}", v >> shift);
        }
    }
    v.to_string()
}

/// A duration as PostgreSQL shows one: `500ms`, `2s`, `1min`.
pub(crate) fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(60_000) {
        format!("{}min", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes_and_durations() {
        assert_eq!(parse_bytes("16MB").unwrap(), 16 << 20);
        assert_eq!(parse_bytes("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("4096").unwrap(), 4096);
        assert!(parse_bytes("12 parsecs").is_err());
        assert!(parse_bytes("-1").is_err());
        assert!(parse_bytes("99999999999999TB").is_err());
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("250").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("0").is_err());
        assert_eq!(parse_duration_or_zero("0s").unwrap(), Duration::ZERO);
        assert!(parse_duration_or_zero("0.5s").is_err());
        assert!(parse_duration_or_zero("").is_err());
    }

    #[test]
    fn overrides_only_narrow() {
        let ceiling = Limits {
            fuel: 1000,
            ..Limits::default_ceilings()
        };
        let mut o = LimitOverrides::default();
        o.set("fuel", "5000").unwrap();
        let err = Limits::default().with_overrides(&o, &ceiling).unwrap_err();
        assert!(
            err.to_string().contains("above the server's ceiling"),
            "{err}"
        );
        o.set("fuel", "500").unwrap();
        assert_eq!(
            Limits::default().with_overrides(&o, &ceiling).unwrap().fuel,
            500
        );
        o.set("stack", "256kB").unwrap();
        assert_eq!(
            Limits::default()
                .with_overrides(&o, &ceiling)
                .unwrap()
                .stack,
            256 << 10
        );
        // Rounded up to a power of two, whether parsed or set directly.
        o.set("stack", "3MB").unwrap();
        assert_eq!(o.stack, Some(4 << 20));
        o.stack = Some(100_000);
        assert_eq!(
            Limits::default()
                .with_overrides(&o, &ceiling)
                .unwrap()
                .stack,
            128 << 10
        );
        o.stack = Some(1000);
        assert!(Limits::default().with_overrides(&o, &ceiling).is_err());
        assert!(o.set("stack", "2GB").is_err());
        o.set("stack", "16MB").unwrap();
        let err = Limits::default().with_overrides(&o, &ceiling).unwrap_err();
        assert!(
            err.to_string()
                .contains("wasm.stack = 16777216 bytes is above"),
            "{err}"
        );
        let err = o.set("stack", "4kB").unwrap_err();
        assert!(
            err.to_string().contains("below the minimum of 65536 bytes"),
            "{err}"
        );
        assert!(o.set("cpu", "1").is_err());
    }
}
