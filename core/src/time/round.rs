//! Truncation and rounding of timestamps and durations to a unit.
//!
//! Timestamps truncate toward the past (floor), so truncation never leaves
//! the supported range, and round half up (ties go to the later instant),
//! which can cross [`Timestamp::MAX`] and is therefore fallible. Days are UTC
//! days of 86 400 seconds. Durations truncate toward zero and round half away
//! from zero, so a duration and its negation stay symmetric.

use core::fmt;

use super::duration::SignedDuration;
use super::timestamp::{NANOS_PER_SEC, Timestamp, TimestampError};

/// A unit to truncate or round to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Unit {
    /// One nanosecond (rounding is a no-op).
    Nanosecond,
    /// 1 000 nanoseconds.
    Microsecond,
    /// 1 000 000 nanoseconds.
    Millisecond,
    /// One second.
    Second,
    /// 60 seconds.
    Minute,
    /// 3 600 seconds.
    Hour,
    /// 86 400 seconds (a UTC day).
    Day,
}

impl Unit {
    /// The unit's length in nanoseconds.
    #[inline]
    pub const fn nanos(self) -> u64 {
        match self {
            Self::Nanosecond => 1,
            Self::Microsecond => 1_000,
            Self::Millisecond => 1_000_000,
            Self::Second => 1_000_000_000,
            Self::Minute => 60_000_000_000,
            Self::Hour => 3_600_000_000_000,
            Self::Day => 86_400_000_000_000,
        }
    }

    /// The unit as a duration.
    #[inline]
    pub const fn duration(self) -> SignedDuration {
        SignedDuration::from_nanos(self.nanos() as i64)
    }

    /// The short name used in duration text (`ns`, `us`, `ms`, `s`, `m`, `h`, `d`).
    pub const fn symbol(self) -> &'static str {
        match self {
            Self::Nanosecond => "ns",
            Self::Microsecond => "us",
            Self::Millisecond => "ms",
            Self::Second => "s",
            Self::Minute => "m",
            Self::Hour => "h",
            Self::Day => "d",
        }
    }

    /// The unit named by a symbol as [`symbol`](Self::symbol) writes it.
    pub fn from_symbol(symbol: &str) -> Option<Self> {
        Some(match symbol {
            "ns" => Self::Nanosecond,
            "us" | "µs" => Self::Microsecond,
            "ms" => Self::Millisecond,
            "s" => Self::Second,
            "m" => Self::Minute,
            "h" => Self::Hour,
            "d" => Self::Day,
            _ => return None,
        })
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

impl Timestamp {
    /// The latest instant at or before `self` that is a whole number of
    /// `unit`s since the Unix epoch (for days: UTC midnight).
    #[inline]
    pub const fn truncate(self, unit: Unit) -> Self {
        let secs = self.unix_secs();
        let nanos = self.subsec_nanos();
        let (secs, nanos) = match unit {
            Unit::Nanosecond => (secs, nanos),
            Unit::Microsecond => (secs, nanos - nanos % 1_000),
            Unit::Millisecond => (secs, nanos - nanos % 1_000_000),
            Unit::Second => (secs, 0),
            Unit::Minute => (secs - secs.rem_euclid(60), 0),
            Unit::Hour => (secs - secs.rem_euclid(3_600), 0),
            Unit::Day => (secs - secs.rem_euclid(86_400), 0),
        };
        // Floor of an in-range instant: MIN is itself a UTC midnight, so the
        // result stays in range.
        match Self::from_unix(secs, nanos) {
            Ok(ts) => ts,
            Err(_) => Self::MIN,
        }
    }

    /// The nearest whole `unit`, ties going to the later instant; fails only
    /// when that is past [`Timestamp::MAX`].
    #[inline]
    pub const fn round(self, unit: Unit) -> Result<Self, TimestampError> {
        let floor = self.truncate(unit);
        let since = self.since(floor);
        // Remainder below one day, so it fits u64 nanoseconds.
        let rem =
            since.secs_floor() as u64 * NANOS_PER_SEC as u64 + since.subsec_nanos_floor() as u64;
        if rem * 2 >= unit.nanos() && rem != 0 {
            floor.checked_add(unit.duration())
        } else {
            Ok(floor)
        }
    }
}

impl SignedDuration {
    /// The duration with everything below `unit` dropped (toward zero).
    pub const fn truncate(self, unit: Unit) -> Self {
        let n = self.as_nanos();
        let u = unit.nanos() as i128;
        match Self::from_nanos_i128(n - n % u) {
            Some(d) => d,
            // |n - n % u| <= |n|, so this is in range.
            None => self,
        }
    }

    /// The nearest whole `unit`, ties away from zero; `None` if that
    /// overflows.
    pub const fn round(self, unit: Unit) -> Option<Self> {
        let n = self.as_nanos();
        let u = unit.nanos() as i128;
        let rem = n % u;
        let toward_zero = n - rem;
        let rounded = if rem.abs() * 2 >= u && rem != 0 {
            if n < 0 {
                toward_zero - u
            } else {
                toward_zero + u
            }
        } else {
            toward_zero
        };
        Self::from_nanos_i128(rounded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s.as_bytes()).unwrap()
    }

    #[test]
    fn truncates_toward_the_past() {
        let t = ts("2024-05-06T07:08:09.123456789Z");
        assert_eq!(t.truncate(Unit::Nanosecond), t);
        assert_eq!(
            t.truncate(Unit::Microsecond),
            ts("2024-05-06T07:08:09.123456Z")
        );
        assert_eq!(
            t.truncate(Unit::Millisecond),
            ts("2024-05-06T07:08:09.123Z")
        );
        assert_eq!(t.truncate(Unit::Second), ts("2024-05-06T07:08:09Z"));
        assert_eq!(t.truncate(Unit::Minute), ts("2024-05-06T07:08:00Z"));
        assert_eq!(t.truncate(Unit::Hour), ts("2024-05-06T07:00:00Z"));
        assert_eq!(t.truncate(Unit::Day), ts("2024-05-06T00:00:00Z"));
        let before = ts("1969-12-31T23:59:59.5Z");
        assert_eq!(before.truncate(Unit::Second), ts("1969-12-31T23:59:59Z"));
        assert_eq!(before.truncate(Unit::Day), ts("1969-12-31T00:00:00Z"));
        assert_eq!(Timestamp::MIN.truncate(Unit::Day), Timestamp::MIN);
    }

    #[test]
    fn rounds_half_up_and_reports_overflow() {
        let t = ts("2024-05-06T07:08:29.5Z");
        assert_eq!(t.round(Unit::Second), Ok(ts("2024-05-06T07:08:30Z")));
        assert_eq!(t.round(Unit::Minute), Ok(ts("2024-05-06T07:08:00Z")));
        assert_eq!(
            ts("2024-05-06T07:08:30Z").round(Unit::Minute),
            Ok(ts("2024-05-06T07:09:00Z"))
        );
        assert_eq!(
            ts("2024-05-06T12:00:00Z").round(Unit::Day),
            Ok(ts("2024-05-07T00:00:00Z"))
        );
        assert_eq!(
            ts("1969-12-31T23:59:59.5Z").round(Unit::Second),
            Ok(Timestamp::UNIX_EPOCH)
        );
        assert_eq!(
            ts("1969-12-31T23:59:59.4Z").round(Unit::Second),
            Ok(ts("1969-12-31T23:59:59Z"))
        );
        assert_eq!(
            Timestamp::MAX.round(Unit::Second),
            Err(TimestampError::AfterMax)
        );
        assert_eq!(Timestamp::MAX.round(Unit::Nanosecond), Ok(Timestamp::MAX));
    }

    #[test]
    fn durations_round_symmetrically() {
        let d = SignedDuration::from_millis(-1_500);
        assert_eq!(d.truncate(Unit::Second), SignedDuration::from_secs(-1));
        assert_eq!(d.round(Unit::Second), Some(SignedDuration::from_secs(-2)));
        assert_eq!(
            SignedDuration::from_millis(1_500).round(Unit::Second),
            Some(SignedDuration::from_secs(2))
        );
        assert_eq!(
            SignedDuration::from_millis(1_499).round(Unit::Second),
            Some(SignedDuration::from_secs(1))
        );
        assert_eq!(SignedDuration::MAX.round(Unit::Day), None);
        assert_eq!(
            SignedDuration::MAX.truncate(Unit::Second),
            SignedDuration::from_secs(i64::MAX)
        );
    }

    #[test]
    fn symbols_round_trip() {
        for unit in [
            Unit::Nanosecond,
            Unit::Microsecond,
            Unit::Millisecond,
            Unit::Second,
            Unit::Minute,
            Unit::Hour,
            Unit::Day,
        ] {
            assert_eq!(Unit::from_symbol(unit.symbol()), Some(unit));
            assert_eq!(unit.duration().as_nanos(), i128::from(unit.nanos()));
        }
        assert_eq!(Unit::from_symbol("y"), None);
    }
}
