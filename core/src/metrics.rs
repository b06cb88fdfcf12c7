//! Allocation-free metrics primitives: atomic counters and gauges, and a
//! fixed-bucket log-linear latency histogram with quantile estimates.
//!
//! # Invariants
//!
//! - Nothing here allocates or reads a clock: callers measure durations
//!   themselves and record plain `u64` values (nanoseconds, bytes, ...).
//! - Updates are single atomic read-modify-writes with `Relaxed` ordering:
//!   metrics count events, they do not order them, so a reader on another
//!   thread may see some updates before others, but never loses or invents
//!   one. Every totals-type value (counts, sums) wraps at 2^64.
//! - A [`Histogram`] estimates every quantile within 1% of the recorded value
//!   it stands for (at most 1/128 relative error, see [`histogram`]).
//!
//! The atomic types need 64-bit atomics; [`LocalHistogram`] is the
//! non-atomic variant for single-threaded users and snapshots, available on
//! every target.

pub mod histogram;

#[cfg(any(loom, feature = "portable-atomic", target_has_atomic = "64"))]
pub use histogram::Histogram;
pub use histogram::{Bucket, FULL_RANGE_BUCKETS, LocalHistogram, Quantile};

use core::fmt;

#[cfg(any(loom, feature = "portable-atomic", target_has_atomic = "64"))]
use crate::sync::{AtomicU64, Ordering};

/// The fraction `hits / (hits + misses)`, between 0 and 1; 0 when there were
/// no lookups. Every cache and pool reports its hit rate through this.
#[must_use]
pub fn hit_rate(hits: u64, misses: u64) -> f64 {
    let lookups = hits.saturating_add(misses);
    if lookups == 0 {
        0.0
    } else {
        hits as f64 / lookups as f64
    }
}

/// Bad input to a metrics type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetricsError {
    /// A quantile was NaN or outside `0.0..=1.0`.
    InvalidQuantile,
}

impl fmt::Display for MetricsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidQuantile => f.write_str("quantile must be a number between 0.0 and 1.0"),
        }
    }
}

impl core::error::Error for MetricsError {}

/// A monotonically increasing event count, shared between threads.
///
/// ```
/// use mechops_core::metrics::Counter;
///
/// static REQUESTS: Counter = Counter::new();
/// REQUESTS.increment();
/// REQUESTS.add(2);
/// assert_eq!(REQUESTS.get(), 3);
/// ```
#[cfg(any(loom, feature = "portable-atomic", target_has_atomic = "64"))]
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

#[cfg(any(loom, feature = "portable-atomic", target_has_atomic = "64"))]
impl Counter {
    crate::sync::const_unless_loom! {
        /// A counter at zero.
        pub fn new() -> Self {
            Self(AtomicU64::new(0))
        }
    }

    /// Adds one.
    #[inline]
    pub fn increment(&self) {
        self.add(1);
    }

    /// Adds `n` (wrapping at 2^64).
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The current count.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Returns the count and sets it to zero in one step, so that periodic
    /// exporters neither lose nor double-count events.
    #[inline]
    pub fn take(&self) -> u64 {
        self.0.swap(0, Ordering::Relaxed)
    }
}

/// A value that goes up and down (objects in use, queue depth), shared
/// between threads.
///
/// ```
/// use mechops_core::metrics::Gauge;
///
/// let depth = Gauge::new();
/// depth.add(3);
/// depth.sub(5);
/// assert_eq!(depth.get(), -2);
/// depth.set(10);
/// assert_eq!(depth.get(), 10);
/// ```
#[cfg(any(loom, feature = "portable-atomic", target_has_atomic = "64"))]
#[derive(Debug, Default)]
pub struct Gauge(
    /// The value's two's-complement bits: wrapping `u64` addition of them is
    /// `i64` addition.
    AtomicU64,
);

#[cfg(any(loom, feature = "portable-atomic", target_has_atomic = "64"))]
impl Gauge {
    crate::sync::const_unless_loom! {
        /// A gauge at zero.
        pub fn new() -> Self {
            Self(AtomicU64::new(0))
        }
    }

    /// Sets the value.
    #[inline]
    pub fn set(&self, value: i64) {
        self.0.store(value as u64, Ordering::Relaxed);
    }

    /// Adds `delta` (wrapping at the ends of the `i64` range).
    #[inline]
    pub fn add(&self, delta: i64) {
        self.0.fetch_add(delta as u64, Ordering::Relaxed);
    }

    /// Subtracts `delta` (wrapping at the ends of the `i64` range).
    #[inline]
    pub fn sub(&self, delta: i64) {
        self.0.fetch_sub(delta as u64, Ordering::Relaxed);
    }

    /// Adds one.
    #[inline]
    pub fn increment(&self) {
        self.add(1);
    }

    /// Subtracts one.
    #[inline]
    pub fn decrement(&self) {
        self.sub(1);
    }

    /// The current value.
    #[inline]
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed) as i64
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn counter_counts_and_takes() {
        let c = Counter::new();
        c.increment();
        c.add(41);
        assert_eq!(c.get(), 42);
        assert_eq!(c.take(), 42);
        assert_eq!(c.get(), 0);
    }

    #[test]
    fn gauge_goes_below_zero_and_back() {
        let g = Gauge::new();
        g.decrement();
        g.decrement();
        assert_eq!(g.get(), -2);
        g.add(i64::MAX);
        assert_eq!(g.get(), i64::MAX - 2);
        g.increment();
        g.set(i64::MIN);
        assert_eq!(g.get(), i64::MIN);
    }

    #[test]
    fn error_names_the_problem() {
        assert!(
            MetricsError::InvalidQuantile
                .to_string()
                .contains("between 0.0 and 1.0")
        );
    }
}
