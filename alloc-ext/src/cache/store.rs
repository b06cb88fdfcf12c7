//! The cache itself: a hash table of slot indices over a slab of entries,
//! with the two S3-FIFO queues threaded through the slab as intrusive
//! doubly-linked lists so that removing any entry is O(1).

use alloc::boxed::Box;
use alloc::collections::VecDeque;
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

/// The end of a list; slot indices are below it.
const NIL: u32 = u32::MAX;

/// Why an entry left the cache through the eviction listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EvictionCause {
    /// Dropped to keep the cache within its entry count or weight.
    Capacity,
    /// Its time-to-live or time-to-idle ran out.
    Expired,
}

impl fmt::Display for EvictionCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Capacity => "evicted for capacity",
            Self::Expired => "expired",
        })
    }
}

/// An insert refused because the entry alone weighs more than the cache may
/// hold; the key and value are handed back, with the value the key held
/// before, which the refused insert removed so that it is not served stale.
#[derive(Clone, PartialEq, Eq)]
pub struct Oversized<K, V> {
    /// The key that was not stored.
    pub key: K,
    /// The value that was not stored.
    pub value: V,
    /// The live value the key held before the insert, now removed.
    pub previous: Option<V>,
    /// The entry's weight.
    pub weight: u64,
    /// The cache's maximum weight.
    pub max_weight: u64,
}

impl<K, V> fmt::Debug for Oversized<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Oversized")
            .field("weight", &self.weight)
            .field("max_weight", &self.max_weight)
            .finish_non_exhaustive()
    }
}

impl<K, V> fmt::Display for Oversized<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cache entry weighs {} but the cache holds at most {}",
            self.weight, self.max_weight
        )
    }
}

impl<K, V> core::error::Error for Oversized<K, V> {}

/// The weigher of a cache, shared by the shards of a sharded one.
pub(crate) type Weigher<K, V> = Arc<dyn Fn(&K, &V) -> u64 + Send + Sync>;
/// The boxed eviction listener of a cache.
pub(crate) type Listener<K, V> = Box<dyn FnMut(K, V, EvictionCause) + Send>;

/// What happens to an entry evicted for capacity or expiry.
pub(crate) enum Evictions<K, V> {
    /// It is dropped.
    Drop,
    /// The listener is called with it.
    Listener(Listener<K, V>),
    /// It waits for `poll_evicted` / `drain_evicted`.
    Collect(VecDeque<(K, V, EvictionCause)>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Queue {
    Small,
    Main,
}

/// The access counter saturates here, so an entry read often survives at
/// most this many extra rounds of the main queue without another read.
const MAX_FREQ: u8 = 3;

/// Bumps a saturating access counter.
#[inline]
fn freq_up(freq: &Cell<u8>) {
    let f = freq.get();
    // Hot entries sit at the top count; not storing the same value again
    // keeps their cache lines clean.
    if f < MAX_FREQ {
        freq.set(f + 1);
    }
}

/// What a lookup touches, kept small so that more of it stays in cache.
///
/// The counter is a `Cell` so that a hit can bump it through the shared
/// reference the table lookup found, without indexing the slab again.
struct Slot<K, V> {
    key: K,
    value: V,
    freq: Cell<u8>,
}

/// What eviction, expiry and the queues need, kept apart from the hot part.
#[derive(Clone, Copy, Debug)]
struct Meta {
    hash: u64,
    weight: u64,
    /// Absolute expiry from the time-to-live, `u64::MAX` without one.
    expires_at: u64,
    /// Last read or write, for the time-to-idle.
    accessed_at: u64,
    prev: u32,
    next: u32,
    queue: Queue,
}

impl Meta {
    const VACANT: Self = Self {
        hash: 0,
        weight: 0,
        expires_at: u64::MAX,
        accessed_at: 0,
        prev: NIL,
        next: NIL,
        queue: Queue::Small,
    };
}

/// A FIFO threaded through the slab.
///
/// The weight is a `u128`: at most 2^32 entries of at most 2^64 each cannot
/// overflow it, so no bound makes the sum wrap.
#[derive(Clone, Copy, Debug)]
struct List {
    head: u32,
    tail: u32,
    len: usize,
    weight: u128,
}

impl List {
    const EMPTY: Self = Self {
        head: NIL,
        tail: NIL,
        len: 0,
        weight: 0,
    };
}

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
    table: HashTable<u32>,
    slots: Vec<Option<Slot<K, V>>>,
    /// Parallel to `slots`; meaningful only where the slot is occupied.
    meta: Vec<Meta>,
    free: Vec<u32>,
    small: List,
    main: List,
    ghost: Ghost,
    hasher: S,
    clock: C,
    weigher: Option<Weigher<K, V>>,
    evictions: Evictions<K, V>,
    limits: Limits,
    /// Whether entries can expire: the clock is read only if so.
    expiring: bool,
    stats: CacheStats,
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
    fn find<Q>(&self, hash: u64, key: &Q) -> Option<u32>
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
    fn slot(&self, idx: u32) -> &Slot<K, V> {
        match &self.slots[idx as usize] {
            Some(e) => e,
            None => unreachable!("the table only holds occupied slots"),
        }
    }

    #[inline]
    fn slot_mut(&mut self, idx: u32) -> &mut Slot<K, V> {
        match &mut self.slots[idx as usize] {
            Some(e) => e,
            None => unreachable!("the table only holds occupied slots"),
        }
    }

    #[inline]
    fn meta(&self, idx: u32) -> &Meta {
        &self.meta[idx as usize]
    }

    #[inline]
    fn meta_mut(&mut self, idx: u32) -> &mut Meta {
        &mut self.meta[idx as usize]
    }

    #[inline]
    fn expired_at(&self, idx: u32, now: u64) -> bool {
        self.is_expired(self.meta(idx), now)
    }

    #[inline]
    fn now(&self) -> u64 {
        if self.expiring {
            self.clock.now().as_nanos()
        } else {
            0
        }
    }

    #[inline]
    fn is_expired(&self, e: &Meta, now: u64) -> bool {
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

    fn over_capacity(&self) -> bool {
        self.table.len() > self.limits.max_entries
            || self.small.weight + self.main.weight > u128::from(self.limits.max_weight)
    }

    /// The small queue's share: a fortieth of each bound. The S3-FIFO paper
    /// suggests a tenth; on Zipf traces (s = 0.8 to 1.2) a smaller probation
    /// queue keeps more of the frequently read entries, and the ghost queue
    /// still gives a key evicted unread a direct way into the main queue.
    fn small_over_target(&self) -> bool {
        self.small.len > self.limits.max_entries / 40
            || self.small.weight > u128::from(self.limits.max_weight / 40)
    }

    fn enforce_capacity(&mut self, now: u64) {
        while self.over_capacity() {
            if self.small.len > 0 && (self.small_over_target() || self.main.len == 0) {
                self.evict_from_small(now);
            } else {
                self.evict_from_main(now);
            }
        }
    }

    fn evict_from_small(&mut self, now: u64) {
        let idx = self.small.head;
        if self.expired_at(idx, now) {
            self.evict_entry(idx, EvictionCause::Expired);
        } else if self.slot(idx).freq.get() > 0 {
            // Read while on probation: promote with a fresh counter.
            self.list_remove(idx);
            self.slot(idx).freq.set(0);
            self.meta_mut(idx).queue = Queue::Main;
            self.push_back(idx);
        } else {
            let hash = self.meta(idx).hash;
            // A third of the resident count: tuned on the same Zipf traces,
            // where a ghost as large as the main queue readmitted too many
            // keys that were not coming back often.
            let ghost_capacity = self.table.len().max(16) / 3;
            self.ghost.push(hash, ghost_capacity);
            self.evict_entry(idx, EvictionCause::Capacity);
        }
    }

    fn evict_from_main(&mut self, now: u64) {
        let idx = self.main.head;
        if self.expired_at(idx, now) {
            self.evict_entry(idx, EvictionCause::Expired);
        } else if self.slot(idx).freq.get() > 0 {
            self.list_remove(idx);
            let e = self.slot(idx);
            e.freq.set(e.freq.get() - 1);
            self.push_back(idx);
        } else {
            self.evict_entry(idx, EvictionCause::Capacity);
        }
    }

    fn evict_entry(&mut self, idx: u32, cause: EvictionCause) {
        match cause {
            EvictionCause::Capacity => self.stats.evictions += 1,
            EvictionCause::Expired => self.stats.expirations += 1,
        }
        let (key, value) = self.unlink(idx);
        match &mut self.evictions {
            Evictions::Drop => {}
            Evictions::Listener(listener) => listener(key, value, cause),
            Evictions::Collect(kept) => kept.push_back((key, value, cause)),
        }
    }

    /// The oldest entry evicted and not yet taken, with its cause; only a
    /// cache built with [`CacheBuilder::collect_evictions`] keeps them.
    pub fn poll_evicted(&mut self) -> Option<(K, V, EvictionCause)> {
        match &mut self.evictions {
            Evictions::Collect(kept) => kept.pop_front(),
            Evictions::Drop | Evictions::Listener(_) => None,
        }
    }

    /// Takes every evicted entry kept so far, oldest first; see
    /// [`poll_evicted`](Self::poll_evicted).
    pub fn drain_evicted(&mut self) -> impl Iterator<Item = (K, V, EvictionCause)> + '_ {
        let kept = match &mut self.evictions {
            Evictions::Collect(kept) => Some(kept.drain(..)),
            Evictions::Drop | Evictions::Listener(_) => None,
        };
        kept.into_iter().flatten()
    }

    /// Whether evicted entries wait to be taken.
    #[inline]
    pub fn has_evicted(&self) -> bool {
        matches!(&self.evictions, Evictions::Collect(kept) if !kept.is_empty())
    }

    /// Takes the entry out of the table, its queue and the slab.
    fn unlink(&mut self, idx: u32) -> (K, V) {
        self.list_remove(idx);
        let hash = self.meta(idx).hash;
        if let Ok(found) = self.table.find_entry(hash, |&i| i == idx) {
            found.remove();
        }
        let Some(e) = self.slots[idx as usize].take() else {
            unreachable!("unlinking an occupied slot")
        };
        self.meta[idx as usize] = Meta::VACANT;
        self.free.push(idx);
        (e.key, e.value)
    }

    fn list_mut(&mut self, queue: Queue) -> &mut List {
        match queue {
            Queue::Small => &mut self.small,
            Queue::Main => &mut self.main,
        }
    }

    fn push_back(&mut self, idx: u32) {
        let Meta { queue, weight, .. } = *self.meta(idx);
        let list = *self.list_mut(queue);
        {
            let e = self.meta_mut(idx);
            e.prev = list.tail;
            e.next = NIL;
        }
        if list.tail == NIL {
            self.list_mut(queue).head = idx;
        } else {
            self.meta_mut(list.tail).next = idx;
        }
        let list = self.list_mut(queue);
        list.tail = idx;
        list.len += 1;
        list.weight += u128::from(weight);
    }

    fn list_remove(&mut self, idx: u32) {
        let Meta {
            queue,
            weight,
            prev,
            next,
            ..
        } = *self.meta(idx);
        if prev == NIL {
            self.list_mut(queue).head = next;
        } else {
            self.meta_mut(prev).next = next;
        }
        if next == NIL {
            self.list_mut(queue).tail = prev;
        } else {
            self.meta_mut(next).prev = prev;
        }
        let list = self.list_mut(queue);
        list.len -= 1;
        list.weight -= u128::from(weight);
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
