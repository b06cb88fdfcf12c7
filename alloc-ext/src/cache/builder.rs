//! Building a cache: bounds, expiry, clock, hasher, weigher and what happens
//! to evicted entries, validated once.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::hash::{BuildHasher, Hash};
use core::marker::PhantomData;
use core::time::Duration;

use mechops_core::time::MonotonicClock;

use super::CacheHashBuilder;
use super::clock::StoppedClock;
use super::eviction::{EvictionCause, Evictions};
use super::store::{Cache, Limits, Weigher};

/// The most entries a cache can be bounded to (slots are 32-bit indices).
pub(crate) const ENTRY_LIMIT: usize = u32::MAX as usize - 1;

/// Why a cache configuration was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// Neither `max_entries` nor `max_weight` was set: the cache would grow
    /// without bound.
    Unbounded,
    /// A bound was zero: nothing could ever be stored.
    ZeroCapacity,
    /// `max_entries` was above the supported limit.
    TooManyEntries {
        /// The requested bound.
        requested: usize,
        /// The largest supported bound.
        limit: usize,
    },
    /// A time-to-live or time-to-idle was set with a clock that does not
    /// advance, so nothing would ever expire.
    ExpiryWithoutClock,
    /// A time-to-live or time-to-idle of zero would expire every entry at
    /// once.
    ZeroExpiry,
    /// Shards were asked of a builder with an eviction listener: a listener
    /// is one `FnMut` and cannot serve several shards. Shards collect their
    /// evictions for `drain_evicted` instead.
    ListenerOnShards,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unbounded => f.write_str("cache has neither an entry bound nor a weight bound"),
            Self::ZeroCapacity => f.write_str("cache bound is zero"),
            Self::TooManyEntries { requested, limit } => write!(
                f,
                "cache entry bound {requested} is above the supported {limit}"
            ),
            Self::ExpiryWithoutClock => {
                f.write_str("cache expiry needs a clock that advances; set one with `clock`")
            }
            Self::ZeroExpiry => f.write_str("cache time-to-live or time-to-idle is zero"),
            Self::ListenerOnShards => {
                f.write_str("a sharded cache cannot share one eviction listener between shards")
            }
        }
    }
}

impl core::error::Error for BuildError {}

/// Builds a [`Cache`]; start with [`Cache::builder`].
pub struct CacheBuilder<K, V, C = StoppedClock, S = CacheHashBuilder> {
    max_entries: Option<usize>,
    max_weight: Option<u64>,
    ttl: Option<Duration>,
    tti: Option<Duration>,
    clock: C,
    /// Whether `clock` was called: expiry needs a clock that advances.
    clock_set: bool,
    hasher: S,
    weigher: Option<Weigher<K, V>>,
    evictions: Evictions<K, V>,
    _entries: PhantomData<fn(K, V)>,
}

impl<K, V, C, S> fmt::Debug for CacheBuilder<K, V, C, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("max_entries", &self.max_entries)
            .field("max_weight", &self.max_weight)
            .field("ttl", &self.ttl)
            .field("tti", &self.tti)
            .finish_non_exhaustive()
    }
}

impl<K, V> CacheBuilder<K, V> {
    /// A builder with no bounds, no expiry, no clock, the default hasher, no
    /// weigher, and evicted entries dropped.
    pub fn new() -> Self {
        Self {
            max_entries: None,
            max_weight: None,
            ttl: None,
            tti: None,
            clock: StoppedClock,
            clock_set: false,
            hasher: CacheHashBuilder::default(),
            weigher: None,
            evictions: Evictions::Drop,
            _entries: PhantomData,
        }
    }
}

impl<K, V> Default for CacheBuilder<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V, C, S> CacheBuilder<K, V, C, S> {
    /// Holds at most this many entries.
    #[must_use]
    pub fn max_entries(mut self, n: usize) -> Self {
        self.max_entries = Some(n);
        self
    }

    /// Holds at most this much total weight, each entry weighed by `weigher`
    /// when inserted (for example its size in bytes).
    #[must_use]
    pub fn max_weight(
        mut self,
        max: u64,
        weigher: impl Fn(&K, &V) -> u64 + Send + Sync + 'static,
    ) -> Self {
        self.max_weight = Some(max);
        self.weigher = Some(Arc::new(weigher));
        self
    }

    /// Entries expire this long after they were inserted or last replaced.
    #[must_use]
    pub fn time_to_live(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Entries expire after going this long without being read or replaced.
    #[must_use]
    pub fn time_to_idle(mut self, tti: Duration) -> Self {
        self.tti = Some(tti);
        self
    }

    /// Called with every entry evicted for capacity or expiry, and the cause,
    /// during the cache operation that evicted it. Replaces
    /// [`collect_evictions`](Self::collect_evictions).
    #[must_use]
    pub fn eviction_listener(
        mut self,
        listener: impl FnMut(K, V, EvictionCause) + Send + 'static,
    ) -> Self {
        self.evictions = Evictions::Listener(Box::new(listener));
        self
    }

    /// Keeps every entry evicted for capacity or expiry, with its cause,
    /// until the caller takes it with [`Cache::poll_evicted`] or
    /// [`Cache::drain_evicted`]; nothing runs during the operation that
    /// evicted it. Replaces [`eviction_listener`](Self::eviction_listener).
    /// The caller must drain: kept entries are not bounded by the cache's
    /// limits.
    #[must_use]
    pub fn collect_evictions(mut self) -> Self {
        self.evictions = Evictions::Collect(alloc::collections::VecDeque::new());
        self
    }

    /// The monotonic clock that drives expiry.
    pub fn clock<C2: MonotonicClock>(self, clock: C2) -> CacheBuilder<K, V, C2, S> {
        CacheBuilder {
            max_entries: self.max_entries,
            max_weight: self.max_weight,
            ttl: self.ttl,
            tti: self.tti,
            clock,
            clock_set: true,
            hasher: self.hasher,
            weigher: self.weigher,
            evictions: self.evictions,
            _entries: PhantomData,
        }
    }

    /// The hash builder; give shards of one sharded cache clones of one.
    pub fn hasher<S2: BuildHasher>(self, hasher: S2) -> CacheBuilder<K, V, C, S2> {
        CacheBuilder {
            max_entries: self.max_entries,
            max_weight: self.max_weight,
            ttl: self.ttl,
            tti: self.tti,
            clock: self.clock,
            clock_set: self.clock_set,
            hasher,
            weigher: self.weigher,
            evictions: self.evictions,
            _entries: PhantomData,
        }
    }

    /// The entry bound so far.
    pub fn entry_bound(&self) -> Option<usize> {
        self.max_entries
    }

    /// The weight bound so far.
    pub fn weight_bound(&self) -> Option<u64> {
        self.max_weight
    }
}

/// Splits `total` into `parts` shares that add up to it exactly.
fn share(total: u64, parts: usize, index: usize) -> u64 {
    let parts = parts as u64;
    total / parts + u64::from((index as u64) < total % parts)
}

impl<K: Hash + Eq, V, C: MonotonicClock, S: BuildHasher> CacheBuilder<K, V, C, S> {
    /// Validates the configuration and builds the cache.
    pub fn build(self) -> Result<Cache<K, V, C, S>, BuildError> {
        let limits = self.limits()?;
        Ok(Cache::from_parts(
            limits,
            self.hasher,
            self.clock,
            self.weigher,
            self.evictions,
        ))
    }

    /// Validates the configuration and builds `shards` caches whose entry
    /// and weight bounds add up exactly to this builder's, each with a clone
    /// of the clock and of the hash builder and collecting its evictions
    /// (see [`collect_evictions`](Self::collect_evictions)): the parts of a
    /// sharded cache. `shards` is taken as at least one.
    pub fn build_shards(self, shards: usize) -> Result<Vec<Cache<K, V, C, S>>, BuildError>
    where
        C: Clone,
        S: Clone,
    {
        if let Evictions::Listener(_) = self.evictions {
            return Err(BuildError::ListenerOnShards);
        }
        let limits = self.limits()?;
        let shards = shards.max(1);
        let mut built = Vec::with_capacity(shards);
        for i in 0..shards {
            let mut part = limits;
            if self.max_entries.is_some() {
                part.max_entries = share(limits.max_entries as u64, shards, i) as usize;
            }
            if self.max_weight.is_some() {
                part.max_weight = share(limits.max_weight, shards, i);
            }
            if part.max_entries == 0 || part.max_weight == 0 {
                return Err(BuildError::ZeroCapacity);
            }
            built.push(Cache::from_parts(
                part,
                self.hasher.clone(),
                self.clock.clone(),
                self.weigher.clone(),
                Evictions::Collect(alloc::collections::VecDeque::new()),
            ));
        }
        Ok(built)
    }

    fn limits(&self) -> Result<Limits, BuildError> {
        if self.max_entries.is_none() && self.max_weight.is_none() {
            return Err(BuildError::Unbounded);
        }
        if self.max_entries == Some(0) || self.max_weight == Some(0) {
            return Err(BuildError::ZeroCapacity);
        }
        if let Some(requested) = self.max_entries.filter(|&n| n > ENTRY_LIMIT) {
            return Err(BuildError::TooManyEntries {
                requested,
                limit: ENTRY_LIMIT,
            });
        }
        if (self.ttl.is_some() || self.tti.is_some()) && !self.clock_set {
            return Err(BuildError::ExpiryWithoutClock);
        }
        if self.ttl == Some(Duration::ZERO) || self.tti == Some(Duration::ZERO) {
            return Err(BuildError::ZeroExpiry);
        }
        Ok(Limits {
            max_entries: self.max_entries.unwrap_or(ENTRY_LIMIT),
            max_weight: self.max_weight.unwrap_or(u64::MAX),
            ttl: self.ttl.map(nanos),
            tti: self.tti.map(nanos),
        })
    }
}

/// Nanoseconds in `d`, saturating after 584 years.
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_split_exactly() {
        assert_eq!((0..4).map(|i| share(10, 4, i)).sum::<u64>(), 10);
        assert_eq!((0..8).map(|i| share(3, 8, i)).sum::<u64>(), 3);
        let shards = CacheBuilder::<u8, u8>::new()
            .max_entries(10)
            .build_shards(4)
            .unwrap();
        assert_eq!(shards.iter().map(Cache::max_entries).sum::<usize>(), 10);
        let err = CacheBuilder::<u8, u8>::new()
            .max_entries(3)
            .build_shards(4)
            .unwrap_err();
        assert_eq!(err, BuildError::ZeroCapacity);
        let err = CacheBuilder::<u8, u8>::new()
            .max_entries(8)
            .eviction_listener(|_, _, _| {})
            .build_shards(2)
            .unwrap_err();
        assert_eq!(err, BuildError::ListenerOnShards);
    }
}
