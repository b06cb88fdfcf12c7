//! The Redis job store: many workers on many machines share one queue in a
//! Redis server (`redis://HOST:PORT[/DB]`, standalone, not Cluster).
//!
//! The store is a driver of the sans-IO [`Job`] lifecycle. Most
//! transitions are decided by [`Job::handle`] in this process and written
//! by a Lua script that checks, atomically, that the record is still the
//! version that was read (compare and set). The three that every job
//! takes, submission, claim and completion, run whole inside one script
//! each, for many jobs per call: those scripts apply the lifecycle's own
//! rules for the events, and the tests compare the records they leave with
//! what [`Job::handle`] makes from the same inputs.
//!
//! # Cost per job
//!
//! Redis's work, not the round trips, bounds the throughput, so the
//! scripts write little: per job, a submission reads its key and writes
//! one `HSET` of the fields that never change (defaults left out), a claim
//! one `HMGET` and one `HSET`, a completion one `HMGET` and one `HSET`.
//! Everything shared (the index sorted sets, the sequence, the counters,
//! the wake message) is written once per call for the whole batch. The
//! store keeps three connections, so that a claim never waits behind a
//! large submission's reply: one for submissions and other calls, one for
//! claims, one for the completions, which concurrent calls share in
//! batches (see [`Store::complete`]).
//!
//! # Waking workers
//!
//! Scripts that make jobs claimable (submission, retry, release, lease
//! recovery) publish on the channel `{prefix}wake`; every store subscribes
//! to it on a fourth connection (RESP3 pushes) and notifies its
//! [`Store::work_signal`], so an idle worker in any process claims a new
//! job at once instead of at its next poll. That connection is checked
//! every second and subscribes again after a reconnection; a message lost
//! meanwhile only delays the job until the poll
//! ([`RedisConfig::poll_interval`]); delayed jobs fall due by the worker's
//! own timer ([`Store::next_due`]). Lease expiry is looked for at most
//! once a poll interval while none is due: the check remembers the
//! earliest lease it saw.
//!
//! # Keys
//!
//! Every key starts with the store's prefix (default `mechops:jobs:`), so
//! queues (and tests) can share a server. `docs/FORMAT.md` lists the
//! fields; in short:
//!
//! - `job:ID`, a hash: the job's record, with its version `ver`;
//!   records of format version 1 (before the defaults were left out) are
//!   read too;
//! - `ready`, a sorted set of claimable jobs scored by priority rank, then
//!   submission sequence (`rank * 2^50 + seq`), so `ZPOPMIN` takes the best
//!   priority first and the oldest within it;
//! - `delayed` (delayed and retry-scheduled jobs, by ready time in ms),
//!   `leases` (running jobs, by lease expiry in ms), `done` (completed and
//!   cancelled, by finish time) and `dead` (by finish time);
//! - `unique` (unique key to job ID), `counts` (jobs in the states that
//!   share an index: retry-scheduled and cancelled; the others are the
//!   sizes of their indexes), `hrun`
//!   (running jobs per handler, for the handler limits), `stats` (event
//!   counters) and `seq`.
//!
//! # Atomicity and fencing
//!
//! - A claim is one script: it promotes due delayed jobs, takes the best
//!   ready ones within the handler limits and starts their attempts with a
//!   new fencing token and lease each. A worker that dies after it leaves
//!   the jobs in `leases`, where lease expiry finds them.
//! - A completion is one script: it checks the token and the lease's
//!   expiry before it writes. Anything it refuses is handed to
//!   [`Job::handle`] on the record as it then is, which says why.
//! - Every other transition (heartbeat, progress, fail, release, cancel,
//!   retry, lease expiry) reads the record, applies the event, and writes
//!   with compare and set; a write that lost a race is read and decided
//!   again. A worker whose lease was recovered presents an old fencing
//!   token, which [`Job::handle`] refuses ([`Rejected::StaleToken`]); the
//!   refusal is [`StoreError::Fenced`] and counted in [`Stats::fenced`].
//! - Lease expiry ([`Store::recover_expired`]) works in batches, each a
//!   short script, so a flood of stalled jobs never holds up claims.
//!
//! # Durability and reconnection
//!
//! A call returns once Redis has acknowledged the write; how durable that
//! is is Redis's `appendfsync`: with `always` an acknowledged job survives
//! a crash of the server, with `everysec` the last second may be lost.
//! When the connection fails (the server restarts, loads its data, or is
//! unreachable), calls reconnect and try again with
//! [`RedisConfig::reconnect`]'s backoff (the core's [`Backoff`]) for up to
//! [`RedisConfig::reconnect_for`]. A retried write carries the same commit
//! ID, so a write whose reply was lost is recognised, not applied twice.
//!
//! # Cancellation
//!
//! Dropping a call's future at any `.await` leaves the store consistent:
//! each script is atomic, so a write happened whole or not at all. A claim
//! dropped after its script ran leaves its jobs running with nobody to
//! report on them; they are recovered when their leases run out.

use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use mechops_alloc::job::{
    DEFAULT_BACKOFF, DeadReason, Effect, Effects, Event, FailKind, FencingToken, Job, JobEvent,
    JobId, JobParts, JobPriority, JobSpec, JobState, Lease, Lifecycle, Progress, Rejected, RunAt,
    StateKind, Stats,
};
use mechops_core::backoff::{Backoff, Jitter, Retry};
use mechops_core::time::Timestamp;
use mechops_core::uuid::Uuid;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind, RetryMethod, Script, Value};
use tokio::sync::{Notify, mpsc, oneshot};

use super::store::{
    ClaimRequest, ClaimedJob, PurgeFilter, Store, StoreConfig, StoreError, StoreFuture, StoreStats,
    SubmitRefused, Throughput,
};

/// The key prefix used unless another is configured.
pub const DEFAULT_PREFIX: &str = "mechops:jobs:";

/// How often one transition is decided again after losing a race before
/// the store gives up.
const MAX_CONFLICTS: usize = 64;

/// How the store connects and behaves.
#[derive(Clone, Debug)]
pub struct RedisConfig {
    /// `redis://HOST:PORT[/DB]`.
    pub url: String,
    /// Prepended to every key (default [`DEFAULT_PREFIX`]).
    pub prefix: String,
    /// Lease length, stall limit, progress interval and retention.
    pub store: StoreConfig,
    /// The delays between tries when Redis cannot be reached (default
    /// 50 ms doubling to 2 s, equal jitter).
    pub reconnect: Backoff,
    /// How long a call keeps trying before it fails (default 60 s).
    pub reconnect_for: Duration,
    /// How long one command may wait for its reply (default 10 s).
    pub response_timeout: Duration,
    /// The most jobs one pruning or purging script removes, and the most
    /// delayed jobs one claim promotes (default 256).
    pub batch: usize,
    /// How often idle workers look for jobs other processes made
    /// claimable when no wake message reached them (default 20 ms), and
    /// how long a lease expiry check that found nothing stands.
    pub poll_interval: Duration,
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
            store: StoreConfig::default(),
            reconnect,
            reconnect_for: Duration::from_secs(60),
            response_timeout: Duration::from_secs(10),
            batch: 256,
            poll_interval: Duration::from_millis(20),
        }
    }

    /// The same settings with another key prefix.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The same settings with another lifecycle and retention.
    #[must_use]
    pub fn with_store(mut self, store: StoreConfig) -> Self {
        self.store = store;
        self
    }

    /// The same settings with another reconnection policy, given up after
    /// `give_up_after`.
    #[must_use]
    pub fn with_reconnect(mut self, backoff: Backoff, give_up_after: Duration) -> Self {
        self.reconnect = backoff;
        self.reconnect_for = give_up_after;
        self
    }
}

struct Scripts {
    submit: Script,
    commit: Script,
    claim: Script,
    expired: Script,
    remove: Script,
}

struct Inner {
    /// Submissions, reads and the transitions decided here.
    conn: ConnectionManager,
    /// Claims alone, so a claim never queues behind a large submission's
    /// reply.
    claims: ConnectionManager,
    /// Subscribed to the wake channel (RESP3 pushes); sent nothing but a
    /// `PING` a second after subscribing (see [`subscribe`]).
    wake: ConnectionManager,
    config: RedisConfig,
    scripts: Scripts,
    signal: Arc<Notify>,
    closed: AtomicBool,
    completions: mpsc::UnboundedSender<Completion>,
    /// The last expiry check that found nothing: (its `now`, the instant
    /// before which the next one need not ask), in Unix ms.
    reaped: Mutex<(i64, i64)>,
}

/// A job store in Redis. Cheap to clone: clones share one connection, over
/// which concurrent calls are pipelined.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

impl core::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
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

/// The client for `config.url` and the connection settings: few retries of
/// its own, since calls retry with the store's backoff.
fn client(config: &RedisConfig) -> Result<(redis::Client, ConnectionManagerConfig), StoreError> {
    if !is_redis_url(&config.url) {
        return Err(StoreError::Config(format!(
            "invalid Redis store URL {:?}: it must start with redis://",
            config.url
        )));
    }
    if config.prefix.is_empty() {
        return Err(StoreError::Config(
            "the Redis store's key prefix is empty".to_owned(),
        ));
    }
    let client = redis::Client::open(config.url.as_str()).map_err(|e| {
        StoreError::Config(format!("invalid Redis store URL {:?}: {e}", config.url))
    })?;
    let manager = ConnectionManagerConfig::new()
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(10))
        .set_max_delay(Duration::from_millis(100))
        .set_connection_timeout(Some(config.response_timeout))
        .set_response_timeout(Some(config.response_timeout));
    Ok((client, manager))
}

/// Sends one request made by `send` on `conn`, reconnecting and trying
/// again with `config.reconnect`'s backoff while Redis is unreachable or
/// loading, for up to `config.reconnect_for`.
async fn send_with_retry<T, F, Fut>(
    conn: &ConnectionManager,
    config: &RedisConfig,
    mut send: F,
) -> Result<T, StoreError>
where
    F: FnMut(ConnectionManager) -> Fut,
    Fut: Future<Output = redis::RedisResult<T>>,
{
    let mut retry = Retry::new();
    let started = tokio::time::Instant::now();
    loop {
        match send(conn.clone()).await {
            Ok(v) => return Ok(v),
            Err(e) if is_transient(&e) && started.elapsed() < config.reconnect_for => {
                let policy = &config.reconnect;
                let delay = retry
                    .next_delay(policy, commit_id())
                    .unwrap_or(policy.cap());
                tracing::warn!(error = %e, ?delay, "Redis call failed; reconnecting");
                tokio::time::sleep(delay).await;
            }
            Err(e) => return Err(backend(&e)),
        }
    }
}

/// One completion waiting for the next batch.
struct Completion {
    /// id, token, now (ns), now (Unix ms), result: the script's arguments.
    args: [String; 5],
    reply: oneshot::Sender<Result<String, StoreError>>,
}

/// Completions that arrive while a batch is in flight go together in the
/// next: one script call for many jobs, which is most of what a completion
/// costs Redis. Runs until every sender (the store and its clones) is gone.
async fn complete_batches(
    conn: ConnectionManager,
    config: RedisConfig,
    mut queue: mpsc::UnboundedReceiver<Completion>,
) {
    let script = Script::new(include_str!("redis/complete.lua"));
    let mut batch = Vec::new();
    while let Some(first) = queue.recv().await {
        batch.push(first);
        while batch.len() < MAX_COMPLETION_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let mut args = Vec::with_capacity(2 + 5 * batch.len());
        args.push(config.prefix.clone());
        args.push(COMPLETIONS_KEPT_SECS.to_string());
        for c in &batch {
            args.extend(c.args.iter().cloned());
        }
        let replies: Result<Vec<String>, StoreError> =
            send_with_retry(&conn, &config, |mut conn| {
                let script = &script;
                let args = &args;
                async move {
                    let mut invocation = script.prepare_invoke();
                    invocation.arg(args);
                    invocation.invoke_async(&mut conn).await
                }
            })
            .await;
        match replies {
            Ok(replies) if replies.len() == batch.len() => {
                for (c, r) in batch.drain(..).zip(replies) {
                    let _ = c.reply.send(Ok(r));
                }
            }
            Ok(replies) => {
                let e = format!(
                    "Redis completion script answered {} of {} jobs",
                    replies.len(),
                    batch.len()
                );
                for c in batch.drain(..) {
                    let _ = c.reply.send(Err(StoreError::Backend(e.clone())));
                }
            }
            Err(e) => {
                let e = e.to_string();
                for c in batch.drain(..) {
                    let _ = c.reply.send(Err(StoreError::Backend(e.clone())));
                }
            }
        }
    }
}

/// The most completions one script call carries.
const MAX_COMPLETION_BATCH: usize = 256;

/// How long (seconds) Redis keeps a per-second completion count: twice
/// the throughput window, so that a process whose clock runs behind the
/// server's still finds a whole window.
const COMPLETIONS_KEPT_SECS: u64 = 2 * Throughput::WINDOW.as_secs();

/// A commit ID: random, so that a retried write recognises its own earlier
/// try. The clock stands in if the OS generator fails.
fn commit_id() -> u64 {
    getrandom::u64().unwrap_or_else(|_| mechops_std::clock::now().unix_nanos() as u64)
}

/// Whether a Redis error may pass on its own: the connection dropped or
/// was refused, the reply timed out, or the server is loading its data.
fn is_transient(e: &redis::RedisError) -> bool {
    matches!(
        e.retry_method(),
        RetryMethod::Reconnect | RetryMethod::RetryImmediately | RetryMethod::WaitAndRetry
    ) || e.is_timeout()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
}

fn backend(e: &redis::RedisError) -> StoreError {
    StoreError::Backend(format!("Redis: {e}"))
}

fn corrupt(id: &str, reason: &str) -> StoreError {
    StoreError::Corrupt(format!("stored job {id:?} in Redis is damaged: {reason}"))
}

/// The channel submissions, retries, releases and recoveries publish on
/// when they make jobs claimable (see [`Store::work_signal`]).
fn wake_channel(prefix: &str) -> String {
    format!("{prefix}wake")
}

/// A connection speaking RESP3, whose pushed messages notify `signal`; it
/// subscribes again by itself after a reconnection.
fn wake_connection(
    config: &RedisConfig,
    manager_config: ConnectionManagerConfig,
    signal: Arc<Notify>,
) -> Result<ConnectionManager, StoreError> {
    let info = config.url.as_str().into_connection_info().map_err(|e| {
        StoreError::Config(format!("invalid Redis store URL {:?}: {e}", config.url))
    })?;
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    let client = redis::Client::open(info.set_redis_settings(settings)).map_err(|e| backend(&e))?;
    let on_push = move |push: PushInfo| -> Result<(), core::convert::Infallible> {
        if push.kind == PushKind::Message {
            signal.notify_waiters();
        }
        Ok(())
    };
    let manager_config = manager_config
        .set_push_sender(on_push)
        .set_automatic_resubscription();
    ConnectionManager::new_lazy_with_config(client, manager_config).map_err(|e| backend(&e))
}

/// How often the wake connection is checked with a `PING`: a connection
/// that broke while no command was sent on it reconnects, and subscribes
/// again, only at its next command.
const WAKE_CHECK: Duration = Duration::from_secs(1);

/// Subscribes the store's wake connection, trying again with the store's
/// backoff while Redis is unreachable, then checks it every [`WAKE_CHECK`],
/// until the store is closed or gone. While it is down, workers find new
/// jobs by polling.
async fn subscribe(store: Weak<Inner>) {
    let mut retry = Retry::new();
    let mut subscribed = false;
    loop {
        let Some(inner) = store.upgrade() else {
            return;
        };
        if inner.closed.load(Ordering::Acquire) {
            return;
        }
        let mut conn = inner.wake.clone();
        let channel = wake_channel(&inner.config.prefix);
        let delay = {
            let policy = &inner.config.reconnect;
            retry
                .next_delay(policy, commit_id())
                .unwrap_or(policy.cap())
        };
        drop(inner);
        let outcome = if subscribed {
            redis::cmd("PING")
                .query_async::<Value>(&mut conn)
                .await
                .map(drop)
        } else {
            conn.subscribe(&channel).await
        };
        drop(conn);
        match outcome {
            Ok(()) => {
                subscribed = true;
                retry = Retry::new();
                tokio::time::sleep(WAKE_CHECK).await;
            }
            Err(e) => {
                tracing::debug!(error = %e, ?delay, "Redis wake connection failed; trying again");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

fn holder_id(holder: &str) -> Result<JobId, StoreError> {
    holder
        .parse::<Uuid>()
        .map(JobId::new)
        .map_err(|_| corrupt(holder, "a unique key names a job ID that is not a UUID"))
}

impl RedisStore {
    /// Connects to the server `config.url` names, trying for up to
    /// `config.reconnect_for` while it is unreachable.
    pub async fn connect(config: RedisConfig) -> Result<Self, StoreError> {
        let (client, manager_config) = client(&config)?;
        let mut retry = Retry::new();
        let started = tokio::time::Instant::now();
        let conn = loop {
            match ConnectionManager::new_with_config(client.clone(), manager_config.clone()).await {
                Ok(conn) => break conn,
                Err(e) if is_transient(&e) && started.elapsed() < config.reconnect_for => {
                    let delay = retry
                        .next_delay(&config.reconnect, commit_id())
                        .unwrap_or(config.reconnect.cap());
                    tracing::warn!(url = %config.url, error = %e, ?delay, "Redis unreachable; trying again");
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(backend(&e)),
            }
        };
        Self::with_connection(conn, client, manager_config, config)
    }

    /// The store at `config.url`, connecting on first use (each call then
    /// reconnects as [`Self::connect`] does). Must be called inside a
    /// tokio runtime, which runs the store's completion batches.
    pub fn open(config: RedisConfig) -> Result<Self, StoreError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(StoreError::Config(
                "the Redis job store must be opened inside a tokio runtime".to_owned(),
            ));
        }
        let (client, manager_config) = client(&config)?;
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), manager_config.clone())
            .map_err(|e| backend(&e))?;
        Self::with_connection(conn, client, manager_config, config)
    }

    /// The store around its first connection; the others (claims,
    /// completions, wake-ups) connect on first use.
    fn with_connection(
        conn: ConnectionManager,
        client: redis::Client,
        manager_config: ConnectionManagerConfig,
        config: RedisConfig,
    ) -> Result<Self, StoreError> {
        let lazy = || {
            ConnectionManager::new_lazy_with_config(client.clone(), manager_config.clone())
                .map_err(|e| backend(&e))
        };
        let claims = lazy()?;
        let (completions, queue) = mpsc::unbounded_channel();
        tokio::spawn(complete_batches(lazy()?, config.clone(), queue));
        let signal = Arc::new(Notify::new());
        let wake = wake_connection(&config, manager_config, Arc::clone(&signal))?;
        let inner = Arc::new(Inner {
            conn,
            claims,
            wake,
            config,
            completions,
            scripts: Scripts {
                submit: Script::new(include_str!("redis/submit.lua")),
                commit: Script::new(include_str!("redis/commit.lua")),
                claim: Script::new(include_str!("redis/claim.lua")),
                expired: Script::new(include_str!("redis/expired.lua")),
                remove: Script::new(include_str!("redis/remove.lua")),
            },
            signal,
            closed: AtomicBool::new(false),
            reaped: Mutex::new((i64::MAX, i64::MIN)),
        });
        tokio::spawn(subscribe(Arc::downgrade(&inner)));
        Ok(Self { inner })
    }

    /// The settings.
    pub fn config(&self) -> &RedisConfig {
        &self.inner.config
    }

    fn lifecycle(&self) -> &Lifecycle {
        &self.inner.config.store.lifecycle
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.inner.config.prefix)
    }

    fn job_key(&self, id: &str) -> String {
        format!("{}job:{id}", self.inner.config.prefix)
    }

    fn check_open(&self) -> Result<(), StoreError> {
        if self.inner.closed.load(Ordering::Acquire) {
            Err(StoreError::Closed)
        } else {
            Ok(())
        }
    }

    /// Sends one request (a command, a pipeline or a script) made by
    /// `send`, reconnecting and trying again with backoff while Redis is
    /// unreachable or loading.
    async fn send<T, F, Fut>(&self, send: F) -> Result<T, StoreError>
    where
        F: FnMut(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        self.check_open()?;
        send_with_retry(&self.inner.conn, &self.inner.config, send).await
    }

    async fn query<T: redis::FromRedisValue + Send>(
        &self,
        cmd: &redis::Cmd,
    ) -> Result<T, StoreError> {
        self.send(|mut conn| async move { cmd.query_async(&mut conn).await })
            .await
    }

    async fn query_pipe<T: redis::FromRedisValue + Send>(
        &self,
        pipe: &redis::Pipeline,
    ) -> Result<T, StoreError> {
        self.send(|mut conn| async move { pipe.query_async(&mut conn).await })
            .await
    }

    /// Runs `script` by EVALSHA, loading it when the server does not have
    /// it (after a restart), with `args`.
    async fn eval<T: redis::FromRedisValue + Send>(
        &self,
        script: &Script,
        args: &[String],
    ) -> Result<T, StoreError> {
        self.eval_on(&self.inner.conn, script, args).await
    }

    /// [`Self::eval`] on the connection `conn`.
    async fn eval_on<T: redis::FromRedisValue + Send>(
        &self,
        conn: &ConnectionManager,
        script: &Script,
        args: &[String],
    ) -> Result<T, StoreError> {
        self.check_open()?;
        send_with_retry(conn, &self.inner.config, |mut conn| async move {
            let mut invocation = script.prepare_invoke();
            invocation.arg(args);
            invocation.invoke_async(&mut conn).await
        })
        .await
    }

    async fn count(&self, counter: &str) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("HINCRBY");
        cmd.arg(self.key("stats")).arg(counter).arg(1);
        self.query::<i64>(&cmd).await.map(drop)
    }

    async fn commit(&self, ops: &[Commit]) -> Result<Vec<Reply>, StoreError> {
        let mut args = vec![
            self.inner.config.prefix.clone(),
            COMPLETIONS_KEPT_SECS.to_string(),
        ];
        for op in ops {
            op.push_args(&mut args);
        }
        let replies: Vec<String> = self.eval(&self.inner.scripts.commit, &args).await?;
        if replies.len() != ops.len() {
            return Err(StoreError::Backend(format!(
                "Redis commit script answered {} of {} writes",
                replies.len(),
                ops.len()
            )));
        }
        Ok(replies.iter().map(|r| Reply::parse(r)).collect())
    }

    /// Submits jobs in one script; one result per job, in order.
    pub async fn submit_jobs(
        &self,
        jobs: Vec<(JobId, JobSpec)>,
        now: Timestamp,
    ) -> Result<Vec<Result<(), SubmitRefused>>, StoreError> {
        let mut out: Vec<Result<(), SubmitRefused>> = Vec::with_capacity(jobs.len());
        let mut args = Vec::with_capacity(2 + 22 * jobs.len());
        args.push(self.inner.config.prefix.clone());
        args.push(String::new());
        // One random commit ID per call, told apart per job by its place.
        let cid = commit_id();
        let mut slots = Vec::new();
        for (id, spec) in jobs {
            match Job::submit(id, spec, now, self.lifecycle()) {
                Ok((job, _)) => {
                    let (index, score) = placement(&job);
                    args.push(id.to_string());
                    args.push(format!("{cid:x}.{}", slots.len()));
                    args.push(index.to_owned());
                    args.push(score);
                    args.push(job.spec().unique_key.clone().unwrap_or_default());
                    let fields = encode_new(&job);
                    args.push(fields.len().to_string());
                    for (k, v) in fields {
                        args.push(k.to_owned());
                        args.push(v);
                    }
                    slots.push(out.len());
                    out.push(Ok(()));
                }
                Err(e) => out.push(Err(SubmitRefused::Spec(e))),
            }
        }
        if slots.is_empty() {
            return Ok(out);
        }
        args[1] = slots.len().to_string();
        let replies: Vec<String> = self.eval(&self.inner.scripts.submit, &args).await?;
        if replies.len() != slots.len() {
            return Err(StoreError::Backend(format!(
                "Redis submission script answered {} of {} jobs",
                replies.len(),
                slots.len()
            )));
        }
        let mut any = false;
        for (slot, reply) in slots.into_iter().zip(replies) {
            out[slot] = match Reply::parse(&reply) {
                Reply::Ok => {
                    any = true;
                    Ok(())
                }
                Reply::Unique(holder) => Err(SubmitRefused::DuplicateKey {
                    existing: holder_id(&holder)?,
                }),
                Reply::Conflict | Reply::Exists | Reply::Missing => Err(SubmitRefused::DuplicateId),
            };
        }
        if any {
            self.inner.signal.notify_waiters();
        }
        Ok(out)
    }

    /// Claims as [`Store::claim`] says.
    pub async fn claim_jobs(
        &self,
        request: &ClaimRequest,
        now: Timestamp,
    ) -> Result<Vec<ClaimedJob>, StoreError> {
        if request.max == 0 {
            return Ok(Vec::new());
        }
        let (now_ns, now_sub) = unix_nanos(now)?;
        let expires = after(now, self.lifecycle().lease);
        let mut args = vec![
            self.inner.config.prefix.clone(),
            floor_ms(now).to_string(),
            request.max.to_string(),
            ceil_ms(expires).to_string(),
            self.inner.config.batch.max(request.max).to_string(),
            now_ns,
            nanos(expires),
            now_sub.to_string(),
            request.worker.0.clone(),
        ];
        for (handler, limit) in request.handler_limits.iter() {
            args.push(handler.clone());
            args.push(limit.to_string());
        }
        let flat: Vec<String> = self
            .eval_on(&self.inner.claims, &self.inner.scripts.claim, &args)
            .await?;
        flat.chunks(8).map(parse_claimed).collect()
    }

    /// Records a success in one script; a refusal is explained by the
    /// lifecycle on the record as it then is.
    pub async fn complete_job(
        &self,
        id: JobId,
        token: FencingToken,
        result: String,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.check_open()?;
        let (now_ns, _) = unix_nanos(now)?;
        let (tx, rx) = oneshot::channel();
        let completion = Completion {
            args: [
                id.to_string(),
                token.get().to_string(),
                now_ns,
                floor_ms(now).to_string(),
                result.clone(),
            ],
            reply: tx,
        };
        self.inner
            .completions
            .send(completion)
            .map_err(|_| StoreError::Closed)?;
        let reply = rx.await.map_err(|_| StoreError::Closed)??;
        match reply.as_str() {
            "ok" => Ok(()),
            "missing" => Err(StoreError::UnknownJob(id)),
            _ => {
                let event = Event::Complete { token, result };
                self.apply(id, event, now, 0).await.map(drop)
            }
        }
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
    ) -> Result<(Job, Effects), StoreError> {
        let takes_unique = matches!(event, Event::Retry);
        for _ in 0..MAX_CONFLICTS {
            let (mut job, ver) = self.load(id).await?.ok_or(StoreError::UnknownJob(id))?;
            let fx = match job.handle(event.clone(), now, random, self.lifecycle()) {
                Ok(fx) => fx,
                Err(rejected) => {
                    if matches!(
                        rejected,
                        Rejected::StaleToken { .. } | Rejected::LeaseExpired { .. }
                    ) {
                        self.count("fenced").await?;
                    }
                    return Err(StoreError::rejected(id, rejected));
                }
            };
            let op = Commit::of(&job, ver, &fx, takes_unique);
            match self.commit(core::slice::from_ref(&op)).await?.pop() {
                Some(Reply::Ok) => {
                    if job.state().kind() == StateKind::Queued {
                        self.inner.signal.notify_waiters();
                    }
                    return Ok((job, fx));
                }
                Some(Reply::Missing) => return Err(StoreError::UnknownJob(id)),
                Some(Reply::Unique(holder)) => {
                    return Err(StoreError::DuplicateKey {
                        key: job.spec().unique_key.clone().unwrap_or_default(),
                        existing: holder_id(&holder)?,
                    });
                }
                _ => {}
            }
        }
        Err(StoreError::Backend(format!(
            "job {id} kept changing under concurrent writes; try again"
        )))
    }

    async fn load(&self, id: JobId) -> Result<Option<(Job, String)>, StoreError> {
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
    ) -> Result<Option<(Job, String)>, StoreError> {
        if fields.is_empty() {
            return Ok(None);
        }
        decode(raw_id, &fields, self.lifecycle())
            .map(Some)
            .map_err(|reason| corrupt(raw_id, &reason))
    }

    /// Up to `limit` jobs in `state` (all states when `None`), each index
    /// in its own order: ready jobs in claim order, the others by time.
    pub async fn list_jobs(
        &self,
        state: Option<StateKind>,
        limit: usize,
    ) -> Result<Vec<Job>, StoreError> {
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

    /// Counts by state now, and event counters since the queue began.
    pub async fn counts(&self) -> Result<Stats, StoreError> {
        let mut pipe = redis::pipe();
        for index in ["ready", "delayed", "leases", "done", "dead"] {
            pipe.cmd("ZCARD").arg(self.key(index));
        }
        pipe.cmd("HGETALL").arg(self.key("counts"));
        pipe.cmd("HGETALL").arg(self.key("stats"));
        type Reply = (
            usize,
            usize,
            usize,
            usize,
            usize,
            HashMap<String, i64>,
            HashMap<String, u64>,
        );
        let (ready, delayed, leases, done, dead, counts, events): Reply =
            self.query_pipe(&pipe).await?;
        // Only the states that share an index are counted apart.
        let count = |k: StateKind| {
            usize::try_from(counts.get(k.as_str()).copied().unwrap_or(0)).unwrap_or(0)
        };
        let retry_scheduled = count(StateKind::RetryScheduled);
        let cancelled = count(StateKind::Cancelled);
        let event = |k: &str| events.get(k).copied().unwrap_or(0);
        Ok(Stats {
            queue_size: ready,
            delayed: delayed.saturating_sub(retry_scheduled),
            running: leases,
            retry_scheduled,
            completed: done.saturating_sub(cancelled),
            dead,
            cancelled,
            failed: event("failed"),
            completed_total: event("completed_total"),
            stalls_recovered: event("stalls_recovered"),
            fenced: event("fenced"),
            pruned: event("pruned"),
        })
    }

    /// Jobs completed in the [`Throughput::WINDOW`] before `now` by every
    /// process of this store: the sum of the per-second counts
    /// (`{prefix}completed:SECOND`) that the completing scripts keep,
    /// for the window's whole seconds up to and including `now`'s.
    pub async fn completed_within_window(&self, now: Timestamp) -> Result<Throughput, StoreError> {
        let window = i64::try_from(Throughput::WINDOW.as_secs()).unwrap_or(i64::MAX);
        let second = i64::try_from(now.unix_nanos().div_euclid(1_000_000_000)).unwrap_or(i64::MAX);
        let first = second.saturating_sub(window - 1);
        let mut mget = redis::cmd("MGET");
        for s in first..=second {
            mget.arg(self.key(&format!("completed:{s}")));
        }
        let counts: Vec<Option<u64>> = self.query(&mget).await?;
        Ok(Throughput {
            window: Throughput::WINDOW,
            completed: counts.into_iter().flatten().sum(),
        })
    }

    /// Recovers up to `max_batch` expired leases at `now`: each job is
    /// queued again, timed out, cancelled or dead as the lifecycle says,
    /// and a provisional claim that was never written is queued again.
    /// Returns how many it handled.
    pub async fn recover(
        &self,
        now: Timestamp,
        max_batch: usize,
        random: u64,
    ) -> Result<usize, StoreError> {
        let now_ms = floor_ms(now);
        {
            // Nothing was due at the last check, and nothing is now: no
            // lease seen then runs out before `until`, and one taken since
            // is at most a poll interval late to be noticed.
            let (checked, until) = *self.inner.reaped.lock().unwrap_or_else(|e| e.into_inner());
            if checked <= now_ms && now_ms < until {
                return Ok(0);
            }
        }
        let args = [
            self.inner.config.prefix.clone(),
            now_ms.to_string(),
            max_batch.max(1).to_string(),
        ];
        let value: Value = self.eval(&self.inner.scripts.expired, &args).await?;
        let (earliest, records) = parse_records(value)?;
        if records.is_empty() {
            let poll =
                i64::try_from(self.inner.config.poll_interval.as_millis()).unwrap_or(i64::MAX);
            let until = earliest
                .unwrap_or(i64::MAX)
                .min(now_ms.saturating_add(poll));
            *self.inner.reaped.lock().unwrap_or_else(|e| e.into_inner()) = (now_ms, until);
            return Ok(0);
        }
        let mut ops = Vec::with_capacity(records.len());
        let mut rng = random;
        for (raw_id, fields) in records {
            let Some((mut job, ver)) = self.decode(&raw_id, fields)? else {
                continue;
            };
            if job.state().kind() == StateKind::Running {
                // One draw per job, so jobs that failed together do not
                // retry together.
                rng = splitmix(rng);
                match job.handle(Event::Expire, now, rng, self.lifecycle()) {
                    Ok(fx) => ops.push(Commit::of(&job, ver, &fx, false)),
                    // Not due by this process's finer clock: the next pass.
                    Err(_) => continue,
                }
            } else {
                ops.push(Commit::reindex(&job, ver));
            }
        }
        if ops.is_empty() {
            return Ok(0);
        }
        let replies = self.commit(&ops).await?;
        let handled = replies.iter().filter(|r| **r == Reply::Ok).count();
        if handled > 0 {
            self.inner.signal.notify_waiters();
        }
        Ok(handled)
    }

    /// Removes completed and cancelled jobs older than the retention's age,
    /// then the oldest beyond its count. Returns how many were removed.
    pub async fn prune_jobs(&self, now: Timestamp) -> Result<usize, StoreError> {
        let retention = self.inner.config.store.retention;
        let age = i64::try_from(retention.max_age.as_millis()).unwrap_or(i64::MAX);
        let before = floor_ms(now).saturating_sub(age);
        let keep = i64::try_from(retention.max_count).unwrap_or(i64::MAX);
        self.remove("done", Some(before), keep, "", "prune").await
    }

    /// Removes the finished jobs `filter` selects.
    pub async fn purge_jobs(&self, filter: PurgeFilter) -> Result<usize, StoreError> {
        let before = filter.finished_before.map(floor_ms);
        match filter.state {
            None => {
                let done = self.remove("done", before, -1, "", "purge").await?;
                Ok(done + self.remove("dead", before, -1, "", "purge").await?)
            }
            Some(kind @ (StateKind::Completed | StateKind::Cancelled)) => {
                self.remove("done", before, -1, kind.as_str(), "purge")
                    .await
            }
            Some(StateKind::Dead) => self.remove("dead", before, -1, "", "purge").await,
            Some(kind) => Err(StoreError::PurgePending(kind)),
        }
    }

    async fn remove(
        &self,
        index: &str,
        before: Option<i64>,
        keep: i64,
        state: &str,
        why: &str,
    ) -> Result<usize, StoreError> {
        let batch = self.inner.config.batch.max(1);
        let mut total = 0usize;
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
            let n: usize = self.eval(&self.inner.scripts.remove, &args).await?;
            total += n;
            if n < batch {
                return Ok(total);
            }
        }
    }

    /// The earliest delayed job's ready time or lease expiry.
    pub async fn next_due_at(&self) -> Result<Option<Timestamp>, StoreError> {
        let mut pipe = redis::pipe();
        pipe.cmd("ZRANGE")
            .arg(self.key("delayed"))
            .arg(0)
            .arg(0)
            .arg("WITHSCORES");
        pipe.cmd("ZRANGE")
            .arg(self.key("leases"))
            .arg(0)
            .arg(0)
            .arg("WITHSCORES");
        type Scored = Vec<(String, f64)>;
        let (delayed, leases): (Scored, Scored) = self.query_pipe(&pipe).await?;
        let earliest = delayed
            .iter()
            .chain(&leases)
            .map(|(_, score)| *score)
            .fold(None, |min: Option<f64>, s| {
                Some(min.map_or(s, |m| m.min(s)))
            });
        // Scores are whole milliseconds well within i64.
        Ok(earliest.and_then(|ms| Timestamp::from_unix_millis(ms as i64).ok()))
    }

    /// Deletes every key of this store's prefix: all its jobs and counters.
    pub async fn clear(&self) -> Result<u64, StoreError> {
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

/// The next value of a SplitMix64 sequence: spreads one random `u64` over
/// a batch.
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Store for RedisStore {
    fn submit(&self, id: JobId, spec: JobSpec, now: Timestamp) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let key = spec.unique_key.clone().unwrap_or_default();
            match self.submit_jobs(vec![(id, spec)], now).await?.pop() {
                Some(Ok(())) => Ok(()),
                Some(Err(SubmitRefused::Spec(e))) => Err(StoreError::Spec(e)),
                Some(Err(SubmitRefused::DuplicateKey { existing })) => {
                    Err(StoreError::DuplicateKey { key, existing })
                }
                Some(Err(SubmitRefused::DuplicateId)) | None => Err(StoreError::DuplicateId(id)),
            }
        })
    }

    fn submit_bulk(
        &self,
        jobs: Vec<(JobId, JobSpec)>,
        now: Timestamp,
    ) -> StoreFuture<'_, Vec<Result<(), SubmitRefused>>> {
        Box::pin(self.submit_jobs(jobs, now))
    }

    fn claim(&self, request: &ClaimRequest, now: Timestamp) -> StoreFuture<'_, Vec<ClaimedJob>> {
        let request = request.clone();
        Box::pin(async move { self.claim_jobs(&request, now).await })
    }

    fn heartbeat(&self, id: JobId, token: FencingToken, now: Timestamp) -> StoreFuture<'_, Lease> {
        Box::pin(async move {
            let (job, _) = self.apply(id, Event::Heartbeat { token }, now, 0).await?;
            job.state().lease().copied().ok_or(StoreError::rejected(
                id,
                Rejected::StaleToken {
                    presented: token,
                    current: None,
                },
            ))
        })
    }

    fn progress(
        &self,
        id: JobId,
        token: FencingToken,
        progress: Progress,
        now: Timestamp,
    ) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let event = Event::Progress { token, progress };
            self.apply(id, event, now, 0).await.map(drop)
        })
    }

    fn complete(
        &self,
        id: JobId,
        token: FencingToken,
        result: String,
        now: Timestamp,
    ) -> StoreFuture<'_, ()> {
        Box::pin(self.complete_job(id, token, result, now))
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
        Box::pin(async move {
            let event = Event::Fail { token, error, kind };
            Ok(*self.apply(id, event, now, random).await?.0.state())
        })
    }

    fn release(&self, id: JobId, token: FencingToken, now: Timestamp) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let event = Event::Release { token };
            self.apply(id, event, now, 0).await.map(drop)
        })
    }

    fn ack_cancel(&self, id: JobId, token: FencingToken, now: Timestamp) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let event = Event::AckCancel { token };
            self.apply(id, event, now, 0).await.map(drop)
        })
    }

    fn cancel(&self, id: JobId, now: Timestamp) -> StoreFuture<'_, StateKind> {
        Box::pin(async move {
            let (job, _) = self.apply(id, Event::Cancel, now, 0).await?;
            Ok(job.state().kind())
        })
    }

    fn retry(&self, id: JobId, now: Timestamp) -> StoreFuture<'_, ()> {
        Box::pin(async move { self.apply(id, Event::Retry, now, 0).await.map(drop) })
    }

    fn status(&self, id: JobId) -> StoreFuture<'_, Job> {
        Box::pin(async move {
            let (job, _) = self.load(id).await?.ok_or(StoreError::UnknownJob(id))?;
            Ok(job)
        })
    }

    fn list(&self, state: Option<StateKind>, limit: usize) -> StoreFuture<'_, Vec<Job>> {
        Box::pin(async move {
            let mut jobs = self.list_jobs(state, usize::MAX).await?;
            jobs.sort_by_key(|j| (j.created_at(), j.id()));
            jobs.truncate(limit);
            Ok(jobs)
        })
    }

    fn stats(&self) -> StoreFuture<'_, StoreStats> {
        Box::pin(async move {
            Ok(StoreStats {
                counts: self.counts().await?,
                wait: None,
            })
        })
    }

    fn throughput(&self, now: Timestamp) -> StoreFuture<'_, Option<Throughput>> {
        Box::pin(async move { self.completed_within_window(now).await.map(Some) })
    }

    fn recover_expired(
        &self,
        now: Timestamp,
        max_batch: usize,
        random: u64,
    ) -> StoreFuture<'_, usize> {
        Box::pin(self.recover(now, max_batch, random))
    }

    fn purge(&self, filter: PurgeFilter) -> StoreFuture<'_, usize> {
        Box::pin(self.purge_jobs(filter))
    }

    fn prune(&self, now: Timestamp) -> StoreFuture<'_, usize> {
        Box::pin(self.prune_jobs(now))
    }

    fn next_due(&self) -> StoreFuture<'_, Option<Timestamp>> {
        Box::pin(self.next_due_at())
    }

    fn work_signal(&self) -> Arc<Notify> {
        Arc::clone(&self.inner.signal)
    }

    fn poll_interval(&self) -> Option<Duration> {
        Some(self.inner.config.poll_interval)
    }

    fn close(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            self.inner.closed.store(true, Ordering::Release);
            Ok(())
        })
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

/// `t` as decimal Unix nanoseconds and its nanoseconds below the
/// millisecond, for the scripts; they count from 1970.
fn unix_nanos(t: Timestamp) -> Result<(String, u32), StoreError> {
    let n = t.unix_nanos();
    if n < 0 {
        return Err(StoreError::Config(format!(
            "the clock reads {t}, before 1970: the Redis store cannot time leases"
        )));
    }
    Ok((n.to_string(), (n % 1_000_000) as u32))
}

/// `t + d`, saturating.
fn after(t: Timestamp, d: Duration) -> Timestamp {
    let n = i128::try_from(d.as_nanos()).unwrap_or(i128::MAX);
    Timestamp::from_unix_nanos(t.unix_nanos().saturating_add(n)).unwrap_or(Timestamp::MAX)
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
    expect: String,
    cid: u64,
    state: StateKind,
    index: &'static str,
    score: String,
    unique: (&'static str, String),
    stats: Vec<&'static str>,
    set: Vec<(&'static str, String)>,
    del: Vec<&'static str>,
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
    /// is the version read.
    fn of(job: &Job, expect: String, fx: &Effects, takes_unique: bool) -> Self {
        let (index, score) = placement(job);
        let key = job.spec().unique_key.clone().unwrap_or_default();
        let unique = if job.spec().unique_key.is_none() {
            ("", String::new())
        } else if takes_unique {
            ("take", key)
        } else if fx.contains(&Effect::ReleaseUniqueKey) {
            ("free", key)
        } else {
            ("", String::new())
        };
        let mut stats = Vec::new();
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
        let (set, del) = encode(job);
        Self {
            id: job.id().to_string(),
            expect,
            cid: commit_id(),
            state: job.state().kind(),
            index,
            score,
            unique,
            stats,
            set,
            del,
        }
    }

    /// Puts a job back into the index of the state its record has,
    /// changing nothing else.
    fn reindex(job: &Job, expect: String) -> Self {
        let (index, score) = placement(job);
        Self {
            id: job.id().to_string(),
            expect,
            cid: commit_id(),
            state: job.state().kind(),
            index,
            score,
            unique: ("", String::new()),
            stats: Vec::new(),
            set: Vec::new(),
            del: Vec::new(),
        }
    }

    fn push_args(&self, args: &mut Vec<String>) {
        args.push(self.id.clone());
        args.push(self.expect.clone());
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

/// The mutable fields, each written when present and deleted when absent
/// (`attempt` and `token` only by records of version 1, which stored a
/// running attempt's number and token apart).
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

/// The backoff policy as one field: `base,cap,max,multiplier,jitter`
/// (nanoseconds for the durations).
fn backoff_field(b: &Backoff) -> String {
    format!(
        "{},{},{},{},{}",
        b.base().as_nanos(),
        b.cap().as_nanos(),
        b.max_attempts(),
        b.multiplier(),
        jitter_name(b.jitter())
    )
}

/// The fields of a new record: what never changes, stored once (defaults
/// left out: the backoff when it is [`DEFAULT_BACKOFF`], the ready time
/// when it is the creation time, zero counts), and the state.
fn encode_new(job: &Job) -> Vec<(&'static str, String)> {
    let spec = job.spec();
    let mut set: Vec<(&'static str, String)> = Vec::with_capacity(10);
    set.extend([
        ("handler", spec.handler.clone()),
        ("args", spec.args.clone()),
        ("rank", rank(spec.priority).to_string()),
        ("max_attempts", spec.max_attempts.to_string()),
        ("created", nanos(job.created_at())),
        ("state", job.state().kind().as_str().to_owned()),
        ("ver", "1".to_owned()),
    ]);
    if let Some(t) = spec.timeout {
        set.push(("timeout", t.as_nanos().to_string()));
    }
    if spec.backoff != DEFAULT_BACKOFF {
        set.push(("backoff", backoff_field(&spec.backoff)));
    }
    if let Some(k) = &spec.unique_key {
        set.push(("unique", k.clone()));
    }
    if job.ready_at() != job.created_at() {
        set.push(("ready", nanos(job.ready_at())));
    }
    if let JobState::Delayed { ready_at: at } | JobState::RetryScheduled { at } = *job.state() {
        set.push(("state_at", nanos(at)));
    }
    set
}

/// The mutable fields of `job` to write, and those to delete because they
/// do not apply in its state. A running attempt's number and token are
/// not stored: they are the attempt count and the last token.
fn encode(job: &Job) -> (Vec<(&'static str, String)>, Vec<&'static str>) {
    let mut set: Vec<(&'static str, String)> = Vec::with_capacity(16);
    match *job.state() {
        JobState::Delayed { ready_at: at } | JobState::RetryScheduled { at } => {
            set.push(("state_at", nanos(at)));
        }
        JobState::Running { lease, .. } => {
            set.push(("expires", nanos(lease.expires_at)));
            if let Some(d) = lease.deadline {
                set.push(("deadline", nanos(d)));
            }
            if lease.cancel_requested {
                set.push(("cancel", "1".to_owned()));
            }
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
    let del = MUTABLE
        .iter()
        .copied()
        .filter(|f| !set.iter().any(|(k, _)| k == f))
        .collect();
    (set, del)
}

fn make_backoff(
    base: u64,
    cap: u64,
    max: u32,
    multiplier: u32,
    jitter: &str,
) -> Result<Backoff, String> {
    let jitter = match jitter {
        "none" => Jitter::None,
        "full" => Jitter::Full,
        "equal" => Jitter::Equal,
        "decorrelated" => Jitter::Decorrelated,
        other => return Err(format!("unknown jitter {other:?}")),
    };
    Backoff::new(Duration::from_nanos(base), Duration::from_nanos(cap), max)
        .and_then(|b| b.with_multiplier(multiplier))
        .map(|b| b.with_jitter(jitter))
        .map_err(|e| format!("backoff: {e}"))
}

/// The `backoff` field, as [`backoff_field`] writes it.
fn parse_backoff(packed: &str) -> Result<Backoff, String> {
    let bad = || format!("field backoff {packed:?} is not base,cap,max,multiplier,jitter");
    let mut parts = packed.split(',');
    let mut next = || parts.next().ok_or_else(bad);
    let base = next()?.parse().map_err(|_| bad())?;
    let cap = next()?.parse().map_err(|_| bad())?;
    let max = next()?.parse().map_err(|_| bad())?;
    let multiplier = next()?.parse().map_err(|_| bad())?;
    let jitter = next()?;
    if parts.next().is_some() {
        return Err(bad());
    }
    make_backoff(base, cap, max, multiplier, jitter)
}

/// Reads a record back (of version 2, or of version 1, which kept the
/// backoff in five fields and every count even when zero); the error says
/// which field is wrong.
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
    fn num<T: core::str::FromStr>(f: &HashMap<String, String>, k: &str) -> Result<T, String> {
        req(f, k)?
            .parse()
            .map_err(|_| format!("field {k} is not a number"))
    }
    fn opt_num<T: core::str::FromStr>(
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
    fn count<T: core::str::FromStr + Default>(
        f: &HashMap<String, String>,
        k: &str,
    ) -> Result<T, String> {
        Ok(opt_num(f, k)?.unwrap_or_default())
    }
    let uuid: Uuid = raw_id
        .parse()
        .map_err(|_| format!("its ID {raw_id:?} is not a UUID"))?;
    let backoff = match (f.get("backoff"), f.get("bo_jitter")) {
        (Some(packed), _) => parse_backoff(packed)?,
        // Version 1 kept the policy in five fields.
        (None, Some(jitter)) => make_backoff(
            num(f, "bo_base")?,
            num(f, "bo_cap")?,
            num(f, "bo_max")?,
            num(f, "bo_mult")?,
            jitter,
        )?,
        (None, None) => DEFAULT_BACKOFF,
    };
    let priority = match req(f, "rank")? {
        "0" => JobPriority::High,
        "1" => JobPriority::Normal,
        "2" => JobPriority::Low,
        other => return Err(format!("unknown priority rank {other:?}")),
    };
    let created_at = ts(f, "created")?;
    let ready_at = opt_ts(f, "ready")?.unwrap_or(created_at);
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
    let attempts: u32 = count(f, "attempts")?;
    let last_token: u64 = count(f, "last_token")?;
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
            attempt: attempts,
            lease: Lease {
                token: FencingToken::new(last_token),
                expires_at: ts(f, "expires")?,
                deadline: opt_ts(f, "deadline")?,
                cancel_requested: f.get("cancel").is_some_and(|c| c == "1"),
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
        attempts,
        stalls: count(f, "stalls")?,
        last_token,
        last_retry_delay: opt_num(f, "last_delay")?.map(Duration::from_nanos),
        created_at,
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

/// One job as the claim script returns it: id, handler, args, attempt, max
/// attempts, token, lease expiry (ns), deadline (ns or empty).
fn parse_claimed(f: &[String]) -> Result<ClaimedJob, StoreError> {
    let bad = |what: &str| {
        let id = f.first().map_or("", String::as_str);
        corrupt(id, &format!("the claim script returned a bad {what}"))
    };
    let [
        id,
        handler,
        args,
        attempt,
        max_attempts,
        token,
        expires,
        deadline,
    ] = f
    else {
        return Err(bad("reply length"));
    };
    let ts = |s: &str| {
        s.parse::<i128>()
            .ok()
            .and_then(|n| Timestamp::from_unix_nanos(n).ok())
    };
    Ok(ClaimedJob {
        id: JobId::new(id.parse().map_err(|_| bad("job ID"))?),
        handler: handler.clone(),
        args: args.clone(),
        attempt: attempt.parse().map_err(|_| bad("attempt"))?,
        max_attempts: max_attempts.parse().map_err(|_| bad("max_attempts"))?,
        token: FencingToken::new(token.parse().map_err(|_| bad("token"))?),
        expires_at: ts(expires).ok_or_else(|| bad("lease expiry"))?,
        deadline: if deadline.is_empty() {
            None
        } else {
            Some(ts(deadline).ok_or_else(|| bad("deadline"))?)
        },
    })
}

/// A record's ID as stored, and its hash fields.
type RawRecord = (String, HashMap<String, String>);

/// The expiry script's reply, `[earliest lease (ms) or '', id, [field,
/// value, ...], id, ...]`: the earliest lease expiry in the index, and the
/// expired jobs' records.
fn parse_records(value: Value) -> Result<(Option<i64>, Vec<RawRecord>), StoreError> {
    let bad = |reason: &str| {
        StoreError::Backend(format!(
            "unexpected reply from a Redis job script: {reason}"
        ))
    };
    let Value::Array(items) = value else {
        return Err(bad("not an array"));
    };
    let mut it = items.into_iter();
    let earliest: String = redis::from_redis_value(it.next().ok_or_else(|| bad("empty"))?)
        .map_err(|_| bad("the earliest lease is not text"))?;
    let earliest = if earliest.is_empty() {
        None
    } else {
        // Scores are whole milliseconds, which Redis may print as a float.
        let ms: f64 = earliest
            .parse()
            .map_err(|_| bad("the earliest lease is not a number"))?;
        Some(ms as i64)
    };
    let mut out = Vec::with_capacity(it.len() / 2);
    while let Some(id) = it.next() {
        let id: String = redis::from_redis_value(id).map_err(|_| bad("an ID is not text"))?;
        let fields: HashMap<String, String> =
            redis::from_redis_value(it.next().ok_or_else(|| bad("an ID without a record"))?)
                .map_err(|_| bad("a record is not a hash"))?;
        out.push((id, fields));
    }
    Ok((earliest, out))
}
