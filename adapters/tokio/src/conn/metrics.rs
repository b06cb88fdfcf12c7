//! Metrics of connection pools: a snapshot struct, Prometheus text and
//! `tracing` events.
//!
//! A snapshot is the core's [`PoolMetrics`] (gauges at the moment, counters
//! over the pool's life, one entry per endpoint) with the pool's name, its
//! endpoints' names and the acquire wait histogram. Prometheus text follows
//! the text exposition format 0.0.4: one `# HELP` and `# TYPE` per family,
//! labels `pool` and `endpoint`, waits as a summary in seconds.

use core::fmt::Write as _;

use mechops_alloc::conn::{BreakerState, PoolMetrics};
use mechops_core::metrics::{LocalHistogram, Quantile};

use super::{ConnectionPool, Manager};

/// One pool's metrics at one moment.
#[derive(Clone, Debug)]
pub struct ConnectionPoolMetrics {
    /// The pool's name.
    pub name: String,
    /// The endpoints' names, in the order of `pool.endpoints`.
    pub endpoints: Vec<String>,
    /// Gauges and counters.
    pub pool: PoolMetrics,
    /// Acquire waits in nanoseconds, since the pool started.
    pub waits: LocalHistogram,
}

impl<M: Manager> ConnectionPool<M> {
    /// A snapshot of the pool's metrics.
    pub fn snapshot(&self) -> ConnectionPoolMetrics {
        let (pool, waits) = {
            let (pool, waits) = (self.metrics(), self.wait_histogram());
            (pool, waits)
        };
        ConnectionPoolMetrics {
            name: self.name().to_owned(),
            endpoints: self.endpoints().iter().map(ToString::to_string).collect(),
            pool,
            waits,
        }
    }

    /// Emits the snapshot as one `tracing` event per pool (level info) and
    /// one per endpoint (level debug).
    pub fn trace_metrics(&self) {
        self.snapshot().trace();
    }
}

impl ConnectionPoolMetrics {
    /// Emits this snapshot through `tracing`.
    pub fn trace(&self) {
        let m = &self.pool;
        tracing::info!(
            pool = %self.name,
            size = m.size,
            idle = m.idle,
            in_use = m.in_use,
            waiters = m.waiters,
            acquired = m.acquired,
            timeouts = m.timeouts,
            created = m.created,
            closed = m.closed,
            broken = m.broken,
            opening = m.opening,
            open_failures = m.open_failures,
            leaks = m.leaks,
            wait_p50_us = self.waits.quantile(Quantile::P50).unwrap_or(0) / 1000,
            wait_p99_us = self.waits.quantile(Quantile::P99).unwrap_or(0) / 1000,
            "connection pool metrics"
        );
        for (name, e) in self.endpoints.iter().zip(&m.endpoints) {
            tracing::debug!(
                pool = %self.name,
                endpoint = %name,
                size = e.size,
                idle = e.idle,
                in_use = e.in_use,
                created = e.created,
                closed = e.closed,
                broken = e.broken,
                open_failures = e.open_failures,
                connect_timeouts = e.connect_timeouts,
                breaker = breaker_name(e.breaker),
                "connection pool endpoint metrics"
            );
        }
    }
}

/// The breaker state as a lower-case word, and as a number for Prometheus
/// (0 closed, 1 half open, 2 open).
pub(crate) fn breaker_name(state: BreakerState) -> &'static str {
    match state {
        BreakerState::Closed => "closed",
        BreakerState::HalfOpen => "half_open",
        BreakerState::Open => "open",
    }
}

fn breaker_value(state: BreakerState) -> u8 {
    match state {
        BreakerState::Closed => 0,
        BreakerState::HalfOpen => 1,
        BreakerState::Open => 2,
    }
}

/// Escapes a label value (backslash, double quote, newline).
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Renders snapshots as Prometheus text, metric families prefixed
/// `mechops_conn_pool_`.
pub fn render_prometheus(pools: &[ConnectionPoolMetrics]) -> String {
    let mut out = String::new();
    type PoolField = fn(&PoolMetrics) -> u64;
    let pool_families: [(&str, &str, &str, PoolField); 15] = [
        (
            "size",
            "gauge",
            "Open connections, closing ones included",
            |m| m.size as u64,
        ),
        ("idle", "gauge", "Idle connections", |m| m.idle as u64),
        ("in_use", "gauge", "Connections checked out", |m| {
            m.in_use as u64
        }),
        (
            "waiters",
            "gauge",
            "Callers waiting for a connection",
            |m| m.waiters as u64,
        ),
        ("opening", "gauge", "Connects in flight", |m| {
            m.opening as u64
        }),
        (
            "checking",
            "gauge",
            "Connections being health-checked for a caller",
            |m| m.checking as u64,
        ),
        ("min_connections", "gauge", "The current minimum", |m| {
            m.min_connections as u64
        }),
        ("max_connections", "gauge", "The current maximum", |m| {
            m.max_connections as u64
        }),
        ("acquired_total", "counter", "Acquires served", |m| {
            m.acquired
        }),
        (
            "timeouts_total",
            "counter",
            "Acquires failed by their timeout",
            |m| m.timeouts,
        ),
        ("created_total", "counter", "Connections opened", |m| {
            m.created
        }),
        ("closed_total", "counter", "Connections closed", |m| {
            m.closed
        }),
        (
            "broken_total",
            "counter",
            "Connections closed as broken",
            |m| m.broken,
        ),
        ("open_failures_total", "counter", "Failed connects", |m| {
            m.open_failures
        }),
        (
            "leaks_total",
            "counter",
            "Checkouts reported as leaks",
            |m| m.leaks,
        ),
    ];
    for (name, kind, help, get) in pool_families {
        let _ = writeln!(out, "# HELP mechops_conn_pool_{name} {help}.");
        let _ = writeln!(out, "# TYPE mechops_conn_pool_{name} {kind}");
        for p in pools {
            let _ = writeln!(
                out,
                "mechops_conn_pool_{name}{{pool=\"{}\"}} {}",
                label(&p.name),
                get(&p.pool)
            );
        }
    }
    type EndpointField = fn(&mechops_alloc::conn::EndpointMetrics) -> u64;
    let endpoint_families: [(&str, &str, &str, EndpointField); 10] = [
        (
            "endpoint_size",
            "gauge",
            "Open connections to the endpoint",
            |e| e.size as u64,
        ),
        (
            "endpoint_idle",
            "gauge",
            "Idle connections to the endpoint",
            |e| e.idle as u64,
        ),
        (
            "endpoint_in_use",
            "gauge",
            "Connections to the endpoint checked out",
            |e| e.in_use as u64,
        ),
        (
            "endpoint_opening",
            "gauge",
            "Connects to the endpoint in flight",
            |e| e.opening as u64,
        ),
        (
            "endpoint_closed_total",
            "counter",
            "Connections to the endpoint closed",
            |e| e.closed,
        ),
        (
            "endpoint_created_total",
            "counter",
            "Connections opened to the endpoint",
            |e| e.created,
        ),
        (
            "endpoint_broken_total",
            "counter",
            "Connections to the endpoint closed as broken",
            |e| e.broken,
        ),
        (
            "endpoint_open_failures_total",
            "counter",
            "Failed connects to the endpoint",
            |e| e.open_failures,
        ),
        (
            "endpoint_connect_timeouts_total",
            "counter",
            "Connects to the endpoint that timed out",
            |e| e.connect_timeouts,
        ),
        (
            "endpoint_breaker",
            "gauge",
            "Breaker state: 0 closed, 1 half open, 2 open",
            |e| u64::from(breaker_value(e.breaker)),
        ),
    ];
    for (name, kind, help, get) in endpoint_families {
        let _ = writeln!(out, "# HELP mechops_conn_pool_{name} {help}.");
        let _ = writeln!(out, "# TYPE mechops_conn_pool_{name} {kind}");
        for p in pools {
            for (endpoint, e) in p.endpoints.iter().zip(&p.pool.endpoints) {
                let _ = writeln!(
                    out,
                    "mechops_conn_pool_{name}{{pool=\"{}\",endpoint=\"{}\"}} {}",
                    label(&p.name),
                    label(endpoint),
                    get(e)
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "# HELP mechops_conn_pool_acquire_wait_seconds Time acquires waited."
    );
    let _ = writeln!(out, "# TYPE mechops_conn_pool_acquire_wait_seconds summary");
    for p in pools {
        let pool = label(&p.name);
        for (q, text) in [(Quantile::P50, "0.5"), (Quantile::P99, "0.99")] {
            let v = p.waits.quantile(q).unwrap_or(0);
            let _ = writeln!(
                out,
                "mechops_conn_pool_acquire_wait_seconds{{pool=\"{pool}\",quantile=\"{text}\"}} {}",
                seconds(v)
            );
        }
        let _ = writeln!(
            out,
            "mechops_conn_pool_acquire_wait_seconds_sum{{pool=\"{pool}\"}} {}",
            seconds(p.waits.sum())
        );
        let _ = writeln!(
            out,
            "mechops_conn_pool_acquire_wait_seconds_count{{pool=\"{pool}\"}} {}",
            p.waits.count()
        );
    }
    out
}

fn seconds(nanos: u64) -> String {
    format!("{}.{:09}", nanos / 1_000_000_000, nanos % 1_000_000_000)
}
