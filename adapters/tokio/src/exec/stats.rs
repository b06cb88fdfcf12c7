//! Per-script execution statistics: counts, failures, the mean and the
//! p50/p95/p99 of execution times from the core's
//! [`Histogram`](mechops_core::metrics::Histogram), and the last error.
//!
//! # Invariants
//!
//! - Recording takes a shared lock on the script table (an exclusive one
//!   only the first time a script is seen) and then updates atomics, so
//!   recordings of different scripts, or of the same one, do not wait on
//!   each other.
//! - Percentiles are within 1% of a recorded time (the histogram's bound);
//!   the mean is exact.
//! - Each script costs one full-range histogram, about 30 KiB.

use core::time::Duration;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use mechops_core::metrics::{Counter, Histogram, Quantile};
use serde::Serialize;

/// One script's statistics, as [`ExecStats::snapshot`] reports them.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ScriptStats {
    /// Executions recorded.
    pub total_executions: u64,
    /// Of which failed.
    pub failures: u64,
    /// The mean execution time, in milliseconds.
    pub avg_execution_time_ms: f64,
    /// The median execution time, in milliseconds.
    pub p50_ms: f64,
    /// The 95th percentile, in milliseconds.
    pub p95_ms: f64,
    /// The 99th percentile, in milliseconds.
    pub p99_ms: f64,
    /// The error of the last failure, if any failed.
    pub last_error: Option<String>,
}

#[derive(Debug, Default)]
struct Entry {
    /// Execution times in nanoseconds.
    times: Histogram,
    failures: Counter,
    last_error: Mutex<Option<String>>,
}

/// Execution statistics of many scripts, shared between threads.
///
/// ```
/// use core::time::Duration;
/// use mechops_tokio::exec::ExecStats;
///
/// let stats = ExecStats::new();
/// stats.record("resize", Duration::from_millis(20), true, None);
/// stats.record("resize", Duration::from_millis(40), false, Some("exit code 1"));
/// let resize = &stats.snapshot()["resize"];
/// assert_eq!((resize.total_executions, resize.failures), (2, 1));
/// assert_eq!(resize.last_error.as_deref(), Some("exit code 1"));
/// assert!((resize.avg_execution_time_ms - 30.0).abs() < 1e-9);
/// ```
#[derive(Debug, Default)]
pub struct ExecStats {
    scripts: RwLock<BTreeMap<String, Arc<Entry>>>,
}

const P50: Quantile = match Quantile::new(0.5) {
    Ok(q) => q,
    Err(_) => panic!("0.5 is a quantile"),
};
const P95: Quantile = match Quantile::new(0.95) {
    Ok(q) => q,
    Err(_) => panic!("0.95 is a quantile"),
};
const P99: Quantile = match Quantile::new(0.99) {
    Ok(q) => q,
    Err(_) => panic!("0.99 is a quantile"),
};

impl ExecStats {
    /// No scripts yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one execution of `script_id` that took `duration`; a failed
    /// one (`ok` false) counts as a failure and, with an `error`, becomes
    /// the script's last error.
    pub fn record(&self, script_id: &str, duration: Duration, ok: bool, error: Option<&str>) {
        let entry = self.entry(script_id);
        entry
            .times
            .record(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX));
        if !ok {
            entry.failures.increment();
            if let Some(error) = error {
                *entry
                    .last_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(error.to_owned());
            }
        }
    }

    fn entry(&self, script_id: &str) -> Arc<Entry> {
        if let Some(e) = self
            .scripts
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(script_id)
        {
            return Arc::clone(e);
        }
        let mut scripts = self.scripts.write().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(scripts.entry(script_id.to_owned()).or_default())
    }

    /// Every script's statistics, by script ID.
    #[must_use]
    pub fn snapshot(&self) -> BTreeMap<String, ScriptStats> {
        let scripts = self.scripts.read().unwrap_or_else(PoisonError::into_inner);
        scripts
            .iter()
            .map(|(id, e)| {
                let times = e.times.snapshot();
                let ms = |ns: Option<u64>| ns.map_or(0.0, |ns| ns as f64 / 1e6);
                let stats = ScriptStats {
                    total_executions: times.count(),
                    failures: e.failures.get(),
                    avg_execution_time_ms: times.mean().map_or(0.0, |ns| ns / 1e6),
                    p50_ms: ms(times.quantile(P50)),
                    p95_ms: ms(times.quantile(P95)),
                    p99_ms: ms(times.quantile(P99)),
                    last_error: e
                        .last_error
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clone(),
                };
                (id.clone(), stats)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_follow_the_recorded_times() {
        let stats = ExecStats::new();
        for ms in 1..=100u64 {
            stats.record("a", Duration::from_millis(ms), ms % 10 != 0, Some("boom"));
        }
        stats.record("b", Duration::from_micros(1500), true, None);
        let snap = stats.snapshot();
        let a = &snap["a"];
        assert_eq!((a.total_executions, a.failures), (100, 10));
        assert!((a.avg_execution_time_ms - 50.5).abs() < 1e-6, "{a:?}");
        let near = |got: f64, want: f64| (got - want).abs() <= want * 0.01;
        assert!(near(a.p50_ms, 50.0), "{a:?}");
        assert!(near(a.p95_ms, 95.0), "{a:?}");
        assert!(near(a.p99_ms, 99.0), "{a:?}");
        assert_eq!(a.last_error.as_deref(), Some("boom"));
        let b = &snap["b"];
        assert_eq!(
            (b.total_executions, b.failures, b.last_error.as_deref()),
            (1, 0, None)
        );
        assert!(near(b.p99_ms, 1.5), "{b:?}");

        let v = serde_json::to_value(&snap["b"]).unwrap();
        let mut keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "avg_execution_time_ms",
                "failures",
                "last_error",
                "p50_ms",
                "p95_ms",
                "p99_ms",
                "total_executions"
            ]
        );
    }

    #[test]
    fn threads_record_without_losing_counts() {
        let stats = Arc::new(ExecStats::new());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let stats = Arc::clone(&stats);
                std::thread::spawn(move || {
                    for i in 0..1000u64 {
                        let id = if i % 2 == 0 { "even" } else { "odd" };
                        stats.record(id, Duration::from_micros(i + t), i % 3 != 0, Some("x"));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let snap = stats.snapshot();
        assert_eq!(
            snap["even"].total_executions + snap["odd"].total_executions,
            4000
        );
        assert_eq!(snap["even"].failures + snap["odd"].failures, 4 * 334);
    }
}
