//! A fixed-bucket log-linear histogram (the HDR histogram layout).
//!
//! # Layout and error bound
//!
//! Values below 128 get one bucket each and are recorded exactly. Above
//! that, every power of two `[2^e, 2^(e+1))` is split into 64 equal
//! sub-buckets of width `2^(e-6)`. A bucket's estimate is its midpoint, which
//! is within half a width of any value in the bucket: at most
//! `2^(e-7) / 2^e = 1/128` (0.79%) of the value, inside the 1% budget.
//! Covering all of `u64` takes [`FULL_RANGE_BUCKETS`] (3776) buckets, 30 KiB
//! of counts.
//!
//! The bucket count `B` is a const parameter so that small targets can trade
//! range for memory: with `B` buckets (a multiple of 64, at least 128) values
//! up to the end of bucket `B - 1` are resolved, and anything larger is
//! counted in the last bucket, whose estimate is then the exact maximum.
//!
//! # Invariants
//!
//! - The count is the sum of the bucket counts; min, max and sum are exact.
//!   Counts and the sum wrap at 2^64 rather than panic, even in debug builds.
//! - Every estimate lies between the recorded minimum and maximum.
//! - Merging two histograms gives the histogram of both streams of values.

use core::fmt;

#[cfg(any(loom, feature = "portable-atomic", target_has_atomic = "64"))]
use crate::sync::{AtomicU64, Ordering};

use super::MetricsError;

/// log2 of the sub-buckets per power of two.
const SUB_BITS: u32 = 6;
/// Sub-buckets per power of two; also the width of each row of buckets.
const SUB: usize = 1 << SUB_BITS;

/// Buckets needed to resolve every `u64` within the error bound.
pub const FULL_RANGE_BUCKETS: usize = (64 - SUB_BITS as usize + 1) * SUB;

/// The bucket a value falls in, before clamping to the bucket count.
#[inline]
const fn bucket_index(value: u64) -> usize {
    // `shift` is 0 below 128, where buckets have width 1; above, it is the
    // bucket width's log2, and `value >> shift` keeps the top 7 bits.
    let shift = (63 - (value | 1).leading_zeros()).saturating_sub(SUB_BITS);
    shift as usize * SUB + (value >> shift) as usize
}

/// The smallest value in bucket `index`.
#[inline]
const fn bucket_lower(index: usize) -> u64 {
    let shift = (index / SUB).saturating_sub(1);
    let mantissa = if index < 2 * SUB {
        index
    } else {
        index % SUB + SUB
    };
    (mantissa as u64) << shift
}

/// The largest value in bucket `index`.
#[inline]
const fn bucket_upper(index: usize) -> u64 {
    let shift = (index / SUB).saturating_sub(1);
    bucket_lower(index) + ((1u64 << shift) - 1)
}

const fn check_buckets(buckets: usize) {
    assert!(
        buckets >= 2 * SUB && buckets % SUB == 0 && buckets <= FULL_RANGE_BUCKETS,
        "a histogram needs a multiple of 64 buckets, between 128 and FULL_RANGE_BUCKETS"
    );
}

/// A quantile between 0 and 1, checked once so that queries cannot fail.
///
/// Stored in parts per billion, which resolves quantiles such as 0.999999.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantile(u32);

impl Quantile {
    /// The median.
    pub const P50: Self = Self(500_000_000);
    /// The 90th percentile.
    pub const P90: Self = Self(900_000_000);
    /// The 99th percentile.
    pub const P99: Self = Self(990_000_000);
    /// The 99.9th percentile.
    pub const P999: Self = Self(999_000_000);
    /// The largest value.
    pub const MAX: Self = Self(1_000_000_000);

    /// Checks that `q` is in `0.0..=1.0`.
    pub const fn new(q: f64) -> Result<Self, MetricsError> {
        if q >= 0.0 && q <= 1.0 {
            Ok(Self((q * 1e9 + 0.5) as u32))
        } else {
            Err(MetricsError::InvalidQuantile)
        }
    }

    /// The quantile as a fraction.
    pub fn get(self) -> f64 {
        f64::from(self.0) / 1e9
    }

    /// The 1-based rank of the value this quantile picks out of `count`
    /// sorted values: `ceil(q * count)`, at least 1.
    fn rank(self, count: u64) -> u64 {
        let rank = (u128::from(count) * u128::from(self.0)).div_ceil(1_000_000_000);
        (rank as u64).max(1)
    }
}

/// One bucket of a histogram, as reported by [`LocalHistogram::buckets`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bucket {
    /// The smallest value the bucket holds.
    pub lower: u64,
    /// The largest value the bucket holds (for a range-limited histogram's
    /// last bucket, the largest value recorded in it).
    pub upper: u64,
    /// How many values fell in it.
    pub count: u64,
}

/// Walks the buckets to the one holding the value of rank `q`, and
/// estimates that value.
fn estimate<const B: usize>(
    q: Quantile,
    count: u64,
    min: u64,
    max: u64,
    bucket_count: impl Fn(usize) -> u64,
) -> Option<u64> {
    if count == 0 {
        return None;
    }
    let rank = q.rank(count);
    let mut seen: u64 = 0;
    for index in 0..B {
        seen = seen.saturating_add(bucket_count(index));
        if seen >= rank {
            if index == B - 1 && bucket_index(max) >= B {
                // The clamped last bucket has no upper end of its own.
                return Some(max);
            }
            let lower = bucket_lower(index);
            let mid = lower + (bucket_upper(index) - lower) / 2;
            return Some(mid.clamp(min, max));
        }
    }
    // Only reachable when buckets were drained while being read.
    Some(max)
}

/// A histogram for one thread: plain integers, no atomics.
///
/// Also the form snapshots of a shared [`Histogram`] take.
///
/// ```
/// use mechops_core::metrics::{LocalHistogram, Quantile};
///
/// let mut latencies: LocalHistogram = LocalHistogram::new();
/// for micros in 1..=1000u64 {
///     latencies.record(micros * 1000);
/// }
/// let p99 = latencies.quantile(Quantile::P99).unwrap();
/// assert!(p99.abs_diff(990_000) <= 990_000 / 100);
/// ```
#[derive(Clone)]
pub struct LocalHistogram<const B: usize = FULL_RANGE_BUCKETS> {
    counts: [u64; B],
    count: u64,
    sum: u64,
    min: u64,
    max: u64,
}

impl<const B: usize> LocalHistogram<B> {
    /// An empty histogram. Fails to compile unless `B` is a multiple of 64
    /// between 128 and [`FULL_RANGE_BUCKETS`].
    pub const fn new() -> Self {
        const { check_buckets(B) };
        Self {
            counts: [0; B],
            count: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    /// Records one value.
    #[inline]
    pub fn record(&mut self, value: u64) {
        self.record_n(value, 1);
    }

    /// Records `value` `n` times.
    #[inline]
    pub fn record_n(&mut self, value: u64, n: u64) {
        if n == 0 {
            return;
        }
        let bucket = &mut self.counts[bucket_index(value).min(B - 1)];
        *bucket = bucket.wrapping_add(n);
        self.count = self.count.wrapping_add(n);
        self.sum = self.sum.wrapping_add(value.wrapping_mul(n));
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    /// The number of values recorded.
    #[inline]
    pub const fn count(&self) -> u64 {
        self.count
    }

    /// Whether nothing was recorded.
    #[inline]
    pub const fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The sum of the values recorded (wrapping at 2^64).
    #[inline]
    pub const fn sum(&self) -> u64 {
        self.sum
    }

    /// The smallest value recorded.
    #[inline]
    pub const fn min(&self) -> Option<u64> {
        if self.count == 0 {
            None
        } else {
            Some(self.min)
        }
    }

    /// The largest value recorded.
    #[inline]
    pub const fn max(&self) -> Option<u64> {
        if self.count == 0 {
            None
        } else {
            Some(self.max)
        }
    }

    /// The arithmetic mean of the values recorded.
    pub fn mean(&self) -> Option<f64> {
        if self.count == 0 {
            None
        } else {
            Some(self.sum as f64 / self.count as f64)
        }
    }

    /// An estimate of the value at quantile `q`, within 1% (see the module
    /// docs); `None` when empty.
    pub fn quantile(&self, q: Quantile) -> Option<u64> {
        estimate::<B>(q, self.count, self.min, self.max, |i| self.counts[i])
    }

    /// Adds every value recorded in `other` to this histogram.
    pub fn merge(&mut self, other: &Self) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine = mine.wrapping_add(*theirs);
        }
        self.count = self.count.wrapping_add(other.count);
        self.sum = self.sum.wrapping_add(other.sum);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Forgets everything recorded.
    pub fn clear(&mut self) {
        *self = Self::new();
    }

    /// The non-empty buckets, from the smallest values up.
    pub fn buckets(&self) -> impl Iterator<Item = Bucket> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, count)| **count > 0)
            .map(|(index, &count)| {
                let clamped = index == B - 1 && bucket_index(self.max) >= B;
                Bucket {
                    lower: bucket_lower(index),
                    upper: if clamped {
                        self.max
                    } else {
                        bucket_upper(index)
                    },
                    count,
                }
            })
    }
}

impl<const B: usize> Default for LocalHistogram<B> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const B: usize> fmt::Debug for LocalHistogram<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalHistogram")
            .field("count", &self.count)
            .field("min", &self.min())
            .field("max", &self.max())
            .field("p50", &self.quantile(Quantile::P50))
            .field("p99", &self.quantile(Quantile::P99))
            .finish()
    }
}

/// A histogram shared between threads: every record is a few relaxed atomic
/// read-modify-writes, with no lock.
///
/// `new` is `const`, so a histogram can be a `static`:
///
/// ```
/// use mechops_core::metrics::{Histogram, Quantile};
///
/// static LATENCY_NS: Histogram = Histogram::new();
///
/// std::thread::scope(|s| {
///     for t in 0..2u64 {
///         s.spawn(move || {
///             for i in 0..500 {
///                 LATENCY_NS.record(1_000 + t * 500 + i);
///             }
///         });
///     }
/// });
/// assert_eq!(LATENCY_NS.count(), 1000);
/// assert_eq!(LATENCY_NS.min(), Some(1_000));
/// let median = LATENCY_NS.quantile(Quantile::P50).unwrap();
/// assert!(median.abs_diff(1_499) <= 15);
/// ```
#[cfg(any(loom, feature = "portable-atomic", target_has_atomic = "64"))]
pub struct Histogram<const B: usize = FULL_RANGE_BUCKETS> {
    counts: [AtomicU64; B],
    sum: AtomicU64,
    min: AtomicU64,
    max: AtomicU64,
}

#[cfg(any(loom, feature = "portable-atomic", target_has_atomic = "64"))]
impl<const B: usize> Histogram<B> {
    /// An empty histogram. Fails to compile unless `B` is a multiple of 64
    /// between 128 and [`FULL_RANGE_BUCKETS`].
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        const { check_buckets(B) };
        Self {
            counts: [const { AtomicU64::new(0) }; B],
            sum: AtomicU64::new(0),
            min: AtomicU64::new(u64::MAX),
            max: AtomicU64::new(0),
        }
    }

    /// An empty histogram (loom build: loom atomics are not `const`).
    #[cfg(loom)]
    pub fn new() -> Self {
        const { check_buckets(B) };
        Self {
            counts: core::array::from_fn(|_| AtomicU64::new(0)),
            sum: AtomicU64::new(0),
            min: AtomicU64::new(u64::MAX),
            max: AtomicU64::new(0),
        }
    }

    /// Records one value.
    #[inline]
    pub fn record(&self, value: u64) {
        self.record_n(value, 1);
    }

    /// Records `value` `n` times.
    #[inline]
    pub fn record_n(&self, value: u64, n: u64) {
        if n == 0 {
            return;
        }
        self.counts[bucket_index(value).min(B - 1)].fetch_add(n, Ordering::Relaxed);
        self.sum.fetch_add(value.wrapping_mul(n), Ordering::Relaxed);
        // Most values move neither extreme: a load avoids a contended RMW.
        if value < self.min.load(Ordering::Relaxed) {
            self.min.fetch_min(value, Ordering::Relaxed);
        }
        if value > self.max.load(Ordering::Relaxed) {
            self.max.fetch_max(value, Ordering::Relaxed);
        }
    }

    /// The number of values recorded, in O(B).
    pub fn count(&self) -> u64 {
        self.counts.iter().fold(0u64, |total, c| {
            total.wrapping_add(c.load(Ordering::Relaxed))
        })
    }

    /// The sum of the values recorded (wrapping at 2^64).
    pub fn sum(&self) -> u64 {
        self.sum.load(Ordering::Relaxed)
    }

    /// The smallest value recorded.
    pub fn min(&self) -> Option<u64> {
        let min = self.min.load(Ordering::Relaxed);
        (min != u64::MAX || self.max.load(Ordering::Relaxed) == u64::MAX).then_some(min)
    }

    /// The largest value recorded.
    pub fn max(&self) -> Option<u64> {
        (self.count() > 0).then(|| self.max.load(Ordering::Relaxed))
    }

    /// The arithmetic mean of the values recorded.
    pub fn mean(&self) -> Option<f64> {
        let count = self.count();
        (count > 0).then(|| self.sum() as f64 / count as f64)
    }

    /// An estimate of the value at quantile `q`, within 1%; `None` when
    /// empty. Reads the buckets in place (no 30 KiB snapshot on the stack);
    /// concurrent records may or may not be included.
    pub fn quantile(&self, q: Quantile) -> Option<u64> {
        let count = self.count();
        let min = self.min.load(Ordering::Relaxed);
        let max = self.max.load(Ordering::Relaxed);
        estimate::<B>(q, count, min, max, |i| {
            self.counts[i].load(Ordering::Relaxed)
        })
    }

    /// A copy of the histogram as it is now.
    pub fn snapshot(&self) -> LocalHistogram<B> {
        let mut local = LocalHistogram::new();
        for (to, from) in local.counts.iter_mut().zip(&self.counts) {
            *to = from.load(Ordering::Relaxed);
        }
        local.count = local
            .counts
            .iter()
            .fold(0u64, |total, &c| total.wrapping_add(c));
        local.sum = self.sum.load(Ordering::Relaxed);
        local.min = self.min.load(Ordering::Relaxed);
        local.max = self.max.load(Ordering::Relaxed);
        local
    }

    /// Moves everything recorded so far into a [`LocalHistogram`] and leaves
    /// this one empty, for periodic export. Each bucket count goes to
    /// exactly one drain; a record that races with the drain may have its
    /// bucket in one drain and its sum, min or max in the next.
    pub fn drain(&self) -> LocalHistogram<B> {
        let mut local = LocalHistogram::new();
        for (to, from) in local.counts.iter_mut().zip(&self.counts) {
            *to = from.swap(0, Ordering::Relaxed);
        }
        local.count = local
            .counts
            .iter()
            .fold(0u64, |total, &c| total.wrapping_add(c));
        local.sum = self.sum.swap(0, Ordering::Relaxed);
        local.min = self.min.swap(u64::MAX, Ordering::Relaxed);
        local.max = self.max.swap(0, Ordering::Relaxed);
        local
    }

    /// Adds every value recorded in `other` to this histogram.
    pub fn merge(&self, other: &LocalHistogram<B>) {
        for (to, &from) in self.counts.iter().zip(&other.counts) {
            if from > 0 {
                to.fetch_add(from, Ordering::Relaxed);
            }
        }
        if other.count > 0 {
            self.sum.fetch_add(other.sum, Ordering::Relaxed);
            self.min.fetch_min(other.min, Ordering::Relaxed);
            self.max.fetch_max(other.max, Ordering::Relaxed);
        }
    }
}

#[cfg(any(loom, feature = "portable-atomic", target_has_atomic = "64"))]
impl<const B: usize> Default for Histogram<B> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(any(loom, feature = "portable-atomic", target_has_atomic = "64"))]
impl<const B: usize> fmt::Debug for Histogram<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count())
            .field("min", &self.min())
            .field("max", &self.max())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn full_range_covers_u64() {
        assert_eq!(FULL_RANGE_BUCKETS, 3776);
        assert_eq!(bucket_index(u64::MAX), FULL_RANGE_BUCKETS - 1);
        assert_eq!(bucket_upper(FULL_RANGE_BUCKETS - 1), u64::MAX);
    }

    #[test]
    fn buckets_tile_the_line_without_gaps() {
        assert_eq!(bucket_lower(0), 0);
        for index in 1..FULL_RANGE_BUCKETS {
            assert_eq!(
                bucket_lower(index),
                bucket_upper(index - 1) + 1,
                "gap before bucket {index}"
            );
        }
    }

    #[test]
    fn values_land_in_the_bucket_that_holds_them() {
        for value in (0..5000u64).chain([u64::MAX, u64::MAX / 3, 1 << 40, (1 << 40) - 1]) {
            let index = bucket_index(value);
            assert!(
                bucket_lower(index) <= value && value <= bucket_upper(index),
                "{value}"
            );
        }
    }

    #[test]
    fn small_values_are_exact() {
        let mut h: LocalHistogram = LocalHistogram::new();
        for v in [3, 3, 7, 100, 127] {
            h.record(v);
        }
        assert_eq!(h.quantile(Quantile::P50), Some(7));
        assert_eq!(h.quantile(Quantile::new(0.0).unwrap()), Some(3));
        assert_eq!(h.quantile(Quantile::MAX), Some(127));
        assert_eq!(
            (h.count(), h.sum(), h.min(), h.max()),
            (5, 240, Some(3), Some(127))
        );
        assert_eq!(h.mean(), Some(48.0));
    }

    #[test]
    fn empty_histogram_has_no_statistics() {
        let h: LocalHistogram<128> = LocalHistogram::new();
        assert_eq!(
            (h.min(), h.max(), h.mean(), h.quantile(Quantile::P50)),
            (None, None, None, None)
        );
        let shared: Histogram<128> = Histogram::new();
        assert_eq!(
            (shared.min(), shared.max(), shared.quantile(Quantile::P99)),
            (None, None, None)
        );
    }

    #[test]
    fn range_limited_histogram_clamps_to_the_exact_max() {
        let mut h: LocalHistogram<128> = LocalHistogram::new();
        h.record(5);
        h.record(1_000_000);
        assert_eq!(h.quantile(Quantile::MAX), Some(1_000_000));
        let last = h.buckets().last().unwrap();
        assert_eq!((last.lower, last.upper, last.count), (127, 1_000_000, 1));
    }

    #[test]
    fn quantile_rejects_bad_fractions() {
        assert_eq!(Quantile::new(f64::NAN), Err(MetricsError::InvalidQuantile));
        assert_eq!(Quantile::new(-0.01), Err(MetricsError::InvalidQuantile));
        assert_eq!(Quantile::new(1.01), Err(MetricsError::InvalidQuantile));
        assert_eq!(Quantile::new(0.99), Ok(Quantile::P99));
        assert!((Quantile::P999.get() - 0.999).abs() < 1e-12);
    }

    #[test]
    fn shared_and_local_agree_and_drain_empties() {
        let shared: Histogram<640> = Histogram::new();
        let mut local: LocalHistogram<640> = LocalHistogram::new();
        for v in (0..10_000u64).map(|i| i * i) {
            shared.record(v);
            local.record(v);
        }
        let snap = shared.snapshot();
        assert_eq!(snap.count(), local.count());
        assert_eq!(snap.sum(), local.sum());
        for q in [Quantile::P50, Quantile::P90, Quantile::P999] {
            assert_eq!(shared.quantile(q), local.quantile(q));
        }
        let drained = shared.drain();
        assert_eq!(drained.count(), 10_000);
        assert_eq!(shared.count(), 0);
        assert_eq!(shared.min(), None);
        shared.merge(&drained);
        assert_eq!(shared.count(), 10_000);
        assert_eq!(shared.max(), Some(9_999 * 9_999));
    }

    #[test]
    fn huge_counts_wrap_instead_of_panicking() {
        let mut local: LocalHistogram<128> = LocalHistogram::new();
        local.record_n(5, u64::MAX);
        local.record_n(5, 2);
        assert_eq!(local.count(), 1);
        let mut other = local.clone();
        other.merge(&local);
        assert_eq!(other.count(), 2);
        let shared: Histogram<128> = Histogram::new();
        shared.record_n(7, u64::MAX);
        shared.record_n(9, 3);
        assert_eq!(shared.count(), 2);
        assert_eq!(shared.snapshot().count(), 2);
    }

    #[test]
    fn shared_min_handles_the_largest_value() {
        let shared: Histogram<128> = Histogram::new();
        shared.record(u64::MAX);
        assert_eq!(shared.min(), Some(u64::MAX));
        assert_eq!(shared.max(), Some(u64::MAX));
    }
}
