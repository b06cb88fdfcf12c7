//! A growable cache bounded by entry count and by weight, with time-to-live,
//! time-to-idle, statistics and an eviction listener.
//!
//! Invariants:
//!
//! - after every insert, the cache holds at most `max_entries` entries and at
//!   most `max_weight` total weight; an entry heavier than `max_weight` alone is
//!   handed back to the caller, never silently dropped;
//! - an expired entry is never returned: `get` and `peek` check expiry, and
//!   eviction reports expired entries as [`EvictionCause::Expired`];
//! - every entry that leaves the cache by eviction or expiry is handed out
//!   exactly once: to the eviction listener, or kept for
//!   [`Cache::poll_evicted`] / [`Cache::drain_evicted`] when the cache was
//!   built with [`CacheBuilder::collect_evictions`] (so nothing runs in the
//!   middle of a cache operation, or under a caller's lock), or dropped when
//!   neither was asked for; entries removed or replaced by the caller are
//!   handed back to the caller instead;
//! - weights are summed without overflow, whatever the bound;
//! - a panicking `Hash`, `Eq` or weigher leaves the cache as it was (they
//!   run before anything changes); a panicking listener leaves it
//!   consistent, with the entry it was given already gone, but an insert it
//!   interrupted may leave the cache over its bound until the next insert.
//!
//! Eviction is S3-FIFO (Yang et al., SOSP 2023): new entries enter a small
//! FIFO holding a fortieth of the capacity; entries read while there are
//! promoted to the main FIFO, the others leave and their key hash is remembered
//! in a ghost queue, so a key that comes back soon enters the main FIFO
//! directly. The main FIFO gives entries with a non-zero access counter
//! another round (a CLOCK). A hit is a hash lookup plus a saturating counter
//! increment: no list is touched on the read path.
//!
//! Expiry runs on a [`MonotonicClock`](mechops_core::time::MonotonicClock)
//! the caller supplies (a cache without expiry needs none: it carries a
//! [`StoppedClock`]), not a wall
//! clock: wall clocks step backwards and forwards (NTP, manual changes), which
//! would expire entries early or keep them forever.

mod builder;
mod clock;
mod eviction;
mod ghost;
mod oversized;
mod policy;
mod slab;
mod stats;
mod store;

pub use builder::{BuildError, CacheBuilder};
pub use clock::StoppedClock;
pub use eviction::EvictionCause;
pub use oversized::Oversized;
pub use stats::CacheStats;
pub use store::Cache;

/// The hash builder a growable cache uses unless told otherwise (hashbrown's
/// default); the core's fixed LRU has its own,
/// `mechops_core::lru::DefaultHashBuilder`.
pub type CacheHashBuilder = hashbrown::DefaultHashBuilder;

#[cfg(test)]
mod tests;
