//! Cache statistics: a plain snapshot.

/// Counters of a cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Lookups that found a live entry.
    pub hits: u64,
    /// Lookups that found nothing, or an expired entry.
    pub misses: u64,
    /// New entries stored.
    pub inserts: u64,
    /// Inserts that replaced the value of an existing key.
    pub updates: u64,
    /// Entries dropped to stay within capacity.
    pub evictions: u64,
    /// Entries dropped because they expired.
    pub expirations: u64,
    /// Entries the caller removed.
    pub removals: u64,
    /// Inserts refused because the entry alone outweighs the capacity.
    pub rejections: u64,
}

impl CacheStats {
    /// Fraction of lookups that hit, 0 when there were none.
    pub fn hit_rate(&self) -> f64 {
        mechops_core::metrics::hit_rate(self.hits, self.misses)
    }

    /// Adds another snapshot's counters to this one (for sharded caches).
    pub fn merge(&mut self, other: &Self) {
        self.hits += other.hits;
        self.misses += other.misses;
        self.inserts += other.inserts;
        self.updates += other.updates;
        self.evictions += other.evictions;
        self.expirations += other.expirations;
        self.removals += other.removals;
        self.rejections += other.rejections;
    }
}
