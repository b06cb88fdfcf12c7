//! The Redis job store: many workers on many machines share one queue in a
//! Redis server (`redis://HOST:PORT[/DB]`, standalone, not Cluster).
//!
//! The store is a driver of the sans-IO [`Job`] lifecycle: every
//! transition is decided by [`Job::handle`] in this process and written by
//! a Lua script that checks, atomically, that the record is still the
//! version that was read (compare and set). Redis only keeps the records
//! and the indexes that order them; no lifecycle rule is written twice.
//!
//! # Keys
//!
//! Every key starts with the store's prefix (default `mechops:jobs:`), so
//! queues (and tests) can share a server. `docs/FORMAT.md` lists the
//! fields; in short:
//!
//! - `job:ID`, a hash: the job's record, with its version `ver`;
//! - `ready`, a sorted set of claimable jobs scored by priority rank, then
//!   submission sequence (`rank * 2^50 + seq`), so `ZPOPMIN` takes the best
//!   priority first and the oldest within it;
//! - `delayed` (delayed and retry-scheduled jobs, by ready time in ms),
//!   `leases` (running jobs, by lease expiry in ms), `done` (completed and
//!   cancelled, by finish time) and `dead` (by finish time);
//! - `unique` (unique key to job ID), `counts` (jobs per state), `stats`
//!   (event counters) and `seq`.
//!
//! # Atomicity and fencing
//!
//! - A claim is one script: it promotes due delayed jobs, pops the best
//!   ready ones and gives each a provisional entry in `leases`, then the
//!   claims are written with compare and set. A worker that dies between
//!   the two leaves its jobs in `leases`, where the reaper finds them when
//!   that provisional lease runs out: nothing is lost.
//! - Every other transition (heartbeat, progress, complete, fail, release,
//!   cancel, retry, lease expiry) reads the record, applies the event, and
//!   writes with compare and set; a write that lost a race is read and
//!   decided again. A worker whose lease was recovered presents an old
//!   fencing token, which [`Job::handle`] refuses ([`Rejected::StaleToken`]),
//!   and the refusal is counted in [`Stats::fenced`].
//! - The reaper ([`RedisStore::reap`]) recovers expired leases in batches
//!   of [`RedisConfig::batch`], each a short script, so a flood of stalled
//!   jobs never holds up claims.
//!
//! # Durability and reconnection
//!
//! A call returns once Redis has acknowledged the write; how durable that
//! is is Redis's `appendfsync`: with `always` an acknowledged job survives
//! a crash of the server, with `everysec` the last second may be lost.
//! When the connection fails (the server restarts, loads its data, or is
//! unreachable), calls reconnect and try again with
//! [`RedisConfig::reconnect`]'s backoff for up to
//! [`RedisConfig::reconnect_for`]. A retried write carries the same commit
//! ID, so a write whose reply was lost is recognised, not applied twice.
//!
//! # Cancellation
//!
//! Dropping a call's future at any `.await` leaves the store consistent:
//! each script is atomic, so a write happened whole or not at all. A claim
//! dropped after its script ran leaves its jobs provisionally leased; they
//! are queued again when that lease runs out.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use mechops_alloc::job::{
    Claimed, DeadReason, Effect, Effects, Event, FailKind, FencingToken, Job, JobEvent, JobId,
    JobParts, JobPriority, JobSpec, JobState, Lease, Lifecycle, Progress, Rejected, Retention,
    RunAt, SpecError, StateKind, Stats,
};
use mechops_core::backoff::{Backoff, Jitter, Retry};
use mechops_core::time::Timestamp;
use mechops_core::uuid::Uuid;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RetryMethod, Script, Value};

/// The key prefix used unless another is configured.
pub const DEFAULT_PREFIX: &str = "mechops:jobs:";

/// How often one transition is decided again after losing a race before
/// the store gives up with [`RedisStoreError::Contended`].
const MAX_CONFLICTS: usize = 64;

/// How the store connects and behaves.
#[derive(Clone, Debug)]
pub struct RedisConfig {
    /// `redis://HOST:PORT[/DB]`.
    pub url: String,
    /// Prepended to every key (default [`DEFAULT_PREFIX`]).
    pub prefix: String,
    /// Lease length, stall limit, progress interval.
    pub lifecycle: Lifecycle,
    /// How long finished jobs are kept ([`RedisStore::prune`]).
    pub retention: Retention,
    /// The delays between tries when Redis cannot be reached (default
    /// 50 ms doubling to 2 s, equal jitter).
    pub reconnect: Backoff,
    /// How long a call keeps trying before it fails (default 60 s).
    pub reconnect_for: Duration,
    /// How long one command may wait for its reply (default 10 s).
    pub response_timeout: Duration,
    /// The most jobs one reaper or pruning script handles (default 256).
    pub batch: usize,
}

impl RedisConfig {
    /// The defaults for the server at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        let reconnect =
            match Backoff::new(Duration::from_millis(50), Duration::from_secs(2), u32::MAX) {
                Ok(b) => b.with_jitter(Jitter::Equal),
                Err(_) => unreachable!("50 ms is below 2 s"),
            };
        Self {
            url: url.into(),
            prefix: DEFAULT_PREFIX.to_owned(),
            lifecycle: Lifecycle::default(),
            retention: Retention::default(),
            reconnect,
            reconnect_for: Duration::from_secs(60),
            response_timeout: Duration::from_secs(10),
            batch: 256,
        }
    }

    /// The same settings with another key prefix.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The same settings with another lifecycle.
    #[must_use]
    pub fn with_lifecycle(mut self, lifecycle: Lifecycle) -> Self {
        self.lifecycle = lifecycle;
        self
    }

    /// The same settings with another retention.
    #[must_use]
    pub fn with_retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// The same settings with another reconnection policy.
    #[must_use]
    pub fn with_reconnect(mut self, backoff: Backoff, give_up_after: Duration) -> Self {
        self.reconnect = backoff;
        self.reconnect_for = give_up_after;
        self
    }
}

/// What can go wrong in the Redis store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisStoreError {
    /// The URL is not a Redis URL the store can use.
    #[error("invalid Redis store URL {url:?}: {reason}")]
    BadUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Redis failed, or stayed unreachable for the whole reconnection time.
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// No job has this ID (never submitted, or pruned).
    #[error("no job {0}")]
    NotFound(JobId),
    /// The submission is invalid.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The lifecycle refused the event; the job is unchanged.
    #[error("job {id}: {rejected}")]
    Rejected {
        /// The job.
        id: JobId,
        /// Why.
        rejected: Rejected,
    },
    /// Another pending job holds the unique key.
    #[error("unique key {key:?} is held by pending job {holder}")]
    Duplicate {
        /// The key.
        key: String,
        /// The job holding it.
        holder: String,
    },
    /// A job with this ID exists already.
    #[error("job {0} already exists")]
    Exists(JobId),
    /// A stored record cannot be read back.
    #[error("stored job {id} is damaged: {reason}")]
    Corrupt {
        /// The record's ID as stored.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// The job changed under every one of many tries.
    #[error("job {0} kept changing under concurrent writes; try again")]
    Contended(JobId),
    /// Purge removes only finished jobs.
    #[error("cannot purge {0} jobs: only completed, cancelled and dead jobs are purged")]
    NotPurgeable(StateKind),
}

/// One claimed job: the claim's lease and the job as it now is.
#[derive(Clone, Debug)]
pub struct ClaimedJob {
    /// The lease.
    pub claim: Claimed,
    /// The job, running.
    pub job: Job,
}

struct Scripts {
    commit: Script,
    claim: Script,
    expired: Script,
    remove: Script,
}

struct Inner {
    conn: ConnectionManager,
    config: RedisConfig,
    scripts: Scripts,
}

/// A job store in Redis. Cheap to clone: clones share one connection, over
/// which concurrent calls are pipelined.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.inner.config.url)
            .field("prefix", &self.inner.config.prefix)
            .finish_non_exhaustive()
    }
}

/// Whether `url` names a Redis store (`redis://`).
pub fn is_redis_url(url: &str) -> bool {
    url.starts_with("redis://")
}

fn random_u64() -> u64 {
    // The OS generator failing leaves only jitter and commit IDs less
    // random; the clock's nanoseconds still differ between calls.
    getrandom::u64().unwrap_or_else(|_| mechops_std::clock::now().unix_nanos() as u64)
}

/// What a Redis error asks for: try again (after reconnecting) or give up.
fn is_transient(e: &redis::RedisError) -> bool {
    matches!(
        e.retry_method(),
        RetryMethod::Reconnect | RetryMethod::RetryImmediately | RetryMethod::WaitAndRetry
    ) || e.is_timeout()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
}

impl RedisStore {
    /// Connects to the server `config.url` names, trying for up to
    /// `config.reconnect_for` while it is unreachable.
    pub async fn connect(config: RedisConfig) -> Result<Self, RedisStoreError> {
        if !is_redis_url(&config.url) {
            return Err(RedisStoreError::BadUrl {
                url: config.url.clone(),
                reason: "it must start with redis://".to_owned(),
            });
        }
        if config.prefix.is_empty() {
            return Err(RedisStoreError::BadUrl {
                url: config.url.clone(),
                reason: "the key prefix is empty".to_owned(),
            });
        }
        let client =
            redis::Client::open(config.url.as_str()).map_err(|e| RedisStoreError::BadUrl {
                url: config.url.clone(),
                reason: e.to_string(),
            })?;
        let manager_config = ConnectionManagerConfig::new()
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(100))
            .set_connection_timeout(Some(config.response_timeout))
            .set_response_timeout(Some(config.response_timeout));
        let mut retry = Retry::new();
        let started = tokio::time::Instant::now();
        let conn = loop {
            match ConnectionManager::new_with_config(client.clone(), manager_config.clone()).await {
                Ok(conn) => break conn,
                Err(e) if is_transient(&e) && started.elapsed() < config.reconnect_for => {
                    let delay = retry
                        .next_delay(&config.reconnect, random_u64())
                        .unwrap_or(config.reconnect.cap());
                    tracing::warn!(url = %config.url, error = %e, ?delay, "Redis unreachable; trying again");
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(e.into()),
            }
        };
        Ok(Self {
            inner: Arc::new(Inner {
                conn,
                config,
                scripts: Scripts {
                    commit: Script::new(include_str!("redis/commit.lua")),
                    claim: Script::new(include_str!("redis/claim.lua")),
                    expired: Script::new(include_str!("redis/expired.lua")),
                    remove: Script::new(include_str!("redis/remove.lua")),
                },
            }),
        })
    }

    /// The settings.
    pub fn config(&self) -> &RedisConfig {
        &self.inner.config
    }

    fn lifecycle(&self) -> &Lifecycle {
        &self.inner.config.lifecycle
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.inner.config.prefix)
    }

    fn job_key(&self, id: &str) -> String {
        format!("{}job:{id}", self.inner.config.prefix)
    }

    /// Runs `cmd`, reconnecting and trying again with backoff while Redis
    /// is unreachable or loading.
    async fn query<T: redis::FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
    ) -> Result<T, RedisStoreError> {
        let mut retry = Retry::new();
        let started = tokio::time::Instant::now();
        loop {
            let mut conn = self.inner.conn.clone();
            match cmd.query_async(&mut conn).await {
                Ok(v) => return Ok(v),
                Err(e)
                    if is_transient(&e) && started.elapsed() < self.inner.config.reconnect_for =>
                {
                    self.wait(&mut retry, &e).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Runs `script` (EVALSHA, loading it when the server does not have it)
    /// with `args`, trying again like [`Self::query`].
    async fn eval<T: redis::FromRedisValue>(
        &self,
        script: &Script,
        args: &[String],
    ) -> Result<T, RedisStoreError> {
        let mut retry = Retry::new();
        let started = tokio::time::Instant::now();
        loop {
            let mut conn = self.inner.conn.clone();
            let mut invocation = script.prepare_invoke();
            invocation.arg(args);
            match invocation.invoke_async(&mut conn).await {
                Ok(v) => return Ok(v),
                Err(e)
                    if is_transient(&e) && started.elapsed() < self.inner.config.reconnect_for =>
                {
                    self.wait(&mut retry, &e).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn wait(&self, retry: &mut Retry, e: &redis::RedisError) {
        let policy = &self.inner.config.reconnect;
        let delay = retry
            .next_delay(policy, random_u64())
            .unwrap_or(policy.cap());
        tracing::warn!(error = %e, ?delay, "Redis call failed; reconnecting");
        tokio::time::sleep(delay).await;
    }

    async fn count(&self, counter: &str) -> Result<(), RedisStoreError> {
        let mut cmd = redis::cmd("HINCRBY");
        cmd.arg(self.key("stats")).arg(counter).arg(1);
        self.query::<i64>(&cmd).await.map(drop)
    }

    /// Submits a job at `now`. Fails with [`RedisStoreError::Duplicate`]
    /// when its unique key is held by another pending job.
    pub async fn submit(
        &self,
        id: JobId,
        spec: JobSpec,
        now: Timestamp,
    ) -> Result<Job, RedisStoreError> {
        let mut results = self.submit_many(vec![(id, spec)], now).await?;
        results.pop().unwrap_or(Err(RedisStoreError::Exists(id)))
    }

    /// Submits many jobs in one script; one result per job, in order.
    pub async fn submit_many(
        &self,
        jobs: Vec<(JobId, JobSpec)>,
        now: Timestamp,
    ) -> Result<Vec<Result<Job, RedisStoreError>>, RedisStoreError> {
        let mut out = Vec::with_capacity(jobs.len());
        let mut ops = Vec::new();
        let mut made = Vec::new();
        for (id, spec) in jobs {
            match Job::submit(id, spec, now, self.lifecycle()) {
                Ok((job, fx)) => {
                    ops.push(Commit::of(&job, None, &fx, true));
                    made.push((out.len(), job));
                    out.push(Err(RedisStoreError::Exists(id)));
                }
                Err(e) => out.push(Err(e.into())),
            }
        }
        if ops.is_empty() {
            return Ok(out);
        }
        let replies = self.commit(&ops).await?;
        for ((slot, job), reply) in made.into_iter().zip(replies) {
            out[slot] = match reply {
                Reply::Ok => Ok(job),
                Reply::Unique(holder) => Err(RedisStoreError::Duplicate {
                    key: job.spec().unique_key.clone().unwrap_or_default(),
                    holder,
                }),
                Reply::Conflict | Reply::Exists | Reply::Missing => {
                    Err(RedisStoreError::Exists(job.id()))
                }
            };
        }
        Ok(out)
    }

    async fn commit(&self, ops: &[Commit]) -> Result<Vec<Reply>, RedisStoreError> {
        let mut args = vec![self.inner.config.prefix.clone()];
        for op in ops {
            op.push_args(&mut args);
        }
        let replies: Vec<String> = self.eval(&self.inner.scripts.commit, &args).await?;
        if replies.len() != ops.len() {
            return Err(RedisStoreError::Corrupt {
                id: String::new(),
                reason: format!(
                    "commit script answered {} of {} writes",
                    replies.len(),
                    ops.len()
                ),
            });
        }
        Ok(replies.iter().map(|r| Reply::parse(r)).collect())
    }

    /// Claims up to `limit` jobs at `now`, best priority first, promoting
    /// delayed jobs that are due.
    pub async fn claim(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<ClaimedJob>, RedisStoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let lease_ms = self.lifecycle().lease.as_millis().max(1);
        let args = [
            self.inner.config.prefix.clone(),
            floor_ms(now).to_string(),
            limit.to_string(),
            lease_ms.to_string(),
            self.inner.config.batch.max(limit).to_string(),
        ];
        let value: Value = self.eval(&self.inner.scripts.claim, &args).await?;
        let records = parse_records(value)?;
        let mut claimed = Vec::with_capacity(records.len());
        let mut ops = Vec::with_capacity(records.len());
        for (raw_id, fields) in records {
            let Some((mut job, ver)) = self.decode(&raw_id, fields)? else {
                continue;
            };
            match job.handle(Event::Claim, now, 0, self.lifecycle()) {
                Ok(fx) => {
                    ops.push(Commit::of(&job, Some(ver), &fx, false));
                    claimed.push(job);
                }
                // A job that cannot be claimed (a cancel raced the pop) goes
                // back to the index of its state.
                Err(_) => ops.push(Commit::reindex(&job, ver)),
            }
        }
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let replies = self.commit(&ops).await?;
        let mut jobs = claimed.into_iter();
        let mut out = Vec::with_capacity(ops.len());
        for (op, reply) in ops.iter().zip(replies) {
            if op.reindex_only {
                continue;
            }
            let Some(job) = jobs.next() else { break };
            // A lost race (a cancel between pop and write) leaves the job
            // to whoever won it.
            if reply != Reply::Ok {
                continue;
            }
            if let JobState::Running { attempt, lease } = *job.state() {
                out.push(ClaimedJob {
                    claim: Claimed {
                        id: job.id(),
                        token: lease.token,
                        attempt,
                        expires_at: lease.expires_at,
                        deadline: lease.deadline,
                    },
                    job,
                });
            }
        }
        Ok(out)
    }

    /// Applies `event` to job `id` at `now` (`random` feeds the retry
    /// jitter) and writes the outcome, deciding again if another writer
    /// got there first.
    pub async fn apply(
        &self,
        id: JobId,
        event: Event,
        now: Timestamp,
        random: u64,
    ) -> Result<(Job, Effects), RedisStoreError> {
        let takes_unique = matches!(event, Event::Retry);
        for _ in 0..MAX_CONFLICTS {
            let (mut job, ver) = self.load(id).await?.ok_or(RedisStoreError::NotFound(id))?;
            let fx = match job.handle(event.clone(), now, random, self.lifecycle()) {
                Ok(fx) => fx,
                Err(rejected) => {
                    if matches!(
                        rejected,
                        Rejected::StaleToken { .. } | Rejected::LeaseExpired { .. }
                    ) {
                        self.count("fenced").await?;
                    }
                    return Err(RedisStoreError::Rejected { id, rejected });
                }
            };
            let op = Commit::of(&job, Some(ver), &fx, takes_unique);
            match self.commit(std::slice::from_ref(&op)).await?.pop() {
                Some(Reply::Ok) => return Ok((job, fx)),
                Some(Reply::Missing) => return Err(RedisStoreError::NotFound(id)),
                Some(Reply::Unique(holder)) => {
                    return Err(RedisStoreError::Duplicate {
                        key: job.spec().unique_key.clone().unwrap_or_default(),
                        holder,
                    });
                }
                _ => {}
            }
        }
        Err(RedisStoreError::Contended(id))
    }

    /// Renews the lease of `token`; answers the lease, whose
    /// `cancel_requested` tells the worker to stop.
    pub async fn heartbeat(
        &self,
        id: JobId,
        token: FencingToken,
        now: Timestamp,
    ) -> Result<Lease, RedisStoreError> {
        let (job, _) = self.apply(id, Event::Heartbeat { token }, now, 0).await?;
        job.state()
            .lease()
            .copied()
            .ok_or(RedisStoreError::Rejected {
                id,
                rejected: Rejected::StaleToken {
                    presented: token,
                    current: None,
                },
            })
    }

    /// Records progress. Every call writes: the caller throttles with a
    /// [`ProgressThrottle`](mechops_alloc::job::ProgressThrottle).
    pub async fn progress(
        &self,
        id: JobId,
        token: FencingToken,
        progress: Progress,
        now: Timestamp,
    ) -> Result<Job, RedisStoreError> {
        let event = Event::Progress { token, progress };
        Ok(self.apply(id, event, now, 0).await?.0)
    }

    /// Records success.
    pub async fn complete(
        &self,
        id: JobId,
        token: FencingToken,
        result: String,
        now: Timestamp,
    ) -> Result<Job, RedisStoreError> {
        let event = Event::Complete { token, result };
        Ok(self.apply(id, event, now, 0).await?.0)
    }

    /// Records a failure; a retry, if any, is scheduled after the job's
    /// backoff with fresh jitter.
    pub async fn fail(
        &self,
        id: JobId,
        token: FencingToken,
        error: String,
        kind: FailKind,
        now: Timestamp,
    ) -> Result<Job, RedisStoreError> {
        let event = Event::Fail { token, error, kind };
        Ok(self.apply(id, event, now, random_u64()).await?.0)
    }

    /// Gives a running job back unfinished (graceful shutdown): it is
    /// claimable at once and the attempt does not count.
    pub async fn release(
        &self,
        id: JobId,
        token: FencingToken,
        now: Timestamp,
    ) -> Result<Job, RedisStoreError> {
        Ok(self.apply(id, Event::Release { token }, now, 0).await?.0)
    }

    /// Acknowledges a cancel request: the running job is cancelled.
    pub async fn ack_cancel(
        &self,
        id: JobId,
        token: FencingToken,
        now: Timestamp,
    ) -> Result<Job, RedisStoreError> {
        Ok(self.apply(id, Event::AckCancel { token }, now, 0).await?.0)
    }

    /// Cancels a pending job, or asks the worker of a running one to stop.
    pub async fn cancel(&self, id: JobId, now: Timestamp) -> Result<Job, RedisStoreError> {
        Ok(self.apply(id, Event::Cancel, now, 0).await?.0)
    }

    /// Queues a dead or retry-scheduled job again with its attempts reset.
    pub async fn retry(&self, id: JobId, now: Timestamp) -> Result<Job, RedisStoreError> {
        Ok(self.apply(id, Event::Retry, now, 0).await?.0)
    }

    /// The job, if it exists.
    pub async fn status(&self, id: JobId) -> Result<Option<Job>, RedisStoreError> {
        Ok(self.load(id).await?.map(|(job, _)| job))
    }

    async fn load(&self, id: JobId) -> Result<Option<(Job, String)>, RedisStoreError> {
        let raw = id.to_string();
        let mut cmd = redis::cmd("HGETALL");
        cmd.arg(self.job_key(&raw));
        let fields: HashMap<String, String> = self.query(&cmd).await?;
        self.decode(&raw, fields)
    }

    fn decode(
        &self,
        raw_id: &str,
        fields: HashMap<String, String>,
    ) -> Result<Option<(Job, String)>, RedisStoreError> {
        if fields.is_empty() {
            return Ok(None);
        }
        decode(raw_id, &fields, self.lifecycle())
            .map(Some)
            .map_err(|reason| RedisStoreError::Corrupt {
                id: raw_id.to_owned(),
                reason,
            })
    }

    /// Up to `limit` jobs in `state` (all states when `None`), oldest in
    /// each index first.
    pub async fn list(
        &self,
        state: Option<StateKind>,
        limit: usize,
    ) -> Result<Vec<Job>, RedisStoreError> {
        let indexes: &[&str] = match state {
            None => &["ready", "delayed", "leases", "done", "dead"],
            Some(kind) => &[index_of(kind)],
        };
        let mut out = Vec::new();
        for index in indexes {
            let mut offset = 0usize;
            while out.len() < limit {
                let mut cmd = redis::cmd("ZRANGE");
                cmd.arg(self.key(index)).arg(offset).arg(offset + 255);
                let ids: Vec<String> = self.query(&cmd).await?;
                if ids.is_empty() {
                    break;
                }
                offset += ids.len();
                let mut pipe = redis::pipe();
                for id in &ids {
                    pipe.cmd("HGETALL").arg(self.job_key(id));
                }
                let records: Vec<HashMap<String, String>> = self.query_pipe(&pipe).await?;
                for (id, fields) in ids.iter().zip(records) {
                    if let Some((job, _)) = self.decode(id, fields)?
                        && state.is_none_or(|k| job.state().kind() == k)
                        && out.len() < limit
                    {
                        out.push(job);
                    }
                }
            }
        }
        Ok(out)
    }

    async fn query_pipe<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> Result<T, RedisStoreError> {
        let mut retry = Retry::new();
        let started = tokio::time::Instant::now();
        loop {
            let mut conn = self.inner.conn.clone();
            match pipe.query_async(&mut conn).await {
                Ok(v) => return Ok(v),
                Err(e)
                    if is_transient(&e) && started.elapsed() < self.inner.config.reconnect_for =>
                {
                    self.wait(&mut retry, &e).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Counts by state now, and event counters since the queue began.
    pub async fn stats(&self) -> Result<Stats, RedisStoreError> {
        let mut pipe = redis::pipe();
        pipe.cmd("HGETALL").arg(self.key("counts"));
        pipe.cmd("HGETALL").arg(self.key("stats"));
        let (counts, events): (HashMap<String, i64>, HashMap<String, u64>) =
            self.query_pipe(&pipe).await?;
        let count = |k: StateKind| {
            usize::try_from(counts.get(k.as_str()).copied().unwrap_or(0)).unwrap_or(0)
        };
        let event = |k: &str| events.get(k).copied().unwrap_or(0);
        Ok(Stats {
            queue_size: count(StateKind::Queued),
            delayed: count(StateKind::Delayed),
            running: count(StateKind::Running),
            retry_scheduled: count(StateKind::RetryScheduled),
            completed: count(StateKind::Completed),
            dead: count(StateKind::Dead),
            cancelled: count(StateKind::Cancelled),
            failed: event("failed"),
            completed_total: event("completed_total"),
            stalls_recovered: event("stalls_recovered"),
            fenced: event("fenced"),
            pruned: event("pruned"),
        })
    }

    /// Recovers up to one batch of expired leases at `now`: each job is
    /// queued again, timed out, cancelled or dead as the lifecycle says.
    /// Returns how many it recovered; call again while that is a full
    /// batch.
    pub async fn reap(&self, now: Timestamp) -> Result<usize, RedisStoreError> {
        let args = [
            self.inner.config.prefix.clone(),
            floor_ms(now).to_string(),
            self.inner.config.batch.max(1).to_string(),
        ];
        let value: Value = self.eval(&self.inner.scripts.expired, &args).await?;
        let records = parse_records(value)?;
        let mut ops = Vec::with_capacity(records.len());
        for (raw_id, fields) in records {
            let Some((mut job, ver)) = self.decode(&raw_id, fields)? else {
                continue;
            };
            if job.state().kind() == StateKind::Running {
                match job.handle(Event::Expire, now, random_u64(), self.lifecycle()) {
                    Ok(fx) => ops.push(Commit::of(&job, Some(ver), &fx, false)),
                    // Not due in this process's finer clock: the next pass.
                    Err(_) => continue,
                }
            } else {
                // A provisional claim that was never written.
                ops.push(Commit::reindex(&job, ver));
            }
        }
        if ops.is_empty() {
            return Ok(0);
        }
        let replies = self.commit(&ops).await?;
        Ok(replies.iter().filter(|r| **r == Reply::Ok).count())
    }

    /// Recovers every lease expired at `now`, batch by batch.
    pub async fn reap_all(&self, now: Timestamp) -> Result<usize, RedisStoreError> {
        let mut total = 0;
        loop {
            let n = self.reap(now).await?;
            total += n;
            if n < self.inner.config.batch.max(1) {
                return Ok(total);
            }
        }
    }

    /// Removes completed and cancelled jobs older than the retention's age,
    /// then the oldest beyond its count. Returns how many were removed.
    pub async fn prune(&self, now: Timestamp) -> Result<u64, RedisStoreError> {
        let retention = self.inner.config.retention;
        let before = floor_ms(now)
            .saturating_sub(i64::try_from(retention.max_age.as_millis()).unwrap_or(i64::MAX));
        let keep = i64::try_from(retention.max_count).unwrap_or(i64::MAX);
        self.remove("done", Some(before), keep, "", "prune").await
    }

    /// Removes finished jobs in `state` (completed, cancelled and dead when
    /// `None`) that finished before `older_than` (all when `None`).
    pub async fn purge(
        &self,
        state: Option<StateKind>,
        older_than: Option<Timestamp>,
    ) -> Result<u64, RedisStoreError> {
        let before = older_than.map(floor_ms);
        match state {
            None => {
                let done = self.remove("done", before, -1, "", "purge").await?;
                Ok(done + self.remove("dead", before, -1, "", "purge").await?)
            }
            Some(kind @ (StateKind::Completed | StateKind::Cancelled)) => {
                self.remove("done", before, -1, kind.as_str(), "purge")
                    .await
            }
            Some(StateKind::Dead) => self.remove("dead", before, -1, "", "purge").await,
            Some(kind) => Err(RedisStoreError::NotPurgeable(kind)),
        }
    }

    async fn remove(
        &self,
        index: &str,
        before: Option<i64>,
        keep: i64,
        state: &str,
        why: &str,
    ) -> Result<u64, RedisStoreError> {
        let batch = self.inner.config.batch.max(1);
        let mut total = 0u64;
        loop {
            let args = [
                self.inner.config.prefix.clone(),
                index.to_owned(),
                before.map(|b| b.to_string()).unwrap_or_default(),
                keep.to_string(),
                batch.to_string(),
                state.to_owned(),
                why.to_owned(),
            ];
            let n: u64 = self.eval(&self.inner.scripts.remove, &args).await?;
            total += n;
            if n < batch as u64 {
                return Ok(total);
            }
        }
    }

    /// Deletes every key of this store's prefix: all jobs and counters.
    pub async fn clear(&self) -> Result<u64, RedisStoreError> {
        let pattern = format!("{}*", escape_glob(&self.inner.config.prefix));
        let mut cursor = 0u64;
        let mut removed = 0u64;
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000);
            let (next, keys): (u64, Vec<String>) = self.query(&scan).await?;
            if !keys.is_empty() {
                let mut del = redis::cmd("DEL");
                del.arg(&keys);
                removed += self.query::<u64>(&del).await?;
            }
            if next == 0 {
                return Ok(removed);
            }
            cursor = next;
        }
    }
}

fn escape_glob(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The index a state lives in.
fn index_of(kind: StateKind) -> &'static str {
    match kind {
        StateKind::Queued => "ready",
        StateKind::Delayed | StateKind::RetryScheduled => "delayed",
        StateKind::Running => "leases",
        StateKind::Completed | StateKind::Cancelled => "done",
        StateKind::Dead => "dead",
    }
}

fn rank(p: JobPriority) -> u64 {
    match p {
        JobPriority::High => 0,
        JobPriority::Normal => 1,
        JobPriority::Low => 2,
    }
}

fn floor_ms(t: Timestamp) -> i64 {
    t.unix_millis()
}

/// Milliseconds rounded up, so a score `<= now_ms` means the instant has
/// truly passed.
fn ceil_ms(t: Timestamp) -> i64 {
    let n = t.unix_nanos();
    i64::try_from(n.div_euclid(1_000_000) + i128::from(n.rem_euclid(1_000_000) != 0))
        .unwrap_or(i64::MAX)
}

/// One record write for commit.lua.
#[derive(Debug)]
struct Commit {
    id: String,
    expect: Option<String>,
    cid: u64,
    state: StateKind,
    index: &'static str,
    score: String,
    unique: (&'static str, String),
    stats: Vec<&'static str>,
    set: Vec<(&'static str, String)>,
    del: Vec<&'static str>,
    reindex_only: bool,
}

#[derive(Debug, PartialEq, Eq)]
enum Reply {
    Ok,
    Conflict,
    Exists,
    Missing,
    Unique(String),
}

impl Reply {
    fn parse(s: &str) -> Self {
        match s {
            "ok" => Self::Ok,
            "exists" => Self::Exists,
            "missing" => Self::Missing,
            other => match other.strip_prefix("unique:") {
                Some(holder) => Self::Unique(holder.to_owned()),
                None => Self::Conflict,
            },
        }
    }
}

impl Commit {
    /// The write of `job` after a transition with effects `fx`; `expect`
    /// is the version read (`None` for a new record).
    fn of(job: &Job, expect: Option<String>, fx: &Effects, takes_unique: bool) -> Self {
        let inserted = expect.is_none();
        let (index, score) = placement(job);
        let key = job.spec().unique_key.clone().unwrap_or_default();
        let unique = if job.spec().unique_key.is_none() {
            ("", String::new())
        } else if inserted || takes_unique {
            ("take", key)
        } else if fx.contains(&Effect::ReleaseUniqueKey) {
            ("free", key)
        } else {
            ("", String::new())
        };
        let mut stats = Vec::new();
        if inserted {
            stats.push("submitted");
        }
        for event in fx.events() {
            match event {
                JobEvent::Completed => stats.push("completed_total"),
                JobEvent::RetryScheduled { .. } | JobEvent::Dead { .. } => stats.push("failed"),
                JobEvent::Stalled { .. } if job.state().kind() == StateKind::Queued => {
                    stats.push("stalls_recovered");
                }
                _ => {}
            }
        }
        let (set, del) = encode(job, inserted);
        Self {
            id: job.id().to_string(),
            expect,
            cid: random_u64(),
            state: job.state().kind(),
            index,
            score,
            unique,
            stats,
            set,
            del,
            reindex_only: false,
        }
    }

    /// Puts a job back into the index of the state its record has,
    /// changing nothing else.
    fn reindex(job: &Job, expect: String) -> Self {
        let (index, score) = placement(job);
        Self {
            id: job.id().to_string(),
            expect: Some(expect),
            cid: random_u64(),
            state: job.state().kind(),
            index,
            score,
            unique: ("", String::new()),
            stats: Vec::new(),
            set: Vec::new(),
            del: Vec::new(),
            reindex_only: true,
        }
    }

    fn push_args(&self, args: &mut Vec<String>) {
        args.push(self.id.clone());
        args.push(self.expect.clone().unwrap_or_default());
        args.push(self.cid.to_string());
        args.push(self.state.as_str().to_owned());
        args.push(self.index.to_owned());
        args.push(self.score.clone());
        args.push(self.unique.0.to_owned());
        args.push(self.unique.1.clone());
        args.push(self.stats.len().to_string());
        args.extend(self.stats.iter().map(|s| (*s).to_owned()));
        args.push(self.set.len().to_string());
        for (k, v) in &self.set {
            args.push((*k).to_owned());
            args.push(v.clone());
        }
        args.push(self.del.len().to_string());
        args.extend(self.del.iter().map(|s| (*s).to_owned()));
    }
}

/// The index and score of a job in its state.
fn placement(job: &Job) -> (&'static str, String) {
    let kind = job.state().kind();
    let index = index_of(kind);
    let score = match job.state() {
        JobState::Queued => rank(job.spec().priority).to_string(),
        JobState::Delayed { ready_at: at } | JobState::RetryScheduled { at } => {
            ceil_ms(*at).to_string()
        }
        JobState::Running { lease, .. } => ceil_ms(lease.expires_at).to_string(),
        _ => job.finished_at().map_or(0, floor_ms).to_string(),
    };
    (index, score)
}

/// The mutable fields, each written when present and deleted when absent.
const MUTABLE: [&str; 18] = [
    "state_at",
    "attempt",
    "token",
    "expires",
    "deadline",
    "cancel",
    "reason",
    "attempts",
    "stalls",
    "last_token",
    "last_delay",
    "ready",
    "started",
    "finished",
    "prog_f",
    "prog_msg",
    "result",
    "error",
];

fn nanos(t: Timestamp) -> String {
    t.unix_nanos().to_string()
}

fn jitter_name(j: Jitter) -> &'static str {
    match j {
        Jitter::None => "none",
        Jitter::Equal => "equal",
        Jitter::Decorrelated => "decorrelated",
        _ => "full",
    }
}

/// The hash fields of `job`: everything when `inserted`, else the mutable
/// ones; and the mutable fields to delete.
fn encode(job: &Job, inserted: bool) -> (Vec<(&'static str, String)>, Vec<&'static str>) {
    let mut set: Vec<(&'static str, String)> = Vec::with_capacity(32);
    if inserted {
        let spec = job.spec();
        let b = &spec.backoff;
        set.extend([
            ("id", job.id().to_string()),
            ("handler", spec.handler.clone()),
            ("args", spec.args.clone()),
            ("priority", spec.priority.as_str().to_owned()),
            ("rank", rank(spec.priority).to_string()),
            ("max_attempts", spec.max_attempts.to_string()),
            ("bo_base", b.base().as_nanos().to_string()),
            ("bo_cap", b.cap().as_nanos().to_string()),
            ("bo_max", b.max_attempts().to_string()),
            ("bo_mult", b.multiplier().to_string()),
            ("bo_jitter", jitter_name(b.jitter()).to_owned()),
            ("created", nanos(job.created_at())),
        ]);
        if let Some(t) = spec.timeout {
            set.push(("timeout", t.as_nanos().to_string()));
        }
        if let Some(k) = &spec.unique_key {
            set.push(("unique", k.clone()));
        }
    }
    match *job.state() {
        JobState::Delayed { ready_at: at } | JobState::RetryScheduled { at } => {
            set.push(("state_at", nanos(at)));
        }
        JobState::Running { attempt, lease } => {
            set.push(("attempt", attempt.to_string()));
            set.push(("token", lease.token.get().to_string()));
            set.push(("expires", nanos(lease.expires_at)));
            if let Some(d) = lease.deadline {
                set.push(("deadline", nanos(d)));
            }
            set.push(("cancel", u8::from(lease.cancel_requested).to_string()));
        }
        JobState::Dead { reason } => set.push(("reason", reason.as_str().to_owned())),
        _ => {}
    }
    set.push(("attempts", job.attempts().to_string()));
    set.push(("stalls", job.stalls().to_string()));
    set.push(("last_token", job.last_token().get().to_string()));
    if let Some(d) = job.last_retry_delay() {
        set.push(("last_delay", d.as_nanos().to_string()));
    }
    set.push(("ready", nanos(job.ready_at())));
    if let Some(t) = job.started_at() {
        set.push(("started", nanos(t)));
    }
    if let Some(t) = job.finished_at() {
        set.push(("finished", nanos(t)));
    }
    if let Some(p) = job.progress() {
        set.push(("prog_f", p.fraction().to_string()));
        set.push(("prog_msg", p.message().to_owned()));
    }
    if let Some(r) = job.result() {
        set.push(("result", r.to_owned()));
    }
    if let Some(e) = job.error() {
        set.push(("error", e.to_owned()));
    }
    let del = if inserted {
        Vec::new()
    } else {
        MUTABLE
            .iter()
            .copied()
            .filter(|f| !set.iter().any(|(k, _)| k == f))
            .collect()
    };
    (set, del)
}

/// Reads a record back; the error says which field is wrong.
fn decode(
    raw_id: &str,
    f: &HashMap<String, String>,
    lifecycle: &Lifecycle,
) -> Result<(Job, String), String> {
    fn req<'a>(f: &'a HashMap<String, String>, k: &str) -> Result<&'a str, String> {
        f.get(k)
            .map(String::as_str)
            .ok_or_else(|| format!("field {k} is missing"))
    }
    fn num<T: std::str::FromStr>(f: &HashMap<String, String>, k: &str) -> Result<T, String> {
        req(f, k)?
            .parse()
            .map_err(|_| format!("field {k} is not a number"))
    }
    fn opt_num<T: std::str::FromStr>(
        f: &HashMap<String, String>,
        k: &str,
    ) -> Result<Option<T>, String> {
        f.contains_key(k).then(|| num(f, k)).transpose()
    }
    fn ts(f: &HashMap<String, String>, k: &str) -> Result<Timestamp, String> {
        Timestamp::from_unix_nanos(num(f, k)?).map_err(|_| format!("field {k} is out of range"))
    }
    fn opt_ts(f: &HashMap<String, String>, k: &str) -> Result<Option<Timestamp>, String> {
        f.contains_key(k).then(|| ts(f, k)).transpose()
    }
    let uuid: Uuid = raw_id
        .parse()
        .map_err(|_| format!("its ID {raw_id:?} is not a UUID"))?;
    let jitter = match req(f, "bo_jitter")? {
        "none" => Jitter::None,
        "full" => Jitter::Full,
        "equal" => Jitter::Equal,
        "decorrelated" => Jitter::Decorrelated,
        other => return Err(format!("unknown jitter {other:?}")),
    };
    let multiplier: u32 = num(f, "bo_mult")?;
    let backoff = Backoff::new(
        Duration::from_nanos(num(f, "bo_base")?),
        Duration::from_nanos(num(f, "bo_cap")?),
        num(f, "bo_max")?,
    )
    .and_then(|b| b.with_multiplier(multiplier))
    .map_err(|e| format!("backoff: {e}"))?
    .with_jitter(jitter);
    let priority: JobPriority = req(f, "priority")?
        .parse()
        .map_err(|e| format!("priority: {e}"))?;
    let ready_at = ts(f, "ready")?;
    let spec = JobSpec {
        handler: req(f, "handler")?.to_owned(),
        args: req(f, "args")?.to_owned(),
        priority,
        run_at: RunAt::Now,
        max_attempts: num(f, "max_attempts")?,
        timeout: opt_num(f, "timeout")?.map(Duration::from_nanos),
        backoff,
        unique_key: f.get("unique").cloned(),
    };
    let kind: StateKind = req(f, "state")?
        .parse()
        .map_err(|e| format!("state: {e}"))?;
    let state = match kind {
        StateKind::Queued => JobState::Queued,
        StateKind::Delayed => JobState::Delayed {
            ready_at: ts(f, "state_at")?,
        },
        StateKind::RetryScheduled => JobState::RetryScheduled {
            at: ts(f, "state_at")?,
        },
        StateKind::Running => JobState::Running {
            attempt: num(f, "attempt")?,
            lease: Lease {
                token: FencingToken::new(num(f, "token")?),
                expires_at: ts(f, "expires")?,
                deadline: opt_ts(f, "deadline")?,
                cancel_requested: req(f, "cancel")? == "1",
            },
        },
        StateKind::Completed => JobState::Completed,
        StateKind::Cancelled => JobState::Cancelled,
        StateKind::Dead => JobState::Dead {
            reason: match req(f, "reason")? {
                r if r == DeadReason::Permanent.as_str() => DeadReason::Permanent,
                r if r == DeadReason::StalledTooOften.as_str() => DeadReason::StalledTooOften,
                r if r == DeadReason::AttemptsExhausted.as_str() => DeadReason::AttemptsExhausted,
                other => return Err(format!("unknown dead reason {other:?}")),
            },
        },
    };
    let progress = match f.get("prog_f") {
        None => None,
        Some(v) => {
            let fraction: f64 = v.parse().map_err(|_| "field prog_f is not a number")?;
            let message = f.get("prog_msg").cloned().unwrap_or_default();
            Some(Progress::new(fraction, message).map_err(|e| format!("progress: {e}"))?)
        }
    };
    let parts = JobParts {
        id: JobId::new(uuid),
        spec,
        state,
        attempts: num(f, "attempts")?,
        stalls: num(f, "stalls")?,
        last_token: num(f, "last_token")?,
        last_retry_delay: opt_num(f, "last_delay")?.map(Duration::from_nanos),
        created_at: ts(f, "created")?,
        ready_at,
        started_at: opt_ts(f, "started")?,
        finished_at: opt_ts(f, "finished")?,
        progress,
        result: f.get("result").cloned(),
        error: f.get("error").cloned(),
    };
    let job = Job::restore(parts, lifecycle).map_err(|e| e.to_string())?;
    Ok((job, req(f, "ver")?.to_owned()))
}

/// `[id, [field, value, ...], id, ...]` as the claim and expiry scripts
/// return it.
fn parse_records(value: Value) -> Result<Vec<(String, HashMap<String, String>)>, RedisStoreError> {
    let bad = |reason: &str| RedisStoreError::Corrupt {
        id: String::new(),
        reason: format!("unexpected script reply: {reason}"),
    };
    let Value::Array(items) = value else {
        return Err(bad("not an array"));
    };
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let Some(id) = it.next() {
        let id: String = redis::from_redis_value(id).map_err(|_| bad("an ID is not text"))?;
        let fields: HashMap<String, String> =
            redis::from_redis_value(it.next().ok_or_else(|| bad("an ID without a record"))?)
                .map_err(|_| bad("a record is not a hash"))?;
        out.push((id, fields));
    }
    Ok(out)
}
