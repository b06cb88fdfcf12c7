//! [`RegistryTier`]: a registry shared by many processes through Redis, in
//! front of each process's [`RegistryCache`].
//!
//! # Keys (prefix `mechops:registry:NAME`)
//!
//! - `…:version`: the registry's version, `INCR`ed by every process that
//!   publishes a change of the file;
//! - `…:entries`: a hash, script id → `{"v":VERSION,"hash":HEX,"entry":JSON}`
//!   (the entry's text from the file and its BLAKE3 hash) or the tombstone
//!   `{"v":VERSION,"removed":true}`;
//! - `…:events`: the pub/sub channel of invalidations,
//!   `{"v":VERSION,"ids":[…],"full":BOOL,"origin":N}`.
//!
//! # Lookups
//!
//! [`RegistryTier::get`] serves from a near cache (an LRU of parsed
//! scripts in this process), then from `…:entries` (parsed and validated
//! here against this process's pools), then from the local
//! [`RegistryCache`], whose entry it then offers to `…:entries`.
//!
//! # Versions
//!
//! Each process keeps `applied`, the highest version whose invalidation
//! it has applied. It accepts a shared entry only when the entry's version
//! is at least `applied`; it ignores an invalidation whose version is not
//! above `applied` (a late message); it offers an entry from its own file
//! only while the shared version still equals its `applied` and the id is
//! absent (a slow process, whose file view predates a published change,
//! cannot bring an old entry back). A publisher takes its version
//! (`INCR`) *before* re-reading the file, and a shared entry is replaced
//! only by one of a higher version: of two publishers, the later version
//! read the file later.
//!
//! # Reconnection
//!
//! Pub/sub messages sent while a subscriber is disconnected are lost
//! (redis-rs #1059): when the subscription drops, and again once it is
//! back, the near cache is flushed and `applied` catches up with the
//! shared version.
//!
//! # Cancellation
//!
//! Dropping a [`RegistryTier::get`] future at any `.await` leaves nothing
//! half-done: the near cache is only written after the lookup completed,
//! and an offered entry is one atomic script. Dropping the tier stops its
//! subscriber and publisher tasks.

use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use futures_util::StreamExt as _;
use mechops_std::cache::SyncCache;
use mechops_std::registry::{LookupError, RegistryCache, ReloadReport, ReloadSubscription, Script};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// How to reach Redis and which registry to share.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TierConfig {
    /// `redis://HOST:PORT[/DB]` (`REDIS_URL`).
    pub url: String,
    /// The registry's name in Redis: processes sharing a registry use the
    /// same name.
    pub name: String,
    /// The near cache's bound in entries.
    pub near_entries: usize,
    /// How long one Redis call may take.
    pub response_timeout: Duration,
    /// The wait between attempts to re-subscribe.
    pub resubscribe_delay: Duration,
}

impl TierConfig {
    /// Shares the registry `name` through the Redis at `url`.
    pub fn new(url: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            name: name.into(),
            near_entries: mechops_std::registry::DEFAULT_CACHE_SIZE,
            response_timeout: Duration::from_secs(2),
            resubscribe_delay: Duration::from_millis(200),
        }
    }
}

/// Why the tier failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TierError {
    /// The configuration is unusable.
    #[error("registry tier: {0}")]
    Config(String),
    /// Redis failed.
    #[error("registry tier: Redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The script is unknown (or invalid).
    #[error(transparent)]
    Lookup(#[from] LookupError),
}

/// The tier's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TierStats {
    /// Lookups served by the near cache.
    pub near_hits: u64,
    /// Lookups served from `…:entries`.
    pub shared_hits: u64,
    /// Lookups served by the local registry cache.
    pub local_lookups: u64,
    /// Entries this process offered and Redis took.
    pub fills: u64,
    /// Changes this process published.
    pub published: u64,
    /// Invalidations applied (own and received).
    pub invalidations: u64,
    /// Invalidations ignored because their version was not new.
    pub late_messages: u64,
    /// Near-cache flushes for a lost or restored subscription.
    pub flushes: u64,
    /// Redis failures a lookup survived by using the local cache.
    pub redis_errors: u64,
    /// The highest version applied.
    pub applied_version: u64,
}

#[derive(Default)]
struct Counters {
    near_hits: AtomicU64,
    shared_hits: AtomicU64,
    local_lookups: AtomicU64,
    fills: AtomicU64,
    published: AtomicU64,
    invalidations: AtomicU64,
    late_messages: AtomicU64,
    flushes: AtomicU64,
    redis_errors: AtomicU64,
}

struct Keys {
    version: String,
    entries: String,
    events: String,
}

/// Offers an entry: only while the shared version is the caller's and the
/// id has no entry.
const FILL: &str = r"
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current ~= tonumber(ARGV[1]) then return 0 end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1
";

/// Publishes version ARGV[1]: each (id, value) pair replaces an entry of a
/// lower version; ARGV[2] = '1' empties the hash first; then the message
/// ARGV[3] goes out.
const PUBLISH: &str = r"
local v = tonumber(ARGV[1])
if ARGV[2] == '1' then redis.call('DEL', KEYS[1]) end
for i = 4, #ARGV, 2 do
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  if (not cur) or (tonumber(cjson.decode(cur).v) or 0) < v then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
redis.call('PUBLISH', KEYS[2], ARGV[3])
return 1
";

/// How often a change is offered to Redis before it is given up (the
/// other processes then see it through their own watchers only).
const PUBLISH_ATTEMPTS: u32 = 300;

/// A registry shared through Redis; see the module docs.
pub struct RegistryTier {
    local: Arc<RegistryCache>,
    /// Sends the local cache's reload reports to the publisher.
    _reloads: ReloadSubscription,
    near: SyncCache<String, Arc<Script>>,
    conn: ConnectionManager,
    keys: Keys,
    origin: u64,
    applied: AtomicU64,
    counters: Counters,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl core::fmt::Debug for RegistryTier {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RegistryTier")
            .field("channel", &self.keys.events)
            .field("applied", &self.applied.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl RegistryTier {
    /// Connects to Redis, subscribes to the registry's invalidations
    /// (returning once subscribed) and publishes every change `local`
    /// reloads from now on.
    pub async fn connect(
        local: Arc<RegistryCache>,
        config: TierConfig,
    ) -> Result<Arc<Self>, TierError> {
        if !config.url.starts_with("redis://") {
            return Err(TierError::Config(format!(
                "invalid Redis URL {:?}: it must start with redis://",
                config.url
            )));
        }
        if config.name.is_empty() || config.name.contains(char::is_whitespace) {
            return Err(TierError::Config(format!(
                "invalid registry name {:?}: non-empty, no white space",
                config.name
            )));
        }
        let client = redis::Client::open(config.url.as_str())?;
        let manager = ConnectionManagerConfig::new()
            .set_number_of_retries(2)
            .set_connection_timeout(Some(config.response_timeout))
            .set_response_timeout(Some(config.response_timeout));
        let conn = ConnectionManager::new_with_config(client.clone(), manager).await?;
        let prefix = format!("mechops:registry:{}", config.name);
        let near = SyncCache::builder()
            .max_entries(config.near_entries.max(1))
            .build()
            .map_err(|e| TierError::Config(e.to_string()))?;
        // The tier holds the subscription: dropping the tier removes the
        // listener from the local cache.
        let (tx, mut rx) = mpsc::unbounded_channel::<ReloadReport>();
        let reloads = local.on_reload(move |report| {
            // The publisher may have stopped; the report is then nobody's.
            let _ = tx.send(report.clone());
        });
        let tier = Arc::new(Self {
            local: Arc::clone(&local),
            _reloads: reloads,
            near,
            conn,
            keys: Keys {
                version: format!("{prefix}:version"),
                entries: format!("{prefix}:entries"),
                events: format!("{prefix}:events"),
            },
            origin: getrandom::u64().unwrap_or_else(|_| u64::from(std::process::id())),
            applied: AtomicU64::new(0),
            counters: Counters::default(),
            tasks: Mutex::new(Vec::new()),
        });
        tier.catch_up().await?;

        let (ready_tx, ready_rx) = oneshot::channel();
        let subscriber = tokio::spawn(subscribe(
            Arc::downgrade(&tier),
            client,
            tier.keys.events.clone(),
            config.resubscribe_delay,
            ready_tx,
        ));
        let weak = Arc::downgrade(&tier);
        let delay = config.resubscribe_delay;
        let publisher = tokio::spawn(async move {
            while let Some(report) = rx.recv().await {
                // Redis may be coming back: try for about a minute.
                for attempt in 0..PUBLISH_ATTEMPTS {
                    let Some(tier) = weak.upgrade() else { return };
                    match tier.publish(&report).await {
                        Ok(()) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, attempt, "registry tier: publishing a change failed");
                        }
                    }
                    drop(tier);
                    tokio::time::sleep(delay).await;
                }
            }
        });
        tier.tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend([subscriber, publisher]);
        ready_rx.await.map_err(|_| {
            TierError::Config("the subscriber stopped before subscribing".to_owned())
        })?;
        Ok(tier)
    }

    /// The local registry cache behind the tier.
    pub fn local(&self) -> &Arc<RegistryCache> {
        &self.local
    }

    /// The tier's counters.
    pub fn stats(&self) -> TierStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TierStats {
            near_hits: get(&c.near_hits),
            shared_hits: get(&c.shared_hits),
            local_lookups: get(&c.local_lookups),
            fills: get(&c.fills),
            published: get(&c.published),
            invalidations: get(&c.invalidations),
            late_messages: get(&c.late_messages),
            flushes: get(&c.flushes),
            redis_errors: get(&c.redis_errors),
            applied_version: self.applied.load(Ordering::SeqCst),
        }
    }

    /// The script `id`: from the near cache, the shared entries, or the
    /// local registry cache, in that order (see the module docs).
    pub async fn get(&self, id: &str) -> Result<Arc<Script>, TierError> {
        if let Some(s) = self.near.get(id) {
            self.counters.near_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(s);
        }
        let floor = self.applied.load(Ordering::SeqCst);
        let shared: Result<Option<String>, _> = redis::cmd("HGET")
            .arg(&self.keys.entries)
            .arg(id)
            .query_async(&mut self.conn.clone())
            .await;
        let shared = match shared {
            Ok(v) => v,
            Err(e) => {
                self.counters.redis_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "registry tier: reading a shared entry failed");
                None
            }
        };
        let script = match shared.as_deref().map(parse_stored) {
            Some(Some(Stored::Removed { v })) if v >= floor => {
                return Err(LookupError::UnknownScript { id: id.to_owned() }.into());
            }
            Some(Some(Stored::Entry { v, entry })) if v >= floor => {
                match Script::parse_entry(&entry, &self.local.pools()) {
                    Ok(s) if s.id == id => {
                        self.counters.shared_hits.fetch_add(1, Ordering::Relaxed);
                        Arc::new(s)
                    }
                    // Not valid here (other pools): this process's file rules.
                    _ => self.through_local(id, floor, false).await?,
                }
            }
            // Absent, unreadable, or older than what this process applied.
            other => self.through_local(id, floor, other.is_none()).await?,
        };
        if self.near.insert(id.to_owned(), Arc::clone(&script)).is_ok()
            && self.applied.load(Ordering::SeqCst) != floor
        {
            self.near.remove(id);
        }
        Ok(script)
    }

    async fn through_local(
        &self,
        id: &str,
        floor: u64,
        offer: bool,
    ) -> Result<Arc<Script>, TierError> {
        let script = self.local.get(id)?;
        self.counters.local_lookups.fetch_add(1, Ordering::Relaxed);
        if offer && let Some((entry, hash)) = self.local.entry_text(id) {
            let value = json!({"v": floor, "hash": hex(&hash), "entry": entry}).to_string();
            let taken: Result<i64, _> = redis::Script::new(FILL)
                .key(&self.keys.version)
                .key(&self.keys.entries)
                .arg(floor)
                .arg(id)
                .arg(value)
                .invoke_async(&mut self.conn.clone())
                .await;
            match taken {
                Ok(1) => {
                    self.counters.fills.fetch_add(1, Ordering::Relaxed);
                }
                Ok(_) => {}
                Err(e) => {
                    self.counters.redis_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "registry tier: offering an entry failed");
                }
            }
        }
        Ok(script)
    }

    /// Publishes a change the local cache reloaded: takes a new version,
    /// re-reads the file (so what is published was read after the version
    /// was taken), writes the entries and announces them.
    async fn publish(self: &Arc<Self>, report: &ReloadReport) -> Result<(), TierError> {
        let v: u64 = redis::cmd("INCR")
            .arg(&self.keys.version)
            .query_async(&mut self.conn.clone())
            .await?;
        let local = Arc::clone(&self.local);
        // A reload it causes is published in turn.
        let _ = tokio::task::spawn_blocking(move || local.reload_now()).await;
        let ids: Vec<&String> = report
            .changed
            .iter()
            .chain(&report.added)
            .chain(&report.removed)
            .collect();
        let message = json!({"v": v, "ids": ids, "full": report.full, "origin": self.origin});
        let publish = redis::Script::new(PUBLISH);
        let mut script = publish.prepare_invoke();
        script
            .key(&self.keys.entries)
            .key(&self.keys.events)
            .arg(v)
            .arg(if report.full { "1" } else { "0" })
            .arg(message.to_string());
        if !report.full {
            for id in &ids {
                let value = match self.local.entry_text(id) {
                    Some((entry, hash)) => {
                        json!({"v": v, "hash": hex(&hash), "entry": entry}).to_string()
                    }
                    None => json!({"v": v, "removed": true}).to_string(),
                };
                script.arg(id.as_str()).arg(value);
            }
        }
        let _: i64 = script.invoke_async(&mut self.conn.clone()).await?;
        self.counters.published.fetch_add(1, Ordering::Relaxed);
        self.apply(v, ids.iter().map(|s| s.as_str()), report.full);
        Ok(())
    }

    /// Applies the invalidation of version `v`, unless it is not new.
    fn apply<'a>(&self, v: u64, ids: impl Iterator<Item = &'a str>, full: bool) -> bool {
        if self.applied.fetch_max(v, Ordering::SeqCst) >= v {
            self.counters.late_messages.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        if full {
            self.near.clear();
        } else {
            for id in ids {
                self.near.remove(id);
            }
        }
        self.counters.invalidations.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Flushes the near cache and raises `applied` to the shared version:
    /// for a subscription that was (or may have been) lost.
    async fn catch_up(&self) -> Result<(), TierError> {
        self.near.clear();
        self.counters.flushes.fetch_add(1, Ordering::Relaxed);
        let v: Option<u64> = redis::cmd("GET")
            .arg(&self.keys.version)
            .query_async(&mut self.conn.clone())
            .await?;
        self.applied.fetch_max(v.unwrap_or(0), Ordering::SeqCst);
        Ok(())
    }

    fn on_message(&self, payload: &str) {
        let Ok(msg) = serde_json::from_str::<Value>(payload) else {
            tracing::warn!("registry tier: ignoring a message that is not JSON");
            return;
        };
        let Some(v) = msg.get("v").and_then(Value::as_u64) else {
            return;
        };
        let ids = msg
            .get("ids")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>())
            .unwrap_or_default();
        let full = msg.get("full").and_then(Value::as_bool).unwrap_or(false);
        let applied = self.apply(v, ids.into_iter(), full);
        let own = msg.get("origin").and_then(Value::as_u64) == Some(self.origin);
        if applied && !own {
            // Bring this process's own view of the file up to date too (its
            // watcher may be slower, or blind on a network file system).
            let local = Arc::clone(&self.local);
            drop(tokio::task::spawn_blocking(move || local.reload_now()));
        }
    }
}

impl Drop for RegistryTier {
    fn drop(&mut self) {
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            t.abort();
        }
    }
}

/// The subscriber: (re)subscribes, flushing on every loss and return of
/// the subscription, and applies the messages.
async fn subscribe(
    tier: Weak<RegistryTier>,
    client: redis::Client,
    channel: String,
    delay: Duration,
    ready: oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    loop {
        let subscribed = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        }
        .await;
        match subscribed {
            Ok(mut pubsub) => {
                {
                    let Some(t) = tier.upgrade() else { return };
                    if let Err(e) = t.catch_up().await {
                        tracing::warn!(error = %e, "registry tier: catching up failed");
                    }
                }
                if let Some(r) = ready.take() {
                    let _ = r.send(());
                }
                let mut messages = core::pin::pin!(pubsub.on_message());
                while let Some(msg) = messages.next().await {
                    let Some(t) = tier.upgrade() else { return };
                    match msg.get_payload::<String>() {
                        Ok(payload) => t.on_message(&payload),
                        Err(e) => tracing::warn!(error = %e, "registry tier: unreadable message"),
                    }
                }
                // The connection dropped: messages are being lost.
                let Some(t) = tier.upgrade() else { return };
                t.near.clear();
                t.counters.flushes.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("registry tier: subscription lost; near cache flushed");
            }
            Err(e) => {
                if tier.upgrade().is_none() {
                    return;
                }
                tracing::warn!(error = %e, "registry tier: subscribing failed; retrying");
            }
        }
        tokio::time::sleep(delay).await;
    }
}

enum Stored {
    Entry { v: u64, entry: String },
    Removed { v: u64 },
}

fn parse_stored(text: &str) -> Option<Stored> {
    let value: Value = serde_json::from_str(text).ok()?;
    let v = value.get("v")?.as_u64()?;
    if value.get("removed").and_then(Value::as_bool) == Some(true) {
        return Some(Stored::Removed { v });
    }
    Some(Stored::Entry {
        v,
        entry: value.get("entry")?.as_str()?.to_owned(),
    })
}

fn hex(bytes: &[u8; 32]) -> String {
    use core::fmt::Write as _;
    let mut s = String::with_capacity(64);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}
