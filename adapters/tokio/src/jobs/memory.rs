//! The in-memory job store (`memory://`): the core [`Scheduler`] behind a
//! mutex, for tests and embedded use.
//!
//! Every call locks, feeds the scheduler and unlocks; no call awaits while
//! holding the lock, so each returned future is already complete. The
//! scheduler records no events: subscribers hear the runtime's
//! ([`QueueEvent`](super::runtime::QueueEvent)). Claim order, limits, unique keys, lease expiry and retention
//! are the scheduler's.
//!
//! # Persistence across a graceful shutdown
//!
//! Opened with a file, the store loads the jobs that file holds, and
//! [`Store::close`] writes back every job that is not finished (queued,
//! delayed, running, awaiting a retry, dead), replacing the file atomically
//! with `mechops_std::durable::replace`; `docs/FORMAT.md` ("Memory store
//! file") specifies it. Nothing is written between open and close: a
//! process that dies without closing loses what changed since it opened
//! (jobs submitted since are lost, jobs finished since run again). That is
//! the memory store's promise; the SQLite store is the durable one.
//!
//! Handler limits are store-wide, as the [`Store`] trait says; with one
//! worker per process, as usual for this store, they are that worker's.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use core::time::Duration;

use mechops_alloc::job::{
    FailKind, FencingToken, Job, JobId, JobSpec, JobState, Lease, Progress, RATE_WINDOW, Scheduler,
    SchedulerConfig, SchedulerError, StateKind,
};
use mechops_core::metrics::Quantile;
use mechops_core::time::Timestamp;
use serde_json::Value;
use tokio::sync::Notify;

use super::record;
use super::store::{
    ClaimRequest, ClaimedJob, Completion, PurgeFilter, Store, StoreConfig, StoreError, StoreFuture,
    StoreStats, SubmitRefused, Throughput, WaitPercentiles,
};

/// The first line of a memory store file.
pub const FILE_HEADER: &str = r#"{"format":"mechops-jobs-memory","version":1}"#;

/// The in-memory store. See the [module docs](self).
pub struct MemoryStore {
    inner: Mutex<Inner>,
    signal: Arc<Notify>,
    file: Option<PathBuf>,
    config: StoreConfig,
}

struct Inner {
    sched: Scheduler,
    limits: Arc<[(String, usize)]>,
    closed: bool,
}

impl core::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store that persists nothing.
    pub fn new(config: StoreConfig) -> Self {
        Self {
            inner: Mutex::new(Inner {
                sched: new_scheduler(config),
                limits: Arc::from([]),
                closed: false,
            }),
            signal: Arc::new(Notify::new()),
            file: None,
            config,
        }
    }

    /// A store that loads the jobs `file` holds (if it exists) and writes
    /// its unfinished jobs back to it on [`Store::close`].
    ///
    /// # Errors
    /// The file cannot be read ([`StoreError::Io`]), or is not a memory
    /// store file or is damaged ([`StoreError::Corrupt`]); it is left as
    /// it is.
    pub fn open(file: &Path, config: StoreConfig) -> Result<Self, StoreError> {
        let mut store = Self::new(config);
        store.file = Some(file.to_owned());
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(store),
            Err(e) => {
                return Err(StoreError::Io {
                    context: format!("reading job file {}", file.display()),
                    source: e,
                });
            }
        };
        let corrupt = |why: String| {
            StoreError::Corrupt(format!(
                "{} is not a usable memory job store file: {why}",
                file.display()
            ))
        };
        let mut lines = text.lines();
        if lines.next() != Some(FILE_HEADER) {
            return Err(corrupt(format!("the first line is not {FILE_HEADER}")));
        }
        let mut jobs = Vec::new();
        for (n, line) in lines.enumerate() {
            let v: Value =
                serde_json::from_str(line).map_err(|e| corrupt(format!("line {}: {e}", n + 2)))?;
            let job = record::decode(&v, &config.lifecycle)
                .map_err(|e| corrupt(format!("line {}: {e}", n + 2)))?;
            jobs.push(job);
        }
        jobs.sort_by_key(|j| (j.created_at(), j.id()));
        let inner = store.inner.get_mut().map_err(|_| StoreError::Closed)?;
        for job in jobs {
            let id = job.id();
            inner
                .sched
                .restore(job)
                .map_err(|e| corrupt(format!("job {id}: {e}")))?;
        }
        Ok(store)
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner>, StoreError> {
        // A poisoned lock means a panic inside the scheduler: refuse
        // further calls rather than drive a half-updated index.
        let g = self.inner.lock().map_err(|_| StoreError::Closed)?;
        if g.closed {
            return Err(StoreError::Closed);
        }
        Ok(g)
    }

    fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Inner) -> Result<T, StoreError>,
    ) -> StoreFuture<'static, T> {
        let r = self.lock().and_then(|mut g| f(&mut g));
        Box::pin(core::future::ready(r))
    }

    fn encode_file(sched: &Scheduler) -> String {
        let mut jobs: Vec<&Job> = sched
            .jobs()
            .filter(|j| !j.state().kind().is_finished())
            .collect();
        jobs.sort_by_key(|j| (j.created_at(), j.id()));
        let mut out = String::from(FILE_HEADER);
        out.push('\n');
        for j in jobs {
            out.push_str(&record::encode(j).to_string());
            out.push('\n');
        }
        out
    }
}

fn new_scheduler(config: StoreConfig) -> Scheduler {
    let mut c = SchedulerConfig::new(usize::MAX);
    c.lifecycle = config.lifecycle;
    c.retention = config.retention;
    // The concurrency is not zero, the only refusal.
    let mut s =
        Scheduler::new(c).unwrap_or_else(|_| unreachable!("concurrency usize::MAX is valid"));
    // Subscribers hear the runtime's events, not the scheduler's.
    s.set_record_events(false);
    s
}

fn map_err(id: JobId, key: Option<&str>, e: SchedulerError) -> StoreError {
    match e {
        SchedulerError::Spec(s) => StoreError::Spec(s),
        SchedulerError::DuplicateId(id) => StoreError::DuplicateId(id),
        SchedulerError::DuplicateKey { existing } => StoreError::DuplicateKey {
            key: key.unwrap_or_default().to_owned(),
            existing,
        },
        SchedulerError::UnknownJob(id) => StoreError::UnknownJob(id),
        SchedulerError::NotFinished(k) => StoreError::PurgePending(k),
        SchedulerError::Rejected(r) => StoreError::rejected(id, r),
        _ => StoreError::Backend(format!("job {id}: {e}")),
    }
}

fn refused(e: SchedulerError) -> SubmitRefused {
    match e {
        SchedulerError::Spec(s) => SubmitRefused::Spec(s),
        SchedulerError::DuplicateKey { existing } => SubmitRefused::DuplicateKey { existing },
        _ => SubmitRefused::DuplicateId,
    }
}

impl Store for MemoryStore {
    fn submit(&self, id: JobId, spec: JobSpec, now: Timestamp) -> StoreFuture<'_, ()> {
        let signal = &self.signal;
        self.with(|i| {
            let key = spec.unique_key.clone();
            i.sched
                .submit(id, spec, now)
                .map_err(|e| map_err(id, key.as_deref(), e))?;
            signal.notify_waiters();
            Ok(())
        })
    }

    fn submit_bulk(
        &self,
        jobs: Vec<(JobId, JobSpec)>,
        now: Timestamp,
    ) -> StoreFuture<'_, Vec<Result<(), SubmitRefused>>> {
        let signal = &self.signal;
        self.with(|i| {
            let out = jobs
                .into_iter()
                .map(|(id, spec)| i.sched.submit(id, spec, now).map(drop).map_err(refused))
                .collect();
            signal.notify_waiters();
            Ok(out)
        })
    }

    fn claim(&self, request: &ClaimRequest, now: Timestamp) -> StoreFuture<'_, Vec<ClaimedJob>> {
        self.with(|i| {
            if !Arc::ptr_eq(&i.limits, &request.handler_limits) {
                for (h, _) in i.limits.iter() {
                    i.sched
                        .set_handler_limit(h, None)
                        .map_err(|e| StoreError::Config(e.to_string()))?;
                }
                for (h, l) in request.handler_limits.iter() {
                    i.sched
                        .set_handler_limit(h, Some(*l))
                        .map_err(|e| StoreError::Config(e.to_string()))?;
                }
                i.limits = Arc::clone(&request.handler_limits);
            }
            let mut out = Vec::with_capacity(request.max.min(1024));
            while out.len() < request.max {
                let Some(c) = i.sched.claim(now) else { break };
                let Some(job) = i.sched.job(c.id) else { break };
                let spec = job.spec();
                out.push(ClaimedJob {
                    id: c.id,
                    handler: spec.handler.clone(),
                    args: spec.args.clone(),
                    attempt: c.attempt,
                    max_attempts: spec.max_attempts,
                    token: c.token,
                    expires_at: c.expires_at,
                    deadline: c.deadline,
                });
            }
            Ok(out)
        })
    }

    fn heartbeat(&self, id: JobId, token: FencingToken, now: Timestamp) -> StoreFuture<'_, Lease> {
        self.with(|i| {
            i.sched
                .heartbeat(id, token, now)
                .map_err(|e| map_err(id, None, e))
        })
    }

    fn progress(
        &self,
        id: JobId,
        token: FencingToken,
        progress: Progress,
        now: Timestamp,
    ) -> StoreFuture<'_, ()> {
        self.with(|i| {
            i.sched
                .progress(id, token, progress, now)
                .map(drop)
                .map_err(|e| map_err(id, None, e))
        })
    }

    fn complete(
        &self,
        id: JobId,
        token: FencingToken,
        result: String,
        now: Timestamp,
    ) -> StoreFuture<'_, ()> {
        self.with(|i| {
            i.sched
                .complete(id, token, result, now)
                .map_err(|e| map_err(id, None, e))
        })
    }

    fn complete_batch(
        &self,
        items: Vec<Completion>,
        now: Timestamp,
    ) -> StoreFuture<'_, Vec<Result<(), StoreError>>> {
        self.with(|i| {
            Ok(items
                .into_iter()
                .map(|c| {
                    i.sched
                        .complete(c.id, c.token, c.result, now)
                        .map_err(|e| map_err(c.id, None, e))
                })
                .collect())
        })
    }

    fn fail(
        &self,
        id: JobId,
        token: FencingToken,
        error: String,
        kind: FailKind,
        now: Timestamp,
        random: u64,
    ) -> StoreFuture<'_, JobState> {
        self.with(|i| {
            i.sched
                .fail(id, token, error, kind, now, random)
                .map_err(|e| map_err(id, None, e))
        })
    }

    fn release(&self, id: JobId, token: FencingToken, now: Timestamp) -> StoreFuture<'_, ()> {
        let signal = &self.signal;
        self.with(|i| {
            i.sched
                .release(id, token, now)
                .map_err(|e| map_err(id, None, e))?;
            signal.notify_waiters();
            Ok(())
        })
    }

    fn ack_cancel(&self, id: JobId, token: FencingToken, now: Timestamp) -> StoreFuture<'_, ()> {
        self.with(|i| {
            i.sched
                .ack_cancel(id, token, now)
                .map_err(|e| map_err(id, None, e))
        })
    }

    fn cancel(&self, id: JobId, now: Timestamp) -> StoreFuture<'_, StateKind> {
        self.with(|i| i.sched.cancel(id, now).map_err(|e| map_err(id, None, e)))
    }

    fn retry(&self, id: JobId, now: Timestamp) -> StoreFuture<'_, ()> {
        let signal = &self.signal;
        self.with(|i| {
            let key = i.sched.job(id).and_then(|j| j.spec().unique_key.clone());
            i.sched
                .retry(id, now)
                .map_err(|e| map_err(id, key.as_deref(), e))?;
            signal.notify_waiters();
            Ok(())
        })
    }

    fn status(&self, id: JobId) -> StoreFuture<'_, Job> {
        self.with(|i| i.sched.job(id).cloned().ok_or(StoreError::UnknownJob(id)))
    }

    fn list(&self, state: Option<StateKind>, limit: usize) -> StoreFuture<'_, Vec<Job>> {
        self.with(|i| {
            let mut jobs: Vec<&Job> = i
                .sched
                .jobs()
                .filter(|j| state.is_none_or(|s| j.state().kind() == s))
                .collect();
            jobs.sort_by_key(|j| (j.created_at(), j.id()));
            Ok(jobs.into_iter().take(limit).cloned().collect())
        })
    }

    fn stats(&self) -> StoreFuture<'_, StoreStats> {
        self.with(|i| {
            let h = i.sched.wait_times();
            let wait = (h.count() > 0).then(|| WaitPercentiles {
                p50_us: h.quantile(Quantile::P50).unwrap_or(0),
                p90_us: h.quantile(Quantile::P90).unwrap_or(0),
                p99_us: h.quantile(Quantile::P99).unwrap_or(0),
                samples: h.count(),
            });
            Ok(StoreStats {
                counts: i.sched.stats(),
                wait,
            })
        })
    }

    fn throughput(&self, now: Timestamp) -> StoreFuture<'_, Option<Throughput>> {
        self.with(|i| {
            Ok(Some(Throughput {
                window: RATE_WINDOW,
                completed: i.sched.completed_within_window(now),
            }))
        })
    }

    fn recover_expired(
        &self,
        now: Timestamp,
        max_batch: usize,
        random: u64,
    ) -> StoreFuture<'_, usize> {
        let signal = &self.signal;
        self.with(|i| {
            let n = i.sched.poll_expired(now, max_batch, random);
            if n > 0 {
                signal.notify_waiters();
            }
            Ok(n)
        })
    }

    fn purge(&self, filter: PurgeFilter) -> StoreFuture<'_, usize> {
        self.with(|i| {
            if let Some(s) = filter.state {
                if s.is_pending() {
                    return Err(StoreError::PurgePending(s));
                }
            }
            let ids: Vec<JobId> = i
                .sched
                .jobs()
                .filter(|j| {
                    let k = j.state().kind();
                    !k.is_pending()
                        && filter.state.is_none_or(|s| s == k)
                        && filter
                            .finished_before
                            .is_none_or(|b| j.finished_at().is_some_and(|f| f < b))
                })
                .map(Job::id)
                .collect();
            for id in &ids {
                i.sched.remove(*id).map_err(|e| map_err(*id, None, e))?;
            }
            Ok(ids.len())
        })
    }

    fn prune(&self, now: Timestamp) -> StoreFuture<'_, usize> {
        self.with(|i| Ok(i.sched.prune(now)))
    }

    fn next_due(&self) -> StoreFuture<'_, Option<Timestamp>> {
        self.with(|i| Ok(i.sched.poll_timeout()))
    }

    fn work_signal(&self) -> Arc<Notify> {
        Arc::clone(&self.signal)
    }

    fn poll_interval(&self) -> Option<Duration> {
        None
    }

    fn close(&self) -> StoreFuture<'_, ()> {
        let file = self.file.clone();
        let r = self.lock().and_then(|mut g| {
            g.closed = true;
            let Some(path) = file else { return Ok(()) };
            let text = Self::encode_file(&g.sched);
            drop(g);
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| StoreError::Io {
                    context: format!("creating {}", dir.display()),
                    source: e,
                })?;
            }
            mechops_std::durable::replace(&path, text.as_bytes()).map_err(|e| StoreError::Io {
                context: format!("writing job file {}", path.display()),
                source: e,
            })
        });
        Box::pin(core::future::ready(r))
    }
}

impl MemoryStore {
    /// The settings the store was opened with.
    pub const fn config(&self) -> &StoreConfig {
        &self.config
    }
}
