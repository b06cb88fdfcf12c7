//! The JSON forms of a job's status and of the queue's counts, shared by
//! `mechops jobs status --json`, `mechops jobs stats --json` and the HTTP
//! API (`GET /jobs/{id}`, the `queue` object of `GET /stats`), so every
//! client reads the same keys.

use mechops_alloc::job::{Job, StateKind};
use mechops_core::time::Timestamp;
use serde_json::{Value, json};

use crate::jobs::store::{StoreStats, Throughput};

fn time(t: Option<Timestamp>) -> Value {
    t.map_or(Value::Null, |t| Value::String(t.to_string()))
}

/// A job's status: `id`, `handler`, `state`, `priority`, `attempts`,
/// `max_attempts`, `progress` (0 to 1 or null), `message`, `result` (the
/// handler's JSON result, or its text when it is not JSON), `error`,
/// `created_at`, `started_at`, `finished_at` (RFC 3339 or null).
pub fn job_status_json(job: &Job) -> Value {
    let result = job
        .result()
        .map(|r| serde_json::from_str::<Value>(r).unwrap_or_else(|_| Value::String(r.to_owned())));
    json!({
        "id": job.id().to_string(),
        "handler": job.spec().handler,
        "state": job.state().kind().as_str(),
        "priority": job.spec().priority.as_str(),
        "attempts": job.attempts(),
        "max_attempts": job.spec().max_attempts,
        "progress": job.progress().map(|p| p.fraction()),
        "message": job.progress().map(|p| p.message()),
        "result": result,
        "error": job.error(),
        "created_at": time(Some(job.created_at())),
        "started_at": time(job.started_at()),
        "finished_at": time(job.finished_at()),
    })
}

/// The queue's counts: `queue_size`, `running`, `completed`, `failed`
/// (dead or awaiting a retry), `dead`, `delayed`, `retry_scheduled`,
/// `cancelled`, and the wait percentiles in microseconds when the store
/// measured any.
pub fn queue_stats_json(s: &StoreStats, throughput: Option<&Throughput>) -> Value {
    let c = &s.counts;
    let mut v = json!({
        "queue_size": c.queue_size,
        "running": c.running,
        "completed": c.completed,
        // Jobs whose last attempt failed: dead, or awaiting a retry.
        "failed": c.dead + c.retry_scheduled,
        "dead": c.dead,
        "delayed": c.delayed,
        "retry_scheduled": c.retry_scheduled,
        "cancelled": c.cancelled,
    });
    if let Some(t) = throughput {
        // Jobs completed per second over the last minute, by every
        // process of the store that records completion times.
        v["throughput_per_s"] = ((t.per_second() * 100.0).round() / 100.0).into();
        v["completed_last_minute"] = t.completed.into();
    }
    if let Some(w) = s.wait {
        v["wait_p50_us"] = w.p50_us.into();
        v["wait_p90_us"] = w.p90_us.into();
        v["wait_p99_us"] = w.p99_us.into();
    }
    v
}

/// Whether a job in this state is over: completed, dead or cancelled.
pub fn is_finished(state: StateKind) -> bool {
    matches!(
        state,
        StateKind::Completed | StateKind::Dead | StateKind::Cancelled
    )
}
