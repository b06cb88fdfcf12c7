//! The job runtime: a [`Queue`] to submit and inspect jobs, and a
//! [`Worker`] that claims them from a [`Store`] and runs their handlers.
//!
//! The worker is a loop around the store, which drives the lifecycle of
//! [`mechops_alloc::job`]: read the clock once, send the store the last
//! round's completions, recover one batch of expired leases, apply the
//! retention settings (at most once a second) and claim up to the free
//! slots (a store that batches commits these four in one transaction),
//! start the claimed jobs' attempts, then sleep until a task ends, the
//! store signals new work, the next due instant ([`Store::next_due`]) or
//! the store's poll interval. While it sleeps, a store that can holds a
//! claim for its free slots ([`Store::park_claim`]) and answers it in the
//! transaction that makes the next job claimable. No decision (order,
//! limits, retries, fencing) is taken here.
//!
//! # An attempt
//!
//! The worker polls each claimed job's handler once, in its own task and
//! in claim order. A handler that finishes at that poll (a no-op, a quick
//! computation) costs no task and no timer; its success is recorded with
//! the others of its round in one [`Store::complete_batch`] call, before
//! the next claim. A handler that finishes at its first poll has started
//! and ended inside the worker's loop: one that computes for long before
//! its first `.await` holds up claiming, as it would hold up a tokio
//! worker thread anyway; such work belongs in `spawn_blocking`.
//!
//! A handler still pending after its first poll continues in its own
//! task: its future, polled inside a loop that also
//! - heartbeats the lease every [`WorkerConfig::heartbeat`], and stops the
//!   handler when the store says the lease is lost (fenced, with an event)
//!   or a cancel was requested;
//! - stops the handler at the attempt's deadline (the job's timeout) and
//!   records a retryable failure;
//! - writes progress at the rate the core's [`ProgressThrottle`] allows
//!   (the last value always), while every report reaches subscribers at
//!   once;
//! - on a hard shutdown (the grace period is over), stops the handler and
//!   releases the lease, so another worker takes the job at once.
//!
//! Stopping a handler means cancelling its [`JobContext::cancel_token`]
//! and then dropping its future. A handler that panics fails its attempt
//! (retryable); the worker keeps going. A job whose handler is not
//! registered is failed permanently (dead) with a message naming the
//! handler; the worker keeps going.
//!
//! # Time
//!
//! Deadlines the worker sleeps on are [`TokioClock`] instants, so
//! `tokio::time::pause` drives them in tests. The lifecycle's times are
//! wall-clock [`Timestamp`]s from a [`JobClock`].
//!
//! # Delivery
//!
//! At least once: a handler may run again for a job whose worker died or
//! lost its lease before recording the outcome (see the lifecycle).

use core::future::Future;
use core::panic::AssertUnwindSafe;
use core::pin::Pin;
use core::task::Poll;
use core::time::Duration;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use mechops_alloc::job::{
    FailKind, FencingToken, Job, JobId, JobSpec, Progress, ProgressError, ProgressThrottle,
    StateKind,
};
use mechops_core::time::{Instant, MonotonicClock, Timestamp};
use serde_json::Value;
use tokio::sync::{Notify, broadcast};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::store::{
    ClaimRequest, ClaimedJob, Completion, Store, StoreError, StoreStats, Throughput, WorkerId,
};
use crate::clock::TokioClock;

/// The wall clock the lifecycle's times come from.
#[derive(Clone, Copy, Debug)]
pub enum JobClock {
    /// The system clock: for stores shared between processes, whose leases
    /// every process must read alike.
    System,
    /// The system time read once at creation plus the elapsed time of a
    /// [`TokioClock`]: never steps backwards, and follows tokio's paused
    /// time in tests. For stores no other process shares.
    Anchored {
        /// The wall time at `clock`'s origin.
        wall: Timestamp,
        /// The monotonic clock.
        clock: TokioClock,
    },
}

impl JobClock {
    /// An anchored clock starting now.
    pub fn anchored() -> Self {
        Self::Anchored {
            wall: mechops_std::clock::now(),
            clock: TokioClock::new(),
        }
    }

    /// The current wall time.
    pub fn now(&self) -> Timestamp {
        match self {
            Self::System => mechops_std::clock::now(),
            Self::Anchored { wall, clock } => {
                let nanos = i128::from(clock.now().as_nanos());
                Timestamp::from_unix_nanos(wall.unix_nanos().saturating_add(nanos))
                    .unwrap_or(Timestamp::MAX)
            }
        }
    }

    /// The monotonic instant at which wall time `at` falls, on `mono`.
    fn to_instant(self, at: Timestamp, mono: &TokioClock) -> Instant {
        let now_wall = self.now();
        let now = mono.now();
        let ahead = at.unix_nanos() - now_wall.unix_nanos();
        if ahead <= 0 {
            return now;
        }
        now.checked_add(Duration::from_nanos(
            u64::try_from(ahead).unwrap_or(u64::MAX),
        ))
        .unwrap_or(Instant::MAX)
    }
}

/// Why a handler did not succeed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// Try again after the backoff, if attempts are left.
    #[error("{0}")]
    Retryable(String),
    /// Never try again: the job is dead.
    #[error("{0}")]
    Permanent(String),
}

/// What a handler gets: its job's arguments and attempt, a way to report
/// progress, and a cancellation signal.
#[derive(Debug)]
pub struct JobContext {
    id: JobId,
    args: Value,
    attempt: u32,
    max_attempts: u32,
    shared: Arc<AttemptShared>,
}

/// What an attempt's handler shares with the worker: one allocation per
/// attempt, and nothing to lock or notify for a handler that never
/// reports progress.
#[derive(Debug, Default)]
struct AttemptShared {
    /// Made by the first of the handler asking for it and the worker
    /// cancelling it: a handler that never asks and ends at its first poll
    /// (the usual no-op or quick job) costs no token. Both sides get the
    /// same token through the `OnceLock`, so a cancel is never missed.
    cancel: OnceLock<CancellationToken>,
    /// The latest progress report and how many there were.
    progress: std::sync::Mutex<(u64, Option<Progress>)>,
    /// Woken (one stored permit) at each report.
    reported: Notify,
}

impl AttemptShared {
    /// The latest report, if there was one after the `seen`-th; updates
    /// `seen`.
    fn report_after(&self, seen: &mut u64) -> Option<Progress> {
        let g = self.progress.lock().ok()?;
        if g.0 == *seen {
            return None;
        }
        *seen = g.0;
        g.1.clone()
    }

    fn latest(&self) -> Option<Progress> {
        self.progress.lock().ok()?.1.clone()
    }
}

impl JobContext {
    /// The job.
    pub fn id(&self) -> JobId {
        self.id
    }

    /// The arguments.
    pub fn args(&self) -> &Value {
        &self.args
    }

    /// This attempt's number, from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The job's attempt limit.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// Reports progress: `fraction` from 0 to 1 and a message. Subscribers
    /// hear every report; the store gets them at a throttled rate, the last
    /// one always.
    ///
    /// # Errors
    /// `fraction` is outside 0 to 1, or NaN.
    pub fn progress(&self, fraction: f64, message: impl Into<String>) -> Result<(), ProgressError> {
        let p = Progress::new(fraction, message)?;
        if let Ok(mut g) = self.shared.progress.lock() {
            g.0 += 1;
            g.1 = Some(p);
        }
        self.shared.reported.notify_one();
        Ok(())
    }

    /// Cancelled when the handler must stop: a cancel command, a lost
    /// lease, the attempt's timeout, or the worker's hard shutdown. A
    /// handler that ignores it is dropped at its next `.await`.
    pub fn cancel_token(&self) -> &CancellationToken {
        self.shared.cancel.get_or_init(CancellationToken::new)
    }
}

type HandlerFuture = Pin<Box<dyn Future<Output = Result<Value, JobError>> + Send>>;
type HandlerFn = Arc<dyn Fn(JobContext) -> HandlerFuture + Send + Sync>;

/// Handlers by name.
#[derive(Clone, Default)]
pub struct Handlers {
    map: HashMap<String, HandlerFn>,
}

impl core::fmt::Debug for Handlers {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_set().entries(self.map.keys()).finish()
    }
}

impl Handlers {
    /// No handlers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `handler` under `name`, replacing any handler of that name.
    pub fn register<F, Fut>(&mut self, name: impl Into<String>, handler: F) -> &mut Self
    where
        F: Fn(JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, JobError>> + Send + 'static,
    {
        self.map
            .insert(name.into(), Arc::new(move |ctx| Box::pin(handler(ctx))));
        self
    }

    /// Whether a handler of that name is registered.
    pub fn contains(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }
}

/// What subscribers hear.
#[derive(Clone, Debug, PartialEq)]
pub enum QueueEventKind {
    /// Submitted through this queue.
    Submitted,
    /// An attempt started in this process.
    Started {
        /// The attempt, from 1.
        attempt: u32,
    },
    /// The handler reported progress.
    Progress {
        /// From 0 to 1.
        fraction: f64,
        /// The message.
        message: String,
    },
    /// Succeeded, with the result.
    Completed {
        /// The handler's result.
        result: Arc<Value>,
    },
    /// The attempt failed and the job left running: retry scheduled, dead
    /// or cancelled, as `state` says.
    Failed {
        /// What went wrong.
        error: String,
        /// The state the failure led to.
        state: StateKind,
    },
    /// Stopped after a cancel request.
    Cancelled,
    /// Given back by a worker shutting down.
    Released,
    /// The store refused the worker's report: its lease was lost (expired
    /// and perhaps taken by another worker). The outcome was discarded.
    Fenced {
        /// The store's message.
        reason: String,
    },
    /// Recovered expired leases (a count, not a job's event: `id` is nil).
    Recovered {
        /// How many leases.
        count: usize,
    },
}

/// One event about one job.
#[derive(Clone, Debug, PartialEq)]
pub struct QueueEvent {
    /// The job.
    pub id: JobId,
    /// What happened.
    pub kind: QueueEventKind,
}

/// A handle to a store for submitting and inspecting jobs, and the event
/// channel subscribers listen on. Cheap to clone.
#[derive(Clone)]
pub struct Queue {
    store: Arc<dyn Store>,
    clock: JobClock,
    events: broadcast::Sender<QueueEvent>,
    /// Set by the first `subscribe`, never cleared: asking the channel for
    /// its receiver count takes its lock, twice per job.
    subscribed: Arc<OnceLock<()>>,
}

impl core::fmt::Debug for Queue {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Queue")
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl Queue {
    /// A queue on `store` reading time from `clock`.
    pub fn new(store: Arc<dyn Store>, clock: JobClock) -> Self {
        let (events, _) = broadcast::channel(4096);
        Self {
            store,
            clock,
            events,
            subscribed: Arc::new(OnceLock::new()),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The clock.
    pub fn clock(&self) -> JobClock {
        self.clock
    }

    /// Events from this queue and its workers in this process. A receiver
    /// that falls more than 4,096 events behind loses the oldest
    /// (`RecvError::Lagged`).
    pub fn subscribe(&self) -> broadcast::Receiver<QueueEvent> {
        // Already set by an earlier subscriber is the same outcome.
        let _ = self.subscribed.set(());
        self.events.subscribe()
    }

    fn subscribed(&self) -> bool {
        self.subscribed.get().is_some()
    }

    fn emit(&self, id: JobId, kind: QueueEventKind) {
        if self.subscribed.get().is_some() {
            // No receiver left between the check and the send is not an error.
            let _ = self.events.send(QueueEvent { id, kind });
        }
    }

    /// Submits a job; returns its new identifier (a version 7 UUID).
    ///
    /// # Errors
    /// The store refused it (invalid spec, a held unique key) or failed.
    pub async fn submit(&self, spec: JobSpec) -> Result<JobId, StoreError> {
        let id = JobId::new(mechops_std::uuid::generate_v7());
        self.store.submit(id, spec, self.clock.now()).await?;
        self.emit(id, QueueEventKind::Submitted);
        Ok(id)
    }

    /// Submits many jobs in one store transaction; one answer per job.
    ///
    /// # Errors
    /// The store failed; no job was submitted.
    pub async fn submit_bulk(
        &self,
        specs: Vec<JobSpec>,
    ) -> Result<Vec<Result<JobId, super::store::SubmitRefused>>, StoreError> {
        let jobs: Vec<(JobId, JobSpec)> = specs
            .into_iter()
            .map(|s| (JobId::new(mechops_std::uuid::generate_v7()), s))
            .collect();
        let ids: Vec<JobId> = jobs.iter().map(|(id, _)| *id).collect();
        let answers = self.store.submit_bulk(jobs, self.clock.now()).await?;
        Ok(ids
            .into_iter()
            .zip(answers)
            .map(|(id, a)| {
                a.map(|()| {
                    self.emit(id, QueueEventKind::Submitted);
                    id
                })
            })
            .collect())
    }

    /// The job's record.
    ///
    /// # Errors
    /// Unknown job, or the store failed.
    pub async fn status(&self, id: JobId) -> Result<Job, StoreError> {
        self.store.status(id).await
    }

    /// Counts and wait times.
    ///
    /// # Errors
    /// The store failed.
    pub async fn stats(&self) -> Result<StoreStats, StoreError> {
        self.store.stats().await
    }

    /// Jobs completed over the last minute, where the store keeps
    /// completion times (see [`Store::throughput`]).
    ///
    /// # Errors
    /// The store failed.
    pub async fn throughput(&self) -> Result<Option<Throughput>, StoreError> {
        self.store.throughput(self.clock.now()).await
    }

    /// Cancels a job; a running one is stopped by its worker at its next
    /// heartbeat.
    ///
    /// # Errors
    /// Unknown or finished job, or the store failed.
    pub async fn cancel(&self, id: JobId) -> Result<StateKind, StoreError> {
        self.store.cancel(id, self.clock.now()).await
    }

    /// Queues a dead or retry-scheduled job again.
    ///
    /// # Errors
    /// Unknown job, a state that cannot be retried, or the store failed.
    pub async fn retry(&self, id: JobId) -> Result<(), StoreError> {
        self.store.retry(id, self.clock.now()).await
    }
}

/// A worker's settings.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// The name recorded with its leases.
    pub id: WorkerId,
    /// The most jobs running at once (default: `JOB_CONCURRENCY`, else the
    /// number of CPUs).
    pub concurrency: usize,
    /// Store-wide limits per handler.
    pub handler_limits: Vec<(String, usize)>,
    /// How often a running job's lease is renewed; a third of the store's
    /// lease length is usual (default 10 s, for the default 30 s lease).
    pub heartbeat: Duration,
    /// How long running jobs may take to finish after a shutdown request
    /// before they are stopped and released (default 30 s).
    pub grace: Duration,
    /// Expired leases recovered per store call (default 1,000).
    pub recover_batch: usize,
    /// Stop when nothing is queued, delayed, running or awaiting a retry.
    pub until_empty: bool,
}

impl WorkerConfig {
    /// Defaults, with the concurrency from `JOB_CONCURRENCY` or the CPU
    /// count.
    ///
    /// # Errors
    /// `JOB_CONCURRENCY` is set but not a whole number of at least 1.
    pub fn from_env() -> Result<Self, String> {
        let concurrency = match std::env::var("JOB_CONCURRENCY") {
            Ok(v) => match v.trim().parse::<usize>() {
                Ok(n) if n >= 1 => n,
                _ => {
                    return Err(format!(
                        "JOB_CONCURRENCY must be a whole number of at least 1, not {v:?}"
                    ));
                }
            },
            Err(_) => std::thread::available_parallelism().map_or(1, usize::from),
        };
        Ok(Self::new(concurrency))
    }

    /// Defaults with `concurrency` slots.
    pub fn new(concurrency: usize) -> Self {
        Self {
            id: WorkerId(format!("{}-{}", hostname(), std::process::id())),
            concurrency: concurrency.max(1),
            handler_limits: Vec::new(),
            heartbeat: Duration::from_secs(10),
            grace: Duration::from_secs(30),
            recover_batch: 1000,
            until_empty: false,
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "worker".to_owned())
}

/// How often a worker applies the store's retention settings.
pub const PRUNE_EVERY: Duration = Duration::from_secs(1);

/// What a worker did, counted when it stops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerReport {
    /// Attempts started.
    pub started: u64,
    /// Jobs completed.
    pub completed: u64,
    /// Attempts failed (retry scheduled or dead).
    pub failed: u64,
    /// Jobs released at a hard shutdown.
    pub released: u64,
    /// Reports refused for a lost lease.
    pub fenced: u64,
    /// Expired leases recovered.
    pub recovered: u64,
}

impl WorkerReport {
    fn count(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Completed => self.completed += 1,
            Outcome::Failed | Outcome::Cancelled => self.failed += 1,
            Outcome::Released => self.released += 1,
            Outcome::Fenced => self.fenced += 1,
        }
    }
}

enum Outcome {
    Completed,
    Failed,
    Released,
    Fenced,
    Cancelled,
}

/// Claims jobs from a queue's store and runs them. See the
/// [module docs](self).
pub struct Worker {
    queue: Queue,
    handlers: Arc<Handlers>,
    config: WorkerConfig,
    limits: Arc<[(String, usize)]>,
    mono: TokioClock,
    seed: u64,
}

impl core::fmt::Debug for Worker {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Worker")
            .field("config", &self.config)
            .field("handlers", &self.handlers)
            .finish_non_exhaustive()
    }
}

struct Running {
    id: JobId,
    token: FencingToken,
}

impl Worker {
    /// A worker for `queue` running `handlers`.
    pub fn new(queue: Queue, handlers: Handlers, config: WorkerConfig) -> Self {
        let limits = config.handler_limits.clone().into();
        let seed = mechops_std::uuid::generate_fast_uuid().as_u128() as u64;
        Self {
            queue,
            handlers: Arc::new(handlers),
            config,
            limits,
            mono: TokioClock::new(),
            seed,
        }
    }

    /// Runs until `shutdown` is cancelled (or, with `until_empty`, until
    /// the store is idle). After a shutdown request it claims nothing more,
    /// lets running jobs finish within the grace period, then stops the
    /// rest and releases their leases.
    ///
    /// Cancellation: dropping this future drops the attempt tasks' handles
    /// but not the tasks; their leases then expire and are recovered.
    /// Cancel `shutdown` and await this future for a clean stop.
    ///
    /// # Errors
    /// A store call of the loop failed (running attempts are stopped and
    /// released first).
    pub async fn run(self, shutdown: CancellationToken) -> Result<WorkerReport, StoreError> {
        let store = Arc::clone(&self.queue.store);
        let signal: Arc<Notify> = store.work_signal();
        let poll = store.poll_interval();
        let hard = CancellationToken::new();
        let mut tasks: JoinSet<Outcome> = JoinSet::new();
        let mut running: HashMap<tokio::task::Id, Running> = HashMap::new();
        let mut report = WorkerReport::default();
        let mut rng = self.seed;
        let mut next_prune = self.mono.now();
        // Attempts that succeeded at their first poll, not yet recorded.
        let mut done: Vec<Succeeded> = Vec::new();
        let result = loop {
            if shutdown.is_cancelled() {
                break Ok(());
            }
            let notified = signal.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let now = self.queue.clock.now();
            rng = splitmix(rng);
            // The last batch's successes go to the store with this round's
            // recovery and claim, in that order: a store that batches
            // commits them in one transaction. Their slots are free for
            // the claim: their handlers have returned.
            let completing = self.send_completions(core::mem::take(&mut done), now);
            let recovering = store.recover_expired(now, self.config.recover_batch, rng);
            // Retention (finished jobs past their age or count) at most
            // once per PRUNE_EVERY, between claims.
            let pruning = (self.mono.now() >= next_prune).then(|| {
                next_prune = self.mono.now() + PRUNE_EVERY;
                store.prune(now)
            });
            let free = self.config.concurrency.saturating_sub(running.len());
            let claiming = (free > 0).then(|| {
                store.claim(
                    &ClaimRequest {
                        worker: self.config.id.clone(),
                        max: free,
                        handler_limits: Arc::clone(&self.limits),
                    },
                    now,
                )
            });
            if let Some((values, answer)) = completing {
                self.completed(values, answer.await, &mut report);
            }
            let recovered = match recovering.await {
                Ok(n) => n,
                Err(e) => break Err(e),
            };
            if recovered > 0 {
                report.recovered += recovered as u64;
                self.queue.emit(
                    JobId::new(mechops_core::uuid::Uuid::from_u128(0)),
                    QueueEventKind::Recovered { count: recovered },
                );
            }
            if let Some(Err(e)) = match pruning {
                Some(p) => Some(p.await),
                None => None,
            } {
                break Err(e);
            }
            let mut claimed_any = false;
            if let Some(claiming) = claiming {
                let claimed = match claiming.await {
                    Ok(c) => c,
                    Err(e) => break Err(e),
                };
                claimed_any = !claimed.is_empty();
                done = self
                    .launch(claimed, &hard, &mut tasks, &mut running, &mut report)
                    .await;
            }
            // Slots freed here must be offered to the store before sleeping:
            // with every slot busy at the claim above, nothing else would
            // wake this loop once the set is drained.
            let mut freed = false;
            while let Some(done) = tasks.try_join_next_with_id() {
                self.reaped(done, &mut running, &mut report).await;
                freed = true;
            }
            if claimed_any || freed || recovered == self.config.recover_batch {
                tokio::task::yield_now().await;
                continue;
            }
            if self.config.until_empty && running.is_empty() {
                match store.stats().await {
                    Ok(s) if s.is_idle() => break Ok(()),
                    Ok(_) => {}
                    Err(e) => break Err(e),
                }
            }
            let due = match store.next_due().await {
                Ok(d) => d,
                Err(e) => break Err(e),
            };
            let mut wake = due.map(|t| self.queue.clock.to_instant(t, &self.mono));
            if let Some(p) = poll {
                let at = self.mono.now() + p;
                wake = Some(wake.map_or(at, |w| w.min(at)));
            }
            let wake = wake.map_or(next_prune, |w| w.min(next_prune));
            let sleep = self.mono.sleep_until(wake);
            // Where the store can, the free slots wait inside it: the
            // transaction that makes the next job claimable also claims it.
            let free = self.config.concurrency.saturating_sub(running.len());
            let mut parked = (free > 0)
                .then(|| {
                    store.park_claim(&ClaimRequest {
                        worker: self.config.id.clone(),
                        max: free,
                        handler_limits: Arc::clone(&self.limits),
                    })
                })
                .flatten();
            let mut claimed = None;
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = &mut notified => {}
                () = sleep => {}
                Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                    self.reaped(done, &mut running, &mut report).await;
                }
                r = async { parked.as_mut()?.claimed().await.into() }, if parked.is_some() => {
                    claimed = r;
                }
            }
            if let Some(p) = parked.take() {
                if claimed.is_none() {
                    claimed = Some(p.withdraw().await);
                }
            }
            match claimed {
                Some(Ok(jobs)) => {
                    done = self
                        .launch(jobs, &hard, &mut tasks, &mut running, &mut report)
                        .await;
                }
                Some(Err(e)) => break Err(e),
                None => {}
            }
        };
        if let Some((values, answer)) = self.send_completions(done, self.queue.clock.now()) {
            self.completed(values, answer.await, &mut report);
        }
        // Graceful: let running attempts finish within the grace period.
        let grace_end = self.mono.now() + self.config.grace;
        if result.is_ok() {
            while !tasks.is_empty() {
                tokio::select! {
                    () = self.mono.sleep_until(grace_end) => break,
                    Some(done) = tasks.join_next_with_id() => {
                        self.reaped(done, &mut running, &mut report).await;
                    }
                }
            }
        }
        hard.cancel();
        while let Some(done) = tasks.join_next_with_id().await {
            self.reaped(done, &mut running, &mut report).await;
        }
        result.map(|()| report)
    }

    async fn reaped(
        &self,
        done: Result<(tokio::task::Id, Outcome), tokio::task::JoinError>,
        running: &mut HashMap<tokio::task::Id, Running>,
        report: &mut WorkerReport,
    ) {
        match done {
            Ok((tid, outcome)) => {
                running.remove(&tid);
                report.count(&outcome);
            }
            Err(e) => {
                // The handler panicked (or the task was aborted): fail the
                // attempt so the job is retried rather than left to expire.
                let Some(r) = running.remove(&e.id()) else {
                    return;
                };
                report.failed += 1;
                let msg = if e.is_panic() {
                    "handler panicked".to_owned()
                } else {
                    "attempt task was aborted".to_owned()
                };
                let now = self.queue.clock.now();
                let random = splitmix(self.seed ^ r.token.get());
                match self
                    .queue
                    .store
                    .fail(r.id, r.token, msg.clone(), FailKind::Retryable, now, random)
                    .await
                {
                    Ok(state) => self.queue.emit(
                        r.id,
                        QueueEventKind::Failed {
                            error: msg,
                            state: state.kind(),
                        },
                    ),
                    Err(err) => self.queue.emit(
                        r.id,
                        QueueEventKind::Fenced {
                            reason: err.to_string(),
                        },
                    ),
                }
            }
        }
    }

    /// Starts the claimed jobs' attempts, in claim order; returns those
    /// that succeeded at once, whose completion the caller records.
    async fn launch(
        &self,
        claimed: Vec<ClaimedJob>,
        hard: &CancellationToken,
        tasks: &mut JoinSet<Outcome>,
        running: &mut HashMap<tokio::task::Id, Running>,
        report: &mut WorkerReport,
    ) -> Vec<Succeeded> {
        let mut done = Vec::new();
        // The shared state of an attempt that ended at its first poll,
        // for the next: one allocation per round rather than per job.
        let mut spare = None;
        for job in claimed {
            report.started += 1;
            match self.start(job, hard, &mut spare).await {
                Start::Succeeded(id, token, value) => done.push((id, token, value)),
                Start::Done(attempt, stop) => {
                    let outcome = attempt.record(stop).await;
                    report.count(&outcome);
                }
                Start::Pending(pending) => {
                    let (id, token) = (pending.attempt.job.id, pending.attempt.job.token);
                    let h = tasks.spawn(pending.resume());
                    running.insert(h.id(), Running { id, token });
                }
            }
        }
        done
    }

    /// Starts an attempt: polls its handler once, here, so that a handler
    /// that finishes at once (the usual no-op or quick job) costs no task,
    /// no timer and no store call of its own; one still pending moves to
    /// its own task ([`Pending::resume`]).
    async fn start(
        &self,
        job: ClaimedJob,
        hard: &CancellationToken,
        spare: &mut Option<Arc<AttemptShared>>,
    ) -> Start {
        let q = &self.queue;
        q.emit(
            job.id,
            QueueEventKind::Started {
                attempt: job.attempt,
            },
        );
        let Some(handler) = self.handlers.map.get(&job.handler) else {
            let msg = format!("unknown handler {:?}", job.handler);
            return Start::Done(self.attempt(job), Stop::Done(Err(JobError::Permanent(msg))));
        };
        let args: Value = match serde_json::from_str(&job.args) {
            Ok(v) => v,
            Err(e) => {
                let msg = format!("job arguments are not valid JSON: {e}");
                return Start::Done(self.attempt(job), Stop::Done(Err(JobError::Permanent(msg))));
            }
        };
        // Not a child of `hard`: the attempt watches `hard` itself and
        // cancels this token before dropping the handler, and a child token
        // would take the parent's lock once per attempt.
        let shared = spare.take().unwrap_or_default();
        let ctx = JobContext {
            id: job.id,
            args,
            attempt: job.attempt,
            max_attempts: job.max_attempts,
            shared: Arc::clone(&shared),
        };
        // A panic in the handler, here as in its own task, fails the
        // attempt (retryable) and leaves the worker running.
        let panicked = || Stop::Done(Err(JobError::Retryable("handler panicked".to_owned())));
        let Ok(mut fut) = std::panic::catch_unwind(AssertUnwindSafe(|| handler(ctx))) else {
            return Start::Done(self.attempt(job), panicked());
        };
        let first = core::future::poll_fn(|cx| {
            Poll::Ready(std::panic::catch_unwind(AssertUnwindSafe(|| {
                fut.as_mut().poll(cx)
            })))
        })
        .await;
        match first {
            // The common case needs no attempt state at all.
            Ok(Poll::Ready(Ok(value))) => {
                drop(fut);
                *spare = recycle(shared);
                Start::Succeeded(job.id, job.token, value)
            }
            Ok(Poll::Ready(r)) => Start::Done(self.attempt(job), Stop::Done(r)),
            // The task that takes it over polls it at once, so the waker it
            // registered here is replaced before anything is missed.
            Ok(Poll::Pending) => Start::Pending(Pending {
                attempt: self.attempt(job),
                fut,
                shared,
                hard: hard.clone(),
            }),
            Err(_) => Start::Done(self.attempt(job), panicked()),
        }
    }

    /// What an attempt needs beyond its first poll: to record a failure,
    /// or to run on in its own task.
    fn attempt(&self, job: ClaimedJob) -> Attempt {
        Attempt {
            queue: self.queue.clone(),
            heartbeat: self.config.heartbeat,
            mono: self.mono,
            random: splitmix(self.seed ^ job.token.get() ^ (job.id.uuid().as_u128() as u64)),
            job,
        }
    }

    /// Sends the successes of attempts that finished at their first poll
    /// to the store in one call; gives back their results and the call.
    #[allow(clippy::type_complexity)]
    fn send_completions(
        &self,
        done: Vec<Succeeded>,
        now: Timestamp,
    ) -> Option<(
        Vec<(JobId, Value)>,
        super::store::StoreFuture<'_, Vec<Result<(), StoreError>>>,
    )> {
        if done.is_empty() {
            return None;
        }
        let items = done
            .iter()
            .map(|(id, token, v)| Completion {
                id: *id,
                token: *token,
                result: json_text(v),
            })
            .collect();
        let answer = self.queue.store.complete_batch(items, now);
        Some((done.into_iter().map(|(id, _, v)| (id, v)).collect(), answer))
    }

    /// Counts and emits the store's answers to [`Self::send_completions`].
    fn completed(
        &self,
        done: Vec<(JobId, Value)>,
        answers: Result<Vec<Result<(), StoreError>>, StoreError>,
        report: &mut WorkerReport,
    ) {
        let q = &self.queue;
        // Each answer is the reason a completion was refused, if it was.
        let reasons: Vec<Option<String>> = match answers {
            Ok(a) if a.len() == done.len() => a
                .into_iter()
                .map(|r| r.err().map(|e| e.to_string()))
                .collect(),
            Ok(a) => {
                let e = format!(
                    "the store answered {} of {} completions",
                    a.len(),
                    done.len()
                );
                vec![Some(e); done.len()]
            }
            Err(e) => vec![Some(e.to_string()); done.len()],
        };
        for ((id, value), reason) in done.into_iter().zip(reasons) {
            match reason {
                None => {
                    report.completed += 1;
                    if q.subscribed() {
                        let result = Arc::new(value);
                        q.emit(id, QueueEventKind::Completed { result });
                    }
                }
                Some(reason) => {
                    report.fenced += 1;
                    q.emit(id, QueueEventKind::Fenced { reason });
                }
            }
        }
    }
}

/// An attempt that succeeded at its first poll: job, token, result.
type Succeeded = (JobId, FencingToken, Value);

/// How [`Worker::start`] left an attempt.
enum Start {
    /// The handler succeeded at its first poll: record the result.
    Succeeded(JobId, FencingToken, Value),
    /// The handler failed at its first poll, or never ran (unknown
    /// handler, arguments that are not JSON, a panic): record `Stop`.
    Done(Attempt, Stop),
    /// The handler awaits something: it continues in its own task.
    Pending(Pending),
}

/// An attempt whose handler is still running.
struct Pending {
    attempt: Attempt,
    fut: HandlerFuture,
    shared: Arc<AttemptShared>,
    /// The worker's hard shutdown (cloning a token takes its lock, so only
    /// attempts that outlive their first poll hold one).
    hard: CancellationToken,
}

struct Attempt {
    queue: Queue,
    heartbeat: Duration,
    mono: TokioClock,
    random: u64,
    job: ClaimedJob,
}

/// How an attempt's handler stopped.
enum Stop {
    Done(Result<Value, JobError>),
    Fenced(String),
    CancelRequested,
    TimedOut,
    Shutdown,
}

impl Pending {
    /// Runs the rest of the attempt in its own task: the handler, polled
    /// inside a loop that heartbeats, watches the deadline and the hard
    /// shutdown, and writes throttled progress.
    async fn resume(self) -> Outcome {
        let Self {
            attempt: this,
            mut fut,
            shared,
            hard,
        } = self;
        let mut seen = 0;
        let q = &this.queue;
        let (id, token) = (this.job.id, this.job.token);
        let mut throttle = ProgressThrottle::new(ProgressThrottle::DEFAULT_INTERVAL);
        let mut flush_at: Option<Instant> = None;
        let mut next_beat = this.mono.now() + this.heartbeat;
        let deadline = this.job.deadline.map(|d| q.clock.to_instant(d, &this.mono));
        let stop = loop {
            let flush = this.mono.sleep_until(flush_at.unwrap_or(Instant::MAX));
            tokio::select! {
                biased;
                // Before the handler: one that returns because the hard
                // shutdown cancelled it is released, not failed.
                () = hard.cancelled() => break Stop::Shutdown,
                r = &mut fut => break Stop::Done(r),
                () = this.mono.sleep_until(deadline.unwrap_or(Instant::MAX)), if deadline.is_some() => {
                    break Stop::TimedOut;
                }
                () = this.mono.sleep_until(next_beat) => {
                    next_beat = this.mono.now() + this.heartbeat;
                    match q.store.heartbeat(id, token, q.clock.now()).await {
                        Ok(lease) if lease.cancel_requested => break Stop::CancelRequested,
                        Ok(_) => {}
                        Err(e @ StoreError::Fenced { .. }) => break Stop::Fenced(e.to_string()),
                        Err(e @ StoreError::Rejected { .. }) => break Stop::Fenced(e.to_string()),
                        Err(e) => tracing::warn!(job = %id, error = %e, "heartbeat failed"),
                    }
                }
                () = shared.reported.notified() => {
                    if let Some(p) = shared.report_after(&mut seen) {
                        q.emit(id, QueueEventKind::Progress { fraction: p.fraction(), message: p.message().to_owned() });
                        let now = q.clock.now();
                        if throttle.handle_report(now) {
                            this.write_progress(p).await;
                            flush_at = None;
                        } else if let Some(t) = throttle.poll_timeout() {
                            flush_at = Some(q.clock.to_instant(t, &this.mono));
                        }
                    }
                }
                () = flush, if flush_at.is_some() => {
                    flush_at = None;
                    if throttle.poll_write(q.clock.now()) {
                        if let Some(p) = shared.latest() {
                            this.write_progress(p).await;
                        }
                    }
                }
            }
        };
        shared.cancel.get_or_init(CancellationToken::new).cancel();
        drop(fut);
        // The last progress value is written even when it was held back.
        let last = shared.latest();
        if let Some(p) = last.filter(|_| throttle.is_pending()) {
            this.write_progress(p).await;
        }
        this.record(stop).await
    }
}

impl Attempt {
    async fn write_progress(&self, p: Progress) {
        let q = &self.queue;
        if let Err(e) = q
            .store
            .progress(self.job.id, self.job.token, p, q.clock.now())
            .await
        {
            tracing::debug!(job = %self.job.id, error = %e, "progress not written");
        }
    }

    async fn record(&self, stop: Stop) -> Outcome {
        let q = &self.queue;
        let (id, token) = (self.job.id, self.job.token);
        let now = q.clock.now();
        let store = &q.store;
        let fenced = |e: StoreError| {
            q.emit(
                id,
                QueueEventKind::Fenced {
                    reason: e.to_string(),
                },
            );
            Outcome::Fenced
        };
        match stop {
            Stop::Done(Ok(v)) => match store.complete(id, token, json_text(&v), now).await {
                Ok(()) => {
                    q.emit(
                        id,
                        QueueEventKind::Completed {
                            result: Arc::new(v),
                        },
                    );
                    Outcome::Completed
                }
                Err(e) => fenced(e),
            },
            Stop::Done(Err(err)) => {
                let (msg, kind) = match err {
                    JobError::Retryable(m) => (m, FailKind::Retryable),
                    JobError::Permanent(m) => (m, FailKind::Permanent),
                };
                self.fail(msg, kind).await
            }
            Stop::TimedOut => {
                let msg = "attempt timed out".to_owned();
                self.fail(msg, FailKind::Retryable).await
            }
            Stop::CancelRequested => match store.ack_cancel(id, token, now).await {
                Ok(()) => {
                    q.emit(id, QueueEventKind::Cancelled);
                    Outcome::Cancelled
                }
                Err(e) => fenced(e),
            },
            Stop::Shutdown => match store.release(id, token, now).await {
                Ok(()) => {
                    q.emit(id, QueueEventKind::Released);
                    Outcome::Released
                }
                Err(e) => fenced(e),
            },
            Stop::Fenced(reason) => {
                q.emit(id, QueueEventKind::Fenced { reason });
                Outcome::Fenced
            }
        }
    }

    async fn fail(&self, msg: String, kind: FailKind) -> Outcome {
        let q = &self.queue;
        let (id, token) = (self.job.id, self.job.token);
        match q
            .store
            .fail(id, token, msg.clone(), kind, q.clock.now(), self.random)
            .await
        {
            Ok(state) => {
                let state = state.kind();
                if state == StateKind::Cancelled {
                    q.emit(id, QueueEventKind::Cancelled);
                    return Outcome::Cancelled;
                }
                q.emit(id, QueueEventKind::Failed { error: msg, state });
                Outcome::Failed
            }
            Err(e) => {
                q.emit(
                    id,
                    QueueEventKind::Fenced {
                        reason: e.to_string(),
                    },
                );
                Outcome::Fenced
            }
        }
    }
}

/// An attempt's shared state, fresh, for the next attempt, if nothing
/// else holds it: the handler's future is gone and its context was not
/// kept elsewhere.
fn recycle(mut shared: Arc<AttemptShared>) -> Option<Arc<AttemptShared>> {
    *Arc::get_mut(&mut shared)? = AttemptShared::default();
    Some(shared)
}

/// A result as JSON text. `null`, what most handlers return, skips the
/// formatter, which costs more than the rest of recording a completion.
fn json_text(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        v => v.to_string(),
    }
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
