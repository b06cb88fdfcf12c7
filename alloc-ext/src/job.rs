//! The sans-IO heart of a durable job queue: the job model, its lifecycle as
//! a pure state machine, a progress-write throttle and an in-memory
//! scheduler.
//!
//! Nothing here performs I/O, reads a clock or spawns a task. A store
//! (memory, SQLite, Redis) and a runtime drive these types: they read the
//! clock, feed events in, carry out the [`Effect`]s that come back (persist
//! a record, emit an event to subscribers, wake up at an instant, free a
//! concurrency slot or a unique key) and sleep until the next deadline.
//!
//! - [`Job`] is one job's record and its [`lifecycle`]: every
//!   change goes through [`Job::submit`] or [`Job::handle`], which checks
//!   the event against the state and the fencing token and answers with the
//!   effects, or with a [`Rejected`] that leaves the job untouched.
//! - [`ProgressThrottle`] decides when a progress report is written, so a
//!   handler reporting thousands of times a second costs a few writes.
//! - [`Scheduler`] is the in-memory index over many jobs: claim order,
//!   concurrency limits, unique keys, lease expiry, retention and
//!   statistics. The memory store is a thin driver of it; the SQLite and
//!   Redis stores keep the same order in their own indexes and drive
//!   [`Job`] directly.
//!
//! # States
//!
//! ```text
//!  submit ─────────► Queued ◄─── promote when due ─── Delayed(ready_at) ◄── submit with a delay
//!                     │   ▲  ◄── promote when due ─── RetryScheduled(at) ◄─────────────┐
//!               claim │   │ release (the attempt is given back),                        │
//!                     ▼   │ lease expired before the deadline (a stall)                 │
//!  Running{attempt, lease: token, expires_at, deadline, cancel_requested}               │
//!                     ├── fail (retryable, attempts left), or timed out ────────────────┘
//!                     ├── complete ──────────────────────────────────────► Completed
//!                     ├── fail (permanent or the last attempt),
//!                     │   stalled too often ─────────────────────────────► Dead
//!                     └── cancel acknowledged, or ended after a cancel ──► Cancelled
//!  cancel (queued, delayed, retry-scheduled) ────────────────────────────► Cancelled
//!  retry command (Dead, RetryScheduled) ─────────────────────────────────► Queued, attempts reset
//! ```
//!
//! # Delivery guarantee: at least once
//!
//! A claimed job runs again when its worker dies, hangs or loses its lease
//! before its outcome is recorded: the lease expires and the job is claimed
//! anew (stalled-job recovery). A handler may therefore run more than once
//! for one job, and handlers with side effects must be idempotent. What the
//! lifecycle does guarantee:
//!
//! - a job is never lost: every job is in exactly one state, and only the
//!   retention pruning or an explicit removal forgets a finished one;
//! - a completed job is never run again: `Completed` is final;
//! - at most one lease is valid at any time: a lease is valid while its
//!   fencing token is the job's current one and `now < expires_at`; each
//!   claim issues a new, larger token, and an outcome carrying an older
//!   token is rejected with [`Rejected::StaleToken`] (or
//!   [`Rejected::LeaseExpired`] when its lease ran out), never applied;
//! - the attempt count never exceeds the job's `max_attempts`;
//! - a job that stalls more than [`Lifecycle::max_stalls`] times is dead,
//!   with [`DeadReason::StalledTooOften`] and an event, instead of looping.
//!
//! # Time
//!
//! Every instant in this module is a [`Timestamp`]: wall-clock time. Leases
//! must be comparable across processes (several processes sharing one
//! SQLite file) and machines (many workers on one Redis), which no
//! monotonic clock is; a wall-clock lease deadline is what every process
//! can read. The cost is a clock-skew assumption: machines that share a
//! store keep their clocks within a small fraction of the lease length of
//! each other (NTP gives milliseconds; the default lease is 30 s). A worker
//! whose clock runs ahead may see a lease expire early and recover a job
//! that is still running; the fencing token then rejects the slower
//! worker's outcome, so skew costs a duplicate run, never a lost or
//! overwritten outcome.
//!
//! A driver that never shares its store (the memory store) should pass
//! timestamps that cannot step backwards: the wall clock read once at start,
//! plus the elapsed time of a monotonic clock. The same values then serve
//! both the lease arithmetic and the creation, start and finish times shown
//! to people.
//!
//! ```
//! use mechops_alloc::job::{
//!     FailKind, JobEvent, JobId, JobPriority, JobSpec, JobState, Scheduler, SchedulerConfig,
//! };
//! use mechops_core::time::Timestamp;
//! use mechops_core::uuid::Uuid;
//!
//! let at = |ms| Timestamp::from_unix_millis(ms).unwrap();
//! let mut queue = Scheduler::new(SchedulerConfig::new(2))?;
//! let report = JobId::new(Uuid::from_u128(1));
//! let page = JobId::new(Uuid::from_u128(2));
//! queue.submit(report, JobSpec::new("report", r#"{"month":3}"#), at(0))?;
//! queue.submit(page, JobSpec::new("page", "{}").with_priority(JobPriority::High), at(0))?;
//!
//! // The high-priority job is claimed first; each claim carries a token.
//! let first = queue.claim(at(5)).unwrap();
//! assert_eq!((first.id, first.attempt), (page, 1));
//! let second = queue.claim(at(5)).unwrap();
//! queue.complete(first.id, first.token, "true".into(), at(9))?;
//!
//! // A retryable failure schedules the next attempt after a backoff.
//! let next = queue.fail(second.id, second.token, "timeout".into(), FailKind::Retryable, at(9), 42)?;
//! let JobState::RetryScheduled { at: retry_at } = next else { unreachable!() };
//! assert_eq!(queue.poll_timeout(), Some(retry_at));
//!
//! // Subscribers hear what happened, in order.
//! let events: Vec<_> = std::iter::from_fn(|| queue.poll_event()).collect();
//! assert!(events.contains(&(page, JobEvent::Completed)));
//! assert_eq!(queue.stats().retry_scheduled, 1);
//! # Ok::<(), Box<dyn core::error::Error>>(())
//! ```

pub mod lifecycle;
pub mod model;
mod order;
pub mod progress;
pub mod scheduler;
#[cfg(test)]
mod tests;

pub use lifecycle::{
    DeadReason, Delta, Effect, Effects, Event, FailKind, FencingToken, Job, JobEvent, JobParts,
    JobState, Lease, Lifecycle, ParseStateError, Rejected, RestoreError, StateKind,
};
pub use model::{
    DEFAULT_BACKOFF, JobId, JobPriority, JobSpec, ParsePriorityError, Progress, ProgressError,
    RunAt, SpecError,
};
pub use progress::ProgressThrottle;
pub use scheduler::{
    Claimed, ConfigError, RATE_WINDOW, Retention, Scheduler, SchedulerConfig, SchedulerError, Stats,
};

use core::time::Duration;
use mechops_core::time::Timestamp;

/// `t + d`, saturating at [`Timestamp::MAX`].
fn after(t: Timestamp, d: Duration) -> Timestamp {
    // In seconds and nanoseconds: through `unix_nanos` it takes two 128-bit
    // divisions, on every claim and heartbeat.
    let mut nanos = t.subsec_nanos() + d.subsec_nanos();
    let mut carry = 0;
    if nanos >= 1_000_000_000 {
        nanos -= 1_000_000_000;
        carry = 1;
    }
    i64::try_from(d.as_secs())
        .ok()
        .and_then(|s| t.unix_secs().checked_add(s))
        .and_then(|s| s.checked_add(carry))
        .and_then(|s| Timestamp::from_unix(s, nanos).ok())
        .unwrap_or(Timestamp::MAX)
}

/// `later - earlier`, zero when `later` is not after `earlier` (a clock
/// that stepped back), saturating at `u64::MAX` nanoseconds.
fn elapsed(later: Timestamp, earlier: Timestamp) -> Duration {
    let nanos = later.unix_nanos() - earlier.unix_nanos();
    Duration::from_nanos(u64::try_from(nanos.max(0)).unwrap_or(u64::MAX))
}
