//! `--metrics-listen`: the Prometheus endpoint, and the server's own metrics
//! (connections). The engine records per-function and per-statement metrics into the
//! `metrics` facade; the exporter installed here serves them all on `/metrics`.

use std::net::SocketAddr;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

/// Guest time per call, seconds: a batch takes microseconds to seconds.
const GUEST_BUCKETS: &[f64] = &[
    1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 0.1, 0.5, 1.0, 5.0, 30.0,
];
/// Statement latency, seconds.
const STATEMENT_BUCKETS: &[f64] = &[
    1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

/// Connections open now.
pub const CONNECTIONS: &str = "wasmudf_connections";
/// Connections accepted since start.
pub const CONNECTIONS_TOTAL: &str = "wasmudf_connections_total";
/// Connections refused (over `--max-connections`).
pub const CONNECTIONS_REFUSED: &str = "wasmudf_connections_refused_total";

/// Serves `/metrics` on `addr` from now on; must run before the database opens (its
/// functions take their metric handles then) and inside the server's runtime.
pub fn install(addr: SocketAddr) -> Result<(), String> {
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(
            Matcher::Full("wasmudf_function_guest_seconds".into()),
            GUEST_BUCKETS,
        )
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full("wasmudf_statement_duration_seconds".into()),
                STATEMENT_BUCKETS,
            )
        })
        .map_err(|e| format!("--metrics-listen: {e}"))?
        .install()
        .map_err(|e| format!("--metrics-listen {addr}: {e}"))?;
    describe();
    tracing::info!(%addr, "serving Prometheus metrics on /metrics");
    Ok(())
}

/// HELP lines for every metric: the server's, then the engine's.
fn describe() {
    use metrics::{describe_counter, describe_gauge};
    describe_gauge!(CONNECTIONS, "Client connections open now.");
    describe_counter!(CONNECTIONS_TOTAL, "Client connections accepted.");
    describe_counter!(
        CONNECTIONS_REFUSED,
        "Connections refused over --max-connections."
    );
    wasmudf_engine::describe_metrics();
}

/// One open connection in the gauge, for as long as it lives.
pub struct OpenConnection;

impl OpenConnection {
    pub fn new() -> Self {
        metrics::counter!(CONNECTIONS_TOTAL).increment(1);
        metrics::gauge!(CONNECTIONS).increment(1.0);
        OpenConnection
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        metrics::gauge!(CONNECTIONS).decrement(1.0);
    }
}
