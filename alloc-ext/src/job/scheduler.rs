//! An in-memory index over many jobs: which to claim next, within which
//! limits, and what is due when.
//!
//! [`Scheduler`] owns its [`Job`]s and drives each through its lifecycle;
//! it adds what only a view of all jobs can decide: claim order,
//! concurrency limits, unique keys, lease recovery, retention and
//! statistics. It reads no clock: every call takes `now`.
//!
//! # Order
//!
//! [`Scheduler::claim`] follows the core's
//! [`PriorityQueue`](mechops_core::queue::PriorityQueue) rules, growable:
//! among the jobs claimable at `now`, the highest priority first, and
//! within a priority the one submitted first (a delayed or retried job keeps
//! its submission order). Delayed and retry-scheduled jobs join as soon as
//! they are due.
//!
//! Limits: at most `concurrency` jobs run at once, and a handler with a
//! limit runs at most that many of its jobs. Priority is strict among the
//! jobs that may run: when a slot is free, no lower-priority job is claimed
//! while a higher-priority one could be. A job whose handler is at its
//! limit cannot run, so it does not hold back jobs of other handlers, even
//! lower ones; it runs as soon as its handler has a free slot, before any
//! lower-priority job of that handler.
//!
//! # Calling order
//!
//! A driver loop:
//!
//! 1. read the clock (`now`);
//! 2. feed what arrived: [`submit`](Scheduler::submit), worker reports
//!    ([`heartbeat`](Scheduler::heartbeat),
//!    [`progress`](Scheduler::progress), [`complete`](Scheduler::complete),
//!    [`fail`](Scheduler::fail), [`release`](Scheduler::release),
//!    [`ack_cancel`](Scheduler::ack_cancel)) and commands
//!    ([`cancel`](Scheduler::cancel), [`retry`](Scheduler::retry),
//!    [`remove`](Scheduler::remove));
//! 3. recover expired leases with [`poll_expired`](Scheduler::poll_expired)
//!    in batches (each call does a bounded amount of work, so claims are
//!    never held up behind a mass recovery), then
//!    [`claim`](Scheduler::claim) until it returns `None` and hand the jobs
//!    to workers;
//! 4. drain [`poll_event`](Scheduler::poll_event) to subscribers;
//! 5. now and then [`prune`](Scheduler::prune) finished jobs;
//! 6. sleep until [`poll_timeout`](Scheduler::poll_timeout) or the next
//!    input.
//!
//! # Invariants
//!
//! - Every job has exactly one live item in one index, chosen by its
//!   state: its handler's ready lane of its priority (queued), the timer
//!   index (delayed, retry-scheduled), the lease index (running), the
//!   finished index (completed, cancelled), or none (dead, kept until
//!   removed). The job's entry holds that item's tag; items whose tag is
//!   not their job's are stale and skipped (see the `order` module: removal
//!   is lazy, because a job leaves an index at almost every transition,
//!   usually from its front).
//! - `heads` holds, as its live items, the first ready job of every handler
//!   below its limit.
//! - `running()` equals the number of running jobs. A claim never takes it
//!   above `concurrency`, nor a handler's running count above its limit
//!   (only running jobs taken in by [`Scheduler::restore`] can, until they
//!   end).
//! - A unique key maps to the one pending job holding it.
//! - The state counts in [`Stats`] always equal a count of the jobs.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use hashbrown::HashMap;
use mechops_core::metrics::LocalHistogram;
use mechops_core::time::Timestamp;

use super::lifecycle::{
    Effect, Effects, Event, FailKind, FencingToken, Job, JobEvent, JobState, Lease, Lifecycle,
    Rejected, StateKind,
};
use super::model::{JobId, JobPriority, JobSpec, Progress, SpecError};
use super::order::{Item, LazyIndex};
use super::{after, elapsed};

/// How long finished jobs are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// A completed or cancelled job is pruned this long after it finished
    /// (default 24 hours).
    pub max_age: Duration,
    /// At most this many completed and cancelled jobs are kept; the oldest
    /// go first (default 10,000). Dead jobs are not counted: they are kept
    /// until removed.
    pub max_count: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(24 * 60 * 60),
            max_count: 10_000,
        }
    }
}

/// A scheduler's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// The most jobs running at once (at least 1).
    pub concurrency: usize,
    /// Lease, stall and progress settings for every job.
    pub lifecycle: Lifecycle,
    /// How long finished jobs are kept.
    pub retention: Retention,
}

impl SchedulerConfig {
    /// `concurrency` slots and every other default.
    pub fn new(concurrency: usize) -> Self {
        Self {
            concurrency,
            lifecycle: Lifecycle::default(),
            retention: Retention::default(),
        }
    }
}

/// A setting that cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The concurrency limit was zero: nothing could ever run.
    ZeroConcurrency,
    /// A handler's limit was zero: its jobs could never run.
    ZeroHandlerLimit,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ZeroConcurrency => "job concurrency must be at least 1",
            Self::ZeroHandlerLimit => "a handler's concurrency limit must be at least 1",
        })
    }
}

impl core::error::Error for ConfigError {}

/// A call the scheduler refused; nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SchedulerError {
    /// The submission is invalid.
    Spec(SpecError),
    /// A job with this identifier exists already.
    DuplicateId(JobId),
    /// Another pending job holds the unique key.
    DuplicateKey {
        /// The job holding it.
        existing: JobId,
    },
    /// No job has this identifier (never submitted, or pruned).
    UnknownJob(JobId),
    /// Only completed, cancelled and dead jobs can be removed.
    NotFinished(StateKind),
    /// The job's lifecycle refused the event.
    Rejected(Rejected),
}

impl fmt::Display for SchedulerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Spec(e) => e.fmt(f),
            Self::DuplicateId(id) => write!(f, "job {id} exists already"),
            Self::DuplicateKey { existing } => {
                write!(f, "unique key is held by pending job {existing}")
            }
            Self::UnknownJob(id) => write!(f, "unknown job {id}"),
            Self::NotFinished(state) => write!(f, "cannot remove a {state} job"),
            Self::Rejected(e) => e.fmt(f),
        }
    }
}

impl core::error::Error for SchedulerError {}

impl From<Rejected> for SchedulerError {
    fn from(e: Rejected) -> Self {
        Self::Rejected(e)
    }
}

/// A job handed to a worker by [`Scheduler::claim`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claimed {
    /// The job; read its handler and arguments with [`Scheduler::job`].
    pub id: JobId,
    /// The token the worker presents with every report.
    pub token: FencingToken,
    /// The attempt number, from 1.
    pub attempt: u32,
    /// When the lease runs out unless renewed.
    pub expires_at: Timestamp,
    /// When the attempt times out (start plus the job's timeout), if the
    /// job has one: the worker stops the handler then and reports a
    /// failure.
    pub deadline: Option<Timestamp>,
}

/// Counts of a scheduler's jobs. The first group counts jobs by state now;
/// the second counts events since the scheduler was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Jobs claimable now.
    pub queue_size: usize,
    /// Jobs waiting for their run-at time.
    pub delayed: usize,
    /// Jobs running.
    pub running: usize,
    /// Jobs waiting for a retry after a failed attempt.
    pub retry_scheduled: usize,
    /// Completed jobs still kept.
    pub completed: usize,
    /// Dead jobs.
    pub dead: usize,
    /// Cancelled jobs still kept.
    pub cancelled: usize,
    /// Attempts that ended in failure (failed, timed out, or stalled for
    /// the last time), ever.
    pub failed: u64,
    /// Jobs that completed, ever.
    pub completed_total: u64,
    /// Expired leases recovered by queueing the job again, ever.
    pub stalls_recovered: u64,
    /// Reports refused for a stale token or an expired lease (fenced
    /// workers), ever.
    pub fenced: u64,
    /// Finished jobs removed by retention, ever.
    pub pruned: u64,
}

/// The ready lanes of a handler, one per priority, highest first.
const LANES: usize = 3;

/// The lane of a priority: `Priority` order, highest first.
const fn lane(p: JobPriority) -> usize {
    match p {
        JobPriority::High => 0,
        JobPriority::Normal => 1,
        JobPriority::Low => 2,
    }
}

/// Claim order across handlers: (lane, submission sequence).
type ReadyKey = (u8, u64);

struct HandlerQueue {
    /// Queued jobs by submission sequence, one lane per priority.
    lanes: [LazyIndex<u64>; LANES],
    running: usize,
    limit: Option<usize>,
    /// This handler's item in `heads`, if any.
    head: Option<Item<ReadyKey>>,
}

/// A job and its place in the indexes. The job is boxed: a record is
/// hundreds of bytes, and the table moves every entry when it grows.
struct Entry {
    job: Box<Job>,
    seq: u64,
    handler: u32,
    /// The tag of the job's live index item ([`NO_TAG`] when none).
    tag: u64,
}

/// The tag of no item: never issued.
const NO_TAG: u64 = u64::MAX;

/// Where a job's items go, fixed for its life.
#[derive(Clone, Copy)]
struct Place {
    seq: u64,
    handler: u32,
    lane: usize,
}

impl Entry {
    fn place(&self) -> Place {
        Place {
            seq: self.seq,
            handler: self.handler,
            lane: lane(self.job.spec().priority),
        }
    }
}

/// A job's index item and the index it belongs in.
enum Slot {
    /// Its handler's ready lane of its priority.
    Ready(Item<u64>),
    Timer(Item<(Timestamp, u64)>),
    Lease(Item<Timestamp>),
    Finished(Item<(Timestamp, u64)>),
    /// Dead: in no index.
    None,
}

/// The item `tag` of a job at `place` in `state`, finished at
/// `finished_at` ([`Slot::None`] without a tag).
fn slot(
    id: JobId,
    place: Place,
    tag: u64,
    state: &JobState,
    finished_at: Option<Timestamp>,
) -> Slot {
    if tag == NO_TAG {
        return Slot::None;
    }
    let seq = place.seq;
    match *state {
        JobState::Queued => Slot::Ready(Item { key: seq, id, tag }),
        JobState::Delayed { ready_at: at } | JobState::RetryScheduled { at } => Slot::Timer(Item {
            key: (at, seq),
            id,
            tag,
        }),
        JobState::Running { lease, .. } => Slot::Lease(Item {
            key: lease.expires_at,
            id,
            tag,
        }),
        JobState::Completed | JobState::Cancelled => Slot::Finished(Item {
            key: (finished_at.unwrap_or(Timestamp::MIN), seq),
            id,
            tag,
        }),
        JobState::Dead { .. } => Slot::None,
    }
}

/// Whether a job in `state` has an index item (a dead one has none).
const fn is_indexed(state: &JobState) -> bool {
    !matches!(state, JobState::Dead { .. })
}

/// An in-memory job index. See the [module docs](self).
pub struct Scheduler {
    config: SchedulerConfig,
    jobs: HashMap<JobId, Entry>,
    handlers: Vec<HandlerQueue>,
    handler_ids: HashMap<String, u32>,
    /// The best ready job of every handler below its limit.
    heads: LazyIndex<ReadyKey>,
    /// Delayed and retry-scheduled jobs by (ready time, sequence).
    timers: LazyIndex<(Timestamp, u64)>,
    /// Running jobs by lease expiry.
    leases: LazyIndex<Timestamp>,
    /// Completed and cancelled jobs by (finish time, sequence).
    finished: LazyIndex<(Timestamp, u64)>,
    /// The next index item's tag (unique across every index).
    next_tag: u64,
    unique: HashMap<String, JobId>,
    counts: [usize; StateKind::ALL.len()],
    running: usize,
    next_seq: u64,
    events: VecDeque<(JobId, JobEvent)>,
    record_events: bool,
    stats: Stats,
    wait_times: Box<LocalHistogram>,
    run_times: Box<LocalHistogram>,
    /// Completions per second of the last [`RATE_WINDOW`]: (Unix second,
    /// count), oldest first.
    rate: VecDeque<(i128, u64)>,
}

/// The window [`Scheduler::completed_within_window`] counts over.
pub const RATE_WINDOW: Duration = Duration::from_secs(60);

impl fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scheduler")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Scheduler {
    /// An empty scheduler.
    pub fn new(config: SchedulerConfig) -> Result<Self, ConfigError> {
        if config.concurrency == 0 {
            return Err(ConfigError::ZeroConcurrency);
        }
        Ok(Self {
            config,
            jobs: HashMap::new(),
            handlers: Vec::new(),
            handler_ids: HashMap::new(),
            heads: LazyIndex::default(),
            timers: LazyIndex::default(),
            leases: LazyIndex::default(),
            finished: LazyIndex::default(),
            next_tag: 0,
            unique: HashMap::new(),
            counts: [0; StateKind::ALL.len()],
            running: 0,
            next_seq: 0,
            events: VecDeque::new(),
            record_events: true,
            stats: Stats::default(),
            wait_times: Box::new(LocalHistogram::new()),
            run_times: Box::new(LocalHistogram::new()),
            rate: VecDeque::new(),
        })
    }

    /// The settings.
    pub const fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    /// Limits `handler` to `limit` running jobs (`None`: only the global
    /// limit applies). Running jobs are not stopped by a lower limit; no
    /// more are claimed until the handler is below it.
    pub fn set_handler_limit(
        &mut self,
        handler: &str,
        limit: Option<usize>,
    ) -> Result<(), ConfigError> {
        if limit == Some(0) {
            return Err(ConfigError::ZeroHandlerLimit);
        }
        let h = self.handler_id(handler);
        self.handlers[h as usize].limit = limit;
        self.refresh_head(h);
        Ok(())
    }

    /// Submits a job. Refused, with nothing changed, when the spec is
    /// invalid, the identifier is taken, or a pending job holds its unique
    /// key.
    pub fn submit(
        &mut self,
        id: JobId,
        spec: JobSpec,
        now: Timestamp,
    ) -> Result<Effects, SchedulerError> {
        if self.jobs.contains_key(&id) {
            return Err(SchedulerError::DuplicateId(id));
        }
        if let Some(key) = &spec.unique_key {
            if let Some(&existing) = self.unique.get(key) {
                return Err(SchedulerError::DuplicateKey { existing });
            }
        }
        let (job, effects) =
            Job::submit(id, spec, now, &self.config.lifecycle).map_err(SchedulerError::Spec)?;
        if let Some(key) = &job.spec().unique_key {
            self.unique.insert(key.clone(), id);
        }
        let handler = self.handler_id(&job.spec().handler);
        self.insert_entry(job, handler);
        self.emit(id, &effects);
        Ok(effects)
    }

    /// Takes in a job restored from a store (the memory store loading what
    /// it saved at shutdown). Restore jobs in submission order (by
    /// [`Job::created_at`], or by identifier, since version 7 UUIDs sort by
    /// creation time): it sets their order among equal priorities. A running job keeps its lease and
    /// counts against the limits until it ends or its lease expires, so a
    /// job whose worker is gone is recovered by [`Self::poll_expired`].
    pub fn restore(&mut self, job: Job) -> Result<(), SchedulerError> {
        let id = job.id();
        if self.jobs.contains_key(&id) {
            return Err(SchedulerError::DuplicateId(id));
        }
        let kind = job.state().kind();
        let key = job.spec().unique_key.clone().filter(|_| kind.is_pending());
        if let Some(key) = &key {
            if let Some(&existing) = self.unique.get(key) {
                return Err(SchedulerError::DuplicateKey { existing });
            }
        }
        if let Some(key) = key {
            self.unique.insert(key, id);
        }
        let handler = self.handler_id(&job.spec().handler);
        if kind == StateKind::Running {
            self.running += 1;
            self.handlers[handler as usize].running += 1;
            self.refresh_head(handler);
        }
        self.insert_entry(job, handler);
        Ok(())
    }

    /// Claims the best job claimable at `now` within the limits (see
    /// [Order](self#order)), or `None` when no slot is free or nothing is
    /// ready.
    pub fn claim(&mut self, now: Timestamp) -> Option<Claimed> {
        self.promote_due(now);
        if self.running >= self.config.concurrency {
            return None;
        }
        let id = self.heads.peek()?.id;
        let effects = self.apply(id, Event::Claim, now, 0).ok()?;
        let job = &self.jobs.get(&id)?.job;
        let JobState::Running { attempt, lease } = *job.state() else {
            return None;
        };
        if let Some(wait) = job.wait_time() {
            self.wait_times.record(micros(wait));
        }
        debug_assert!(effects.contains(&Effect::Wake(lease.expires_at)));
        Some(Claimed {
            id,
            token: lease.token,
            attempt,
            expires_at: lease.expires_at,
            deadline: lease.deadline,
        })
    }

    /// Renews a lease; returns it as renewed. A worker reads
    /// [`Lease::cancel_requested`] from it to learn of a cancel.
    pub fn heartbeat(
        &mut self,
        id: JobId,
        token: FencingToken,
        now: Timestamp,
    ) -> Result<Lease, SchedulerError> {
        self.apply(id, Event::Heartbeat { token }, now, 0)?;
        self.state_of(id)
            .lease()
            .copied()
            .ok_or(SchedulerError::UnknownJob(id))
    }

    /// Records progress. Returns whether the throttle lets it be written
    /// now (a store that persists progress writes it then, or at
    /// [`Job::poll_timeout`] otherwise).
    pub fn progress(
        &mut self,
        id: JobId,
        token: FencingToken,
        progress: Progress,
        now: Timestamp,
    ) -> Result<bool, SchedulerError> {
        let fx = self.apply(id, Event::Progress { token, progress }, now, 0)?;
        Ok(fx.iter().any(|e| matches!(e, Effect::Persist(_))))
    }

    /// Records a success.
    pub fn complete(
        &mut self,
        id: JobId,
        token: FencingToken,
        result: String,
        now: Timestamp,
    ) -> Result<(), SchedulerError> {
        self.apply(id, Event::Complete { token, result }, now, 0)
            .map(drop)
    }

    /// Records a failure; returns the state it led to (retry scheduled,
    /// dead, or cancelled when a cancel was pending). `random` drives the
    /// backoff jitter.
    pub fn fail(
        &mut self,
        id: JobId,
        token: FencingToken,
        error: String,
        kind: FailKind,
        now: Timestamp,
        random: u64,
    ) -> Result<JobState, SchedulerError> {
        self.apply(id, Event::Fail { token, error, kind }, now, random)?;
        Ok(*self.state_of(id))
    }

    /// A worker shutting down gives the job back; it is claimable at once
    /// and the attempt does not count.
    pub fn release(
        &mut self,
        id: JobId,
        token: FencingToken,
        now: Timestamp,
    ) -> Result<(), SchedulerError> {
        self.apply(id, Event::Release { token }, now, 0).map(drop)
    }

    /// The worker stopped a job after a cancel request.
    pub fn ack_cancel(
        &mut self,
        id: JobId,
        token: FencingToken,
        now: Timestamp,
    ) -> Result<(), SchedulerError> {
        self.apply(id, Event::AckCancel { token }, now, 0).map(drop)
    }

    /// Cancels a job: at once unless it is running; a running job's worker
    /// is asked to stop (its [`Lease::cancel_requested`] is set, which its
    /// next [heartbeat](Self::heartbeat) returns) and the job is cancelled when it acknowledges or its lease
    /// expires. Returns the state it led to.
    pub fn cancel(&mut self, id: JobId, now: Timestamp) -> Result<StateKind, SchedulerError> {
        self.apply(id, Event::Cancel, now, 0)?;
        Ok(self.state_of(id).kind())
    }

    /// Queues a dead or retry-scheduled job again, attempts reset. Refused
    /// when another pending job holds its unique key.
    pub fn retry(&mut self, id: JobId, now: Timestamp) -> Result<(), SchedulerError> {
        let entry = self.jobs.get(&id).ok_or(SchedulerError::UnknownJob(id))?;
        let key = entry.job.spec().unique_key.clone();
        if let Some(key) = &key {
            if let Some(&existing) = self.unique.get(key) {
                if existing != id {
                    return Err(SchedulerError::DuplicateKey { existing });
                }
            }
        }
        self.apply(id, Event::Retry, now, 0)?;
        if let Some(key) = key {
            self.unique.insert(key, id);
        }
        Ok(())
    }

    /// Recovers at most `max_batch` jobs whose lease expired at or before
    /// `now`, earliest expiry first; returns how many it handled. Each job's
    /// random input for the backoff (a timed-out attempt is retried) is
    /// derived from `random`. Call again while it returns `max_batch`;
    /// claims may be interleaved between batches.
    pub fn poll_expired(&mut self, now: Timestamp, max_batch: usize, random: u64) -> usize {
        let mut handled = 0;
        let mut mix = random;
        while handled < max_batch {
            let Some(&Item {
                key: expires_at,
                id,
                ..
            }) = self.leases.peek()
            else {
                break;
            };
            if expires_at > now {
                break;
            }
            mix = splitmix64(mix);
            if let Ok(fx) = self.apply(id, Event::Expire, now, mix) {
                if fx.events().any(|e| matches!(e, JobEvent::Stalled { .. }))
                    && self.state_of(id).kind() == StateKind::Queued
                {
                    self.stats.stalls_recovered += 1;
                }
            } else {
                // Unreachable by the index invariant; drop the entry
                // rather than loop on it.
                self.leases.forget_first();
            }
            handled += 1;
        }
        handled
    }

    /// The next event this scheduler has for subscribers, oldest first.
    /// Events are kept until drained, so a driver drains them after every
    /// call, whether or not anyone subscribes.
    pub fn poll_event(&mut self) -> Option<(JobId, JobEvent)> {
        self.events.pop_front()
    }

    /// Whether transitions queue events for [`poll_event`](Self::poll_event)
    /// (by default they do). A driver that has no subscribers turns this
    /// off rather than drain events it drops; turning it off drops those
    /// queued.
    pub fn set_record_events(&mut self, on: bool) {
        self.record_events = on;
        if !on {
            self.events.clear();
        }
    }

    /// The earliest instant something becomes due: a delayed or retried job,
    /// a lease expiry, or a finished job's retention age.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let timer = self.timers.peek().map(|t| t.key.0);
        let lease = self.leases.peek().map(|l| l.key);
        let prune = self
            .finished
            .peek()
            .map(|f| after(f.key.0, self.config.retention.max_age));
        [timer, lease, prune].into_iter().flatten().min()
    }

    /// Removes completed and cancelled jobs that finished
    /// `retention.max_age` or more before `now`, then the oldest of them
    /// beyond `retention.max_count`. Returns how many were removed.
    pub fn prune(&mut self, now: Timestamp) -> usize {
        let mut removed = 0;
        while let Some(&Item {
            key: (finished_at, _),
            id,
            ..
        }) = self.finished.peek()
        {
            let too_old = after(finished_at, self.config.retention.max_age) <= now;
            if !too_old && self.finished.live() <= self.config.retention.max_count {
                break;
            }
            if let Some(entry) = self.jobs.remove(&id) {
                self.counts[kind_index(entry.job.state().kind())] -= 1;
            }
            // The front item is the job's own.
            self.finished.forget_first();
            removed += 1;
        }
        self.stats.pruned += removed as u64;
        removed
    }

    /// Removes a completed, cancelled or dead job (purge), handing it back.
    pub fn remove(&mut self, id: JobId) -> Result<Job, SchedulerError> {
        let entry = self.jobs.get(&id).ok_or(SchedulerError::UnknownJob(id))?;
        let kind = entry.job.state().kind();
        if kind.is_pending() {
            return Err(SchedulerError::NotFinished(kind));
        }
        self.unindex(id);
        self.counts[kind_index(kind)] -= 1;
        let entry = self
            .jobs
            .remove(&id)
            .ok_or(SchedulerError::UnknownJob(id))?;
        Ok(*entry.job)
    }

    /// The job with this identifier.
    pub fn job(&self, id: JobId) -> Option<&Job> {
        self.jobs.get(&id).map(|e| &*e.job)
    }

    /// Every job, in no particular order.
    pub fn jobs(&self) -> impl Iterator<Item = &Job> + '_ {
        self.jobs.values().map(|e| &*e.job)
    }

    /// The number of jobs kept, in every state.
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Whether no job is kept.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// The number of jobs running.
    pub const fn running(&self) -> usize {
        self.running
    }

    /// The number of jobs in state `kind`.
    pub const fn count(&self, kind: StateKind) -> usize {
        self.counts[kind_index(kind)]
    }

    /// Whether nothing is queued, delayed, running or awaiting a retry.
    pub fn is_idle(&self) -> bool {
        StateKind::ALL
            .into_iter()
            .all(|k| !k.is_pending() || self.count(k) == 0)
    }

    /// The counts.
    pub fn stats(&self) -> Stats {
        Stats {
            queue_size: self.count(StateKind::Queued),
            delayed: self.count(StateKind::Delayed),
            running: self.running,
            retry_scheduled: self.count(StateKind::RetryScheduled),
            completed: self.count(StateKind::Completed),
            dead: self.count(StateKind::Dead),
            cancelled: self.count(StateKind::Cancelled),
            ..self.stats
        }
    }

    /// How many jobs completed in the [`RATE_WINDOW`] before `now`, counted
    /// in whole seconds (the current second included).
    pub fn completed_within_window(&self, now: Timestamp) -> u64 {
        let first = unix_second(now) - RATE_SECONDS + 1;
        self.rate
            .iter()
            .filter(|(s, _)| *s >= first)
            .map(|(_, n)| n)
            .sum()
    }

    fn count_completion(&mut self, now: Timestamp) {
        let second = unix_second(now);
        match self.rate.back_mut() {
            // A clock that stepped back counts in the latest second.
            Some((s, n)) if *s >= second => *n += 1,
            _ => self.rate.push_back((second, 1)),
        }
        let first = second - RATE_SECONDS + 1;
        while self.rate.front().is_some_and(|(s, _)| *s < first) {
            self.rate.pop_front();
        }
    }

    /// Microseconds from a job becoming claimable to its claim, one value
    /// per claim.
    pub fn wait_times(&self) -> &LocalHistogram {
        &self.wait_times
    }

    /// Microseconds from a claim to the attempt's end (success, failure,
    /// timeout, stall, release, cancel), one value per ended attempt.
    pub fn run_times(&self) -> &LocalHistogram {
        &self.run_times
    }

    fn handler_id(&mut self, name: &str) -> u32 {
        if let Some(&h) = self.handler_ids.get(name) {
            return h;
        }
        // More than 2^32 distinct handler names cannot fit in memory
        // alongside their queues.
        let h = u32::try_from(self.handlers.len()).unwrap_or(u32::MAX);
        self.handlers.push(HandlerQueue {
            lanes: Default::default(),
            running: 0,
            limit: None,
            head: None,
        });
        self.handler_ids.insert(name.into(), h);
        h
    }

    /// Adds a new job under the next submission sequence, counted and
    /// indexed by its state.
    fn insert_entry(&mut self, job: Job, handler: u32) {
        let id = job.id();
        let seq = self.next_seq;
        self.next_seq += 1;
        self.counts[kind_index(job.state().kind())] += 1;
        let state = *job.state();
        let finished = job.finished_at();
        let tag = if is_indexed(&state) {
            self.next_tag += 1;
            self.next_tag - 1
        } else {
            NO_TAG
        };
        let entry = Entry {
            job: Box::new(job),
            seq,
            handler,
            tag,
        };
        let place = entry.place();
        self.jobs.insert(id, entry);
        self.add_item(place, slot(id, place, tag, &state, finished));
    }

    fn state_of(&self, id: JobId) -> &JobState {
        self.jobs
            .get(&id)
            .map_or(&JobState::Queued, |e| e.job.state())
    }

    /// Moves every due delayed or retry-scheduled job to its ready set.
    fn promote_due(&mut self, now: Timestamp) {
        while let Some(&Item {
            key: (at, _), id, ..
        }) = self.timers.peek()
        {
            if at > now {
                break;
            }
            if self.apply(id, Event::Promote, now, 0).is_err() {
                // Unreachable by the index invariant; drop the entry
                // rather than loop on it.
                self.timers.forget_first();
            }
        }
    }

    /// Applies one event to one job, keeping every index, count and limit
    /// in step; on error nothing changes.
    fn apply(
        &mut self,
        id: JobId,
        event: Event,
        now: Timestamp,
        random: u64,
    ) -> Result<Effects, SchedulerError> {
        let fresh_tag = self.next_tag;
        let entry = self
            .jobs
            .get_mut(&id)
            .ok_or(SchedulerError::UnknownJob(id))?;
        let old_state = *entry.job.state();
        let old_finished = entry.job.finished_at();
        let handler = entry.handler;
        // `handle` leaves the job untouched when it refuses the event, so
        // the indexes are only updated on success.
        let effects = match entry.job.handle(event, now, random, &self.config.lifecycle) {
            Ok(fx) => fx,
            Err(e) => {
                if matches!(
                    e,
                    Rejected::StaleToken { .. } | Rejected::LeaseExpired { .. }
                ) {
                    self.stats.fenced += 1;
                }
                return Err(e.into());
            }
        };
        let started_at = entry.job.started_at();
        let new_kind = entry.job.state().kind();
        let old_kind = old_state.kind();
        // A transition that keeps the state and finish time (progress)
        // keeps the job's index item.
        let new_state = *entry.job.state();
        let new_finished = entry.job.finished_at();
        let moved = old_state != new_state || old_finished != new_finished;
        let place = entry.place();
        let new_tag = match (moved, is_indexed(&new_state)) {
            (false, _) => entry.tag,
            (true, true) => fresh_tag,
            (true, false) => NO_TAG,
        };
        let old_tag = core::mem::replace(&mut entry.tag, new_tag);
        if moved {
            if new_tag == fresh_tag {
                self.next_tag += 1;
            }
            self.remove_item(place, slot(id, place, old_tag, &old_state, old_finished));
        }
        if old_kind != new_kind {
            self.counts[kind_index(old_kind)] -= 1;
            self.counts[kind_index(new_kind)] += 1;
            if new_kind == StateKind::Running {
                self.running += 1;
                self.handlers[handler as usize].running += 1;
            }
        }
        for effect in &effects {
            match effect {
                Effect::ReleaseLease => {
                    self.running -= 1;
                    self.handlers[handler as usize].running -= 1;
                    if let Some(started) = started_at {
                        self.run_times.record(micros(elapsed(now, started)));
                    }
                }
                Effect::ReleaseUniqueKey => self.release_key(id),
                Effect::Emit(JobEvent::Completed) => {
                    self.stats.completed_total += 1;
                    self.count_completion(now);
                }
                Effect::Emit(JobEvent::RetryScheduled { .. } | JobEvent::Dead { .. }) => {
                    self.stats.failed += 1;
                }
                Effect::Persist(_) | Effect::Wake(_) | Effect::Emit(_) => {}
            }
        }
        if moved {
            self.add_item(place, slot(id, place, new_tag, &new_state, new_finished));
        }
        self.refresh_head(handler);
        self.emit(id, &effects);
        Ok(effects)
    }

    fn release_key(&mut self, id: JobId) {
        let Some(key) = self
            .jobs
            .get(&id)
            .and_then(|e| e.job.spec().unique_key.as_ref())
        else {
            return;
        };
        if self.unique.get(key) == Some(&id) {
            self.unique.remove(key);
        }
    }

    fn emit(&mut self, id: JobId, effects: &Effects) {
        if !self.record_events {
            return;
        }
        self.events.extend(effects.events().map(|e| (id, e)));
    }

    /// Adds a job's item at `place` to its index.
    fn add_item(&mut self, place: Place, slot: Slot) {
        match slot {
            Slot::Ready(item) => {
                self.handlers[place.handler as usize].lanes[place.lane].push(item);
                self.refresh_head(place.handler);
            }
            Slot::Timer(item) => self.timers.push(item),
            Slot::Lease(item) => self.leases.push(item),
            Slot::Finished(item) => self.finished.push(item),
            Slot::None => {}
        }
    }

    /// Removes a job from the index its state put it in.
    fn unindex(&mut self, id: JobId) {
        let Some(entry) = self.jobs.get_mut(&id) else {
            return;
        };
        let state = *entry.job.state();
        let finished = entry.job.finished_at();
        let place = entry.place();
        let tag = core::mem::replace(&mut entry.tag, NO_TAG);
        self.remove_item(place, slot(id, place, tag, &state, finished));
    }

    /// Removes a job's item at `place` (of its state before a transition)
    /// from its index; the caller has cleared or replaced the tag in the
    /// job's entry.
    fn remove_item(&mut self, place: Place, slot: Slot) {
        match slot {
            Slot::Ready(item) => {
                self.handlers[place.handler as usize].lanes[place.lane].forget(&item);
                self.refresh_head(place.handler);
            }
            Slot::Timer(item) => self.timers.forget(&item),
            Slot::Lease(item) => self.leases.forget(&item),
            Slot::Finished(item) => self.finished.forget(&item),
            Slot::None => {}
        }
    }

    /// Puts a handler's best ready job in `heads` if the handler is below
    /// its limit, and takes it out otherwise.
    fn refresh_head(&mut self, h: u32) {
        let queue = &mut self.handlers[h as usize];
        let below_limit = queue.limit.is_none_or(|l| queue.running < l);
        let want = if below_limit {
            queue
                .lanes
                .iter()
                .zip(0u8..)
                .find_map(|(l, n)| l.peek().map(|i| ((n, i.key), i.id)))
        } else {
            None
        };
        if want == queue.head.map(|i| (i.key, i.id)) {
            return;
        }
        let new = want.map(|(key, id)| Item {
            key,
            id,
            tag: self.next_tag,
        });
        self.next_tag += 1;
        if let Some(old) = core::mem::replace(&mut queue.head, new) {
            self.heads.forget(&old);
        }
        if let Some(new) = new {
            self.heads.push(new);
        }
    }
}

/// [`RATE_WINDOW`] in whole seconds.
const RATE_SECONDS: i128 = RATE_WINDOW.as_secs() as i128;

fn unix_second(t: Timestamp) -> i128 {
    // Seconds are floored, so this is `unix_nanos` divided by 10^9.
    i128::from(t.unix_secs())
}

const fn kind_index(kind: StateKind) -> usize {
    kind as usize
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// A step of the SplitMix64 generator: spreads one random input over many
/// jobs with outputs that are uniform and distinct.
const fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
