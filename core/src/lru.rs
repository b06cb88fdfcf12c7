//! A fixed-capacity least-recently-used cache.
//!
//! [`LruCache<K, V, N>`] holds at most `N` entries in arrays inside the value
//! itself: no allocation, ever. Lookups go through a chained hash index;
//! recency is a doubly linked list of entry indices, kept in an array of its
//! own beside the entries.
//!
//! The index has `2 * N` buckets whenever `N < 65535`: the bucket array is
//! `N` words, each holding two 16-bit bucket heads (the `index` submodule).
//! Twice the buckets halves the expected chain length, and a lookup that hits
//! then reads a second entry only a quarter of the time instead of half.
//! Larger caches keep one 32-bit head per word, so `N` buckets.
//!
//! # Invariants
//!
//! - An entry slot holds an initialised key and value exactly when it is on
//!   the recency list; then it is also on exactly one hash chain, the one of
//!   its bucket. Every other slot is either on the free list or at or past
//!   the `used` mark (never occupied yet).
//! - The recency list runs from the most recently used entry (`head`)
//!   through `next` links to the least recently used (`tail`), whose `next`
//!   is `NIL`; `len` is its length. The head's `prev` is stale: nothing
//!   reads it (walks backwards stop after `len` entries, and unlinking
//!   recognises the head by its index), so a hit need not write it. The
//!   tail is kept in the cache itself, not reached through the head, so
//!   refreshing an entry writes only its two neighbours and the head, never
//!   the least recently used entry, the one most likely to have left the
//!   CPU caches.
//! - `get`, `get_mut`, `insert` and `remove` cost O(1) expected: one hash, a
//!   chain walk that, for a hit, inspects 1.25 entries on average (1.5 for
//!   `N >= 65535`), since the index never holds more entries than buckets,
//!   and a constant number of link updates.
//! - `peek`, `contains_key` and iteration change neither recency nor
//!   statistics.
//!
//! # Hashing
//!
//! The hasher is a [`BuildHasher`] parameter. The default, [`DefaultHashBuilder`],
//! is foldhash's fast hasher with a fixed seed: it needs no std and no
//! entropy, which a `no_std` core cannot supply. Where keys come from
//! untrusted input, seed it from real entropy with [`LruCache::with_hasher`]
//! and `DefaultHashBuilder::with_seed(random)`, so that nobody can pick keys
//! that all fall in one bucket.

use core::borrow::Borrow;
use core::fmt;
use core::hash::{BuildHasher, Hash};
use core::iter::FusedIterator;
use core::mem::MaybeUninit;

mod index;

use index::BucketHeads;

/// The default hasher: foldhash's fast hasher with a fixed seed.
pub type DefaultHashBuilder = foldhash::fast::FixedState;

/// The seed [`LruCache::new`] uses (the 64 fractional bits of pi).
const DEFAULT_SEED: u64 = 0x243f_6a88_85a3_08d3;

/// Marks the end of a list or chain.
const NIL: u32 = u32::MAX;

/// The largest capacity an [`LruCache`] can have.
pub const MAX_CAPACITY: usize = NIL as usize - 1;

struct Entry<K, V> {
    key: MaybeUninit<K>,
    value: MaybeUninit<V>,
    /// The top 32 bits of the key's hash: they pick the bucket and let a
    /// chain walk skip most non-matching keys without comparing them.
    hash: u32,
    /// The next entry in the same bucket.
    chain: u32,
}

/// An entry's place in the recency list (or the free list). The links live
/// in their own dense array, eight bytes an entry, rather than in the
/// entries: a hit writes the links of its two neighbours and of the head,
/// and those writes then land in a small array that mostly stays in the L1
/// cache instead of in three scattered entries.
#[derive(Clone, Copy)]
struct Link {
    /// Towards the most recently used entry.
    prev: u32,
    /// Towards the least recently used entry; the next free slot while on
    /// the free list.
    next: u32,
}

impl<K, V> Entry<K, V> {
    const VACANT: Self = Self {
        key: MaybeUninit::uninit(),
        value: MaybeUninit::uninit(),
        hash: 0,
        chain: NIL,
    };
}

/// What an [`LruCache`] has seen so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LruStats {
    /// Lookups (`get`, `get_mut`) that found their key.
    pub hits: u64,
    /// Lookups that did not.
    pub misses: u64,
    /// Entries pushed out by `insert` to make room.
    pub evictions: u64,
}

impl LruStats {
    /// The fraction of lookups that hit, between 0 and 1; 0 before any lookup.
    pub fn hit_rate(&self) -> f64 {
        crate::metrics::hit_rate(self.hits, self.misses)
    }
}

/// A fixed-capacity least-recently-used cache of at most `N` entries.
///
/// ```
/// use mechops_core::lru::LruCache;
///
/// let mut cache: LruCache<&str, u32, 2> = LruCache::new();
/// assert_eq!(cache.insert("a", 1), None);
/// assert_eq!(cache.insert("b", 2), None);
/// assert_eq!(cache.get(&"a"), Some(&1)); // "a" is now the most recent
/// assert_eq!(cache.insert("c", 3), Some(("b", 2))); // so "b" goes
/// assert_eq!(cache.iter().collect::<Vec<_>>(), [(&"c", &3), (&"a", &1)]);
/// assert_eq!(cache.stats().evictions, 1);
/// ```
pub struct LruCache<K, V, const N: usize, S = DefaultHashBuilder> {
    entries: [Entry<K, V>; N],
    links: [Link; N],
    buckets: BucketHeads<N>,
    head: u32,
    tail: u32,
    free: u32,
    used: u32,
    len: u32,
    hasher: S,
    stats: LruStats,
}

impl<K, V, const N: usize> LruCache<K, V, N> {
    /// An empty cache with the default hasher; `const`, so a cache can live
    /// in a `static` (behind a lock of the caller's choice).
    pub const fn new() -> Self {
        Self::with_hasher(DefaultHashBuilder::with_seed(DEFAULT_SEED))
    }
}

impl<K, V, const N: usize> Default for LruCache<K, V, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V, const N: usize, S> LruCache<K, V, N, S> {
    /// An empty cache that hashes keys with `hasher`.
    ///
    /// Fails to compile if `N` exceeds [`MAX_CAPACITY`].
    pub const fn with_hasher(hasher: S) -> Self {
        const { assert!(N <= MAX_CAPACITY, "LruCache capacity exceeds MAX_CAPACITY") };
        Self {
            entries: [const { Entry::VACANT }; N],
            links: [Link {
                prev: NIL,
                next: NIL,
            }; N],
            buckets: BucketHeads::new(),
            head: NIL,
            tail: NIL,
            free: NIL,
            used: 0,
            len: 0,
            hasher,
            stats: LruStats {
                hits: 0,
                misses: 0,
                evictions: 0,
            },
        }
    }

    /// The number of entries.
    #[inline]
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the cache is empty.
    #[inline]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The most entries the cache holds.
    #[inline]
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Hit, miss and eviction counts so far.
    #[inline]
    pub const fn stats(&self) -> LruStats {
        self.stats
    }

    /// Sets the statistics back to zero.
    pub fn reset_stats(&mut self) {
        self.stats = LruStats::default();
    }

    /// The hasher the cache was built with.
    pub const fn hasher(&self) -> &S {
        &self.hasher
    }

    /// The entries from the most recently used to the least.
    pub fn iter(&self) -> Iter<'_, K, V> {
        Iter {
            entries: &self.entries,
            links: &self.links,
            front: self.head,
            back: self.tail,
            remaining: self.len(),
        }
    }

    /// The least recently used entry, without touching it.
    pub fn peek_lru(&self) -> Option<(&K, &V)> {
        (self.tail != NIL).then(|| self.entry_at(self.tail))
    }

    /// The most recently used entry, without touching it.
    pub fn peek_mru(&self) -> Option<(&K, &V)> {
        (self.head != NIL).then(|| self.entry_at(self.head))
    }

    /// Removes and returns the least recently used entry.
    pub fn pop_lru(&mut self) -> Option<(K, V)> {
        if self.head == NIL {
            return None;
        }
        let index = self.tail;
        self.unlink_chain(index);
        self.unlink_list(index);
        let entry = self.take(index);
        self.push_free(index);
        Some(entry)
    }

    /// Removes every entry (statistics are kept).
    pub fn clear(&mut self) {
        while self.pop_lru().is_some() {}
    }

    /// The entry at `index`, without a bounds check.
    #[inline(always)]
    fn slot(&self, index: u32) -> &Entry<K, V> {
        debug_assert!((index as usize) < N, "index {index} out of bounds");
        // SAFETY: every index the cache stores (bucket heads, chain, list and
        // free links, `head`, `free`) was handed out below `used`,
        // which never exceeds `N`, and callers check for `NIL` first.
        unsafe { self.entries.get_unchecked(index as usize) }
    }

    /// The entry at `index`, mutably, without a bounds check.
    #[inline(always)]
    fn slot_mut(&mut self, index: u32) -> &mut Entry<K, V> {
        debug_assert!((index as usize) < N, "index {index} out of bounds");
        // SAFETY: as in `slot`.
        unsafe { self.entries.get_unchecked_mut(index as usize) }
    }

    /// The links of the entry at `index`, without a bounds check.
    #[inline(always)]
    fn link(&self, index: u32) -> Link {
        debug_assert!((index as usize) < N, "index {index} out of bounds");
        // SAFETY: as in `slot`; `links` has the same length as `entries`.
        unsafe { *self.links.get_unchecked(index as usize) }
    }

    /// The links of the entry at `index`, mutably, without a bounds check.
    #[inline(always)]
    fn link_mut(&mut self, index: u32) -> &mut Link {
        debug_assert!((index as usize) < N, "index {index} out of bounds");
        // SAFETY: as in `slot`; `links` has the same length as `entries`.
        unsafe { self.links.get_unchecked_mut(index as usize) }
    }

    fn entry_at(&self, index: u32) -> (&K, &V) {
        let entry = self.slot(index);
        // SAFETY: callers pass indices taken from the recency list, whose
        // entries are initialised (module invariant).
        unsafe { (entry.key.assume_init_ref(), entry.value.assume_init_ref()) }
    }

    /// Moves the key and value out of a slot the caller has just unlinked
    /// from both the chain and the recency list.
    fn take(&mut self, index: u32) -> (K, V) {
        self.len -= 1;
        let entry = self.slot_mut(index);
        // SAFETY: the slot was on the recency list until the caller unlinked
        // it, so both fields are initialised; the slot now goes to the free
        // list, which never reads them, so they are read out exactly once.
        unsafe { (entry.key.assume_init_read(), entry.value.assume_init_read()) }
    }

    fn push_free(&mut self, index: u32) {
        self.link_mut(index).next = self.free;
        self.free = index;
    }

    /// Removes `index` from its bucket's chain.
    fn unlink_chain(&mut self, index: u32) {
        let bucket = BucketHeads::<N>::bucket_of(self.slot(index).hash);
        let after = self.slot(index).chain;
        if self.buckets.head(bucket) == index {
            self.buckets.set_head(bucket, after);
            return;
        }
        let mut at = self.buckets.head(bucket);
        while at != NIL {
            let chain = self.slot(at).chain;
            if chain == index {
                self.slot_mut(at).chain = after;
                return;
            }
            at = chain;
        }
        unreachable!("linked entry missing from its hash chain");
    }

    /// Removes `index` from the recency list.
    #[inline]
    fn unlink_list(&mut self, index: u32) {
        let Link { prev, next } = self.link(index);
        // The head's `prev` is stale (module invariant), so test for the
        // head by index.
        let is_head = index == self.head;
        if is_head {
            self.head = next;
        } else {
            self.link_mut(prev).next = next;
        }
        if next == NIL {
            self.tail = if is_head { NIL } else { prev };
        } else {
            self.link_mut(next).prev = prev;
        }
    }

    /// Puts `index`, which is on no list, at the most recently used end.
    #[inline]
    fn link_front(&mut self, index: u32) {
        let head = self.head;
        // The new head's `prev` is left stale: nothing reads it.
        self.link_mut(index).next = head;
        if head == NIL {
            self.tail = index;
        } else {
            self.link_mut(head).prev = index;
        }
        self.head = index;
    }

    /// Marks `index` most recently used.
    #[inline(always)]
    fn touch(&mut self, index: u32) {
        let head = self.head;
        if head == index {
            return;
        }
        // Not the head, so `prev` is an entry and `head` is another one.
        let Link { prev, next } = self.link(index);
        self.link_mut(prev).next = next;
        if next == NIL {
            self.tail = prev;
        } else {
            self.link_mut(next).prev = prev;
        }
        // The new head's `prev` is left stale, which saves a store per hit.
        self.link_mut(index).next = head;
        self.link_mut(head).prev = index;
        self.head = index;
    }
}

impl<K: Hash + Eq, V, const N: usize, S: BuildHasher> LruCache<K, V, N, S> {
    #[inline]
    fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u32 {
        (self.hasher.hash_one(key) >> 32) as u32
    }

    /// The slot holding `key`, if any.
    #[inline]
    fn find<Q>(&self, hash: u32, key: &Q) -> Option<u32>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        if N == 0 {
            return None;
        }
        let mut at = self.buckets.head(BucketHeads::<N>::bucket_of(hash));
        while at != NIL {
            let entry = self.slot(at);
            // SAFETY: chains hold only linked entries, whose keys are
            // initialised (module invariant).
            if entry.hash == hash && unsafe { entry.key.assume_init_ref() }.borrow() == key {
                return Some(at);
            }
            at = entry.chain;
        }
        None
    }

    /// The value for `key`, marking it most recently used. Counts a hit or a
    /// miss.
    #[inline]
    pub fn get<Q>(&mut self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get_mut(key).map(|value| &*value)
    }

    /// The value for `key`, mutably, marking it most recently used. Counts a
    /// hit or a miss.
    #[inline]
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match self.find(self.hash(key), key) {
            Some(index) => {
                self.stats.hits += 1;
                self.touch(index);
                // SAFETY: `find` returns only linked entries, which are
                // initialised.
                Some(unsafe { self.slot_mut(index).value.assume_init_mut() })
            }
            None => {
                self.stats.misses += 1;
                None
            }
        }
    }

    /// The value for `key`, changing neither recency nor statistics.
    #[inline]
    pub fn peek<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.find(self.hash(key), key)
            .map(|index| self.entry_at(index).1)
    }

    /// Whether `key` is cached, changing neither recency nor statistics.
    #[inline]
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.find(self.hash(key), key).is_some()
    }

    /// Inserts `key` with `value` as the most recently used entry, and hands
    /// back the entry that left the cache, if any:
    ///
    /// - the previous entry under an equal key, which the new one replaces;
    /// - otherwise, when the cache is full, the least recently used entry,
    ///   evicted to make room (counted in [`LruStats::evictions`]);
    /// - with `N == 0`, the new entry itself, since nothing fits.
    pub fn insert(&mut self, key: K, value: V) -> Option<(K, V)> {
        if N == 0 {
            return Some((key, value));
        }
        let hash = self.hash(&key);
        if let Some(index) = self.find(hash, &key) {
            self.touch(index);
            let entry = self.slot_mut(index);
            // SAFETY: `find` returns only linked entries, whose fields are
            // initialised; each is read out once and overwritten at once.
            let old = unsafe {
                (
                    core::mem::replace(entry.key.assume_init_mut(), key),
                    core::mem::replace(entry.value.assume_init_mut(), value),
                )
            };
            return Some(old);
        }
        let (index, evicted) = if self.free != NIL {
            let index = self.free;
            self.free = self.link(index).next;
            (index, None)
        } else if (self.used as usize) < N {
            self.used += 1;
            (self.used - 1, None)
        } else {
            let index = self.tail;
            self.unlink_chain(index);
            self.unlink_list(index);
            self.stats.evictions += 1;
            (index, Some(self.take(index)))
        };
        let bucket = BucketHeads::<N>::bucket_of(hash);
        let chain = self.buckets.head(bucket);
        let entry = self.slot_mut(index);
        entry.key.write(key);
        entry.value.write(value);
        entry.hash = hash;
        entry.chain = chain;
        self.buckets.set_head(bucket, index);
        self.link_front(index);
        self.len += 1;
        evicted
    }

    /// Removes `key` and returns its value.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.remove_entry(key).map(|(_, value)| value)
    }

    /// Removes `key` and returns the stored key and value.
    pub fn remove_entry<Q>(&mut self, key: &Q) -> Option<(K, V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let index = self.find(self.hash(key), key)?;
        self.unlink_chain(index);
        self.unlink_list(index);
        let entry = self.take(index);
        self.push_free(index);
        Some(entry)
    }
}

impl<K, V, const N: usize, S> Drop for LruCache<K, V, N, S> {
    fn drop(&mut self) {
        let mut at = self.head;
        for _ in 0..self.len {
            let next = self.link(at).next;
            let entry = self.slot_mut(at);
            at = next;
            // SAFETY: entries on the recency list are initialised, and each
            // is visited once; nothing reads them afterwards.
            unsafe {
                entry.key.assume_init_drop();
                entry.value.assume_init_drop();
            }
        }
    }
}

impl<K: fmt::Debug, V: fmt::Debug, const N: usize, S> fmt::Debug for LruCache<K, V, N, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<'a, K, V, const N: usize, S> IntoIterator for &'a LruCache<K, V, N, S> {
    type Item = (&'a K, &'a V);
    type IntoIter = Iter<'a, K, V>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// The entries of an [`LruCache`] from the most recently used to the least
/// (or the reverse, with [`Iterator::rev`]).
pub struct Iter<'a, K, V> {
    entries: &'a [Entry<K, V>],
    links: &'a [Link],
    front: u32,
    back: u32,
    remaining: usize,
}

impl<'a, K, V> Iterator for Iter<'a, K, V> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        let entry = &self.entries[self.front as usize];
        self.front = self.links[self.front as usize].next;
        self.remaining -= 1;
        // SAFETY: the iterator walks the recency list, at most `len` steps,
        // so every entry it reaches is linked and initialised; the shared
        // borrow of the cache keeps them so.
        Some(unsafe { (entry.key.assume_init_ref(), entry.value.assume_init_ref()) })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<K, V> DoubleEndedIterator for Iter<'_, K, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        let entry = &self.entries[self.back as usize];
        self.back = self.links[self.back as usize].prev;
        self.remaining -= 1;
        // SAFETY: as in `next`, from the other end.
        Some(unsafe { (entry.key.assume_init_ref(), entry.value.assume_init_ref()) })
    }
}

impl<K, V> ExactSizeIterator for Iter<'_, K, V> {}

impl<K, V> FusedIterator for Iter<'_, K, V> {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;
    use std::string::String;
    use std::vec::Vec;

    fn keys<const N: usize>(cache: &LruCache<u32, u32, N>) -> Vec<u32> {
        cache.iter().map(|(k, _)| *k).collect()
    }

    #[test]
    fn evicts_the_least_recently_used() {
        let mut cache: LruCache<u32, u32, 3> = LruCache::new();
        for k in 1..=3 {
            assert_eq!(cache.insert(k, k * 10), None);
        }
        assert_eq!(cache.get(&1), Some(&10));
        assert_eq!(cache.insert(4, 40), Some((2, 20)));
        assert_eq!(keys(&cache), [4, 1, 3]);
        assert_eq!(
            cache.iter().rev().map(|(k, _)| *k).collect::<Vec<_>>(),
            [3, 1, 4]
        );
        assert_eq!(cache.peek_lru(), Some((&3, &30)));
        assert_eq!(cache.peek_mru(), Some((&4, &40)));
    }

    #[test]
    fn replacing_returns_the_old_entry_and_refreshes() {
        let mut cache: LruCache<u32, u32, 2> = LruCache::new();
        cache.insert(1, 1);
        cache.insert(2, 2);
        assert_eq!(cache.insert(1, 100), Some((1, 1)));
        assert_eq!(keys(&cache), [1, 2]);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.stats().evictions, 0);
    }

    #[test]
    fn peek_changes_neither_order_nor_stats() {
        let mut cache: LruCache<u32, u32, 2> = LruCache::new();
        cache.insert(1, 1);
        cache.insert(2, 2);
        assert_eq!(cache.peek(&1), Some(&1));
        assert!(cache.contains_key(&1));
        assert_eq!(keys(&cache), [2, 1]);
        assert_eq!(cache.stats(), LruStats::default());
    }

    #[test]
    fn stats_count_hits_misses_and_evictions() {
        let mut cache: LruCache<u32, u32, 1> = LruCache::new();
        cache.insert(1, 1);
        assert!(cache.get(&1).is_some());
        assert!(cache.get(&2).is_none());
        assert!(cache.get_mut(&1).is_some());
        cache.insert(2, 2);
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.evictions), (2, 1, 1));
        assert!((stats.hit_rate() - 2.0 / 3.0).abs() < 1e-12);
        cache.reset_stats();
        assert_eq!(cache.stats().hit_rate(), 0.0);
    }

    #[test]
    fn remove_frees_a_slot_for_reuse() {
        let mut cache: LruCache<u32, u32, 2> = LruCache::new();
        cache.insert(1, 1);
        cache.insert(2, 2);
        assert_eq!(cache.remove(&1), Some(1));
        assert_eq!(cache.remove(&1), None);
        assert_eq!(cache.insert(3, 3), None);
        assert_eq!(keys(&cache), [3, 2]);
        assert_eq!(cache.remove_entry(&2), Some((2, 2)));
        assert_eq!(cache.pop_lru(), Some((3, 3)));
        assert!(cache.is_empty());
        assert_eq!(cache.pop_lru(), None);
    }

    #[test]
    fn borrowed_lookup_with_str() {
        let mut cache: LruCache<String, u32, 4> = LruCache::new();
        cache.insert(String::from("alpha"), 1);
        assert_eq!(cache.get("alpha"), Some(&1));
        assert_eq!(cache.remove("alpha"), Some(1));
    }

    #[test]
    fn zero_capacity_hands_entries_straight_back() {
        let mut cache: LruCache<u32, u32, 0> = LruCache::new();
        assert_eq!(cache.insert(1, 1), Some((1, 1)));
        assert_eq!(cache.get(&1), None);
        assert_eq!(cache.peek(&1), None);
        assert!(cache.is_empty());
    }

    #[test]
    fn every_value_dropped_exactly_once() {
        let tracker = Rc::new(());
        {
            let mut cache: LruCache<u32, Rc<()>, 3> = LruCache::new();
            for k in 0..10 {
                drop(cache.insert(k % 5, Rc::clone(&tracker)));
            }
            drop(cache.remove(&9));
            assert_eq!(Rc::strong_count(&tracker), 4);
            cache.clear();
            assert_eq!(Rc::strong_count(&tracker), 1);
            cache.insert(1, Rc::clone(&tracker));
            cache.insert(2, Rc::clone(&tracker));
        }
        assert_eq!(Rc::strong_count(&tracker), 1);
    }

    #[test]
    fn colliding_hashes_stay_apart() {
        /// Sends every key to the same hash.
        #[derive(Clone, Default)]
        struct Constant;
        impl BuildHasher for Constant {
            type Hasher = Zero;
            fn build_hasher(&self) -> Zero {
                Zero
            }
        }
        struct Zero;
        impl core::hash::Hasher for Zero {
            fn finish(&self) -> u64 {
                0
            }
            fn write(&mut self, _: &[u8]) {}
        }
        let mut cache: LruCache<u32, u32, 4, Constant> = LruCache::with_hasher(Constant);
        for k in 0..6 {
            cache.insert(k, k);
        }
        assert_eq!(cache.get(&3), Some(&3));
        assert_eq!(cache.remove(&4), Some(4));
        assert_eq!(cache.get(&4), None);
        assert_eq!(cache.get(&1), None);
        let mut left: Vec<u32> = cache.iter().map(|(k, _)| *k).collect();
        left.sort_unstable();
        assert_eq!(left, [2, 3, 5]);
    }

    #[test]
    fn large_caches_use_wide_buckets_correctly() {
        // 70 000 entries is past the compact-bucket limit; the cache is
        // about 2 MiB, so build it on a thread with room for it.
        const BIG: usize = 70_000;
        const { assert!(!BucketHeads::<BIG>::COMPACT) };
        const { assert!(BucketHeads::<{ BIG / 2 }>::COMPACT) };
        let worker = std::thread::Builder::new().stack_size(64 << 20).spawn(|| {
            let mut cache: std::boxed::Box<LruCache<u32, u32, BIG>> = std::boxed::Box::default();
            for k in 0..(BIG as u32 + 5_000) {
                let evicted = cache.insert(k, k * 2);
                if k < BIG as u32 {
                    assert_eq!(evicted, None);
                } else {
                    assert_eq!(evicted, Some((k - BIG as u32, (k - BIG as u32) * 2)));
                }
            }
            assert_eq!(cache.len(), BIG);
            assert_eq!(cache.get(&4_999), None);
            assert_eq!(cache.get(&5_000), Some(&10_000));
            assert_eq!(cache.remove(&70_000), Some(140_000));
            assert_eq!(cache.peek(&70_000), None);
            assert_eq!(cache.peek_lru(), Some((&5_001, &10_002)));
        });
        worker.unwrap().join().unwrap();
    }

    #[test]
    fn usable_in_a_static_initialiser() {
        static CACHE: std::sync::Mutex<LruCache<u32, u32, 8>> =
            std::sync::Mutex::new(LruCache::new());
        CACHE.lock().unwrap().insert(1, 2);
        assert_eq!(CACHE.lock().unwrap().get(&1), Some(&2));
    }

    std::thread_local! {
        /// Hash or equality checks left before a [`Brittle`] key panics.
        static KEY_FUSE: core::cell::Cell<Option<u32>> = const { core::cell::Cell::new(None) };
    }

    /// A key whose `Hash` and `Eq` panic once the thread's fuse burns down,
    /// and whose hashes collide in threes so that chain walks compare keys.
    #[derive(Debug)]
    struct Brittle(u32);

    fn burn() {
        KEY_FUSE.with(|fuse| match fuse.get() {
            Some(0) => panic!("key comparison failed"),
            Some(n) => fuse.set(Some(n - 1)),
            None => {}
        });
    }

    impl core::hash::Hash for Brittle {
        fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
            burn();
            (self.0 % 3).hash(state);
        }
    }

    impl PartialEq for Brittle {
        fn eq(&self, other: &Self) -> bool {
            burn();
            self.0 == other.0
        }
    }

    impl Eq for Brittle {}

    #[test]
    fn panicking_hash_or_eq_leaves_the_cache_consistent() {
        let tracker = std::rc::Rc::new(());
        let mut panicked = 0;
        for fuse in 0..150 {
            let mut cache: LruCache<Brittle, std::rc::Rc<()>, 4> = LruCache::new();
            KEY_FUSE.with(|f| f.set(Some(fuse)));
            let caught = std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| {
                for k in 0..10 {
                    drop(cache.insert(Brittle(k), std::rc::Rc::clone(&tracker)));
                    let _ = cache.get_mut(&Brittle(k / 2));
                    drop(cache.remove(&Brittle(k / 3)));
                    let _ = cache.peek(&Brittle(k + 1));
                }
            }));
            KEY_FUSE.with(|f| f.set(None));
            panicked += usize::from(caught.is_err());
            // The recency list and the index agree, and every value held is
            // held once.
            let listed: Vec<u32> = cache.iter().map(|(k, _)| k.0).collect();
            assert_eq!(listed.len(), cache.len());
            assert!(listed.iter().all(|&k| cache.contains_key(&Brittle(k))));
            assert_eq!(std::rc::Rc::strong_count(&tracker), 1 + cache.len());
            // Still usable, up to full and past it.
            for k in 100..106 {
                drop(cache.insert(Brittle(k), std::rc::Rc::clone(&tracker)));
            }
            assert_eq!(keys_of(&cache), [105, 104, 103, 102]);
            drop(cache);
            assert_eq!(std::rc::Rc::strong_count(&tracker), 1);
        }
        assert!(panicked > 0 && panicked < 150);
    }

    fn keys_of<const N: usize>(cache: &LruCache<Brittle, std::rc::Rc<()>, N>) -> Vec<u32> {
        cache.iter().map(|(k, _)| k.0).collect()
    }
}
