//! Building a cache: bounds, expiry, clock, hasher, weigher and listener,
//! validated once.

use alloc::boxed::Box;
use core::fmt;
use core::hash::{BuildHasher, Hash};
use core::marker::PhantomData;
use core::time::Duration;

use super::DefaultHashBuilder;
use super::clock::{Clock, NoClock, nanos};
use super::store::{Cache, EvictionCause, Limits, Listener, Weigher};

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
        }
    }
}

impl core::error::Error for BuildError {}

/// Builds a [`Cache`]; start with [`Cache::builder`].
pub struct CacheBuilder<K, V, C = NoClock, S = DefaultHashBuilder> {
    max_entries: Option<usize>,
    max_weight: Option<u64>,
    ttl: Option<Duration>,
    tti: Option<Duration>,
    clock: C,
    hasher: S,
    weigher: Option<Weigher<K, V>>,
    listener: Option<Listener<K, V>>,
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
    /// weigher and no listener.
    pub fn new() -> Self {
        Self {
            max_entries: None,
            max_weight: None,
            ttl: None,
            tti: None,
            clock: NoClock,
            hasher: DefaultHashBuilder::default(),
            weigher: None,
            listener: None,
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
        self.weigher = Some(Box::new(weigher));
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

    /// Called with every entry evicted for capacity or expiry, and the cause.
    #[must_use]
    pub fn eviction_listener(
        mut self,
        listener: impl FnMut(K, V, EvictionCause) + Send + 'static,
    ) -> Self {
        self.listener = Some(Box::new(listener));
        self
    }

    /// The monotonic clock that drives expiry.
    pub fn clock<C2: Clock>(self, clock: C2) -> CacheBuilder<K, V, C2, S> {
        CacheBuilder {
            max_entries: self.max_entries,
            max_weight: self.max_weight,
            ttl: self.ttl,
            tti: self.tti,
            clock,
            hasher: self.hasher,
            weigher: self.weigher,
            listener: self.listener,
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
            hasher,
            weigher: self.weigher,
            listener: self.listener,
            _entries: PhantomData,
        }
    }
}

impl<K: Hash + Eq, V, C: Clock, S: BuildHasher> CacheBuilder<K, V, C, S> {
    /// Validates the configuration and builds the cache.
    pub fn build(self) -> Result<Cache<K, V, C, S>, BuildError> {
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
        if (self.ttl.is_some() || self.tti.is_some()) && !C::ADVANCES {
            return Err(BuildError::ExpiryWithoutClock);
        }
        if self.ttl == Some(Duration::ZERO) || self.tti == Some(Duration::ZERO) {
            return Err(BuildError::ZeroExpiry);
        }
        let limits = Limits {
            max_entries: self.max_entries.unwrap_or(ENTRY_LIMIT),
            max_weight: self.max_weight.unwrap_or(u64::MAX),
            ttl: self.ttl.map(nanos),
            tti: self.tti.map(nanos),
        };
        Ok(Cache::from_parts(
            limits,
            self.hasher,
            self.clock,
            self.weigher,
            self.listener,
        ))
    }
}
