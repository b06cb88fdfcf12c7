//! Half-open time ranges `[start, end)` and stepping through them.
//!
//! Invariant: `start <= end`, both within the timestamp range. A range with
//! `start == end` is empty: it contains nothing and overlaps nothing. Because
//! the end is exclusive, [`Timestamp::MAX`] itself is never inside a range;
//! that is the price of ranges that tile without double-counting instants.

use core::fmt;
use core::iter::FusedIterator;

use super::duration::SignedDuration;
use super::timestamp::{Timestamp, TimestampError};

/// A half-open interval of instants, `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeRange {
    start: Timestamp,
    end: Timestamp,
}

/// Why a range or its iteration could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RangeError {
    /// The duration was negative.
    NegativeDuration,
    /// The end given was before the start.
    EndBeforeStart,
    /// The end falls outside the timestamp range.
    End(TimestampError),
    /// The iteration step was zero or negative.
    NonPositiveStep,
}

impl fmt::Display for RangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NegativeDuration => f.write_str("range duration is negative"),
            Self::EndBeforeStart => f.write_str("range end is before its start"),
            Self::End(e) => write!(f, "range end is out of range: {e}"),
            Self::NonPositiveStep => f.write_str("range step must be greater than zero"),
        }
    }
}

impl core::error::Error for RangeError {}

impl TimeRange {
    /// The range that starts at `start` and lasts `duration` (not negative).
    #[inline]
    pub const fn new(start: Timestamp, duration: SignedDuration) -> Result<Self, RangeError> {
        if duration.is_negative() {
            return Err(RangeError::NegativeDuration);
        }
        match start.checked_add(duration) {
            Ok(end) => Ok(Self { start, end }),
            Err(e) => Err(RangeError::End(e)),
        }
    }

    /// The range between two instants (`start <= end`).
    #[inline]
    pub fn from_bounds(start: Timestamp, end: Timestamp) -> Result<Self, RangeError> {
        if end < start {
            return Err(RangeError::EndBeforeStart);
        }
        Ok(Self { start, end })
    }

    /// The first instant in the range.
    #[inline]
    pub const fn start(&self) -> Timestamp {
        self.start
    }

    /// The first instant after the range.
    #[inline]
    pub const fn end(&self) -> Timestamp {
        self.end
    }

    /// The length of the range (never negative).
    #[inline]
    pub const fn duration(&self) -> SignedDuration {
        self.end.since(self.start)
    }

    /// Whether the range contains no instant.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Whether `instant` is in `[start, end)`.
    #[inline]
    pub fn contains(&self, instant: Timestamp) -> bool {
        self.start <= instant && instant < self.end
    }

    /// Whether every instant of `other` is in this range (an empty `other`
    /// is contained when its position lies within `[start, end]`).
    #[inline]
    pub fn contains_range(&self, other: &Self) -> bool {
        self.start <= other.start && other.end <= self.end
    }

    /// Whether the two ranges share at least one instant.
    #[inline]
    pub fn overlaps(&self, other: &Self) -> bool {
        self.intersection(other).is_some()
    }

    /// The instants both ranges share, or `None` if they share none.
    #[inline]
    pub fn intersection(&self, other: &Self) -> Option<Self> {
        let start = if self.start > other.start {
            self.start
        } else {
            other.start
        };
        let end = if self.end < other.end {
            self.end
        } else {
            other.end
        };
        (start < end).then_some(Self { start, end })
    }

    /// Iterates `start, start + step, start + 2 * step, ...` while before
    /// `end`; `step` must be positive.
    #[inline]
    pub fn iter(&self, step: SignedDuration) -> Result<RangeIter, RangeError> {
        if !step.is_positive() {
            return Err(RangeError::NonPositiveStep);
        }
        Ok(RangeIter {
            next: Some(self.start),
            end: self.end,
            step,
        })
    }

    /// How many instants [`iter`](Self::iter) yields for `step`, without
    /// iterating; `None` if `step` is not positive.
    pub fn step_count(&self, step: SignedDuration) -> Option<u128> {
        if !step.is_positive() {
            return None;
        }
        let span = self.duration().as_nanos() as u128;
        let step = step.as_nanos() as u128;
        Some(span.div_ceil(step))
    }
}

/// The instants of a [`TimeRange`] at a fixed step, in order.
#[derive(Debug, Clone)]
pub struct RangeIter {
    next: Option<Timestamp>,
    end: Timestamp,
    step: SignedDuration,
}

impl Iterator for RangeIter {
    type Item = Timestamp;

    #[inline]
    fn next(&mut self) -> Option<Timestamp> {
        let current = self.next.filter(|&t| t < self.end)?;
        // Past MAX means past `end` too, so stopping is exact.
        self.next = current.checked_add(self.step).ok();
        Some(current)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let Some(next) = self.next.filter(|&t| t < self.end) else {
            return (0, Some(0));
        };
        let span = self.end.since(next).as_nanos() as u128;
        let remaining = span.div_ceil(self.step.as_nanos() as u128);
        match usize::try_from(remaining) {
            Ok(n) => (n, Some(n)),
            Err(_) => (usize::MAX, None),
        }
    }
}

impl FusedIterator for RangeIter {}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(secs: i64) -> Timestamp {
        Timestamp::from_unix_secs(secs).unwrap()
    }

    fn range(a: i64, b: i64) -> TimeRange {
        TimeRange::from_bounds(ts(a), ts(b)).unwrap()
    }

    #[test]
    fn construction_checks_direction_and_range() {
        let r = TimeRange::new(ts(10), SignedDuration::from_secs(5)).unwrap();
        assert_eq!(
            (r.start(), r.end(), r.duration()),
            (ts(10), ts(15), SignedDuration::from_secs(5))
        );
        assert_eq!(
            TimeRange::new(ts(10), SignedDuration::from_secs(-1)),
            Err(RangeError::NegativeDuration)
        );
        assert_eq!(
            TimeRange::from_bounds(ts(2), ts(1)),
            Err(RangeError::EndBeforeStart)
        );
        assert_eq!(
            TimeRange::new(Timestamp::MAX, SignedDuration::from_nanos(1)),
            Err(RangeError::End(TimestampError::AfterMax))
        );
    }

    #[test]
    fn membership_is_half_open() {
        let r = range(10, 20);
        assert!(r.contains(ts(10)));
        assert!(r.contains(ts(19)));
        assert!(!r.contains(ts(20)));
        assert!(!r.contains(ts(9)));
        assert!(!range(5, 5).contains(ts(5)));
        assert!(range(5, 5).is_empty());
        assert!(r.contains_range(&range(12, 20)));
        assert!(!r.contains_range(&range(12, 21)));
    }

    #[test]
    fn overlap_and_intersection() {
        let r = range(10, 20);
        assert!(r.overlaps(&range(19, 30)));
        assert!(!r.overlaps(&range(20, 30)));
        assert!(!r.overlaps(&range(0, 10)));
        assert!(!r.overlaps(&range(15, 15)));
        assert_eq!(r.intersection(&range(15, 30)), Some(range(15, 20)));
        assert_eq!(r.intersection(&range(0, 12)), Some(range(10, 12)));
        assert_eq!(r.intersection(&range(12, 14)), Some(range(12, 14)));
        assert_eq!(r.intersection(&range(20, 30)), None);
    }

    #[test]
    fn iteration_steps_until_the_end() {
        let r = range(0, 10);
        let mut it = r.iter(SignedDuration::from_secs(3)).unwrap();
        assert_eq!(it.size_hint(), (4, Some(4)));
        let got: std::vec::Vec<_> = it.by_ref().collect();
        assert_eq!(got, [ts(0), ts(3), ts(6), ts(9)]);
        assert_eq!(it.next(), None);
        assert_eq!(r.step_count(SignedDuration::from_secs(3)), Some(4));
        assert_eq!(r.step_count(SignedDuration::from_secs(5)), Some(2));
        assert_eq!(
            range(0, 0)
                .iter(SignedDuration::from_secs(1))
                .unwrap()
                .count(),
            0
        );
        assert_eq!(
            r.iter(SignedDuration::ZERO).unwrap_err(),
            RangeError::NonPositiveStep
        );
        assert_eq!(
            r.iter(SignedDuration::from_secs(-1)).unwrap_err(),
            RangeError::NonPositiveStep
        );
        assert_eq!(r.step_count(SignedDuration::ZERO), None);
    }

    #[test]
    fn iteration_stops_at_the_top_of_the_range() {
        let start = Timestamp::MAX
            .checked_sub(SignedDuration::from_secs(2))
            .unwrap();
        let r = TimeRange::from_bounds(start, Timestamp::MAX).unwrap();
        let got: std::vec::Vec<_> = r
            .iter(SignedDuration::from_millis(1_500))
            .unwrap()
            .collect();
        assert_eq!(got.len(), 2);
        let huge = r.iter(SignedDuration::MAX).unwrap();
        assert_eq!(huge.count(), 1);
    }
}
