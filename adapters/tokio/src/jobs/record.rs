//! A job record as JSON: the text form both embedded stores persist
//! (the memory store's shutdown file, the SQLite store's `record` column).
//!
//! The object holds every field of [`JobParts`]; `docs/FORMAT.md`
//! ("Job records") specifies it. Times are integers of nanoseconds since
//! the Unix epoch, durations integers of nanoseconds. Decoding checks every
//! field and then the lifecycle's invariants ([`Job::restore`]), so a
//! damaged record is refused with a message naming the problem, never
//! driven into an impossible state.

use core::time::Duration;

use mechops_alloc::job::{
    DeadReason, FencingToken, Job, JobId, JobParts, JobPriority, JobSpec, JobState, Lease,
    Lifecycle, Progress, RunAt, StateKind,
};
use mechops_core::backoff::{Backoff, Jitter};
use mechops_core::time::Timestamp;
use mechops_core::uuid::Uuid;
use serde_json::{Map, Value, json};

/// Encodes a job's persisted fields.
pub fn encode(job: &Job) -> Value {
    let p = job.to_parts();
    let s = &p.spec;
    let b = &s.backoff;
    let mut state = Map::new();
    state.insert("kind".into(), p.state.kind().as_str().into());
    match p.state {
        JobState::Delayed { ready_at: at } | JobState::RetryScheduled { at } => {
            state.insert("at".into(), nanos(at).into());
        }
        JobState::Running { attempt, lease } => {
            state.insert("attempt".into(), attempt.into());
            state.insert("token".into(), lease.token.get().into());
            state.insert("expires_at".into(), nanos(lease.expires_at).into());
            state.insert("deadline".into(), lease.deadline.map(nanos).into());
            state.insert("cancel_requested".into(), lease.cancel_requested.into());
        }
        JobState::Dead { reason } => {
            state.insert("reason".into(), dead_name(reason).into());
        }
        JobState::Queued | JobState::Completed | JobState::Cancelled => {}
    }
    json!({
        "id": p.id.to_string(),
        "handler": s.handler,
        "args": s.args,
        "priority": s.priority.as_str(),
        "max_attempts": s.max_attempts,
        "timeout_ns": s.timeout.map(dur_nanos),
        "backoff": {
            "base_ns": dur_nanos(b.base()),
            "cap_ns": dur_nanos(b.cap()),
            "max_retries": b.max_attempts(),
            "multiplier": b.multiplier(),
            "jitter": jitter_name(b.jitter()),
        },
        "unique_key": s.unique_key,
        "state": Value::Object(state),
        "attempts": p.attempts,
        "stalls": p.stalls,
        "last_token": p.last_token,
        "last_retry_delay_ns": p.last_retry_delay.map(dur_nanos),
        "created_at": nanos(p.created_at),
        "ready_at": nanos(p.ready_at),
        "started_at": p.started_at.map(nanos),
        "finished_at": p.finished_at.map(nanos),
        "progress": p.progress.as_ref().map(|g| json!({"fraction": g.fraction(), "message": g.message()})),
        "result": p.result,
        "error": p.error,
    })
}

/// The record's text: the object [`encode`] gives, written straight from
/// the job without building a [`Value`] (the stores' hot path: every
/// transition of a job writes its record).
pub fn encode_text(job: &Job) -> String {
    let s = job.spec();
    let b = &s.backoff;
    let st = job.state();
    let mut state = StateOut {
        kind: st.kind().as_str(),
        at: None,
        attempt: None,
        token: None,
        expires_at: None,
        deadline: None,
        cancel_requested: None,
        reason: None,
    };
    match *st {
        JobState::Delayed { ready_at: at } | JobState::RetryScheduled { at } => {
            state.at = Some(nanos(at));
        }
        JobState::Running { attempt, lease } => {
            state.attempt = Some(attempt);
            state.token = Some(lease.token.get());
            state.expires_at = Some(nanos(lease.expires_at));
            state.deadline = Some(lease.deadline.map(nanos));
            state.cancel_requested = Some(lease.cancel_requested);
        }
        JobState::Dead { reason } => state.reason = Some(dead_name(reason)),
        JobState::Queued | JobState::Completed | JobState::Cancelled => {}
    }
    let out = RecordOut {
        args: &s.args,
        attempts: job.attempts(),
        backoff: BackoffOut {
            base_ns: dur_nanos(b.base()),
            cap_ns: dur_nanos(b.cap()),
            jitter: jitter_name(b.jitter()),
            max_retries: b.max_attempts(),
            multiplier: b.multiplier(),
        },
        created_at: nanos(job.created_at()),
        error: job.error(),
        finished_at: job.finished_at().map(nanos),
        handler: &s.handler,
        id: job.id().uuid(),
        last_retry_delay_ns: job.last_retry_delay().map(dur_nanos),
        last_token: job.last_token().get(),
        max_attempts: s.max_attempts,
        priority: s.priority.as_str(),
        progress: job.progress().map(|g| ProgressOut {
            fraction: g.fraction(),
            message: g.message(),
        }),
        ready_at: nanos(job.ready_at()),
        result: job.result(),
        stalls: job.stalls(),
        started_at: job.started_at().map(nanos),
        state,
        timeout_ns: s.timeout.map(dur_nanos),
        unique_key: s.unique_key.as_deref(),
    };
    // Serializing plain fields, strings and numbers cannot fail.
    serde_json::to_string(&out).unwrap_or_else(|_| encode(job).to_string())
}

/// [`encode_text`]'s object, keys in the order [`encode`] writes them.
#[derive(serde::Serialize)]
struct RecordOut<'a> {
    args: &'a str,
    attempts: u32,
    backoff: BackoffOut,
    created_at: i64,
    error: Option<&'a str>,
    finished_at: Option<i64>,
    handler: &'a str,
    #[serde(serialize_with = "hyphenated")]
    id: Uuid,
    last_retry_delay_ns: Option<u64>,
    last_token: u64,
    max_attempts: u32,
    priority: &'static str,
    progress: Option<ProgressOut<'a>>,
    ready_at: i64,
    result: Option<&'a str>,
    stalls: u32,
    started_at: Option<i64>,
    state: StateOut,
    timeout_ns: Option<u64>,
    unique_key: Option<&'a str>,
}

#[derive(serde::Serialize)]
struct BackoffOut {
    base_ns: u64,
    cap_ns: u64,
    jitter: &'static str,
    max_retries: u32,
    multiplier: u32,
}

#[derive(serde::Serialize)]
struct ProgressOut<'a> {
    fraction: f64,
    message: &'a str,
}

/// The state object: `kind`, then only the fields of that kind.
#[derive(serde::Serialize)]
struct StateOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempt: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cancel_requested: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deadline: Option<Option<i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<u64>,
}

fn hyphenated<S: serde::Serializer>(id: &Uuid, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(id)
}

/// Decodes a record written by [`encode`].
///
/// # Errors
/// A message naming the first missing or malformed field, or the
/// lifecycle invariant the record breaks.
pub fn decode(value: &Value, lifecycle: &Lifecycle) -> Result<Job, String> {
    let o = value.as_object().ok_or("job record is not a JSON object")?;
    let id: Uuid = str_field(o, "id")?
        .parse()
        .map_err(|e| format!("job record field id: {e}"))?;
    let b = o
        .get("backoff")
        .and_then(Value::as_object)
        .ok_or("job record field backoff is missing")?;
    let multiplier = u32_field(b, "multiplier")?;
    let backoff = Backoff::new(
        Duration::from_nanos(u64_field(b, "base_ns")?),
        Duration::from_nanos(u64_field(b, "cap_ns")?),
        u32_field(b, "max_retries")?,
    )
    .and_then(|p| p.with_multiplier(multiplier))
    .map_err(|e| format!("job record field backoff: {e}"))?
    .with_jitter(parse_jitter(str_field(b, "jitter")?)?);
    let spec = JobSpec {
        handler: str_field(o, "handler")?.to_owned(),
        args: str_field(o, "args")?.to_owned(),
        priority: str_field(o, "priority")?
            .parse()
            .map_err(|e| format!("job record field priority: {e}"))?,
        run_at: RunAt::Now,
        max_attempts: u32_field(o, "max_attempts")?,
        timeout: opt_u64(o, "timeout_ns")?.map(Duration::from_nanos),
        backoff,
        unique_key: opt_str(o, "unique_key")?,
    };
    let st = o
        .get("state")
        .and_then(Value::as_object)
        .ok_or("job record field state is missing")?;
    let kind: StateKind = str_field(st, "kind")?
        .parse()
        .map_err(|e| format!("job record field state.kind: {e}"))?;
    let state = match kind {
        StateKind::Queued => JobState::Queued,
        StateKind::Completed => JobState::Completed,
        StateKind::Cancelled => JobState::Cancelled,
        StateKind::Delayed => JobState::Delayed {
            ready_at: time_field(st, "at")?,
        },
        StateKind::RetryScheduled => JobState::RetryScheduled {
            at: time_field(st, "at")?,
        },
        StateKind::Running => JobState::Running {
            attempt: u32_field(st, "attempt")?,
            lease: Lease {
                token: FencingToken::new(u64_field(st, "token")?),
                expires_at: time_field(st, "expires_at")?,
                deadline: opt_time(st, "deadline")?,
                cancel_requested: st
                    .get("cancel_requested")
                    .and_then(Value::as_bool)
                    .ok_or("job record field state.cancel_requested is missing")?,
            },
        },
        StateKind::Dead => JobState::Dead {
            reason: parse_dead(str_field(st, "reason")?)?,
        },
    };
    let progress = match o.get("progress") {
        None | Some(Value::Null) => None,
        Some(Value::Object(g)) => Some(
            Progress::new(
                g.get("fraction")
                    .and_then(Value::as_f64)
                    .ok_or("job record field progress.fraction is missing")?,
                str_field(g, "message")?,
            )
            .map_err(|e| format!("job record field progress: {e}"))?,
        ),
        Some(_) => return Err("job record field progress is not an object".into()),
    };
    let parts = JobParts {
        id: JobId::new(id),
        spec,
        state,
        attempts: u32_field(o, "attempts")?,
        stalls: u32_field(o, "stalls")?,
        last_token: u64_field(o, "last_token")?,
        last_retry_delay: opt_u64(o, "last_retry_delay_ns")?.map(Duration::from_nanos),
        created_at: time_field(o, "created_at")?,
        ready_at: time_field(o, "ready_at")?,
        started_at: opt_time(o, "started_at")?,
        finished_at: opt_time(o, "finished_at")?,
        progress,
        result: opt_str(o, "result")?,
        error: opt_str(o, "error")?,
    };
    Job::restore(parts, lifecycle).map_err(|e| format!("job {id}: {e}"))
}

/// Nanoseconds since the Unix epoch, as persisted (saturating to `i64`:
/// the year 2262).
pub fn nanos(t: Timestamp) -> i64 {
    i64::try_from(t.unix_nanos()).unwrap_or(if t.unix_nanos() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
}

/// The timestamp of persisted nanoseconds.
pub fn from_nanos(n: i64) -> Result<Timestamp, String> {
    Timestamp::from_unix_nanos(i128::from(n)).map_err(|e| format!("timestamp {n}: {e}"))
}

fn dur_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The persisted name of a dead reason.
pub fn dead_name(r: DeadReason) -> &'static str {
    match r {
        DeadReason::AttemptsExhausted => "attempts_exhausted",
        DeadReason::Permanent => "permanent",
        DeadReason::StalledTooOften => "stalled_too_often",
    }
}

fn parse_dead(s: &str) -> Result<DeadReason, String> {
    [
        DeadReason::AttemptsExhausted,
        DeadReason::Permanent,
        DeadReason::StalledTooOften,
    ]
    .into_iter()
    .find(|r| dead_name(*r) == s)
    .ok_or_else(|| format!("job record field state.reason: unknown reason {s:?}"))
}

fn jitter_name(j: Jitter) -> &'static str {
    match j {
        Jitter::None => "none",
        Jitter::Full => "full",
        Jitter::Equal => "equal",
        Jitter::Decorrelated => "decorrelated",
        _ => "full",
    }
}

fn parse_jitter(s: &str) -> Result<Jitter, String> {
    match s {
        "none" => Ok(Jitter::None),
        "full" => Ok(Jitter::Full),
        "equal" => Ok(Jitter::Equal),
        "decorrelated" => Ok(Jitter::Decorrelated),
        _ => Err(format!("job record field backoff.jitter: unknown {s:?}")),
    }
}

type Obj = Map<String, Value>;

fn str_field<'a>(o: &'a Obj, k: &str) -> Result<&'a str, String> {
    o.get(k)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("job record field {k} is missing or not a string"))
}

fn opt_str(o: &Obj, k: &str) -> Result<Option<String>, String> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("job record field {k} is not a string")),
    }
}

fn u64_field(o: &Obj, k: &str) -> Result<u64, String> {
    o.get(k)
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("job record field {k} is missing or not an unsigned integer"))
}

fn u32_field(o: &Obj, k: &str) -> Result<u32, String> {
    u32::try_from(u64_field(o, k)?).map_err(|_| format!("job record field {k} is too large"))
}

fn opt_u64(o: &Obj, k: &str) -> Result<Option<u64>, String> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("job record field {k} is not an unsigned integer")),
    }
}

fn time_field(o: &Obj, k: &str) -> Result<Timestamp, String> {
    let n = o
        .get(k)
        .and_then(Value::as_i64)
        .ok_or_else(|| format!("job record field {k} is missing or not an integer"))?;
    from_nanos(n)
}

fn opt_time(o: &Obj, k: &str) -> Result<Option<Timestamp>, String> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .ok_or_else(|| format!("job record field {k} is not an integer"))
            .and_then(from_nanos)
            .map(Some),
    }
}

/// The priority's rank in claim order: 0 for high, 1 normal, 2 low.
pub fn priority_rank(p: JobPriority) -> i64 {
    match p {
        JobPriority::High => 0,
        JobPriority::Normal => 1,
        JobPriority::Low => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mechops_alloc::job::{FailKind, Scheduler, SchedulerConfig};

    #[test]
    fn every_state_round_trips() {
        let at = |ms| Timestamp::from_unix_millis(ms).unwrap();
        let mut s = Scheduler::new(SchedulerConfig::new(4)).unwrap();
        let ids: Vec<JobId> = (1..=5u128)
            .map(|n| JobId::new(Uuid::from_u128(n)))
            .collect();
        for (i, id) in ids.iter().enumerate() {
            let spec = JobSpec::new("h", r#"{"a":[1,2]}"#)
                .with_priority(JobPriority::Low)
                .with_timeout(Duration::from_secs(9))
                .with_unique_key(format!("k{i}"));
            s.submit(*id, spec, at(0)).unwrap();
        }
        let a = s.claim(at(1)).unwrap();
        s.complete(a.id, a.token, "7".into(), at(2)).unwrap();
        let b = s.claim(at(3)).unwrap();
        s.fail(b.id, b.token, "boom".into(), FailKind::Retryable, at(4), 5)
            .unwrap();
        let c = s.claim(at(5)).unwrap();
        s.progress(c.id, c.token, Progress::new(0.5, "half").unwrap(), at(6))
            .unwrap();
        let d = s.claim(at(5)).unwrap();
        s.fail(d.id, d.token, "no".into(), FailKind::Permanent, at(7), 0)
            .unwrap();
        let lc = Lifecycle::default();
        let mut kinds = Vec::new();
        for job in s.jobs() {
            let back = decode(&encode(job), &lc).unwrap();
            assert_eq!(back.to_parts(), job.to_parts());
            // The direct writer gives the same object, key for key.
            let text: Value = serde_json::from_str(&encode_text(job)).unwrap();
            assert_eq!(text, encode(job));
            kinds.push(job.state().kind());
        }
        kinds.sort();
        kinds.dedup();
        assert_eq!(kinds.len(), 5, "{kinds:?}");
    }

    #[test]
    fn damaged_records_are_refused_with_the_field_named() {
        let lc = Lifecycle::default();
        let at = Timestamp::from_unix_millis(0).unwrap();
        let (job, _) = Job::submit(
            JobId::new(Uuid::from_u128(1)),
            JobSpec::new("h", "1"),
            at,
            &lc,
        )
        .unwrap();
        let mut v = encode(&job);
        v["priority"] = "urgent".into();
        assert!(decode(&v, &lc).unwrap_err().contains("priority"));
        let mut v = encode(&job);
        v["attempts"] = 9.into();
        assert!(decode(&v, &lc).unwrap_err().contains("attempt"));
        let mut v = encode(&job);
        v.as_object_mut().unwrap().remove("created_at");
        assert!(decode(&v, &lc).unwrap_err().contains("created_at"));
        assert!(decode(&json!([1]), &lc).is_err());
    }
}
