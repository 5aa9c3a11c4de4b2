//! What each Wasm function overload has cost since the server started or the last
//! `wasm_stats_reset()`: PostgreSQL's `pg_stat_user_functions`, with what a sandbox
//! adds (fuel, instances, guest memory, errors by SQLSTATE).
//!
//! Counted once per guest call (a batch, not a row), into counters of the calling
//! thread that only it writes: partitions running the same function on other cores
//! never share a written cache line, and a snapshot adds the threads up. One clock
//! read a call more than not counting (the other is the deadline's). The same figures
//! go to the `metrics` facade; they reach Prometheus only when the server installed an
//! exporter (without one every metrics call is a no-op).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use metrics::{Counter, Histogram};
use parking_lot::Mutex;
use thread_local::ThreadLocal;

use crate::error::Error;
use crate::udf::explain;
use crate::udf::scope::GuestActivity;

/// One guest call's figures.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CallFigures {
    /// Rows the call was given (groups' rows for an aggregate's update).
    pub rows: u64,
    /// Time inside the guest.
    pub guest: Duration,
    /// Fuel the call consumed (0 when fuel is not metered).
    pub fuel: u64,
}

/// Calls of one function added up (for one plan node, or one statement).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct CallTotals {
    pub calls: u64,
    pub rows: u64,
    pub guest: Duration,
    pub fuel: u64,
}

/// Totals per function, in the order the functions were first called.
#[derive(Debug, Default, Clone)]
pub(crate) struct PerFunction(pub Vec<(Arc<str>, CallTotals)>);

impl PerFunction {
    /// Where `function`'s totals are, added (at zero) if it has none yet. The same
    /// overload passes the same `Arc`, so the pointer comparison decides at once.
    pub(crate) fn slot(&mut self, function: &Arc<str>) -> usize {
        match self
            .0
            .iter()
            .position(|(f, _)| Arc::ptr_eq(f, function) || f == function)
        {
            Some(i) => i,
            None => {
                self.0.push((function.clone(), CallTotals::default()));
                self.0.len() - 1
            }
        }
    }

    /// Adds one call of `function`.
    pub(crate) fn add(&mut self, function: &Arc<str>, call: &CallFigures) {
        let one = CallTotals {
            calls: 1,
            rows: call.rows,
            guest: call.guest,
            fuel: call.fuel,
        };
        self.merge(function, &one);
    }

    /// Adds `more` calls of `function`.
    pub(crate) fn merge(&mut self, function: &Arc<str>, more: &CallTotals) {
        let at = self.slot(function);
        let t = &mut self.0[at].1;
        t.calls += more.calls;
        t.rows += more.rows;
        t.guest += more.guest;
        t.fuel += more.fuel;
    }
}

impl std::fmt::Display for PerFunction {
    /// `f(bigint): 3 calls, 10 rows, 1.200 ms, 5000 fuel; g(text): ...`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (function, t)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(
                f,
                "{function}: {} calls, {} rows, {:.3} ms, {} fuel",
                t.calls,
                t.rows,
                t.guest.as_secs_f64() * 1000.0,
                t.fuel
            )?;
        }
        Ok(())
    }
}

/// The figures of one overload.
#[derive(Debug)]
pub(crate) struct FunctionStats {
    /// `name(arg types)`, the label in metrics and explain output.
    label: Arc<str>,
    /// Off: nothing is counted ([`crate::EngineConfig::track_functions`]).
    tracked: bool,
    /// The sums, per calling thread.
    per_thread: ThreadLocal<Sums>,
    /// The sums at the last reset, subtracted from the threads' (a reset cannot zero
    /// counters other threads write without losing their concurrent calls).
    at_reset: Mutex<SumsNow>,
    /// Maxima: written only when they grow, so shared lines stay read-only.
    max_ns: AtomicU64,
    peak_memory: AtomicU64,
    failures: Mutex<Failures>,
    exported: Exported,
}

/// One thread's sums. Only that thread writes them (a load and a store, no locked
/// instruction); snapshots on other threads read them.
#[derive(Debug, Default)]
struct Sums {
    calls: AtomicU64,
    rows: AtomicU64,
    guest_ns: AtomicU64,
    fuel: AtomicU64,
    instances_created: AtomicU64,
    instances_reused: AtomicU64,
}

/// Sums read at one moment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct SumsNow {
    calls: u64,
    rows: u64,
    guest_ns: u64,
    fuel: u64,
    instances_created: u64,
    instances_reused: u64,
}

impl SumsNow {
    fn add(&mut self, s: &Sums) {
        let read = |a: &AtomicU64| a.load(Ordering::Relaxed);
        self.calls = self.calls.wrapping_add(read(&s.calls));
        self.rows = self.rows.wrapping_add(read(&s.rows));
        self.guest_ns = self.guest_ns.wrapping_add(read(&s.guest_ns));
        self.fuel = self.fuel.wrapping_add(read(&s.fuel));
        self.instances_created = self
            .instances_created
            .wrapping_add(read(&s.instances_created));
        self.instances_reused = self
            .instances_reused
            .wrapping_add(read(&s.instances_reused));
    }

    fn since(self, base: SumsNow) -> SumsNow {
        SumsNow {
            calls: self.calls.wrapping_sub(base.calls),
            rows: self.rows.wrapping_sub(base.rows),
            guest_ns: self.guest_ns.wrapping_sub(base.guest_ns),
            fuel: self.fuel.wrapping_sub(base.fuel),
            instances_created: self.instances_created.wrapping_sub(base.instances_created),
            instances_reused: self.instances_reused.wrapping_sub(base.instances_reused),
        }
    }
}

/// Adds `by` to a counter only the calling thread writes.
fn bump(counter: &AtomicU64, by: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(by),
        Ordering::Relaxed,
    );
}

#[derive(Debug, Default)]
struct Failures {
    by_sqlstate: BTreeMap<&'static str, u64>,
    last: Option<LastError>,
}

/// The last error a function failed with.
#[derive(Debug, Clone)]
pub(crate) struct LastError {
    pub sqlstate: &'static str,
    /// Already sanitized (the error's own display quotes guest text through
    /// [`crate::error::guest_text`]).
    pub message: String,
    pub at: SystemTime,
}

/// Handles into the metrics recorder, taken once so a call pays no lookup.
#[derive(Debug)]
struct Exported {
    calls: Counter,
    rows: Counter,
    fuel: Counter,
    instances: Counter,
    guest_seconds: Histogram,
}

/// A copy of one overload's figures, as `wasm.function_stats` shows them.
#[derive(Debug, Clone, Default)]
pub(crate) struct StatsSnapshot {
    pub calls: u64,
    pub rows: u64,
    pub guest: Duration,
    pub max: Duration,
    pub fuel: u64,
    pub instances_created: u64,
    pub instances_reused: u64,
    pub peak_memory: u64,
    pub errors: BTreeMap<&'static str, u64>,
    pub last_error: Option<LastError>,
}

/// Metric names, shared with the docs' table (docs/operations.md).
pub(crate) mod names {
    pub const CALLS: &str = "wasmudf_function_calls_total";
    pub const ROWS: &str = "wasmudf_function_rows_total";
    pub const FUEL: &str = "wasmudf_function_fuel_total";
    pub const INSTANCES: &str = "wasmudf_function_instances_created_total";
    pub const GUEST_SECONDS: &str = "wasmudf_function_guest_seconds";
    pub const ERRORS: &str = "wasmudf_function_errors_total";
    pub const LIMITS: &str = "wasmudf_limits_hit_total";
}

impl FunctionStats {
    /// Empty figures for the overload shown as `label`, counted if `tracked`.
    pub(crate) fn new(label: &str, tracked: bool) -> Arc<Self> {
        let function = label.to_string();
        Arc::new(FunctionStats {
            label: label.into(),
            tracked,
            per_thread: ThreadLocal::new(),
            at_reset: Mutex::new(SumsNow::default()),
            max_ns: AtomicU64::new(0),
            peak_memory: AtomicU64::new(0),
            failures: Mutex::new(Failures::default()),
            exported: Exported {
                calls: metrics::counter!(names::CALLS, "function" => function.clone()),
                rows: metrics::counter!(names::ROWS, "function" => function.clone()),
                fuel: metrics::counter!(names::FUEL, "function" => function.clone()),
                instances: metrics::counter!(names::INSTANCES, "function" => function.clone()),
                guest_seconds: metrics::histogram!(names::GUEST_SECONDS, "function" => function),
            },
        })
    }

    /// A guest call that ended (with a result, the guest's own error or a trap): in
    /// these figures, the metrics, and the plan node running it (EXPLAIN ANALYZE).
    fn record_call(&self, call: &CallFigures) {
        explain::note(&self.label, call);
        let ns = u64::try_from(call.guest.as_nanos()).unwrap_or(u64::MAX);
        let sums = self.per_thread.get_or_default();
        bump(&sums.calls, 1);
        bump(&sums.rows, call.rows);
        bump(&sums.guest_ns, ns);
        bump(&sums.fuel, call.fuel);
        raise_to(&self.max_ns, ns);
        self.exported.calls.increment(1);
        self.exported.rows.increment(call.rows);
        self.exported.fuel.increment(call.fuel);
        self.exported.guest_seconds.record(call.guest.as_secs_f64());
    }

    /// An instance made for a call (`reused`: one kept from an earlier batch of the
    /// same query), holding `memory` bytes of linear memory after it.
    pub(crate) fn record_instance(&self, reused: bool, memory: u64) {
        if !self.tracked {
            return;
        }
        let sums = self.per_thread.get_or_default();
        if reused {
            bump(&sums.instances_reused, 1);
        } else {
            bump(&sums.instances_created, 1);
            self.exported.instances.increment(1);
        }
        raise_to(&self.peak_memory, memory);
    }

    /// An instance holding `memory` bytes of linear memory after a call.
    pub(crate) fn record_memory(&self, memory: u64) {
        if self.tracked {
            raise_to(&self.peak_memory, memory);
        }
    }

    /// A call (or instantiation) that failed with `error`.
    pub(crate) fn record_error(&self, error: &Error) {
        if !self.tracked {
            return;
        }
        let sqlstate = error.sqlstate();
        {
            let mut failures = self.failures.lock();
            *failures.by_sqlstate.entry(sqlstate).or_insert(0) += 1;
            failures.last = Some(LastError {
                sqlstate,
                message: error.to_string(),
                at: SystemTime::now(),
            });
        }
        let function = self.label.to_string();
        metrics::counter!(names::ERRORS, "function" => function.clone(), "sqlstate" => sqlstate)
            .increment(1);
        if let Some(limit) = limit_of(error) {
            metrics::counter!(names::LIMITS, "function" => function, "limit" => limit).increment(1);
        }
    }

    /// Every thread's sums added up, since the server started.
    fn sums(&self) -> SumsNow {
        let mut total = SumsNow::default();
        for sums in self.per_thread.iter() {
            total.add(sums);
        }
        total
    }

    /// The figures now.
    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        let sums = self.sums().since(*self.at_reset.lock());
        let failures = self.failures.lock();
        StatsSnapshot {
            calls: sums.calls,
            rows: sums.rows,
            guest: Duration::from_nanos(sums.guest_ns),
            max: Duration::from_nanos(self.max_ns.load(Ordering::Relaxed)),
            fuel: sums.fuel,
            instances_created: sums.instances_created,
            instances_reused: sums.instances_reused,
            peak_memory: self.peak_memory.load(Ordering::Relaxed),
            errors: failures.by_sqlstate.clone(),
            last_error: failures.last.clone(),
        }
    }

    /// Back to zero (`wasm_stats_reset()`); Prometheus counters keep counting, as
    /// counters must.
    pub(crate) fn reset(&self) {
        *self.at_reset.lock() = self.sums();
        self.max_ns.store(0, Ordering::Relaxed);
        self.peak_memory.store(0, Ordering::Relaxed);
        *self.failures.lock() = Failures::default();
    }
}

/// Times one guest call, shows it in `pg_stat_activity` while it runs, and records it
/// when it ends (nothing when the function is not tracked).
pub(crate) struct Meter<'a> {
    stats: &'a FunctionStats,
    activity: Option<&'a GuestActivity>,
    /// When the call starts: also the start of its deadline, so counting adds only the
    /// clock read at the end.
    started: Instant,
    /// A debug-level span per guest call (nothing when debug logging is off).
    _span: tracing::span::EnteredSpan,
}

impl<'a> Meter<'a> {
    /// A call of the function `stats` counts starts, in a query whose `activity` it is.
    pub(crate) fn start(stats: &'a FunctionStats, activity: Option<&'a GuestActivity>) -> Self {
        let started = Instant::now();
        let activity = activity.filter(|_| stats.tracked);
        if let Some(a) = activity {
            a.enter(&stats.label, started);
        }
        Meter {
            stats,
            activity,
            started,
            _span: tracing::debug_span!("wasm_call", function = &*stats.label).entered(),
        }
    }

    /// When the call started (its deadline runs from here).
    pub(crate) fn started(&self) -> Instant {
        self.started
    }

    /// The call ended (a trap included: it took guest time and fuel) having been given
    /// `rows` and consumed `fuel`: it is recorded.
    pub(crate) fn stop(self, rows: u64, fuel: u64) {
        if !self.stats.tracked {
            return;
        }
        let figures = CallFigures {
            rows,
            guest: self.started.elapsed(),
            fuel,
        };
        if let Some(a) = self.activity {
            a.leave(&self.stats.label, self.started, &figures);
        }
        self.stats.record_call(&figures);
    }
}

/// Raises `max` to `value`, writing only when it grows: partitions running the same
/// function on other cores then share the line read-only on most calls (a `fetch_max`
/// is a write every time, and the line bounces between cores).
fn raise_to(max: &AtomicU64, value: u64) {
    if value > max.load(Ordering::Relaxed) {
        max.fetch_max(value, Ordering::Relaxed);
    }
}

/// The sandbox limit an error reports hitting, for the limits-hit metric.
fn limit_of(error: &Error) -> Option<&'static str> {
    Some(match error {
        Error::FuelExhausted { .. } => "fuel",
        Error::MemoryLimit { .. } => "memory",
        Error::StackOverflow { .. } => "stack",
        Error::Timeout { .. } => "timeout",
        Error::TooManyInstances { .. } => "instances",
        _ => return None,
    })
}

/// Every overload's figures by catalog key, kept across re-registrations of a name
/// (adding an overload rebuilds its siblings' UDFs; their figures stay).
#[derive(Debug, Default)]
pub(crate) struct StatsRegistry {
    by_key: Mutex<HashMap<String, Arc<FunctionStats>>>,
}

impl StatsRegistry {
    /// The figures of the overload with catalog `key`, shown as `label`; `fresh` (the
    /// overload's own) becomes them if the key has none yet.
    pub(crate) fn for_key(&self, key: &str, fresh: &Arc<FunctionStats>) -> Arc<FunctionStats> {
        self.by_key
            .lock()
            .entry(key.to_string())
            .or_insert_with(|| fresh.clone())
            .clone()
    }

    /// Keeps only the figures of `live` keys (the rest were dropped).
    pub(crate) fn retain(&self, live: impl Fn(&str) -> bool) {
        self.by_key.lock().retain(|k, _| live(k));
    }

    /// Every overload's figures now, by key.
    pub(crate) fn snapshots(&self) -> HashMap<String, StatsSnapshot> {
        self.by_key
            .lock()
            .iter()
            .map(|(k, s)| (k.clone(), s.snapshot()))
            .collect()
    }

    /// Every figure back to zero.
    pub(crate) fn reset_all(&self) {
        for stats in self.by_key.lock().values() {
            stats.reset();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_errors_and_reset() {
        let stats = FunctionStats::new("f(bigint)", true);
        stats.record_call(&CallFigures {
            rows: 10,
            guest: Duration::from_micros(5),
            fuel: 100,
        });
        stats.record_call(&CallFigures {
            rows: 4,
            guest: Duration::from_micros(9),
            fuel: 50,
        });
        stats.record_instance(false, 1 << 16);
        stats.record_instance(true, 1 << 17);
        stats.record_error(&Error::FuelExhausted {
            function: "f".into(),
            limit: 7,
        });
        let s = stats.snapshot();
        assert_eq!((s.calls, s.rows, s.fuel), (2, 14, 150));
        assert_eq!(s.guest, Duration::from_micros(14));
        assert_eq!(s.max, Duration::from_micros(9));
        assert_eq!((s.instances_created, s.instances_reused), (1, 1));
        assert_eq!(s.peak_memory, 1 << 17);
        assert_eq!(s.errors.get("54000"), Some(&1));
        assert_eq!(s.last_error.map(|e| e.sqlstate), Some("54000"));
        stats.reset();
        let s = stats.snapshot();
        assert_eq!((s.calls, s.rows, s.peak_memory), (0, 0, 0));
        assert!(s.errors.is_empty() && s.last_error.is_none());
    }

    #[test]
    fn threads_add_up_and_a_reset_keeps_later_calls() {
        let stats = FunctionStats::new("f(bigint)", true);
        let call = CallFigures {
            rows: 2,
            guest: Duration::from_micros(1),
            fuel: 3,
        };
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        stats.record_call(&call);
                    }
                    stats.record_instance(false, 1);
                });
            }
        });
        let s = stats.snapshot();
        assert_eq!((s.calls, s.rows, s.fuel), (4000, 8000, 12000));
        assert_eq!(s.guest, Duration::from_millis(4));
        assert_eq!(s.instances_created, 4);
        stats.reset();
        std::thread::scope(|s| {
            s.spawn(|| stats.record_call(&call));
        });
        stats.record_call(&call);
        let s = stats.snapshot();
        assert_eq!((s.calls, s.rows, s.instances_created), (2, 4, 0));
        assert_eq!(s.max, Duration::from_micros(1));
    }

    #[test]
    fn untracked_functions_count_nothing() {
        let stats = FunctionStats::new("f(bigint)", false);
        Meter::start(&stats, None).stop(10, 5);
        stats.record_instance(false, 1);
        stats.record_memory(1);
        stats.record_error(&Error::Runtime("x".into()));
        let s = stats.snapshot();
        assert_eq!(
            (s.calls, s.rows, s.instances_created, s.peak_memory),
            (0, 0, 0, 0)
        );
        assert!(s.errors.is_empty());
    }
}
