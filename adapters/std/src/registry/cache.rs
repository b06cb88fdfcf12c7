//! [`RegistryCache`]: parsed scripts served from a bounded LRU over an
//! index of the registry file, reloaded when the file changes.
//!
//! # Lookups
//!
//! A warm [`RegistryCache::get`] is one hash, one shard lock of the
//! project's [`SyncCache`] and one `Arc` clone. A miss finds the entry's
//! text through the index of the current snapshot, parses and validates
//! that entry alone, and stores it. The LRU is bounded by count
//! ([`CacheConfig::max_entries`], `CACHE_SIZE`) and by bytes
//! ([`CacheConfig::max_memory_bytes`], `CACHE_MEMORY_MB`), each script
//! weighed by [`Script::memory_bytes`]. The bounds are split between the
//! shards (one per 256 entries of the bound, at most 16; so the default
//! 100 entries are one shard, an exact LRU), and recency is per shard.
//!
//! # Reloads
//!
//! A (re)load reads the whole file, indexes it and validates every entry;
//! any error leaves the current snapshot serving and is reported
//! ([`RegistryCache::last_error`], `reload_errors`). A valid file becomes
//! the new snapshot, and only the entries whose text changed (a BLAKE3
//! hash per entry), or that were removed, leave the LRU; a change of
//! `pools` drops every entry. A file whose bytes did not change is not
//! reloaded at all.
//!
//! Invariants:
//!
//! - no entry parsed from an older snapshot outlives the reload that
//!   replaced it: a reload publishes the snapshot, then its generation,
//!   then removes the changed ids; a miss stores what it parsed, then
//!   compares the generation with its snapshot's and removes its entry
//!   when they differ. Whichever of the store and the removal takes the
//!   shard lock last, the stale entry is gone;
//! - reloads run one at a time.

use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use serde::Serialize;

use super::error::{LookupError, RegistryError};
use super::index::RawIndex;
use super::model::{PoolSpec, Script, ScriptSummary};
use super::watch::{self, FileStamp, Watcher};
use super::{base_dir_of, read_registry};
use crate::cache::SyncCache;

/// The number of scripts kept parsed when `CACHE_SIZE` is not set.
pub const DEFAULT_CACHE_SIZE: usize = 100;
/// The bytes of parsed scripts kept when `CACHE_MEMORY_MB` is not set
/// (64 MiB).
pub const DEFAULT_CACHE_MEMORY_BYTES: u64 = 64 << 20;

/// How the file is watched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WatchMode {
    /// Change notifications (inotify on Linux) on the file's folder,
    /// debounced, with polling as the fallback when they cannot start.
    Notify,
    /// Polling the file's metadata at this interval.
    Poll(Duration),
    /// No watching: only [`RegistryCache::reload_now`] reloads.
    Off,
}

/// The cache's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheConfig {
    /// Most scripts kept parsed (`CACHE_SIZE`).
    pub max_entries: usize,
    /// Most bytes of parsed scripts kept (`CACHE_MEMORY_MB`).
    pub max_memory_bytes: u64,
    /// How the file is watched.
    pub watch: WatchMode,
    /// How long notifications are gathered before a reload.
    pub debounce: Duration,
    /// The polling interval of the fallback.
    pub poll_interval: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            max_entries: DEFAULT_CACHE_SIZE,
            max_memory_bytes: DEFAULT_CACHE_MEMORY_BYTES,
            watch: WatchMode::Notify,
            debounce: Duration::from_millis(100),
            poll_interval: Duration::from_millis(250),
        }
    }
}

impl CacheConfig {
    /// The defaults with `max_entries` and `max_memory_bytes` set.
    pub fn new(max_entries: usize, max_memory_bytes: u64) -> Self {
        Self {
            max_entries,
            max_memory_bytes,
            ..Self::default()
        }
    }

    /// The same configuration watching as `watch` says.
    #[must_use]
    pub fn with_watch(mut self, watch: WatchMode) -> Self {
        self.watch = watch;
        self
    }

    /// The defaults, with `CACHE_SIZE` (entries, at least 1) and
    /// `CACHE_MEMORY_MB` (whole mebibytes, at least 1) read from the
    /// environment when set.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`CacheConfig::from_env`] over any source of variables.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        if let Some(v) = var("CACHE_SIZE") {
            config.max_entries = parse_positive("CACHE_SIZE", &v, "a number of entries")?;
        }
        if let Some(v) = var("CACHE_MEMORY_MB") {
            let mb = parse_positive("CACHE_MEMORY_MB", &v, "a number of mebibytes")?;
            config.max_memory_bytes =
                (mb as u64)
                    .checked_mul(1 << 20)
                    .ok_or_else(|| ConfigError {
                        var: "CACHE_MEMORY_MB",
                        value: v.clone(),
                        reason: "too large".to_owned(),
                    })?;
        }
        Ok(config)
    }
}

fn parse_positive(var: &'static str, value: &str, what: &str) -> Result<usize, ConfigError> {
    match value.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        Ok(_) => Err(ConfigError {
            var,
            value: value.to_owned(),
            reason: "must be at least 1".to_owned(),
        }),
        Err(_) => Err(ConfigError {
            var,
            value: value.to_owned(),
            reason: format!("expected {what}, a positive whole number"),
        }),
    }
}

/// A bad cache setting in the environment.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{var}={value:?}: {reason}")]
pub struct ConfigError {
    /// The variable.
    pub var: &'static str,
    /// Its value.
    pub value: String,
    /// What is wrong.
    pub reason: String,
}

/// The cache's statistics; serialized with exactly these keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct RegistryStats {
    /// Lookups served from the LRU.
    pub hits: u64,
    /// Lookups that parsed the entry (or found no such script).
    pub misses: u64,
    /// Entries dropped to stay within the count or byte bound.
    pub evictions: u64,
    /// `hits / (hits + misses)`, 0 before any lookup.
    pub hit_rate: f64,
    /// Bytes of the parsed scripts held.
    pub memory_usage: u64,
    /// Successful reloads of a changed file.
    pub reloads: u64,
    /// Reloads refused because the file was unreadable or invalid.
    pub reload_errors: u64,
}

/// What a reload changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReloadReport {
    /// The generation of the snapshot now serving (1 for the first load).
    pub generation: u64,
    /// Whether the file was different at all.
    pub changed_file: bool,
    /// Whether every entry was dropped from the LRU (pools changed, or a
    /// full reload was asked for).
    pub full: bool,
    /// Ids whose entry text changed.
    pub changed: Vec<String>,
    /// Ids no longer in the file.
    pub removed: Vec<String>,
    /// Ids new in the file.
    pub added: Vec<String>,
}

/// One loaded version of the file.
#[derive(Debug)]
struct Snapshot {
    index: RawIndex,
    hashes: Vec<blake3::Hash>,
    pools_hash: blake3::Hash,
    file_hash: blake3::Hash,
    summaries: Vec<ScriptSummary>,
    generation: u64,
}

type Listener = Box<dyn Fn(&ReloadReport) + Send + Sync>;

/// The reload listeners, each under the number its subscription removes.
#[derive(Default)]
struct Listeners {
    next: u64,
    by_id: Vec<(u64, Listener)>,
}

/// A listener registered by [`RegistryCache::on_reload`]; dropping it
/// removes the listener. Once the drop has returned, the listener is not
/// running and is never called again (a reload that is calling listeners
/// finishes first).
#[must_use = "dropping the subscription removes the listener at once"]
pub struct ReloadSubscription {
    listeners: std::sync::Weak<Mutex<Listeners>>,
    id: u64,
}

impl core::fmt::Debug for ReloadSubscription {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ReloadSubscription")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Drop for ReloadSubscription {
    fn drop(&mut self) {
        if let Some(listeners) = self.listeners.upgrade() {
            lock(&listeners).by_id.retain(|(id, _)| *id != self.id);
        }
    }
}

/// The registry file behind a bounded, thread-safe LRU of parsed scripts;
/// see the module docs.
pub struct RegistryCache {
    path: PathBuf,
    base_dir: PathBuf,
    snapshot: RwLock<Arc<Snapshot>>,
    generation: AtomicU64,
    lru: SyncCache<String, Arc<Script>>,
    reloads: AtomicU64,
    reload_errors: AtomicU64,
    last_error: Mutex<Option<String>>,
    reload_lock: Mutex<Option<FileStamp>>,
    listeners: Arc<Mutex<Listeners>>,
    watcher: Mutex<Option<Watcher>>,
    watch_status: Mutex<String>,
}

impl core::fmt::Debug for RegistryCache {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RegistryCache")
            .field("path", &self.path)
            .field("generation", &self.generation.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RegistryCache {
    /// Loads and validates the registry at `path` and starts watching it
    /// as `config.watch` says. A file that is not a valid registry is an
    /// error here; later invalid versions are reported and skipped.
    pub fn open(path: impl AsRef<Path>, config: CacheConfig) -> Result<Arc<Self>, RegistryError> {
        let path = path.as_ref();
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let stamp = FileStamp::of(&path);
        let text = read_registry(&path)?;
        let snapshot = build_snapshot(&text, 1)?;
        let lru = SyncCache::builder()
            .shards(shards_for(config.max_entries))
            .max_entries(config.max_entries.max(1))
            .max_weight(
                config.max_memory_bytes.max(1),
                |k: &String, v: &Arc<Script>| (k.len() + v.memory_bytes()) as u64,
            )
            .build()
            .map_err(|e| RegistryError::Io {
                path: path.clone(),
                source: std::io::Error::other(format!("cache configuration: {e}")),
            })?;
        let cache = Arc::new(Self {
            base_dir: base_dir_of(&path),
            path,
            snapshot: RwLock::new(Arc::new(snapshot)),
            generation: AtomicU64::new(1),
            lru,
            reloads: AtomicU64::new(0),
            reload_errors: AtomicU64::new(0),
            last_error: Mutex::new(None),
            reload_lock: Mutex::new(stamp),
            listeners: Arc::default(),
            watcher: Mutex::new(None),
            watch_status: Mutex::new("off".to_owned()),
        });
        let (watcher, status) = watch::start(&cache, &config);
        *lock(&cache.watcher) = watcher;
        *lock(&cache.watch_status) = status;
        Ok(cache)
    }

    /// [`CacheConfig::from_env`]: the defaults with `CACHE_SIZE` and
    /// `CACHE_MEMORY_MB` applied.
    pub fn config_from_env() -> Result<CacheConfig, ConfigError> {
        CacheConfig::from_env()
    }

    /// The script with this id, parsed and validated.
    #[inline]
    pub fn get(&self, id: &str) -> Result<Arc<Script>, LookupError> {
        match self.lru.get(id) {
            Some(script) => Ok(script),
            None => self.miss(id),
        }
    }

    #[cold]
    fn miss(&self, id: &str) -> Result<Arc<Script>, LookupError> {
        let snap = self.current();
        let Some(i) = snap.index.position(id) else {
            return Err(LookupError::UnknownScript { id: id.to_owned() });
        };
        let script = Arc::new(snap.index.parse(i).map_err(|e| LookupError::Invalid {
            id: id.to_owned(),
            message: e.to_string(),
        })?);
        // Made before the entry is kept, so its weight includes it and
        // `GET /scripts/{id}` serves the text without serializing.
        let _ = script.json();
        // An entry alone heavier than its shard's byte bound is served
        // without being kept.
        if self.lru.insert(id.to_owned(), Arc::clone(&script)).is_ok()
            && self.generation.load(Ordering::SeqCst) != snap.generation
        {
            self.lru.remove(id);
        }
        Ok(script)
    }

    /// The summaries of every script, in file order.
    pub fn list(&self) -> Vec<ScriptSummary> {
        self.current().summaries.clone()
    }

    /// The ids of every script, in file order.
    pub fn ids(&self) -> Vec<String> {
        self.current()
            .index
            .entries()
            .iter()
            .map(|e| e.id.clone())
            .collect()
    }

    /// Whether a script has this id (without parsing it).
    pub fn contains(&self, id: &str) -> bool {
        self.current().index.position(id).is_some()
    }

    /// The JSON text of an entry and the BLAKE3 hash of that text, as the
    /// current snapshot has them.
    pub fn entry_text(&self, id: &str) -> Option<(String, [u8; 32])> {
        let snap = self.current();
        let i = snap.index.position(id)?;
        Some((snap.index.raw(i).to_owned(), *snap.hashes[i].as_bytes()))
    }

    /// The connection pools of the current snapshot.
    pub fn pools(&self) -> BTreeMap<String, PoolSpec> {
        self.current().index.pools().clone()
    }

    /// The registry file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The folder relative paths resolve against.
    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }

    /// The generation of the snapshot serving (1 after `open`, one more
    /// per reload that changed the file).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The cache's statistics.
    pub fn stats(&self) -> RegistryStats {
        let s = self.lru.stats();
        RegistryStats {
            hits: s.hits,
            misses: s.misses,
            evictions: s.evictions,
            hit_rate: s.hit_rate(),
            memory_usage: self.lru.weight(),
            reloads: self.reloads.load(Ordering::Relaxed),
            reload_errors: self.reload_errors.load(Ordering::Relaxed),
        }
    }

    /// The number of scripts held parsed.
    pub fn cached_len(&self) -> usize {
        self.lru.len()
    }

    /// The error of the last reload when it failed: the previous valid
    /// version keeps serving meanwhile. `None` once a reload succeeds.
    pub fn last_error(&self) -> Option<String> {
        lock(&self.last_error).clone()
    }

    /// How the file is watched: `notify`, `poll every N ms`, `off`, or the
    /// polling fallback with the reason notifications could not start.
    pub fn watch_status(&self) -> String {
        lock(&self.watch_status).clone()
    }

    /// Calls `f` after every reload that changed the file (from the thread
    /// that reloaded), until the returned subscription is dropped. `f`
    /// must not reload, nor drop a subscription of this cache (listeners
    /// run under the lock that a subscription's drop takes).
    pub fn on_reload(
        &self,
        f: impl Fn(&ReloadReport) + Send + Sync + 'static,
    ) -> ReloadSubscription {
        let mut listeners = lock(&self.listeners);
        let id = listeners.next;
        listeners.next += 1;
        listeners.by_id.push((id, Box::new(f)));
        ReloadSubscription {
            listeners: Arc::downgrade(&self.listeners),
            id,
        }
    }

    /// How many [`RegistryCache::on_reload`] listeners are registered.
    pub fn reload_listeners(&self) -> usize {
        lock(&self.listeners).by_id.len()
    }

    /// Drops `id`'s parsed entry from the LRU (the next lookup parses it).
    pub fn invalidate(&self, id: &str) {
        self.lru.remove(id);
    }

    /// Drops every parsed entry from the LRU.
    pub fn invalidate_all(&self) {
        self.lru.clear();
    }

    /// Reads the file now; reloads it when its bytes changed. An
    /// unreadable or invalid file is reported (and returned) while the
    /// current snapshot keeps serving.
    pub fn reload_now(&self) -> Result<ReloadReport, RegistryError> {
        self.reload(false)
    }

    /// Reads the file now and drops every parsed entry, whether or not
    /// the file changed: for when change notifications were lost.
    pub fn reload_full(&self) -> Result<ReloadReport, RegistryError> {
        self.reload(true)
    }

    /// Records a problem of the watcher (notifications lost, a watch that
    /// could not be set up) where [`RegistryCache::watch_status`] shows it.
    pub(crate) fn set_watch_status(&self, status: String) {
        *lock(&self.watch_status) = status;
    }

    /// Reloads when the file's metadata changed since the last look.
    pub(crate) fn reload_if_stamp_changed(&self) {
        let stamp = FileStamp::of(&self.path);
        let seen = lock(&self.reload_lock).clone();
        if stamp != seen {
            let _ = self.reload(false);
        }
    }

    fn current(&self) -> Arc<Snapshot> {
        Arc::clone(&self.snapshot.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn reload(&self, full: bool) -> Result<ReloadReport, RegistryError> {
        let mut stamp = lock(&self.reload_lock);
        *stamp = FileStamp::of(&self.path);
        let old = self.current();
        let result = read_registry(&self.path).and_then(|text| {
            if blake3::hash(text.as_bytes()) == old.file_hash {
                return Ok(None);
            }
            build_snapshot(&text, old.generation + 1).map(Some)
        });
        let new = match result {
            Err(e) => {
                self.reload_errors.fetch_add(1, Ordering::Relaxed);
                *lock(&self.last_error) = Some(e.to_string());
                return Err(e);
            }
            Ok(None) => {
                *lock(&self.last_error) = None;
                if full {
                    self.lru.clear();
                }
                return Ok(ReloadReport {
                    generation: old.generation,
                    full,
                    ..ReloadReport::default()
                });
            }
            Ok(Some(new)) => Arc::new(new),
        };
        let report = diff(&old, &new, full);
        let generation = new.generation;
        *self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner) = new;
        self.generation.store(generation, Ordering::SeqCst);
        if report.full {
            self.lru.clear();
        } else {
            for id in report.changed.iter().chain(&report.removed) {
                self.lru.remove(id.as_str());
            }
        }
        self.reloads.fetch_add(1, Ordering::Relaxed);
        *lock(&self.last_error) = None;
        drop(stamp);
        for (_, listener) in &lock(&self.listeners).by_id {
            listener(&report);
        }
        Ok(report)
    }
}

impl Drop for RegistryCache {
    fn drop(&mut self) {
        if let Some(w) = lock(&self.watcher).take() {
            w.stop();
        }
    }
}

/// The shard count for a bound of `max_entries`.
///
/// A `SyncCache` splits its bound between shards, and ids do not spread
/// evenly: with the default shards (four per core) a 100-entry cache has
/// shards of 12 or 13 entries, and a hot set of 100 scripts keeps evicting
/// itself. One shard per 256 entries keeps each shard's share large enough
/// that the unevenness is small; a small cache is one shard, an exact LRU.
fn shards_for(max_entries: usize) -> usize {
    (max_entries / 256).clamp(1, 16)
}

/// Indexes and validates `text` as generation `generation`.
fn build_snapshot(text: &str, generation: u64) -> Result<Snapshot, RegistryError> {
    let file_hash = blake3::hash(text.as_bytes());
    let index = RawIndex::build(Arc::from(text))?;
    let n = index.entries().len();
    let mut summaries = Vec::with_capacity(n);
    let mut hashes = Vec::with_capacity(n);
    for i in 0..n {
        summaries.push(index.parse(i)?.summary());
        hashes.push(blake3::hash(index.raw(i).as_bytes()));
    }
    let pools_hash = blake3::hash(index.pools_raw().as_bytes());
    Ok(Snapshot {
        index,
        hashes,
        pools_hash,
        file_hash,
        summaries,
        generation,
    })
}

/// What changed from `old` to `new`.
fn diff(old: &Snapshot, new: &Snapshot, full: bool) -> ReloadReport {
    let old_hashes: HashMap<&str, &blake3::Hash> = old
        .index
        .entries()
        .iter()
        .zip(&old.hashes)
        .map(|(e, h)| (e.id.as_str(), h))
        .collect();
    let mut report = ReloadReport {
        generation: new.generation,
        changed_file: true,
        full: full || old.pools_hash != new.pools_hash,
        ..ReloadReport::default()
    };
    for (e, h) in new.index.entries().iter().zip(&new.hashes) {
        match old_hashes.get(e.id.as_str()) {
            None => report.added.push(e.id.clone()),
            Some(old_h) if *old_h != h => report.changed.push(e.id.clone()),
            Some(_) => {}
        }
    }
    for e in old.index.entries() {
        if new.index.position(&e.id).is_none() {
            report.removed.push(e.id.clone());
        }
    }
    report
}
