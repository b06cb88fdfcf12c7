//! Thread-safe forms of the growable cache: [`SyncCache`], a sharded cache
//! whose shards are `mechops_alloc::cache::Cache`s behind yielding spin
//! locks (`ShardLock` says why); expiry reads a
//! [`SteadyClock`].
//!
//! Invariants:
//!
//! - a key always maps to the same shard (bits 32 and up of its hash, which
//!   the shard's table uses neither for its bucket index, the low bits, nor
//!   for its tag, the top seven), so each
//!   shard's invariants (bounds, expiry, listener exactly once) are the
//!   cache's;
//! - the entry and weight bounds are split between the shards so that their
//!   sum is exactly the requested bound: the whole cache never exceeds it;
//! - a key is hashed once per operation; the shard reuses that hash.
//!
//! Expiry runs on `std::time::Instant`, never on the wall clock, for the
//! reason the alloc cache gives: a wall clock steps, a monotonic one does not.

use core::borrow::Borrow;
use core::fmt;
use core::hash::{BuildHasher, Hash};
use core::time::Duration;
use std::sync::Arc;

use mechops_alloc::cache::{
    BuildError, Cache, CacheBuilder, CacheHashBuilder, CacheStats, EvictionCause, Oversized,
};
use mechops_core::time::MonotonicClock;
use spin::mutex::{SpinMutex, SpinMutexGuard};
use spin::relax::Yield;

use crate::clock::SteadyClock;

type SharedListener<K, V> = Arc<dyn Fn(K, V, EvictionCause) + Send + Sync>;

/// Builds a [`SyncCache`]; start with [`SyncCache::builder`]. It is a
/// [`CacheBuilder`] (bounds, expiry, clock, weigher) plus the shard count
/// and a listener that runs outside every lock.
pub struct SyncCacheBuilder<K, V, C = SteadyClock> {
    cache: CacheBuilder<K, V, C>,
    listener: Option<SharedListener<K, V>>,
    shards: Option<usize>,
}

impl<K, V, C> fmt::Debug for SyncCacheBuilder<K, V, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncCacheBuilder")
            .field("cache", &self.cache)
            .field("shards", &self.shards)
            .finish_non_exhaustive()
    }
}

impl<K, V, C> SyncCacheBuilder<K, V, C> {
    /// Holds at most this many entries in all.
    #[must_use]
    pub fn max_entries(mut self, n: usize) -> Self {
        self.cache = self.cache.max_entries(n);
        self
    }

    /// Holds at most this much weight in all, each entry weighed by
    /// `weigher`.
    #[must_use]
    pub fn max_weight(
        mut self,
        max: u64,
        weigher: impl Fn(&K, &V) -> u64 + Send + Sync + 'static,
    ) -> Self {
        self.cache = self.cache.max_weight(max, weigher);
        self
    }

    /// Entries expire this long after they were inserted or replaced.
    #[must_use]
    pub fn time_to_live(mut self, ttl: Duration) -> Self {
        self.cache = self.cache.time_to_live(ttl);
        self
    }

    /// Entries expire after this long without being read or replaced.
    #[must_use]
    pub fn time_to_idle(mut self, tti: Duration) -> Self {
        self.cache = self.cache.time_to_idle(tti);
        self
    }

    /// Called with every entry evicted for capacity or expiry, after the
    /// operation that evicted it has released its shard's lock: it may call
    /// back into the cache, and a panic in it leaves the cache consistent.
    #[must_use]
    pub fn eviction_listener(
        mut self,
        listener: impl Fn(K, V, EvictionCause) + Send + Sync + 'static,
    ) -> Self {
        self.listener = Some(Arc::new(listener));
        self
    }

    /// The number of shards, rounded up to a power of two; by default four
    /// per available core, fewer for small bounds.
    #[must_use]
    pub fn shards(mut self, n: usize) -> Self {
        self.shards = Some(n);
        self
    }

    /// A different monotonic clock (for tests and simulations).
    pub fn clock<C2: MonotonicClock + Clone>(self, clock: C2) -> SyncCacheBuilder<K, V, C2> {
        SyncCacheBuilder {
            cache: self.cache.clock(clock),
            listener: self.listener,
            shards: self.shards,
        }
    }
}

impl<K, V, C> SyncCacheBuilder<K, V, C>
where
    K: Hash + Eq + Send + 'static,
    V: Send + 'static,
    C: MonotonicClock + Clone,
{
    /// Validates the configuration and builds the cache.
    pub fn build(self) -> Result<SyncCache<K, V, C>, BuildError> {
        let wanted = self.shards.unwrap_or_else(|| {
            4 * std::thread::available_parallelism().map_or(1, core::num::NonZero::get)
        });
        let mut shards = wanted.clamp(1, 1 << 16).next_power_of_two();
        // Every shard must be able to hold something.
        let smallest = self
            .cache
            .entry_bound()
            .map(|n| n as u64)
            .into_iter()
            .chain(self.cache.weight_bound())
            .min()
            .unwrap_or(u64::MAX);
        while shards > 1 && (shards as u64) > smallest {
            shards /= 2;
        }
        let hasher = CacheHashBuilder::default();
        let built = self.cache.hasher(hasher.clone()).build_shards(shards)?;
        Ok(SyncCache {
            mask: shards - 1,
            shards: built
                .into_iter()
                .map(|c| CachePadded(ShardLock::new(c)))
                .collect(),
            hasher,
            listener: self.listener,
        })
    }
}

/// Keeps each shard's lock on its own cache line so that threads working on
/// different shards do not contend through false sharing.
#[repr(align(128))]
struct CachePadded<T>(T);

/// The lock of one shard.
///
/// A shard is held for a hash lookup and a few stores (or an insert with its
/// evictions), so the lock is a spin lock that yields to the scheduler while
/// it waits: taking it is one compare-and-swap and releasing it one release
/// store, where `std::sync::Mutex` pays a second read-modify-write to
/// release. Yielding rather than spinning keeps a waiter from burning its
/// time slice while a preempted holder waits to run. No user code runs under
/// it but the key's `Hash`/`Eq` and the weigher: evicted entries are taken
/// out under the lock and handed to the listener after it is released.
type ShardLock<T> = SpinMutex<T, Yield>;

/// One shard: a cache behind its own padded lock.
type Shard<K, V, C> = CachePadded<ShardLock<Cache<K, V, C>>>;

/// A sharded, thread-safe growable cache; see the module docs.
pub struct SyncCache<K, V, C = SteadyClock> {
    shards: Box<[Shard<K, V, C>]>,
    /// `shards - 1`, applied to the hash's bits 32 and up.
    mask: usize,
    hasher: CacheHashBuilder,
    listener: Option<SharedListener<K, V>>,
}

impl<K, V, C> fmt::Debug for SyncCache<K, V, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncCache")
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

impl<K, V> SyncCache<K, V> {
    /// Starts a builder with no bounds, no expiry and the monotonic clock.
    pub fn builder() -> SyncCacheBuilder<K, V> {
        SyncCacheBuilder {
            cache: CacheBuilder::new().clock(SteadyClock::new()),
            listener: None,
            shards: None,
        }
    }
}

impl<K, V, C> SyncCache<K, V, C>
where
    K: Hash + Eq,
    C: MonotonicClock,
{
    #[inline]
    fn shard(&self, hash: u64) -> SpinMutexGuard<'_, Cache<K, V, C>, Yield> {
        let i = (hash >> 32) as usize & self.mask;
        self.shards[i].0.lock()
    }

    /// Runs `op` on the shard of `hash`, then hands what it evicted to the
    /// listener once the lock is released.
    #[inline]
    fn with_shard<R>(&self, hash: u64, op: impl FnOnce(&mut Cache<K, V, C>) -> R) -> R {
        let mut shard = self.shard(hash);
        let out = op(&mut shard);
        if shard.has_evicted() {
            self.hand_out_evicted(shard);
        }
        out
    }

    /// Takes the shard's evicted entries, unlocks, then calls the listener
    /// (or drops them without one). A panicking listener drops the rest.
    #[cold]
    fn hand_out_evicted(&self, mut shard: SpinMutexGuard<'_, Cache<K, V, C>, Yield>) {
        let evicted: Vec<_> = shard.drain_evicted().collect();
        drop(shard);
        if let Some(listener) = &self.listener {
            for (k, v, cause) in evicted {
                listener(k, v, cause);
            }
        }
    }

    /// A clone of the value for `key`, counting a hit or miss.
    #[inline]
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        let hash = self.hasher.hash_one(key);
        self.with_shard(hash, |c| c.get_hashed(hash, key).cloned())
    }

    /// Runs `f` on the value for `key` under the shard's lock, counting a
    /// hit or miss; for values too costly to clone. `f` must not call back
    /// into the cache.
    pub fn get_with<Q, R>(&self, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hasher.hash_one(key);
        self.with_shard(hash, |c| c.get_hashed(hash, key).map(f))
    }

    /// Whether a live entry for `key` exists, without counting it.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hasher.hash_one(key);
        self.shard(hash).contains_key(key)
    }

    /// Stores `value` under `key`; see [`Cache::insert`].
    pub fn insert(&self, key: K, value: V) -> Result<Option<V>, Oversized<K, V>> {
        let hash = self.hasher.hash_one(&key);
        self.with_shard(hash, |c| c.insert_hashed(hash, key, value))
    }

    /// Removes `key`, giving back its value if it was live.
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hasher.hash_one(key);
        self.with_shard(hash, |c| c.remove_hashed(hash, key))
    }

    /// Removes every expired entry, shard by shard; returns how many.
    pub fn purge_expired(&self) -> usize {
        let mut purged = 0;
        for s in self.shards.iter() {
            let mut shard = s.0.lock();
            purged += shard.purge_expired();
            if shard.has_evicted() {
                self.hand_out_evicted(shard);
            }
        }
        purged
    }

    /// Drops every entry without calling the listener.
    pub fn clear(&self) {
        self.each_shard(|c| c.clear()).for_each(drop);
    }

    /// Entries stored (a sum over shards, each read in turn).
    pub fn len(&self) -> usize {
        self.each_shard(|c| c.len()).sum()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total weight stored.
    pub fn weight(&self) -> u64 {
        self.each_shard(|c| c.weight()).sum()
    }

    /// The statistics of all shards, merged.
    pub fn stats(&self) -> CacheStats {
        let mut total = CacheStats::default();
        for s in self.each_shard(|c| c.stats()) {
            total.merge(&s);
        }
        total
    }

    /// The number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    fn each_shard<'a, R: 'a>(
        &'a self,
        mut f: impl FnMut(&mut Cache<K, V, C>) -> R + 'a,
    ) -> impl Iterator<Item = R> + 'a {
        self.shards.iter().map(move |s| f(&mut s.0.lock()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;

    #[test]
    fn bounds_are_split_exactly() {
        let c: SyncCache<u32, u32> = SyncCache::builder()
            .max_entries(100)
            .shards(8)
            .build()
            .unwrap();
        for k in 0..1000 {
            c.insert(k, k).unwrap();
            assert!(c.len() <= 100);
        }
        assert!(c.len() > 50, "shards fill up: {}", c.len());
    }

    #[test]
    fn small_bounds_use_fewer_shards() {
        let c: SyncCache<u8, u8> = SyncCache::builder()
            .max_entries(3)
            .shards(64)
            .build()
            .unwrap();
        assert!(c.shard_count() <= 3);
        let c: SyncCache<u8, u8> = SyncCache::builder().max_entries(1).build().unwrap();
        assert_eq!(c.shard_count(), 1);
        c.insert(1, 1).unwrap();
        assert_eq!(c.get(&1), Some(1));
    }

    #[test]
    fn get_insert_remove_and_stats() {
        let c = SyncCache::builder().max_entries(64).build().unwrap();
        assert_eq!(c.insert("a".to_string(), 1), Ok(None));
        assert_eq!(c.get("a"), Some(1));
        assert_eq!(c.get_with("a", |v| v * 10), Some(10));
        assert_eq!(c.get("b"), None);
        assert!(c.contains_key("a"));
        assert_eq!(c.remove("a"), Some(1));
        let s = c.stats();
        assert_eq!((s.hits, s.misses, s.inserts, s.removals), (2, 1, 1, 1));
    }

    /// A clock in whole seconds, set by the test.
    #[derive(Clone, Default)]
    struct SecondsClock(Arc<AtomicU64>);

    impl MonotonicClock for SecondsClock {
        fn now(&self) -> mechops_core::time::Instant {
            mechops_core::time::Instant::from_secs(self.0.load(Ordering::Relaxed))
        }
    }

    #[test]
    fn expiry_on_an_injected_clock_reaches_the_listener() {
        let clock = SecondsClock::default();
        let expired = Arc::new(Mutex::new(0u64));
        let counter = Arc::clone(&expired);
        let c = SyncCache::builder()
            .max_entries(64)
            .time_to_live(Duration::from_secs(5))
            .eviction_listener(move |_k: u32, _v: u32, cause| {
                assert_eq!(cause, EvictionCause::Expired);
                *counter.lock().unwrap() += 1;
            })
            .clock(clock.clone())
            .build()
            .unwrap();
        for k in 0..10 {
            c.insert(k, k).unwrap();
        }
        clock.0.store(5, Ordering::Relaxed);
        assert_eq!(c.get(&0), None);
        assert_eq!(c.purge_expired(), 9);
        assert_eq!(*expired.lock().unwrap(), 10);
        assert!(c.is_empty());
    }

    #[test]
    fn the_listener_runs_outside_the_shard_lock() {
        // The listener reads the cache (the same shard: there is one); under
        // the shard's lock that would never return.
        let cache: Arc<std::sync::OnceLock<SyncCache<u32, u32>>> = Arc::default();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (inner, log) = (Arc::clone(&cache), Arc::clone(&seen));
        let built = SyncCache::builder()
            .max_entries(1)
            .eviction_listener(move |k, _v, cause| {
                let c = inner.get().unwrap();
                log.lock().unwrap().push((k, cause, c.len()));
            })
            .build()
            .unwrap();
        assert_eq!(built.shard_count(), 1);
        cache.set(built).unwrap_or_else(|_| unreachable!());
        let c = cache.get().unwrap();
        c.insert(1, 1).unwrap();
        c.insert(2, 2).unwrap();
        assert_eq!(*seen.lock().unwrap(), vec![(1, EvictionCause::Capacity, 1)]);
    }

    #[test]
    fn a_panicking_listener_leaves_the_cache_usable() {
        let c = SyncCache::builder()
            .max_entries(1)
            .eviction_listener(|k: u32, _v: u32, _| assert!(k != 1, "listener failed"))
            .build()
            .unwrap();
        c.insert(1, 1).unwrap();
        let r = std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| c.insert(2, 2)));
        assert!(r.is_err());
        assert_eq!((c.len(), c.get(&2)), (1, Some(2)));
        c.insert(3, 3).unwrap();
        assert_eq!(c.len(), 1, "the bound holds after the next insert");
    }

    #[test]
    fn weight_bound_across_threads() {
        let c = Arc::new(
            SyncCache::builder()
                .max_weight(1000, |_k: &u64, v: &Vec<u8>| v.len() as u64)
                .shards(4)
                .build()
                .unwrap(),
        );
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let c = Arc::clone(&c);
                std::thread::spawn(move || {
                    for i in 0..500u64 {
                        let k = t * 1000 + i;
                        c.insert(k, vec![0u8; (i % 40) as usize + 1]).unwrap();
                        if let Some(v) = c.get(&k) {
                            assert_eq!(v.len(), (i % 40) as usize + 1);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(c.weight() <= 1000);
        assert_eq!(c.stats().inserts, 2000);
    }
}
