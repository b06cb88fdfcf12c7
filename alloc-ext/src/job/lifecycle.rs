//! One job's lifecycle as a pure state machine.
//!
//! [`Job::submit`] creates a job and [`Job::handle`] applies one [`Event`]
//! at `now`, with a random `u64` for the retry jitter. Both answer with the
//! [`Effects`] the driver must carry out; neither performs any. An event
//! that does not fit the job's state, or carries a fencing token that is no
//! longer valid, is answered with a [`Rejected`] and leaves the job exactly
//! as it was.
//!
//! # Calling order
//!
//! 1. `Job::submit(id, spec, now, &lifecycle)`; carry out the effects
//!    (persist the new record, emit, wake at a delayed job's ready time).
//! 2. When the job is due ([`Job::poll_timeout`] has passed), a delayed or
//!    retry-scheduled job may be moved to `Queued` with [`Event::Promote`],
//!    or claimed directly with [`Event::Claim`].
//! 3. `Event::Claim` starts an attempt and issues a new [`FencingToken`];
//!    give it to the worker. The worker's reports come back as
//!    `Heartbeat`, `Progress`, and finally one of `Complete`, `Fail`,
//!    `Release` (graceful shutdown) or `AckCancel`, each with the token.
//! 4. When the lease has run out (`now >= expires_at`), feed
//!    [`Event::Expire`]: the job is recovered (queued again), timed out,
//!    cancelled or dead, as the rules below say.
//! 5. While running, call [`Job::poll_progress`] when the throttle's
//!    deadline (part of [`Job::poll_timeout`]) passes, so the last progress
//!    value is written.
//!
//! A store that shares jobs between processes applies each event inside
//! the same transaction (or Lua script) that loaded the record, so two
//! workers never apply events to the same version.
//!
//! # Rules
//!
//! - Each claim counts one attempt; a graceful [`Event::Release`] gives the
//!   attempt back. Claims happen only while `attempts < max_attempts`.
//! - A retryable failure schedules a retry after
//!   `spec.backoff.delay(attempts - 1, previous delay, random)`; a permanent
//!   failure, or a failure of the last attempt (or one the backoff policy
//!   refuses), makes the job dead.
//! - A lease runs `Lifecycle::lease` from the claim or the last heartbeat,
//!   but never past the attempt's deadline (start + timeout) plus one lease:
//!   heartbeats cannot keep a stuck attempt alive forever. A lease that
//!   expires after the deadline is a timed-out attempt (a retryable
//!   failure); one that expires before is a stall: the job is queued again
//!   at once, unless it has stalled more than `Lifecycle::max_stalls` times
//!   ([`DeadReason::StalledTooOften`]) or that was its last attempt.
//! - A cancel of a queued, delayed or retry-scheduled job cancels it; of a
//!   running job, it sets `cancel_requested` and the job is cancelled when
//!   the worker acknowledges, fails, releases, or its lease expires; of a
//!   completed, dead or cancelled job, it is refused.
//! - [`Event::Retry`] (a command) queues a dead or retry-scheduled job
//!   again with its attempts, stalls and error reset.
//!
//! # Invariants
//!
//! - `attempts <= spec.max_attempts` always, and `attempts <
//!   spec.max_attempts` in every state from which a claim is possible.
//! - `Running { attempt, lease }` has `attempt == attempts` and
//!   `lease.token` equal to the last token issued; tokens only grow.
//! - `Completed`, `Dead` and `Cancelled` have `finished_at`; only the retry
//!   command leaves `Dead`, and nothing leaves `Completed` or `Cancelled`.

use alloc::borrow::ToOwned;
use alloc::string::String;
use core::fmt;
use core::time::Duration;

use mechops_core::time::Timestamp;

use super::model::{JobId, JobSpec, Progress, SpecError};

use super::progress::ProgressThrottle;
use super::{after, elapsed};

/// Settings shared by every job of a queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifecycle {
    /// How long a lease lasts from a claim or a heartbeat (default 30 s).
    /// Workers heartbeat well within it (a third is usual).
    pub lease: Duration,
    /// How many stalls (leases expiring without an outcome) a job survives;
    /// one more makes it dead (default 1).
    pub max_stalls: u32,
    /// The least time between two progress writes of one job (default
    /// 250 ms: four a second).
    pub progress_interval: Duration,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(30),
            max_stalls: 1,
            progress_interval: ProgressThrottle::DEFAULT_INTERVAL,
        }
    }
}

/// The token of one lease. Every claim of a job issues a larger one; an
/// outcome is applied only with the current token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FencingToken(u64);

impl FencingToken {
    /// The token with this number (as a store persisted it).
    pub const fn new(n: u64) -> Self {
        Self(n)
    }

    /// The number.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for FencingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The lease a running attempt holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The token the worker must present.
    pub token: FencingToken,
    /// The lease is valid while `now < expires_at`.
    pub expires_at: Timestamp,
    /// Start plus the job's timeout, if it has one.
    pub deadline: Option<Timestamp>,
    /// A cancel arrived while the attempt ran.
    pub cancel_requested: bool,
}

/// Why a job is dead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeadReason {
    /// The last attempt failed (or timed out, or stalled).
    AttemptsExhausted,
    /// The handler reported a permanent failure.
    Permanent,
    /// The job's leases expired more than `max_stalls` times.
    StalledTooOften,
}

impl DeadReason {
    /// A short lowercase name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AttemptsExhausted => "attempts exhausted",
            Self::Permanent => "permanent failure",
            Self::StalledTooOften => "stalled too often",
        }
    }
}

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    /// Claimable now.
    Queued,
    /// Claimable from `ready_at` (submitted with a delay or run-at time).
    Delayed {
        /// When it becomes claimable.
        ready_at: Timestamp,
    },
    /// An attempt holds a lease.
    Running {
        /// The attempt number, from 1.
        attempt: u32,
        /// The lease.
        lease: Lease,
    },
    /// The handler succeeded. Final.
    Completed,
    /// An attempt failed; the next is claimable from `at`.
    RetryScheduled {
        /// When it becomes claimable.
        at: Timestamp,
    },
    /// No attempt is left; kept until purged.
    Dead {
        /// Why.
        reason: DeadReason,
    },
    /// Cancelled. Final.
    Cancelled,
}

impl JobState {
    /// The state without its data.
    pub const fn kind(&self) -> StateKind {
        match self {
            Self::Queued => StateKind::Queued,
            Self::Delayed { .. } => StateKind::Delayed,
            Self::Running { .. } => StateKind::Running,
            Self::Completed => StateKind::Completed,
            Self::RetryScheduled { .. } => StateKind::RetryScheduled,
            Self::Dead { .. } => StateKind::Dead,
            Self::Cancelled => StateKind::Cancelled,
        }
    }

    /// When a delayed or retry-scheduled job becomes claimable.
    pub const fn ready_at(&self) -> Option<Timestamp> {
        match self {
            Self::Delayed { ready_at: at } | Self::RetryScheduled { at } => Some(*at),
            _ => None,
        }
    }

    /// The lease of a running job.
    pub const fn lease(&self) -> Option<&Lease> {
        match self {
            Self::Running { lease, .. } => Some(lease),
            _ => None,
        }
    }
}

/// The name of a [`JobState`], for listing and filtering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StateKind {
    /// See [`JobState::Queued`].
    Queued,
    /// See [`JobState::Delayed`].
    Delayed,
    /// See [`JobState::Running`].
    Running,
    /// See [`JobState::Completed`].
    Completed,
    /// See [`JobState::RetryScheduled`].
    RetryScheduled,
    /// See [`JobState::Dead`].
    Dead,
    /// See [`JobState::Cancelled`].
    Cancelled,
}

impl StateKind {
    /// Every state, in lifecycle order.
    pub const ALL: [Self; 7] = [
        Self::Queued,
        Self::Delayed,
        Self::Running,
        Self::Completed,
        Self::RetryScheduled,
        Self::Dead,
        Self::Cancelled,
    ];

    /// The snake-case name (`retry_scheduled`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Delayed => "delayed",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::RetryScheduled => "retry_scheduled",
            Self::Dead => "dead",
            Self::Cancelled => "cancelled",
        }
    }

    /// Queued, delayed, running or retry-scheduled: the job will run (again)
    /// without a command, and holds its unique key.
    pub const fn is_pending(self) -> bool {
        matches!(
            self,
            Self::Queued | Self::Delayed | Self::Running | Self::RetryScheduled
        )
    }

    /// Completed or cancelled: the states retention prunes.
    pub const fn is_finished(self) -> bool {
        matches!(self, Self::Completed | Self::Cancelled)
    }
}

impl fmt::Display for StateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state name that [`StateKind::as_str`] does not give.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseStateError;

impl fmt::Display for ParseStateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "job state must be queued, delayed, running, completed, retry_scheduled, dead or cancelled",
        )
    }
}

impl core::error::Error for ParseStateError {}

impl core::str::FromStr for StateKind {
    type Err = ParseStateError;

    /// Parses a name as [`StateKind::as_str`] gives it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or(ParseStateError)
    }
}

/// Whether a failure may be retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailKind {
    /// Try again after the backoff, if attempts are left.
    Retryable,
    /// Never try again: the job is dead.
    Permanent,
}

/// An input to a job's lifecycle.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A delayed or retry-scheduled job has become due.
    Promote,
    /// A worker takes the job: a new attempt, lease and token.
    Claim,
    /// The worker is alive: renew the lease.
    Heartbeat {
        /// The lease's token.
        token: FencingToken,
    },
    /// The handler reported progress.
    Progress {
        /// The lease's token.
        token: FencingToken,
        /// The report.
        progress: Progress,
    },
    /// The handler succeeded.
    Complete {
        /// The lease's token.
        token: FencingToken,
        /// The result, JSON text.
        result: String,
    },
    /// The handler failed.
    Fail {
        /// The lease's token.
        token: FencingToken,
        /// What went wrong.
        error: String,
        /// Whether to retry.
        kind: FailKind,
    },
    /// The worker shuts down gracefully and gives the job back unfinished;
    /// the attempt does not count.
    Release {
        /// The lease's token.
        token: FencingToken,
    },
    /// The worker stopped the attempt after a cancel request.
    AckCancel {
        /// The lease's token.
        token: FencingToken,
    },
    /// A cancel command.
    Cancel,
    /// The lease has run out without an outcome.
    Expire,
    /// A retry command for a dead or retry-scheduled job. A store checks
    /// the job's unique key first: no other pending job may hold it.
    Retry,
}

impl Event {
    /// The event's name, for error messages.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Promote => "promote",
            Self::Claim => "claim",
            Self::Heartbeat { .. } => "heartbeat",
            Self::Progress { .. } => "progress",
            Self::Complete { .. } => "complete",
            Self::Fail { .. } => "fail",
            Self::Release { .. } => "release",
            Self::AckCancel { .. } => "cancel acknowledgement",
            Self::Cancel => "cancel",
            Self::Expire => "lease expiry",
            Self::Retry => "retry",
        }
    }
}

/// An event the lifecycle refused; the job is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejected {
    /// The token is not the job's current lease: the lease expired and the
    /// job was recovered (and perhaps claimed again), or it already ended.
    /// The worker's outcome is discarded; callers report this (a fenced
    /// worker) rather than ignore it.
    StaleToken {
        /// The token the worker presented.
        presented: FencingToken,
        /// The current lease's token, if the job is running.
        current: Option<FencingToken>,
    },
    /// The token is current but its lease ran out at `expired_at`; the job
    /// awaits recovery and the worker must stop.
    LeaseExpired {
        /// The token.
        token: FencingToken,
        /// When the lease ran out.
        expired_at: Timestamp,
    },
    /// The event does not apply in this state.
    InvalidTransition {
        /// The job's state.
        state: StateKind,
        /// The event's name.
        event: &'static str,
    },
    /// The event is for an instant that has not come (promoting a job
    /// before its ready time, expiring a lease before it runs out).
    NotDue {
        /// When it will be due.
        at: Timestamp,
    },
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::StaleToken {
                presented,
                current: Some(current),
            } => write!(
                f,
                "stale lease token {presented}: the job is running under token {current}"
            ),
            Self::StaleToken {
                presented,
                current: None,
            } => write!(
                f,
                "stale lease token {presented}: the job is no longer running under it"
            ),
            Self::LeaseExpired { token, expired_at } => {
                write!(f, "lease {token} expired at {expired_at}")
            }
            Self::InvalidTransition { state, event } => {
                write!(f, "cannot apply {event} to a {state} job")
            }
            Self::NotDue { at } => write!(f, "not due before {at}"),
        }
    }
}

impl core::error::Error for Rejected {}

/// What a persisted record must take in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delta {
    /// A new record: write all of it.
    Inserted,
    /// The state and everything that moves with it: attempts, stalls,
    /// token, times, result, error, progress.
    State,
    /// Only the lease's expiry.
    Lease,
    /// Only the progress and its message.
    Progress,
}

/// What subscribers hear about a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobEvent {
    /// Claimable now (submitted, promoted, recovered).
    Queued,
    /// Submitted with a delay.
    Delayed {
        /// When it becomes claimable.
        until: Timestamp,
    },
    /// An attempt started.
    Started {
        /// The attempt number, from 1.
        attempt: u32,
    },
    /// New progress (read it from the job).
    Progress,
    /// Succeeded.
    Completed,
    /// An attempt failed; another is scheduled.
    RetryScheduled {
        /// The attempt that failed.
        attempt: u32,
        /// When the next becomes claimable.
        at: Timestamp,
    },
    /// The lease expired without an outcome.
    Stalled {
        /// The job's stall count, this one included.
        stalls: u32,
    },
    /// No attempt left.
    Dead {
        /// Why.
        reason: DeadReason,
    },
    /// A cancel reached a running job; its worker has been asked to stop.
    CancelRequested,
    /// Cancelled.
    Cancelled,
    /// Given back by a worker shutting down; claimable now.
    Released,
    /// Queued again by the retry command.
    Retried,
}

/// One thing the driver must do after a transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Write the record (see [`Delta`] for which part).
    Persist(Delta),
    /// Tell subscribers.
    Emit(JobEvent),
    /// Call again at this instant (ready time, lease expiry, progress flush).
    Wake(Timestamp),
    /// The attempt ended: free its concurrency slot and drop the lease from
    /// any expiry index.
    ReleaseLease,
    /// The job is no longer pending: free its unique key.
    ReleaseUniqueKey,
}

/// The most effects one transition produces.
const MAX_EFFECTS: usize = 6;

/// The effects of one transition, in the order to carry them out (persist
/// before emit, so that what subscribers hear is durable).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Effects(heapless::Vec<Effect, MAX_EFFECTS>);

impl Effects {
    fn push(&mut self, effect: Effect) {
        let pushed = self.0.push(effect);
        debug_assert!(
            pushed.is_ok(),
            "a transition has at most {MAX_EFFECTS} effects"
        );
    }

    fn insert(&mut self, index: usize, effect: Effect) {
        let inserted = self.0.insert(index, effect);
        debug_assert!(
            inserted.is_ok(),
            "a transition has at most {MAX_EFFECTS} effects"
        );
    }

    /// The effects as a slice.
    pub fn as_slice(&self) -> &[Effect] {
        &self.0
    }

    /// Iterates over the effects.
    pub fn iter(&self) -> core::slice::Iter<'_, Effect> {
        self.0.iter()
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `effect` is among them.
    pub fn contains(&self, effect: &Effect) -> bool {
        self.0.contains(effect)
    }

    /// The events to emit.
    pub fn events(&self) -> impl Iterator<Item = JobEvent> + '_ {
        self.0.iter().filter_map(|e| match e {
            Effect::Emit(ev) => Some(*ev),
            _ => None,
        })
    }
}

impl<'a> IntoIterator for &'a Effects {
    type Item = &'a Effect;
    type IntoIter = core::slice::Iter<'a, Effect>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// A job: what was submitted, where it is in its life, and what its
/// attempts left behind. See the [module docs](self) for the rules.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    id: JobId,
    spec: JobSpec,
    state: JobState,
    attempts: u32,
    stalls: u32,
    last_token: u64,
    last_retry_delay: Option<Duration>,
    created_at: Timestamp,
    ready_at: Timestamp,
    started_at: Option<Timestamp>,
    finished_at: Option<Timestamp>,
    progress: Option<Progress>,
    result: Option<String>,
    error: Option<String>,
    throttle: ProgressThrottle,
}

impl Job {
    /// A new job, queued or delayed as `spec.run_at` says, with the effects
    /// of its submission.
    pub fn submit(
        id: JobId,
        spec: JobSpec,
        now: Timestamp,
        lifecycle: &Lifecycle,
    ) -> Result<(Self, Effects), SpecError> {
        spec.validate()?;
        let ready_at = spec.run_at.resolve(now);
        let state = if ready_at > now {
            JobState::Delayed { ready_at }
        } else {
            JobState::Queued
        };
        let job = Self {
            id,
            spec,
            state,
            attempts: 0,
            stalls: 0,
            last_token: 0,
            last_retry_delay: None,
            created_at: now,
            ready_at,
            started_at: None,
            finished_at: None,
            progress: None,
            result: None,
            error: None,
            throttle: ProgressThrottle::new(lifecycle.progress_interval),
        };
        let mut effects = Effects::default();
        effects.push(Effect::Persist(Delta::Inserted));
        match state {
            JobState::Delayed { ready_at } => {
                effects.push(Effect::Emit(JobEvent::Delayed { until: ready_at }));
                effects.push(Effect::Wake(ready_at));
            }
            _ => effects.push(Effect::Emit(JobEvent::Queued)),
        }
        Ok((job, effects))
    }

    /// Applies `event` at `now`; `random` is a uniform `u64` for the retry
    /// jitter. On `Err` the job is unchanged.
    pub fn handle(
        &mut self,
        event: Event,
        now: Timestamp,
        random: u64,
        lifecycle: &Lifecycle,
    ) -> Result<Effects, Rejected> {
        let invalid = Rejected::InvalidTransition {
            state: self.state.kind(),
            event: event.name(),
        };
        let mut fx = Effects::default();
        match event {
            Event::Promote => {
                let at = self.state.ready_at().ok_or(invalid)?;
                if now < at {
                    return Err(Rejected::NotDue { at });
                }
                self.state = JobState::Queued;
                fx.push(Effect::Persist(Delta::State));
                fx.push(Effect::Emit(JobEvent::Queued));
            }
            Event::Claim => {
                match self.state {
                    JobState::Queued => {}
                    JobState::Delayed { ready_at: at } | JobState::RetryScheduled { at } => {
                        if now < at {
                            return Err(Rejected::NotDue { at });
                        }
                    }
                    _ => return Err(invalid),
                }
                if self.attempts >= self.spec.max_attempts {
                    return Err(invalid);
                }
                self.attempts += 1;
                self.last_token = self.last_token.saturating_add(1);
                self.started_at = Some(now);
                self.finished_at = None;
                self.progress = None;
                self.throttle.reset();
                let lease = Lease {
                    token: FencingToken(self.last_token),
                    expires_at: after(now, lifecycle.lease),
                    deadline: self.spec.timeout.map(|t| after(now, t)),
                    cancel_requested: false,
                };
                self.state = JobState::Running {
                    attempt: self.attempts,
                    lease,
                };
                fx.push(Effect::Persist(Delta::State));
                fx.push(Effect::Emit(JobEvent::Started {
                    attempt: self.attempts,
                }));
                fx.push(Effect::Wake(lease.expires_at));
            }
            Event::Heartbeat { token } => {
                let lease = self.valid_lease(token, now)?;
                let mut expires_at = after(now, lifecycle.lease);
                if let Some(deadline) = lease.deadline {
                    expires_at = expires_at.min(after(deadline, lifecycle.lease));
                }
                // A heartbeat never shortens a lease.
                let expires_at = expires_at.max(lease.expires_at);
                if let JobState::Running { lease, .. } = &mut self.state {
                    lease.expires_at = expires_at;
                }
                fx.push(Effect::Persist(Delta::Lease));
                fx.push(Effect::Wake(expires_at));
            }
            Event::Progress { token, progress } => {
                self.valid_lease(token, now)?;
                self.progress = Some(progress);
                if self.throttle.handle_report(now) {
                    fx.push(Effect::Persist(Delta::Progress));
                } else if let Some(at) = self.throttle.poll_timeout() {
                    fx.push(Effect::Wake(at));
                }
                fx.push(Effect::Emit(JobEvent::Progress));
            }
            Event::Complete { token, result } => {
                self.valid_lease(token, now)?;
                self.state = JobState::Completed;
                self.result = Some(result);
                self.error = None;
                self.finish(now, &mut fx, JobEvent::Completed, true);
            }
            Event::Fail { token, error, kind } => {
                let lease = self.valid_lease(token, now)?;
                if lease.cancel_requested {
                    self.error = Some(error);
                    self.cancel(now, &mut fx, true);
                } else {
                    self.fail_attempt(error, kind, now, random, &mut fx);
                }
            }
            Event::Release { token } => {
                let lease = self.valid_lease(token, now)?;
                if lease.cancel_requested {
                    self.cancel(now, &mut fx, true);
                } else {
                    self.attempts -= 1;
                    self.state = JobState::Queued;
                    self.ready_at = now;
                    self.throttle.reset();
                    fx.push(Effect::Persist(Delta::State));
                    fx.push(Effect::Emit(JobEvent::Released));
                    fx.push(Effect::ReleaseLease);
                }
            }
            Event::AckCancel { token } => {
                let lease = self.valid_lease(token, now)?;
                if !lease.cancel_requested {
                    return Err(invalid);
                }
                self.cancel(now, &mut fx, true);
            }
            Event::Cancel => match self.state {
                JobState::Queued | JobState::Delayed { .. } | JobState::RetryScheduled { .. } => {
                    self.cancel(now, &mut fx, false);
                }
                JobState::Running { ref mut lease, .. } => {
                    if !lease.cancel_requested {
                        lease.cancel_requested = true;
                        fx.push(Effect::Persist(Delta::State));
                        fx.push(Effect::Emit(JobEvent::CancelRequested));
                    }
                }
                _ => return Err(invalid),
            },
            Event::Expire => {
                let JobState::Running { lease, .. } = self.state else {
                    return Err(invalid);
                };
                if now < lease.expires_at {
                    return Err(Rejected::NotDue {
                        at: lease.expires_at,
                    });
                }
                if lease.cancel_requested {
                    self.cancel(now, &mut fx, true);
                } else if lease.deadline.is_some_and(|d| now >= d) {
                    let timeout = self.spec.timeout.unwrap_or_default();
                    let error = alloc::format!("attempt timed out after {timeout:?}");
                    self.fail_attempt(error, FailKind::Retryable, now, random, &mut fx);
                } else {
                    self.stall(now, lifecycle, &mut fx);
                }
            }
            Event::Retry => {
                if !matches!(
                    self.state,
                    JobState::Dead { .. } | JobState::RetryScheduled { .. }
                ) {
                    return Err(invalid);
                }
                self.state = JobState::Queued;
                self.attempts = 0;
                self.stalls = 0;
                self.last_retry_delay = None;
                self.ready_at = now;
                self.finished_at = None;
                self.progress = None;
                self.result = None;
                self.error = None;
                fx.push(Effect::Persist(Delta::State));
                fx.push(Effect::Emit(JobEvent::Retried));
            }
        }
        Ok(fx)
    }

    /// Rebuilds a job from the fields a store persisted, checking the
    /// lifecycle's invariants so that a damaged record is refused rather
    /// than driven into an impossible state.
    pub fn restore(parts: JobParts, lifecycle: &Lifecycle) -> Result<Self, RestoreError> {
        let p = parts;
        p.spec.validate().map_err(RestoreError::Spec)?;
        let kind = p.state.kind();
        let bad = |why| Err(RestoreError::Inconsistent(why));
        if p.attempts > p.spec.max_attempts {
            return bad("more attempts than max_attempts");
        }
        match p.state {
            JobState::Queued | JobState::Delayed { .. } | JobState::RetryScheduled { .. }
                if p.attempts >= p.spec.max_attempts =>
            {
                return bad("a claimable job with no attempt left");
            }
            JobState::Running { attempt, lease } => {
                if attempt == 0 || attempt != p.attempts {
                    return bad("a running attempt number that differs from the attempt count");
                }
                if lease.token.0 != p.last_token || p.last_token == 0 {
                    return bad("a running lease whose token is not the last one issued");
                }
            }
            _ => {}
        }
        if !kind.is_pending() && p.finished_at.is_none() {
            return bad("a finished job without a finish time");
        }
        Ok(Self {
            id: p.id,
            spec: p.spec,
            state: p.state,
            attempts: p.attempts,
            stalls: p.stalls,
            last_token: p.last_token,
            last_retry_delay: p.last_retry_delay,
            created_at: p.created_at,
            ready_at: p.ready_at,
            started_at: p.started_at,
            finished_at: p.finished_at,
            progress: p.progress,
            result: p.result,
            error: p.error,
            throttle: ProgressThrottle::new(lifecycle.progress_interval),
        })
    }

    /// The fields a store persists; [`Job::restore`] takes them back.
    pub fn to_parts(&self) -> JobParts {
        JobParts {
            id: self.id,
            spec: self.spec.clone(),
            state: self.state,
            attempts: self.attempts,
            stalls: self.stalls,
            last_token: self.last_token,
            last_retry_delay: self.last_retry_delay,
            created_at: self.created_at,
            ready_at: self.ready_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            progress: self.progress.clone(),
            result: self.result.clone(),
            error: self.error.clone(),
        }
    }

    /// Whether the held progress report must be written at `now`; when it
    /// returns `Some`, carry out the effect.
    pub fn poll_progress(&mut self, now: Timestamp) -> Option<Effect> {
        (self.state.kind() == StateKind::Running && self.throttle.poll_write(now))
            .then_some(Effect::Persist(Delta::Progress))
    }

    /// The next instant this job needs attention: its ready time when
    /// delayed or retry-scheduled; when running, the earlier of its lease
    /// expiry and the held progress write.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        match &self.state {
            JobState::Running { lease, .. } => Some(match self.throttle.poll_timeout() {
                Some(flush) => flush.min(lease.expires_at),
                None => lease.expires_at,
            }),
            state => state.ready_at(),
        }
    }

    fn valid_lease(&self, token: FencingToken, now: Timestamp) -> Result<Lease, Rejected> {
        match self.state {
            JobState::Running { lease, .. } if lease.token == token => {
                if now >= lease.expires_at {
                    Err(Rejected::LeaseExpired {
                        token,
                        expired_at: lease.expires_at,
                    })
                } else {
                    Ok(lease)
                }
            }
            JobState::Running { lease, .. } => Err(Rejected::StaleToken {
                presented: token,
                current: Some(lease.token),
            }),
            _ => Err(Rejected::StaleToken {
                presented: token,
                current: None,
            }),
        }
    }

    /// The common end of every final or dead state.
    fn finish(&mut self, now: Timestamp, fx: &mut Effects, event: JobEvent, had_lease: bool) {
        self.finished_at = Some(now);
        self.throttle.reset();
        fx.push(Effect::Persist(Delta::State));
        fx.push(Effect::Emit(event));
        if had_lease {
            fx.push(Effect::ReleaseLease);
        }
        if self.spec.unique_key.is_some() {
            fx.push(Effect::ReleaseUniqueKey);
        }
    }

    fn cancel(&mut self, now: Timestamp, fx: &mut Effects, had_lease: bool) {
        self.state = JobState::Cancelled;
        self.finish(now, fx, JobEvent::Cancelled, had_lease);
    }

    fn dead(&mut self, reason: DeadReason, now: Timestamp, fx: &mut Effects) {
        self.state = JobState::Dead { reason };
        self.finish(now, fx, JobEvent::Dead { reason }, true);
    }

    /// A failed attempt of a running job.
    fn fail_attempt(
        &mut self,
        error: String,
        kind: FailKind,
        now: Timestamp,
        random: u64,
        fx: &mut Effects,
    ) {
        self.error = Some(error);
        if kind == FailKind::Permanent {
            return self.dead(DeadReason::Permanent, now, fx);
        }
        if self.attempts >= self.spec.max_attempts {
            return self.dead(DeadReason::AttemptsExhausted, now, fx);
        }
        let retry = self.attempts - 1;
        let Some(delay) = self
            .spec
            .backoff
            .delay(retry, self.last_retry_delay, random)
        else {
            return self.dead(DeadReason::AttemptsExhausted, now, fx);
        };
        let at = after(now, delay);
        self.last_retry_delay = Some(delay);
        self.state = JobState::RetryScheduled { at };
        self.ready_at = at;
        self.throttle.reset();
        fx.push(Effect::Persist(Delta::State));
        fx.push(Effect::Emit(JobEvent::RetryScheduled {
            attempt: self.attempts,
            at,
        }));
        fx.push(Effect::ReleaseLease);
        fx.push(Effect::Wake(at));
    }

    /// A lease that expired before the attempt's deadline.
    fn stall(&mut self, now: Timestamp, lifecycle: &Lifecycle, fx: &mut Effects) {
        self.stalls = self.stalls.saturating_add(1);
        if self.stalls > lifecycle.max_stalls {
            self.error = Some("stalled too often: its lease expired without an outcome".to_owned());
            self.dead(DeadReason::StalledTooOften, now, fx);
        } else if self.attempts >= self.spec.max_attempts {
            self.error = Some("the last attempt's lease expired without an outcome".to_owned());
            self.dead(DeadReason::AttemptsExhausted, now, fx);
        } else {
            self.state = JobState::Queued;
            self.ready_at = now;
            self.throttle.reset();
            fx.push(Effect::Persist(Delta::State));
            fx.push(Effect::Emit(JobEvent::Queued));
            fx.push(Effect::ReleaseLease);
        }
        // Right after the write, before the outcome's own event.
        fx.insert(
            1,
            Effect::Emit(JobEvent::Stalled {
                stalls: self.stalls,
            }),
        );
    }

    /// The identifier.
    pub const fn id(&self) -> JobId {
        self.id
    }

    /// What was submitted.
    pub const fn spec(&self) -> &JobSpec {
        &self.spec
    }

    /// The state.
    pub const fn state(&self) -> &JobState {
        &self.state
    }

    /// Attempts started and not given back.
    pub const fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Leases that expired without an outcome.
    pub const fn stalls(&self) -> u32 {
        self.stalls
    }

    /// The last fencing token issued (0 before the first claim).
    pub const fn last_token(&self) -> FencingToken {
        FencingToken(self.last_token)
    }

    /// The delay before the last scheduled retry (the backoff's `previous`).
    pub const fn last_retry_delay(&self) -> Option<Duration> {
        self.last_retry_delay
    }

    /// When the job was submitted.
    pub const fn created_at(&self) -> Timestamp {
        self.created_at
    }

    /// When the job last became (or becomes) claimable: submission, run-at
    /// time, retry time, recovery or release.
    pub const fn ready_at(&self) -> Timestamp {
        self.ready_at
    }

    /// When the latest attempt started.
    pub const fn started_at(&self) -> Option<Timestamp> {
        self.started_at
    }

    /// When the job completed, died or was cancelled.
    pub const fn finished_at(&self) -> Option<Timestamp> {
        self.finished_at
    }

    /// The latest progress of the current or last attempt.
    pub const fn progress(&self) -> Option<&Progress> {
        self.progress.as_ref()
    }

    /// The result of a completed job.
    pub fn result(&self) -> Option<&str> {
        self.result.as_deref()
    }

    /// The error of the last failed attempt.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// How long the job waited between becoming claimable and starting its
    /// current attempt (`None` unless running).
    pub fn wait_time(&self) -> Option<Duration> {
        match self.state {
            JobState::Running { .. } => self.started_at.map(|s| elapsed(s, self.ready_at)),
            _ => None,
        }
    }

    /// How long the last attempt ran, once the job has finished.
    pub fn run_time(&self) -> Option<Duration> {
        Some(elapsed(self.finished_at?, self.started_at?))
    }
}

/// A job's persisted fields, as [`Job::to_parts`] gives them and
/// [`Job::restore`] takes them. The progress throttle is not persisted: a
/// restored job starts with a fresh one.
#[derive(Clone, Debug, PartialEq)]
pub struct JobParts {
    /// See [`Job::id`].
    pub id: JobId,
    /// See [`Job::spec`].
    pub spec: JobSpec,
    /// See [`Job::state`].
    pub state: JobState,
    /// See [`Job::attempts`].
    pub attempts: u32,
    /// See [`Job::stalls`].
    pub stalls: u32,
    /// The number of the last fencing token issued (0 before any claim).
    pub last_token: u64,
    /// See [`Job::last_retry_delay`].
    pub last_retry_delay: Option<Duration>,
    /// See [`Job::created_at`].
    pub created_at: Timestamp,
    /// See [`Job::ready_at`].
    pub ready_at: Timestamp,
    /// See [`Job::started_at`].
    pub started_at: Option<Timestamp>,
    /// See [`Job::finished_at`].
    pub finished_at: Option<Timestamp>,
    /// See [`Job::progress`].
    pub progress: Option<Progress>,
    /// See [`Job::result`].
    pub result: Option<String>,
    /// See [`Job::error`].
    pub error: Option<String>,
}

/// A persisted job that cannot be restored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RestoreError {
    /// The submission itself is invalid.
    Spec(SpecError),
    /// The fields contradict the lifecycle's invariants.
    Inconsistent(&'static str),
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Spec(e) => write!(f, "stored job is invalid: {e}"),
            Self::Inconsistent(why) => write!(f, "stored job is inconsistent: {why}"),
        }
    }
}

impl core::error::Error for RestoreError {}
