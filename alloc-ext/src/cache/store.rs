//! The cache type and its operations: lookups, inserts, removals, expiry.
//! A hash table of slot indices sits over the slab (`slab.rs`); which entry
//! leaves when the cache is full is the policy's business (`policy.rs`), and
//! where it goes the eviction module's (`eviction.rs`).

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::borrow::Borrow;
use core::cell::Cell;
use core::fmt;
use core::hash::{BuildHasher, Hash};
use core::time::Duration;

use hashbrown::HashTable;
use mechops_core::time::MonotonicClock;

use super::CacheHashBuilder;
use super::builder::{CacheBuilder, ENTRY_LIMIT};
use super::clock::StoppedClock;
use super::ghost::Ghost;
use super::stats::CacheStats;

use super::eviction::{EvictionCause, Evictions};
use super::oversized::Oversized;
use super::slab::{List, Meta, NIL, Queue, Slot, freq_up};

/// The weigher of a cache, shared by the shards of a sharded one.
pub(crate) type Weigher<K, V> = Arc<dyn Fn(&K, &V) -> u64 + Send + Sync>;

/// The validated limits and expiry settings of a cache.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) max_entries: usize,
    pub(crate) max_weight: u64,
    pub(crate) ttl: Option<u64>,
    pub(crate) tti: Option<u64>,
}

/// A growable cache; see the [module docs](super) for its policy and
/// invariants. Build one with [`Cache::builder`].
///
/// `C` is the monotonic clock for expiry ([`StoppedClock`] without expiry)
/// and `S` the hash builder.
pub struct Cache<K, V, C = StoppedClock, S = CacheHashBuilder> {
    pub(super) table: HashTable<u32>,
    pub(super) slots: Vec<Option<Slot<K, V>>>,
    /// Parallel to `slots`; meaningful only where the slot is occupied.
    pub(super) meta: Vec<Meta>,
    pub(super) free: Vec<u32>,
    pub(super) small: List,
    pub(super) main: List,
    pub(super) ghost: Ghost,
    pub(super) hasher: S,
    pub(super) clock: C,
    pub(super) weigher: Option<Weigher<K, V>>,
    pub(super) evictions: Evictions<K, V>,
    pub(super) limits: Limits,
    /// Whether entries can expire: the clock is read only if so.
    pub(super) expiring: bool,
    pub(super) stats: CacheStats,
}

impl<K, V, C, S> fmt::Debug for Cache<K, V, C, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("len", &self.table.len())
            .field("weight", &(self.small.weight + self.main.weight))
            .field("limits", &self.limits)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<K: Hash + Eq, V> Cache<K, V> {
    /// Starts a builder with no limits set yet.
    pub fn builder() -> CacheBuilder<K, V> {
        CacheBuilder::new()
    }

    /// A cache of at most `max_entries` entries, without expiry. The bound
    /// is clamped to the supported range, `1..=u32::MAX - 1`.
    pub fn with_max_entries(max_entries: usize) -> Self {
        Self::builder()
            .max_entries(max_entries.clamp(1, ENTRY_LIMIT))
            .build()
            .unwrap_or_else(|_| unreachable!("an entry bound in range is always valid"))
    }
}

impl<K: Hash + Eq, V, C: MonotonicClock, S: BuildHasher> Cache<K, V, C, S> {
    pub(crate) fn from_parts(
        limits: Limits,
        hasher: S,
        clock: C,
        weigher: Option<Weigher<K, V>>,
        evictions: Evictions<K, V>,
    ) -> Self {
        Self {
            table: HashTable::new(),
            slots: Vec::new(),
            meta: Vec::new(),
            free: Vec::new(),
            small: List::EMPTY,
            main: List::EMPTY,
            ghost: Ghost::default(),
            hasher,
            clock,
            weigher,
            evictions,
            expiring: limits.ttl.is_some() || limits.tti.is_some(),
            limits,
            stats: CacheStats::default(),
        }
    }

    /// The hash this cache uses for `key`; pass it to the `*_hashed` methods
    /// when the caller has already hashed (as a sharded wrapper does).
    #[inline]
    pub fn hash_key<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The hash builder.
    pub fn hasher(&self) -> &S {
        &self.hasher
    }

    #[inline]
    pub(super) fn find<Q>(&self, hash: u64, key: &Q) -> Option<u32>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let slots = &self.slots;
        self.table
            .find(hash, |&i| match &slots[i as usize] {
                Some(e) => e.key.borrow() == key,
                None => false,
            })
            .copied()
    }

    #[inline]
    pub(super) fn expired_at(&self, idx: u32, now: u64) -> bool {
        self.is_expired(self.meta(idx), now)
    }

    #[inline]
    pub(super) fn now(&self) -> u64 {
        if self.expiring {
            self.clock.now().as_nanos()
        } else {
            0
        }
    }

    #[inline]
    pub(super) fn is_expired(&self, e: &Meta, now: u64) -> bool {
        self.expiring
            && (now >= e.expires_at
                || self
                    .limits
                    .tti
                    .is_some_and(|tti| now.saturating_sub(e.accessed_at) >= tti))
    }

    /// Looks `key` up, counting a hit or a miss and marking the entry as
    /// used. An expired entry is removed (through the listener) and missed.
    #[inline]
    pub fn get<Q>(&mut self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash_key(key);
        self.get_hashed(hash, key)
    }

    /// [`get`](Self::get) with the hash from [`hash_key`](Self::hash_key).
    /// A wrong hash only makes the lookup miss.
    #[inline]
    pub fn get_hashed<Q>(&mut self, hash: u64, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        if self.expiring {
            return self.get_expiring(hash, key);
        }
        let slots = &self.slots;
        let mut found = None;
        self.table.find(hash, |&i| match &slots[i as usize] {
            Some(e) if e.key.borrow() == key => {
                found = Some(e);
                true
            }
            _ => false,
        });
        let Some(e) = found else {
            self.stats.misses += 1;
            return None;
        };
        self.stats.hits += 1;
        freq_up(&e.freq);
        Some(&e.value)
    }

    /// The lookup of a cache with expiry: it needs the slot index to drop an
    /// expired entry and the metadata to refresh the idle time.
    fn get_expiring<Q>(&mut self, hash: u64, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let Some(idx) = self.find(hash, key) else {
            self.stats.misses += 1;
            return None;
        };
        {
            let now = self.now();
            if self.expired_at(idx, now) {
                self.stats.misses += 1;
                self.evict_entry(idx, EvictionCause::Expired);
                return None;
            }
            self.meta_mut(idx).accessed_at = now;
        }
        self.stats.hits += 1;
        let e = self.slot(idx);
        freq_up(&e.freq);
        Some(&e.value)
    }

    /// Looks `key` up without counting or marking it used (for inspection).
    /// Expired entries are not returned.
    pub fn peek<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let idx = self.find(self.hash_key(key), key)?;
        (!self.expired_at(idx, self.now())).then_some(&self.slot(idx).value)
    }

    /// Whether a live entry for `key` exists; like [`peek`](Self::peek).
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.peek(key).is_some()
    }

    /// Stores `value` under `key`, evicting as needed to stay within capacity.
    ///
    /// Gives back the previous value of `key` if it was live (an expired one
    /// goes to the listener), or, if the entry alone weighs more than the
    /// cache may hold, an [`Oversized`] error with the key, the value and the
    /// previous value, which is removed rather than left to be served stale.
    pub fn insert(&mut self, key: K, value: V) -> Result<Option<V>, Oversized<K, V>> {
        let hash = self.hash_key(&key);
        self.insert_hashed(hash, key, value)
    }

    /// [`insert`](Self::insert) with the hash from [`hash_key`](Self::hash_key).
    /// The hash must be right: a wrong one would let the key be stored twice.
    pub fn insert_hashed(
        &mut self,
        hash: u64,
        key: K,
        value: V,
    ) -> Result<Option<V>, Oversized<K, V>> {
        let weight = match &self.weigher {
            Some(w) => w(&key, &value),
            None => 1,
        };
        if weight > self.limits.max_weight {
            self.stats.rejections += 1;
            // The caller meant to replace any value stored under the key, so
            // the old one must not keep being served: it goes back with the
            // refused one.
            let previous = self.remove_hashed(hash, &key);
            return Err(Oversized {
                key,
                value,
                previous,
                weight,
                max_weight: self.limits.max_weight,
            });
        }
        let now = self.now();
        let expires_at = self
            .limits
            .ttl
            .map_or(u64::MAX, |ttl| now.saturating_add(ttl));
        let previous = match self.find(hash, &key) {
            Some(idx) if self.expired_at(idx, now) => {
                self.evict_entry(idx, EvictionCause::Expired);
                None
            }
            Some(idx) => {
                self.stats.updates += 1;
                let e = self.slot_mut(idx);
                let old = core::mem::replace(&mut e.value, value);
                freq_up(&e.freq);
                let m = self.meta_mut(idx);
                let old_weight = core::mem::replace(&mut m.weight, weight);
                m.expires_at = expires_at;
                m.accessed_at = now;
                let queue = m.queue;
                let list = self.list_mut(queue);
                list.weight = list.weight - u128::from(old_weight) + u128::from(weight);
                self.enforce_capacity(now);
                return Ok(Some(old));
            }
            None => None,
        };
        self.stats.inserts += 1;
        // A key seen recently enough to be in the ghost queue skips the
        // probation of the small queue.
        let queue = if self.ghost.contains(hash) {
            Queue::Main
        } else {
            Queue::Small
        };
        let slot = Slot {
            key,
            value,
            freq: Cell::new(0),
        };
        let meta = Meta {
            hash,
            weight,
            expires_at,
            accessed_at: now,
            prev: NIL,
            next: NIL,
            queue,
        };
        let idx = match self.free.pop() {
            Some(idx) => {
                self.slots[idx as usize] = Some(slot);
                self.meta[idx as usize] = meta;
                idx
            }
            None => {
                let idx = u32::try_from(self.slots.len())
                    .ok()
                    .filter(|&i| i != NIL)
                    .unwrap_or_else(|| panic!("cache cannot hold more than {NIL} entries"));
                self.slots.push(Some(slot));
                self.meta.push(meta);
                idx
            }
        };
        let meta = &self.meta;
        self.table
            .insert_unique(hash, idx, |&i| meta[i as usize].hash);
        self.push_back(idx);
        self.enforce_capacity(now);
        Ok(previous)
    }

    /// Removes `key` and gives back its value if it was live; an expired
    /// entry goes to the listener instead.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash_key(key);
        self.remove_hashed(hash, key)
    }

    /// [`remove`](Self::remove) with the hash from [`hash_key`](Self::hash_key).
    pub fn remove_hashed<Q>(&mut self, hash: u64, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let idx = self.find(hash, key)?;
        if self.expired_at(idx, self.now()) {
            self.evict_entry(idx, EvictionCause::Expired);
            return None;
        }
        self.stats.removals += 1;
        Some(self.unlink(idx).1)
    }

    /// Removes every expired entry (through the listener) and returns how
    /// many there were. Expired entries are otherwise dropped lazily, when
    /// looked up or reached by eviction.
    pub fn purge_expired(&mut self) -> usize {
        if !self.expiring {
            return 0;
        }
        let now = self.now();
        let expired: Vec<u32> = (0..self.slots.len() as u32)
            .filter(|&i| self.slots[i as usize].is_some() && self.expired_at(i, now))
            .collect();
        for &idx in &expired {
            self.evict_entry(idx, EvictionCause::Expired);
        }
        expired.len()
    }

    /// Drops every entry without calling the listener, and forgets the
    /// ghost queue. Statistics are kept.
    pub fn clear(&mut self) {
        self.table.clear();
        self.slots.clear();
        self.meta.clear();
        self.free.clear();
        self.small = List::EMPTY;
        self.main = List::EMPTY;
        self.ghost.clear();
    }

    /// Entries stored, including expired ones not yet dropped.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Total weight stored (the entry count when there is no weigher);
    /// never above the weight bound after an insert.
    pub fn weight(&self) -> u64 {
        u64::try_from(self.small.weight + self.main.weight).unwrap_or(u64::MAX)
    }

    /// The entry-count bound.
    pub fn max_entries(&self) -> usize {
        self.limits.max_entries
    }

    /// The weight bound.
    pub fn max_weight(&self) -> u64 {
        self.limits.max_weight
    }

    /// A snapshot of the statistics.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// Visits every live entry, in no particular order.
    pub fn for_each(&self, mut f: impl FnMut(&K, &V)) {
        let now = self.now();
        for (e, m) in self.slots.iter().zip(&self.meta) {
            if let Some(e) = e {
                if !self.is_expired(m, now) {
                    f(&e.key, &e.value);
                }
            }
        }
    }
}

impl<K, V, C: MonotonicClock, S> Cache<K, V, C, S> {
    /// Resident time bounds, for introspection.
    pub fn time_to_live(&self) -> Option<Duration> {
        self.limits.ttl.map(Duration::from_nanos)
    }

    /// Idle time bound, for introspection.
    pub fn time_to_idle(&self) -> Option<Duration> {
        self.limits.tti.map(Duration::from_nanos)
    }
}
