//! The job store abstraction: what a runtime asks of the place jobs live.
//!
//! A [`Store`] keeps job records and applies the lifecycle of
//! [`mechops_alloc::job`] to them; it decides nothing itself. Each call
//! loads the records it touches, feeds the event to [`Job::handle`] (or
//! [`Job::submit`]), persists what the [`Effects`](mechops_alloc::job::Effects)
//! say, and answers. A store shared between processes applies each event
//! inside the transaction (or script) that loaded the record, so two
//! workers never apply events to the same version of a job.
//!
//! # Why a trait with boxed futures
//!
//! Stores are chosen at run time by URL (`memory://`, `sqlite://PATH`,
//! `redis://HOST:PORT`), so the runtime holds an `Arc<dyn Store>`. An
//! `async fn` in a trait is not object-safe, so every method returns a
//! [`StoreFuture`]: a boxed `Send` future. One allocation per call is small
//! beside what a call does (a lock, a transaction, a round trip), and it
//! keeps the stores independent: adding one is a new type implementing the
//! trait, with no shared enum to edit.
//!
//! # Batches and parked claims
//!
//! Methods added after the first version have default implementations, so
//! every store keeps compiling: [`Store::complete_batch`] (the default
//! calls [`Store::complete`] per item; the memory store takes its lock
//! once, the SQLite store commits the batch in one transaction),
//! [`Store::park_claim`] (the default: no parking, the worker waits on
//! [`Store::work_signal`]) and [`Store::throughput`] (the default: none).
//!
//! # Time and randomness
//!
//! Every method that applies the lifecycle takes `now`, a wall-clock
//! [`Timestamp`] (see the lifecycle's "Time" section: leases are compared
//! across processes), and methods whose transitions may schedule a retry
//! take `random`, the uniform `u64` the backoff jitter needs. The store
//! reads no clock and draws no randomness of its own, so tests drive it
//! with fixed values.
//!
//! # Limits
//!
//! [`ClaimRequest::max`] is the claiming worker's free slots (its global
//! concurrency minus what it runs). [`ClaimRequest::handler_limits`] are
//! store-wide: at most that many jobs of the handler run at once across all
//! workers of the store, counting leases not yet recovered. Claims follow
//! the scheduler's order: highest priority first, then submission order,
//! skipping only handlers at their limit.
//!
//! # Errors
//!
//! A refused event leaves the job unchanged. A report (heartbeat, progress,
//! complete, fail, release, cancel acknowledgement) whose token is no longer
//! the job's current lease is [`StoreError::Fenced`], distinct from every
//! other refusal: the worker lost its lease, and its outcome is discarded.
//!
//! # Cancellation
//!
//! Dropping a returned future before it completes may or may not have
//! applied the call (it may already sit in a committed transaction); it
//! never applies half of it. Callers that must know retry with the same
//! arguments or read the job back with [`Store::status`].

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::time::Duration;
use std::sync::Arc;

use mechops_alloc::job::{
    FailKind, FencingToken, Job, JobId, JobSpec, JobState, Lease, Lifecycle, Progress, Rejected,
    Retention, SpecError, StateKind, Stats,
};
use mechops_core::time::Timestamp;
use tokio::sync::Notify;

/// The future every [`Store`] method returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Settings every store applies to its jobs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreConfig {
    /// Lease length, stall limit and progress interval.
    pub lifecycle: Lifecycle,
    /// How long finished jobs are kept (see [`Store::prune`]).
    pub retention: Retention,
}

/// The name a worker gives itself when claiming, recorded with its leases
/// (for people reading `list`; fencing uses tokens, never this name).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WorkerId(pub String);

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a worker asks for when it claims.
#[derive(Clone, Debug)]
pub struct ClaimRequest {
    /// Who claims.
    pub worker: WorkerId,
    /// The most jobs to claim (the worker's free slots); 0 claims nothing.
    pub max: usize,
    /// Store-wide limits on running jobs per handler name; handlers not
    /// named here have no limit of their own. Each limit is at least 1.
    pub handler_limits: Arc<[(String, usize)]>,
}

/// A job a worker has claimed: what it needs to run one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimedJob {
    /// The job.
    pub id: JobId,
    /// Its handler's name.
    pub handler: String,
    /// Its arguments, one JSON value as text.
    pub args: String,
    /// This attempt's number, from 1.
    pub attempt: u32,
    /// The job's attempt limit.
    pub max_attempts: u32,
    /// The token every report of this attempt carries.
    pub token: FencingToken,
    /// When the lease runs out unless renewed by a heartbeat.
    pub expires_at: Timestamp,
    /// When the attempt times out (start plus the job's timeout), if the
    /// job has one.
    pub deadline: Option<Timestamp>,
}

/// One submission refused inside a bulk submit; the others went in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubmitRefused {
    /// The spec is invalid.
    Spec(SpecError),
    /// A job with this identifier exists already.
    DuplicateId,
    /// A pending job holds the unique key.
    DuplicateKey {
        /// The job holding it.
        existing: JobId,
    },
}

impl fmt::Display for SubmitRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Spec(e) => e.fmt(f),
            Self::DuplicateId => f.write_str("a job with this identifier exists already"),
            Self::DuplicateKey { existing } => {
                write!(f, "unique key is held by pending job {existing}")
            }
        }
    }
}

/// Which finished jobs [`Store::purge`] removes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PurgeFilter {
    /// Only jobs in this state (completed, cancelled or dead); `None`: all
    /// three.
    pub state: Option<StateKind>,
    /// Only jobs that finished before this instant; `None`: any.
    pub finished_before: Option<Timestamp>,
}

/// Percentiles of the time jobs waited between becoming claimable and
/// being claimed, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WaitPercentiles {
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// How many claims were measured.
    pub samples: u64,
}

/// One success for [`Store::complete_batch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The job.
    pub id: JobId,
    /// The attempt's token.
    pub token: FencingToken,
    /// The handler's result, one JSON value as text.
    pub result: String,
}

/// How many jobs completed over a recent window, as [`Store::throughput`]
/// reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Throughput {
    /// The window's length.
    pub window: Duration,
    /// Jobs completed within the window.
    pub completed: u64,
}

impl Throughput {
    /// The window every store reports: the last minute, the scheduler's
    /// [`RATE_WINDOW`](mechops_alloc::job::RATE_WINDOW).
    pub const WINDOW: Duration = mechops_alloc::job::RATE_WINDOW;

    /// Completed jobs per second over the window.
    pub fn per_second(&self) -> f64 {
        let secs = self.window.as_secs_f64();
        if secs > 0.0 {
            self.completed as f64 / secs
        } else {
            0.0
        }
    }
}

/// A claim left with the store by an idle worker (see
/// [`Store::park_claim`]): the store answers it inside the transaction
/// that next makes work claimable in this process, so the job starts right
/// after that transaction's one commit.
///
/// # Cancellation
///
/// [`Self::claimed`] is cancellation-safe: dropping its future leaves the
/// claim parked. [`Self::withdraw`] takes the claim back, or, when the
/// store has already taken it, waits for its answer, so no claimed job is
/// left without its worker. Dropping a `ParkedClaim` withdraws it if the
/// store has not taken it yet; jobs claimed for a dropped one wait for
/// their lease to expire, like those of a dropped worker.
pub struct ParkedClaim {
    answer: tokio::sync::oneshot::Receiver<Result<Vec<ClaimedJob>, StoreError>>,
    /// Removes the claim from the store unless the store took it; says
    /// whether it was removed.
    unpark: Option<Box<dyn FnOnce() -> bool + Send>>,
}

impl fmt::Debug for ParkedClaim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParkedClaim")
            .field("parked", &self.unpark.is_some())
            .finish_non_exhaustive()
    }
}

impl ParkedClaim {
    /// A parked claim answered on `answer`; `unpark` removes it from the
    /// store unless the store has taken it, and says whether it did.
    pub fn new(
        answer: tokio::sync::oneshot::Receiver<Result<Vec<ClaimedJob>, StoreError>>,
        unpark: impl FnOnce() -> bool + Send + 'static,
    ) -> Self {
        Self {
            answer,
            unpark: Some(Box::new(unpark)),
        }
    }

    /// The jobs the store claimed for it, once it has.
    ///
    /// # Errors
    /// The claim's transaction failed, or the store was closed.
    pub async fn claimed(&mut self) -> Result<Vec<ClaimedJob>, StoreError> {
        let r = (&mut self.answer).await;
        self.unpark = None;
        r.unwrap_or(Err(StoreError::Closed))
    }

    /// Takes the claim back: nothing when the store had not taken it, else
    /// the store's answer.
    ///
    /// # Errors
    /// As [`Self::claimed`].
    pub async fn withdraw(mut self) -> Result<Vec<ClaimedJob>, StoreError> {
        if self.unpark.take().is_some_and(|unpark| unpark()) {
            return Ok(Vec::new());
        }
        self.claimed().await
    }
}

impl Drop for ParkedClaim {
    fn drop(&mut self) {
        if let Some(unpark) = self.unpark.take() {
            unpark();
        }
    }
}

/// What [`Store::stats`] reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Counts by state now, and event counters. Counters a store does not
    /// keep across restarts count from when it was opened.
    pub counts: Stats,
    /// Wait-time percentiles of the claims this store has measured, if any.
    pub wait: Option<WaitPercentiles>,
}

impl StoreStats {
    /// Whether nothing is queued, delayed, running or awaiting a retry.
    pub fn is_idle(&self) -> bool {
        let c = &self.counts;
        c.queue_size == 0 && c.delayed == 0 && c.running == 0 && c.retry_scheduled == 0
    }
}

/// A store call that failed or was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No job has this identifier (never submitted, or purged).
    #[error("unknown job {0}")]
    UnknownJob(JobId),
    /// The submission is invalid.
    #[error("{0}")]
    Spec(SpecError),
    /// A job with this identifier exists already.
    #[error("job {0} exists already")]
    DuplicateId(JobId),
    /// A pending job holds the unique key.
    #[error("unique key {key:?} is held by pending job {existing}")]
    DuplicateKey {
        /// The key.
        key: String,
        /// The job holding it.
        existing: JobId,
    },
    /// The worker's token is not the job's current lease, or its lease ran
    /// out: the report is discarded ([`Rejected::StaleToken`] or
    /// [`Rejected::LeaseExpired`]).
    #[error("job {id}: fenced: {rejected}")]
    Fenced {
        /// The job.
        id: JobId,
        /// Which fencing rule refused it.
        rejected: Rejected,
    },
    /// The lifecycle refused the event in the job's state (retrying a
    /// completed job, cancelling a dead one).
    #[error("job {id}: {rejected}")]
    Rejected {
        /// The job.
        id: JobId,
        /// Why.
        rejected: Rejected,
    },
    /// A purge asked for a pending state: only completed, cancelled and
    /// dead jobs are purged.
    #[error("cannot purge {0} jobs: only completed, cancelled and dead jobs are purged")]
    PurgePending(StateKind),
    /// The store's file or database is not a job store, is damaged, or has
    /// a schema this program does not know. It was left untouched.
    #[error("{0}")]
    Corrupt(String),
    /// Another process holds the store locked past the busy timeout.
    #[error("{0}")]
    Locked(String),
    /// The store's URL or settings are unusable.
    #[error("{0}")]
    Config(String),
    /// An I/O failure.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The failure.
        source: std::io::Error,
    },
    /// The backend (database, server) failed.
    #[error("{0}")]
    Backend(String),
    /// The store was closed.
    #[error("the job store is closed")]
    Closed,
}

impl StoreError {
    /// The error for a rejected lifecycle event: [`Self::Fenced`] for the
    /// fencing rules, [`Self::Rejected`] for the others.
    pub fn rejected(id: JobId, rejected: Rejected) -> Self {
        match rejected {
            Rejected::StaleToken { .. } | Rejected::LeaseExpired { .. } => {
                Self::Fenced { id, rejected }
            }
            _ => Self::Rejected { id, rejected },
        }
    }

    /// Whether the caller's input is at fault (an unknown job, a refused
    /// command, a bad store file or URL), as opposed to the system (I/O, a
    /// lock, the backend).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Self::UnknownJob(_)
                | Self::Spec(_)
                | Self::DuplicateId(_)
                | Self::DuplicateKey { .. }
                | Self::Rejected { .. }
                | Self::PurgePending(_)
                | Self::Corrupt(_)
                | Self::Config(_)
        )
    }
}

/// A place jobs live, driven through the lifecycle of
/// [`mechops_alloc::job`]. See the [module docs](self).
pub trait Store: Send + Sync + 'static {
    /// Submits one job under `id` (a version 7 UUID the caller generated).
    /// Refused with [`StoreError::DuplicateKey`] while a pending job holds
    /// its unique key.
    fn submit(&self, id: JobId, spec: JobSpec, now: Timestamp) -> StoreFuture<'_, ()>;

    /// Submits many jobs in one transaction; each is accepted or refused on
    /// its own (a unique key held by an earlier job of the same batch
    /// refuses the later one). The answer has one entry per job, in order.
    fn submit_bulk(
        &self,
        jobs: Vec<(JobId, JobSpec)>,
        now: Timestamp,
    ) -> StoreFuture<'_, Vec<Result<(), SubmitRefused>>>;

    /// Claims up to `request.max` jobs claimable at `now` (due delayed and
    /// retry-scheduled jobs included), in claim order within the limits.
    /// Each gets a new lease and fencing token.
    fn claim(&self, request: &ClaimRequest, now: Timestamp) -> StoreFuture<'_, Vec<ClaimedJob>>;

    /// Leaves a claim with the store until work becomes claimable in this
    /// process (see [`ParkedClaim`]); `request.max` must stay free until it
    /// is answered or withdrawn. `None` (the default) from a store that
    /// cannot: the caller waits on [`Self::work_signal`] and claims.
    fn park_claim(&self, request: &ClaimRequest) -> Option<ParkedClaim> {
        let _ = request;
        None
    }

    /// Renews a lease; returns it as renewed (its `cancel_requested` tells
    /// the worker to stop).
    fn heartbeat(&self, id: JobId, token: FencingToken, now: Timestamp) -> StoreFuture<'_, Lease>;

    /// Writes a running job's progress. The caller throttles (with the
    /// core's `ProgressThrottle`); the store writes every call it gets.
    fn progress(
        &self,
        id: JobId,
        token: FencingToken,
        progress: Progress,
        now: Timestamp,
    ) -> StoreFuture<'_, ()>;

    /// Records a success; `result` is one JSON value as text.
    fn complete(
        &self,
        id: JobId,
        token: FencingToken,
        result: String,
        now: Timestamp,
    ) -> StoreFuture<'_, ()>;

    /// Records many successes, each on its own (a fenced one does not
    /// stop the others); the answer has one entry per item, in order. A
    /// store that batches commits them in one transaction. The default
    /// calls [`Self::complete`] for each.
    fn complete_batch(
        &self,
        items: Vec<Completion>,
        now: Timestamp,
    ) -> StoreFuture<'_, Vec<Result<(), StoreError>>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(items.len());
            for c in items {
                out.push(self.complete(c.id, c.token, c.result, now).await);
            }
            Ok(out)
        })
    }

    /// Records a failure; returns the state it led to (retry scheduled,
    /// dead, or cancelled when a cancel was pending).
    fn fail(
        &self,
        id: JobId,
        token: FencingToken,
        error: String,
        kind: FailKind,
        now: Timestamp,
        random: u64,
    ) -> StoreFuture<'_, JobState>;

    /// Gives a running job back unfinished (graceful shutdown): it is
    /// claimable at once and the attempt does not count.
    fn release(&self, id: JobId, token: FencingToken, now: Timestamp) -> StoreFuture<'_, ()>;

    /// The worker stopped the job after a cancel request.
    fn ack_cancel(&self, id: JobId, token: FencingToken, now: Timestamp) -> StoreFuture<'_, ()>;

    /// Cancels a job: at once unless it is running, else its worker is asked
    /// to stop. Returns the state it led to.
    fn cancel(&self, id: JobId, now: Timestamp) -> StoreFuture<'_, StateKind>;

    /// Queues a dead or retry-scheduled job again with its attempts reset.
    /// Refused with [`StoreError::DuplicateKey`] when another pending job
    /// holds its unique key.
    fn retry(&self, id: JobId, now: Timestamp) -> StoreFuture<'_, ()>;

    /// The job's record.
    fn status(&self, id: JobId) -> StoreFuture<'_, Job>;

    /// Up to `limit` jobs, in the state `state` if given, oldest submission
    /// first.
    fn list(&self, state: Option<StateKind>, limit: usize) -> StoreFuture<'_, Vec<Job>>;

    /// Counts by state and event counters.
    fn stats(&self) -> StoreFuture<'_, StoreStats>;

    /// Jobs completed in the [`Throughput::WINDOW`] before `now`, counted
    /// across every process of the store where it keeps completion times;
    /// `None` from a store that keeps none (the default).
    fn throughput(&self, now: Timestamp) -> StoreFuture<'_, Option<Throughput>> {
        let _ = now;
        Box::pin(core::future::ready(Ok(None)))
    }

    /// Recovers at most `max_batch` jobs whose lease expired at or before
    /// `now` (queued again, timed out, cancelled or dead, as the lifecycle
    /// says); returns how many it handled. Callers loop while it returns
    /// `max_batch`, claiming in between, so a mass recovery never holds up
    /// claims.
    fn recover_expired(
        &self,
        now: Timestamp,
        max_batch: usize,
        random: u64,
    ) -> StoreFuture<'_, usize>;

    /// Removes the finished jobs `filter` selects; returns how many.
    fn purge(&self, filter: PurgeFilter) -> StoreFuture<'_, usize>;

    /// Applies the retention settings at `now`: completed and cancelled
    /// jobs past their age, then the oldest beyond the count. Returns how
    /// many were removed.
    fn prune(&self, now: Timestamp) -> StoreFuture<'_, usize>;

    /// The earliest instant after which something may become claimable or
    /// need recovery without a new submission: a delayed or retry-scheduled
    /// job's ready time, or a lease's expiry. `None` when nothing waits.
    fn next_due(&self) -> StoreFuture<'_, Option<Timestamp>>;

    /// Notified when this store, in this process, made a job claimable
    /// (a submission, a retry, a release, a recovery). Workers wait on it,
    /// on [`Self::next_due`], and on [`Self::poll_interval`].
    fn work_signal(&self) -> Arc<Notify>;

    /// How often a worker should look for work that other processes made
    /// claimable, which [`Self::work_signal`] cannot see; `None` for a store
    /// no other process writes.
    fn poll_interval(&self) -> Option<Duration>;

    /// Flushes and closes the store (the memory store writes its pending
    /// jobs to its file here). Calls after it fail with
    /// [`StoreError::Closed`].
    fn close(&self) -> StoreFuture<'_, ()>;
}
