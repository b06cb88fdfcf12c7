//! The error of an insert too heavy for the cache.

use core::fmt;

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
