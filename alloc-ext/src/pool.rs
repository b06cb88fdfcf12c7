//! Growable object pools: the shared building block [`PoolStore`], the
//! single-threaded handle [`Pool`] with its drop guard [`Pooled`], and the
//! lowest-latency variant [`HighFrequencyPool`].
//!
//! Invariants every pool here keeps:
//!
//! - the number of live objects (idle plus handed out) never exceeds the
//!   configured maximum: at the maximum, acquiring gives `None` instead of
//!   growing;
//! - shrinking never takes the pool below its minimum size and only drops idle
//!   objects, never ones in use;
//! - every object handed back goes through the reset hook before it is handed
//!   out again;
//! - the statistics add up: `created = in_use + idle + shrunk + detached`, and
//!   `acquired = hits + misses`.
//!
//! There is no clock here: shrinking is driven by the `now` the caller passes
//! to [`PoolStore::maintain`], so tests and firmware decide what time means.

mod config;
mod guard;
mod high_frequency;
mod stats;
mod store;

pub use config::{ConfigError, Growth, PoolBuilder, PoolConfig};
pub use guard::{Pool, Pooled};
pub use high_frequency::{HfPooled, HfSlot, HighFrequencyPool};
pub use stats::PoolStats;
pub use store::PoolStore;
