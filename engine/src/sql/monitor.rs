//! What each statement costs, where an operator looks: the `metrics` facade
//! (statements by tag, a latency histogram, errors by SQLSTATE, cancels), a tracing
//! span per statement (guest calls are debug-level spans under it), and the slow
//! statement log (`log_min_duration_statement`) with the figures of the Wasm
//! functions the statement called.
//!
//! A statement that returns rows ends when its rows have been read (or dropped), not
//! when it returns its stream, so its figures are recorded then.

use std::fmt::Display;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;
use parking_lot::Mutex;
use tracing::Span;

use crate::error::{find_udf_error, log_text, sqlstate, CancelReason, Error};
use crate::sql::output::Output;
use crate::udf::query::CancelHandle;

/// Metric names, shared with the docs' table (docs/operations.md).
pub(crate) mod names {
    pub const STATEMENTS: &str = "wasmudf_statements_total";
    pub const DURATION: &str = "wasmudf_statement_duration_seconds";
    pub const ERRORS: &str = "wasmudf_statement_errors_total";
    pub const CANCELS: &str = "wasmudf_cancels_total";
}

/// Longest statement text kept for `pg_stat_activity` and the log (PostgreSQL's
/// default `track_activity_query_size`).
const STATEMENT_TEXT_LIMIT: usize = 1024;

static STATEMENTS: AtomicU64 = AtomicU64::new(1);

/// The text of `statement`, cut to [`STATEMENT_TEXT_LIMIT`] bytes at a character
/// boundary, formatting no more than that (a statement may be megabytes of VALUES).
pub(crate) fn statement_text(statement: &dyn Display) -> String {
    struct Bounded(String);
    impl std::fmt::Write for Bounded {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            let room = STATEMENT_TEXT_LIMIT - self.0.len();
            if s.len() <= room {
                self.0.push_str(s);
                return Ok(());
            }
            let mut end = room;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            self.0.push_str(&s[..end]);
            Err(std::fmt::Error)
        }
    }
    let mut out = Bounded(String::new());
    let _ = std::fmt::write(&mut out, format_args!("{statement}"));
    out.0
}

/// One statement being watched, from its start until its last row.
pub(crate) struct StatementMonitor {
    started: Instant,
    span: Span,
    text: String,
    slow_after: Option<Duration>,
    /// The session's running-statement slot, and what it held before this statement
    /// (a statement that runs no query leaves it as it was).
    running: Arc<Mutex<Option<CancelHandle>>>,
    before: Option<CancelHandle>,
    /// The query the statement ran, once it returned (see [`Self::finish`]).
    ran: Option<CancelHandle>,
}

impl StatementMonitor {
    /// Starts watching a statement of `user` with text `text`; statements that take
    /// at least `slow_after` are logged.
    pub(crate) fn start(
        user: &str,
        text: String,
        slow_after: Option<Duration>,
        running: &Arc<Mutex<Option<CancelHandle>>>,
    ) -> Self {
        let id = STATEMENTS.fetch_add(1, Ordering::Relaxed);
        let span = tracing::info_span!(
            "statement",
            id,
            user = %log_text(user),
            tag = tracing::field::Empty
        );
        StatementMonitor {
            started: Instant::now(),
            span,
            text,
            slow_after,
            before: running.lock().clone(),
            running: running.clone(),
            ran: None,
        }
    }

    /// The statement's span, to run it in.
    pub(crate) fn span(&self) -> &Span {
        &self.span
    }

    /// Records the statement's outcome now, or, for one that returns rows, when they
    /// have been read.
    pub(crate) fn finish(mut self, out: DfResult<Output>) -> DfResult<Output> {
        // Taken now: while its rows stream, the session may run another statement.
        self.ran = self.query();
        match out {
            Err(e) => {
                self.record("ERROR", Some(Failure::of(&e)));
                Err(e)
            }
            Ok(Output::Rows(rows)) => Ok(Output::Rows(self.stream("SELECT", rows))),
            Ok(Output::Fetch(rows)) => Ok(Output::Fetch(self.stream("FETCH", rows))),
            Ok(Output::Written { tag, rows }) => Ok(Output::Written {
                tag,
                rows: self.stream(tag.command(), rows),
            }),
            Ok(Output::CopyOut { format, rows }) => Ok(Output::CopyOut {
                format,
                rows: self.stream("COPY", rows),
            }),
            Ok(Output::Command(tag)) => {
                self.record(tag.command(), None);
                Ok(Output::Command(tag))
            }
            Ok(other) => {
                self.record(
                    match &other {
                        Output::Deallocate(_) => "DEALLOCATE",
                        _ => "COPY",
                    },
                    None,
                );
                Ok(other)
            }
        }
    }

    /// `rows`, recording the statement (as `tag`) when they end or are dropped.
    fn stream(
        self,
        tag: &'static str,
        rows: SendableRecordBatchStream,
    ) -> SendableRecordBatchStream {
        let schema = rows.schema();
        let ending = StreamEnd(Some((self, tag, None)));
        Box::pin(RecordBatchStreamAdapter::new(
            schema,
            rows.scan(ending, |ending, item| {
                if let Err(e) = &item {
                    ending.fail(e);
                }
                futures::future::ready(Some(item))
            }),
        ))
    }

    /// The query in the session's running slot, if this statement put it there.
    fn query(&self) -> Option<CancelHandle> {
        let now = self.running.lock().clone();
        match (now, &self.before) {
            (Some(now), Some(before)) if now.same_query(before) => None,
            (now, _) => now,
        }
    }

    fn record(&self, tag: &'static str, failure: Option<Failure>) {
        let elapsed = self.started.elapsed();
        metrics::counter!(names::STATEMENTS, "tag" => tag).increment(1);
        metrics::histogram!(names::DURATION, "tag" => tag).record(elapsed.as_secs_f64());
        if let Some(f) = failure {
            metrics::counter!(names::ERRORS, "sqlstate" => f.sqlstate).increment(1);
            if let Some(reason) = f.canceled {
                metrics::counter!(names::CANCELS, "reason" => reason).increment(1);
            }
        }
        let span = &self.span;
        span.record("tag", tag);
        // Microsecond precision: a float's full digits say nothing more.
        let ms = (elapsed.as_secs_f64() * 1e6).round() / 1e3;
        let functions = self
            .ran
            .as_ref()
            .map(CancelHandle::guest_totals)
            .filter(|f| !f.0.is_empty());
        let slow = self.slow_after.is_some_and(|limit| elapsed >= limit);
        let text = || log_text(&self.text);
        match (slow, functions) {
            (true, Some(f)) => tracing::info!(
                parent: span,
                duration_ms = ms,
                statement = %text(),
                functions = %f,
                "slow statement"
            ),
            (true, None) => {
                tracing::info!(parent: span, duration_ms = ms, statement = %text(), "slow statement")
            }
            (false, Some(f)) => {
                tracing::debug!(parent: span, duration_ms = ms, functions = %f, "statement done")
            }
            (false, None) => tracing::debug!(parent: span, duration_ms = ms, "statement done"),
        }
    }
}

/// How a statement failed, for its metrics.
#[derive(Clone, Copy)]
struct Failure {
    sqlstate: &'static str,
    /// Why it was canceled (57014).
    canceled: Option<&'static str>,
}

impl Failure {
    fn of(e: &DataFusionError) -> Self {
        let state = sqlstate(e);
        let canceled = (state == "57014").then(|| match find_udf_error(e) {
            Some(Error::QueryCanceled(CancelReason::StatementTimeout)) => "statement_timeout",
            Some(Error::Timeout { .. }) => "wasm_timeout",
            _ => "cancel_request",
        });
        Failure {
            sqlstate: state,
            canceled,
        }
    }
}

/// Records a streamed statement when its stream ends or is dropped.
struct StreamEnd(Option<(StatementMonitor, &'static str, Option<Failure>)>);

impl StreamEnd {
    fn fail(&mut self, e: &DataFusionError) {
        if let Some((_, _, failure @ None)) = &mut self.0 {
            *failure = Some(Failure::of(e));
        }
    }
}

impl Drop for StreamEnd {
    fn drop(&mut self) {
        if let Some((monitor, tag, failure)) = self.0.take() {
            monitor.record(if failure.is_some() { "ERROR" } else { tag }, failure);
        }
    }
}

/// Gives every metric the engine records its HELP text and unit, for an exporter
/// installed by the embedding program (the server's `--metrics-listen`).
pub fn describe_metrics() {
    use crate::udf::stats::names as function;
    use metrics::{describe_counter, describe_histogram, Unit};
    describe_counter!(
        names::STATEMENTS,
        "Statements run, by command tag (ERROR for failed ones)."
    );
    describe_histogram!(
        names::DURATION,
        Unit::Seconds,
        "Statement latency, until the last row was read."
    );
    describe_counter!(names::ERRORS, "Failed statements, by SQLSTATE.");
    describe_counter!(
        names::CANCELS,
        "Statements canceled, by reason (cancel_request, statement_timeout, wasm_timeout)."
    );
    describe_counter!(
        function::CALLS,
        "Guest calls (one per batch) of each Wasm function overload."
    );
    describe_counter!(function::ROWS, "Rows given to each Wasm function overload.");
    describe_counter!(
        function::FUEL,
        "Fuel consumed by each Wasm function overload."
    );
    describe_counter!(
        function::INSTANCES,
        "Guest instances created for each Wasm function overload."
    );
    describe_histogram!(
        function::GUEST_SECONDS,
        Unit::Seconds,
        "Time inside the guest per call, by function."
    );
    describe_counter!(
        function::ERRORS,
        "Failed guest calls, by function and SQLSTATE."
    );
    describe_counter!(
        function::LIMITS,
        "Sandbox limits hit, by function and limit (fuel, memory, stack, timeout, instances)."
    );
}
