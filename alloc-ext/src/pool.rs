//! Growable object pools: the shared building block [`PoolStore`] (a state
//! machine that hands side effects back to its caller), the
//! single-threaded [`GrowablePool`] with its drop guard [`Pooled`], and the
//! lowest-latency variant [`HighFrequencyPool`], and the [`SessionPool`] built
//! on the growable one.
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
//! - the statistics add up: `created = in_use + idle + shrunk + detached +
//!   discarded`, and `acquired = hits + misses`;
//! - a panicking reset hook or create hook loses no slot: the object is
//!   dropped and its slot frees.
//!
//! There is no clock here: shrinking is driven by the
//! [`Instant`](mechops_core::time::Instant) the caller passes to
//! [`PoolStore::poll_evicted`], so tests and firmware decide what time
//! means.

mod config;
mod growable;
mod high_frequency;
mod id;
mod session;
mod stats;
mod store;

pub use config::{ConfigError, CreateFn, Growth, PoolBuilder, PoolConfig, ResetFn};
pub use growable::{GrowablePool, Pooled};
pub use high_frequency::{ForeignSlot, HfPooled, HfSlot, HighFrequencyPool};
pub use session::{Session, SessionError, SessionPool, v7_millis};
pub use stats::PoolStats;
pub use store::{Checkout, CreatePermit, ForeignPermit, PoolStore};
