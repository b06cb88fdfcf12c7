//! A bounded cache of compressed payloads for repeated identical values.
//!
//! CompressionPolicy is the expensive step of [`serialize`](super::serialize); a
//! service that sends the same status document again and again should pay for
//! it once. The cache keys on a 64-bit FNV-1a hash of the *serialized payload
//! bytes* plus the compression level and policy, and stores the payload itself
//! beside its compressed form: a hit is only taken when the stored payload is
//! byte-for-byte equal, so a hash collision costs a miss, never a wrong frame.
//!
//! Only the plaintext compressed bytes are cached. Encryption runs on every
//! call with a fresh nonce, so two frames of the same value never share a
//! nonce-ciphertext pair and the cache does not reveal which frames repeat.
//!
//! Bounds: at most `max_entries` entries and `max_bytes` of stored payload plus
//! compressed bytes; the least recently used entry goes first. An entry larger
//! than `max_bytes` on its own is not stored.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::compress::CompressionPolicy;

/// Counters of a [`FrameCache`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameCacheStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that had to compress.
    pub misses: u64,
    /// Entries dropped to stay within the bounds.
    pub evictions: u64,
}

#[derive(Debug)]
struct Entry {
    payload: Vec<u8>,
    /// `None` when compression did not shrink the payload.
    compressed: Option<Vec<u8>>,
    policy: CompressionPolicy,
    level: u8,
    tick: u64,
}

impl Entry {
    fn weight(&self) -> usize {
        self.payload.len() + self.compressed.as_ref().map_or(0, Vec::len)
    }
}

/// A bounded LRU cache from payload bytes to their compressed form.
#[derive(Debug)]
pub struct FrameCache {
    entries: BTreeMap<u64, Entry>,
    /// Recency index: tick of last use to hash.
    by_tick: BTreeMap<u64, u64>,
    next_tick: u64,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
    stats: FrameCacheStats,
}

impl FrameCache {
    /// An empty cache holding at most `max_entries` entries and `max_bytes`
    /// bytes of payloads and their compressed forms.
    #[must_use]
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        Self {
            entries: BTreeMap::new(),
            by_tick: BTreeMap::new(),
            next_tick: 0,
            bytes: 0,
            max_entries,
            max_bytes,
            stats: FrameCacheStats::default(),
        }
    }

    /// Number of cached entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache holds nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes held: payloads plus compressed forms.
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Hit, miss and eviction counters.
    #[must_use]
    pub fn stats(&self) -> FrameCacheStats {
        self.stats
    }

    /// Drops every entry; the counters stay.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.by_tick.clear();
        self.bytes = 0;
    }

    /// Returns the compressed form of `payload` under `policy` and `level`,
    /// computing it with `compress` on a miss. `None` inside means the payload
    /// is stored uncompressed.
    pub(crate) fn compressed<E>(
        &mut self,
        payload: &[u8],
        policy: CompressionPolicy,
        level: u8,
        compress: impl FnOnce(&[u8]) -> Result<Option<Vec<u8>>, E>,
    ) -> Result<Option<Vec<u8>>, E> {
        let hash = fnv1a(payload, policy, level);
        let tick = self.next_tick;
        self.next_tick += 1;
        if let Some(entry) = self.entries.get_mut(&hash) {
            if entry.payload == payload && entry.policy == policy && entry.level == level {
                self.by_tick.remove(&entry.tick);
                entry.tick = tick;
                self.by_tick.insert(tick, hash);
                self.stats.hits += 1;
                return Ok(entry.compressed.clone());
            }
        }
        self.stats.misses += 1;
        let compressed = compress(payload)?;
        let entry = Entry {
            payload: payload.to_vec(),
            compressed: compressed.clone(),
            policy,
            level,
            tick,
        };
        let weight = entry.weight();
        if weight <= self.max_bytes && self.max_entries > 0 {
            if let Some(old) = self.entries.remove(&hash) {
                // A colliding entry is replaced.
                self.by_tick.remove(&old.tick);
                self.bytes -= old.weight();
            }
            while self.entries.len() >= self.max_entries || self.bytes + weight > self.max_bytes {
                self.evict_oldest();
            }
            self.bytes += weight;
            self.by_tick.insert(tick, hash);
            self.entries.insert(hash, entry);
        }
        Ok(compressed)
    }

    fn evict_oldest(&mut self) {
        if let Some((_, hash)) = self.by_tick.pop_first() {
            if let Some(old) = self.entries.remove(&hash) {
                self.bytes -= old.weight();
                self.stats.evictions += 1;
            }
        }
    }
}

fn fnv1a(payload: &[u8], policy: CompressionPolicy, level: u8) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let policy_tag: u64 = match policy {
        CompressionPolicy::Never => 0,
        CompressionPolicy::Always => 1,
        CompressionPolicy::Auto { threshold } => 2 ^ ((threshold as u64) << 2),
    };
    for byte in policy_tag
        .to_le_bytes()
        .iter()
        .chain(core::iter::once(&level))
        .chain(payload)
    {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(PRIME);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use core::convert::Infallible;

    fn shrink(payload: &[u8]) -> Result<Option<Vec<u8>>, Infallible> {
        Ok(Some(payload[..payload.len() / 2].to_vec()))
    }

    #[test]
    fn hit_after_miss_and_lru_eviction() {
        let mut cache = FrameCache::new(2, 1 << 20);
        let policy = CompressionPolicy::Always;
        let a = vec![1u8; 10];
        let b = vec![2u8; 10];
        let c = vec![3u8; 10];
        assert_eq!(
            cache.compressed(&a, policy, 1, shrink).unwrap(),
            Some(vec![1; 5])
        );
        let mut calls = 0;
        let again = cache
            .compressed(&a, policy, 1, |p| {
                calls += 1;
                shrink(p)
            })
            .unwrap();
        assert_eq!((again, calls), (Some(vec![1; 5]), 0));
        cache.compressed(&b, policy, 1, shrink).unwrap();
        // a was used more recently than b, so c evicts b.
        cache.compressed(&a, policy, 1, shrink).unwrap();
        cache.compressed(&c, policy, 1, shrink).unwrap();
        assert_eq!(cache.len(), 2);
        assert_eq!(
            cache.stats(),
            FrameCacheStats {
                hits: 2,
                misses: 3,
                evictions: 1
            }
        );
        assert_eq!(cache.bytes(), 30);
        let mut recomputed = false;
        cache
            .compressed(&b, policy, 1, |p| {
                recomputed = true;
                shrink(p)
            })
            .unwrap();
        assert!(recomputed);
    }

    #[test]
    fn level_and_byte_bound_are_respected() {
        let mut cache = FrameCache::new(10, 20);
        let a = vec![1u8; 10];
        cache
            .compressed(&a, CompressionPolicy::Always, 1, shrink)
            .unwrap();
        cache
            .compressed(&a, CompressionPolicy::Always, 2, shrink)
            .unwrap();
        assert_eq!(cache.stats().misses, 2);
        assert!(cache.bytes() <= 20);
        let big = vec![9u8; 64];
        cache
            .compressed(&big, CompressionPolicy::Always, 1, shrink)
            .unwrap();
        assert!(cache.bytes() <= 20, "an oversized entry is not stored");
    }
}
