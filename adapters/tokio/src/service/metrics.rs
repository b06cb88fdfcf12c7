//! The service's figures in the Prometheus text format (version 0.0.4):
//! the registry cache's counters, the queue's counts, the per-script executions, then the connection
//! pools' series as [`crate::conn::render_prometheus`] writes them.

use core::fmt::Write;
use std::collections::BTreeMap;

use mechops_std::registry::RegistryStats;

use crate::exec::ScriptStats;
use crate::jobs::store::StoreStats;

/// Escapes a label value: backslash, double quote and line feed.
fn label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Renders every figure; `pools` is the pools' own Prometheus text.
pub(crate) fn render(
    cache: &RegistryStats,
    queue: &StoreStats,
    executions: &BTreeMap<String, ScriptStats>,
    pools: &str,
) -> String {
    let mut out = String::new();
    for (name, kind, help, v) in [
        (
            "mechops_registry_hits_total",
            "counter",
            "Registry cache lookups served from the cache.",
            cache.hits,
        ),
        (
            "mechops_registry_misses_total",
            "counter",
            "Registry cache lookups that parsed the entry.",
            cache.misses,
        ),
        (
            "mechops_registry_evictions_total",
            "counter",
            "Entries evicted from the registry cache.",
            cache.evictions,
        ),
        (
            "mechops_registry_memory_bytes",
            "gauge",
            "Bytes of the parsed scripts cached.",
            cache.memory_usage,
        ),
        (
            "mechops_registry_reloads_total",
            "counter",
            "Registry file reloads.",
            cache.reloads,
        ),
        (
            "mechops_registry_reload_errors_total",
            "counter",
            "Registry reloads refused (the last valid version is kept).",
            cache.reload_errors,
        ),
    ] {
        family(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {v}");
    }
    let c = &queue.counts;
    family(
        &mut out,
        "mechops_queue_jobs",
        "gauge",
        "Jobs in the store by state.",
    );
    for (state, n) in [
        ("queued", c.queue_size),
        ("delayed", c.delayed),
        ("running", c.running),
        ("retry_scheduled", c.retry_scheduled),
        ("completed", c.completed),
        ("dead", c.dead),
        ("cancelled", c.cancelled),
    ] {
        let _ = writeln!(out, "mechops_queue_jobs{{state=\"{state}\"}} {n}");
    }
    family(
        &mut out,
        "mechops_executions_total",
        "counter",
        "Script executions by script.",
    );
    for (id, s) in executions {
        let _ = writeln!(
            out,
            "mechops_executions_total{{script=\"{}\"}} {}",
            label(id),
            s.total_executions
        );
    }
    family(
        &mut out,
        "mechops_execution_failures_total",
        "counter",
        "Failed script executions by script.",
    );
    for (id, s) in executions {
        let _ = writeln!(
            out,
            "mechops_execution_failures_total{{script=\"{}\"}} {}",
            label(id),
            s.failures
        );
    }
    family(
        &mut out,
        "mechops_execution_time_ms",
        "summary",
        "Script execution time in milliseconds: quantiles and mean.",
    );
    for (id, s) in executions {
        let id = label(id);
        for (q, v) in [("0.5", s.p50_ms), ("0.95", s.p95_ms), ("0.99", s.p99_ms)] {
            let _ = writeln!(
                out,
                "mechops_execution_time_ms{{script=\"{id}\",quantile=\"{q}\"}} {v}"
            );
        }
        let _ = writeln!(
            out,
            "mechops_execution_time_ms_sum{{script=\"{id}\"}} {}",
            s.avg_execution_time_ms * s.total_executions as f64
        );
        let _ = writeln!(
            out,
            "mechops_execution_time_ms_count{{script=\"{id}\"}} {}",
            s.total_executions
        );
    }
    out.push_str(pools);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn every_script_has_its_series() {
        let mut ex = BTreeMap::new();
        ex.insert(
            "say \"hi\"".to_owned(),
            ScriptStats {
                total_executions: 4,
                failures: 1,
                avg_execution_time_ms: 2.5,
                p50_ms: 2.0,
                p95_ms: 4.0,
                p99_ms: 4.0,
                last_error: None,
            },
        );
        let cache = RegistryStats {
            hits: 7,
            ..RegistryStats::default()
        };
        let text = render(&cache, &StoreStats::default(), &ex, "mechops_pool_x 1\n");
        assert!(text.contains("\nmechops_registry_hits_total 7\n"));
        assert!(text.contains("mechops_queue_jobs{state=\"queued\"} 0\n"));
        assert!(text.contains("mechops_executions_total{script=\"say \\\"hi\\\"\"} 4\n"));
        assert!(text.contains("mechops_execution_failures_total{script=\"say \\\"hi\\\"\"} 1\n"));
        assert!(text.contains(
            "mechops_execution_time_ms{script=\"say \\\"hi\\\"\",quantile=\"0.95\"} 4\n"
        ));
        assert!(text.contains("mechops_execution_time_ms_sum{script=\"say \\\"hi\\\"\"} 10\n"));
        assert!(text.ends_with("mechops_pool_x 1\n"));
    }
}
