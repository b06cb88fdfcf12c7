//! What leaves the cache for capacity or expiry, and where it goes: the
//! listener, a queue the caller drains, or nowhere.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use core::fmt;
use core::hash::{BuildHasher, Hash};

use mechops_core::time::MonotonicClock;

use super::store::Cache;

/// Why an entry was evicted.
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

impl<K: Hash + Eq, V, C: MonotonicClock, S: BuildHasher> Cache<K, V, C, S> {
    pub(super) fn evict_entry(&mut self, idx: u32, cause: EvictionCause) {
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
    /// cache built with [`CacheBuilder::collect_evictions`](super::CacheBuilder::collect_evictions) keeps them.
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
}
