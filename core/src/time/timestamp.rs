//! The [`Timestamp`] value: an instant with nanosecond precision.
//!
//! Invariants: `secs` lies in `MIN_SECS..=MAX_SECS` and `nanos` in
//! `0..1_000_000_000`, so the derived `Ord` (seconds first, then nanoseconds)
//! is the order of instants and `Hash`/`Eq` agree with it. Seconds count
//! toward negative infinity: one nanosecond before the epoch is
//! `secs == -1, nanos == 999_999_999`.

use core::fmt;

use super::civil::{self, CivilDateTime};
use super::offset::Offset;

/// Nanoseconds in one second.
pub(crate) const NANOS_PER_SEC: u32 = 1_000_000_000;
/// Seconds in one day.
pub(crate) const SECS_PER_DAY: i64 = 86_400;
/// Unix seconds of `0001-01-01T00:00:00Z`.
pub(crate) const MIN_SECS: i64 = -62_135_596_800;
/// Unix seconds of `9999-12-31T23:59:59Z`.
pub(crate) const MAX_SECS: i64 = 253_402_300_799;

/// An instant between `0001-01-01T00:00:00Z` and
/// `9999-12-31T23:59:59.999999999Z`, with nanosecond precision.
///
/// It is `Copy`, totally ordered, and hashes consistently with equality.
/// Constructors from Unix time in any unit check the range and say which end
/// was crossed; accessors never fail.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    secs: i64,
    nanos: u32,
}

/// Why a value could not become a [`Timestamp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimestampError {
    /// The instant is before `0001-01-01T00:00:00Z`.
    BeforeMin,
    /// The instant is after `9999-12-31T23:59:59.999999999Z`.
    AfterMax,
    /// A nanosecond-of-second field was `1_000_000_000` or more.
    InvalidNanos(u32),
}

impl fmt::Display for TimestampError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BeforeMin => f.write_str("timestamp before 0001-01-01T00:00:00Z"),
            Self::AfterMax => f.write_str("timestamp after 9999-12-31T23:59:59.999999999Z"),
            Self::InvalidNanos(n) => {
                write!(f, "nanosecond field {n} is not below 1000000000")
            }
        }
    }
}

impl core::error::Error for TimestampError {}

impl Timestamp {
    /// The earliest representable instant, `0001-01-01T00:00:00Z`.
    pub const MIN: Self = Self {
        secs: MIN_SECS,
        nanos: 0,
    };
    /// The latest representable instant, `9999-12-31T23:59:59.999999999Z`.
    pub const MAX: Self = Self {
        secs: MAX_SECS,
        nanos: NANOS_PER_SEC - 1,
    };
    /// The Unix epoch, `1970-01-01T00:00:00Z`.
    pub const UNIX_EPOCH: Self = Self { secs: 0, nanos: 0 };

    /// Builds a timestamp from Unix seconds and a nanosecond-of-second in
    /// `0..1_000_000_000` (added to `secs`, also for negative `secs`).
    #[inline]
    pub const fn from_unix(secs: i64, nanos: u32) -> Result<Self, TimestampError> {
        if nanos >= NANOS_PER_SEC {
            return Err(TimestampError::InvalidNanos(nanos));
        }
        if secs < MIN_SECS {
            return Err(TimestampError::BeforeMin);
        }
        if secs > MAX_SECS {
            return Err(TimestampError::AfterMax);
        }
        Ok(Self { secs, nanos })
    }

    /// Builds a timestamp from whole Unix seconds.
    #[inline]
    pub const fn from_unix_secs(secs: i64) -> Result<Self, TimestampError> {
        Self::from_unix(secs, 0)
    }

    /// Builds a timestamp from Unix milliseconds.
    #[inline]
    pub const fn from_unix_millis(millis: i64) -> Result<Self, TimestampError> {
        let secs = millis.div_euclid(1_000);
        let sub = millis.rem_euclid(1_000) as u32;
        Self::from_unix(secs, sub * 1_000_000)
    }

    /// Builds a timestamp from Unix microseconds.
    #[inline]
    pub const fn from_unix_micros(micros: i64) -> Result<Self, TimestampError> {
        let secs = micros.div_euclid(1_000_000);
        let sub = micros.rem_euclid(1_000_000) as u32;
        Self::from_unix(secs, sub * 1_000)
    }

    /// Builds a timestamp from Unix nanoseconds.
    ///
    /// `i128` because the supported range does not fit `i64` nanoseconds.
    #[inline]
    pub const fn from_unix_nanos(nanos: i128) -> Result<Self, TimestampError> {
        let secs = nanos.div_euclid(NANOS_PER_SEC as i128);
        if secs < MIN_SECS as i128 {
            return Err(TimestampError::BeforeMin);
        }
        if secs > MAX_SECS as i128 {
            return Err(TimestampError::AfterMax);
        }
        let sub = nanos.rem_euclid(NANOS_PER_SEC as i128) as u32;
        Self::from_unix(secs as i64, sub)
    }

    /// Unix seconds, rounded toward negative infinity.
    #[inline]
    pub const fn unix_secs(self) -> i64 {
        self.secs
    }

    /// Nanoseconds past [`unix_secs`](Self::unix_secs), in `0..1_000_000_000`.
    #[inline]
    pub const fn subsec_nanos(self) -> u32 {
        self.nanos
    }

    /// Unix milliseconds, rounded toward negative infinity.
    #[inline]
    pub const fn unix_millis(self) -> i64 {
        self.secs * 1_000 + (self.nanos / 1_000_000) as i64
    }

    /// Unix microseconds, rounded toward negative infinity.
    #[inline]
    pub const fn unix_micros(self) -> i64 {
        self.secs * 1_000_000 + (self.nanos / 1_000) as i64
    }

    /// Unix nanoseconds.
    #[inline]
    pub const fn unix_nanos(self) -> i128 {
        self.secs as i128 * NANOS_PER_SEC as i128 + self.nanos as i128
    }

    /// Builds a timestamp from a UTC civil date-time.
    ///
    /// The fields are validated (month, day of that month, hour, minute,
    /// second below 60, nanosecond below 10^9); years outside `1..=9999`
    /// give a range error.
    pub const fn from_civil(civil: CivilDateTime) -> Result<Self, civil::CivilError> {
        Self::from_civil_with_offset(civil, Offset::UTC)
    }

    /// Builds a timestamp from a civil date-time observed at a fixed UTC
    /// offset (local = UTC + offset). The local year may be 0 or 10000 as
    /// long as the instant itself is in range.
    pub const fn from_civil_with_offset(
        civil: CivilDateTime,
        offset: Offset,
    ) -> Result<Self, civil::CivilError> {
        if let Err(e) = civil.validate() {
            return Err(e);
        }
        let days = civil::days_from_civil(civil.year as i32, civil.month, civil.day);
        let local = days * SECS_PER_DAY
            + civil.hour as i64 * 3_600
            + civil.minute as i64 * 60
            + civil.second as i64;
        match Self::from_unix(local - offset.seconds() as i64, civil.nanosecond) {
            Ok(ts) => Ok(ts),
            Err(e) => Err(civil::CivilError::Range(e)),
        }
    }

    /// The UTC civil date-time of this instant.
    #[inline]
    pub const fn to_civil(self) -> CivilDateTime {
        civil::civil_from_unix(self.secs, self.nanos)
    }

    /// The civil date-time of this instant as seen at `offset`. The year can
    /// be 0 or 10000 near the ends of the range.
    #[inline]
    pub const fn to_civil_with_offset(self, offset: Offset) -> CivilDateTime {
        civil::civil_from_unix(self.secs + offset.seconds() as i64, self.nanos)
    }
}

impl Default for Timestamp {
    /// The Unix epoch.
    fn default() -> Self {
        Self::UNIX_EPOCH
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with nanoseconds, e.g. `1970-01-01T00:00:00.000000000Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; super::rfc3339::MAX_RFC3339_LEN];
        let format = super::rfc3339::Rfc3339Format::new(super::rfc3339::Precision::Nanos);
        match format.format(*self, &mut buf) {
            Ok(len) => f.write_str(core::str::from_utf8(&buf[..len]).map_err(|_| fmt::Error)?),
            Err(_) => Err(fmt::Error),
        }
    }
}

impl core::str::FromStr for Timestamp {
    type Err = super::rfc3339::ParseError;

    /// Parses strict RFC 3339 (see [`Timestamp::parse_rfc3339`]).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_rfc3339(s.as_bytes())
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Timestamp {
    /// As an RFC 3339 string in UTC with nanoseconds.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; super::rfc3339::MAX_RFC3339_LEN];
        let format = super::rfc3339::Rfc3339Format::new(super::rfc3339::Precision::Nanos);
        let len = format
            .format(*self, &mut buf)
            .map_err(serde::ser::Error::custom)?;
        let text = core::str::from_utf8(&buf[..len]).map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(text)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Timestamp {
    /// From an RFC 3339 string.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 timestamp")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Timestamp, E> {
                Timestamp::parse_rfc3339(v.as_bytes()).map_err(E::custom)
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Timestamp, E> {
                Timestamp::parse_rfc3339(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_ends_are_the_documented_instants() {
        let min = Timestamp::MIN.to_civil();
        assert_eq!((min.year, min.month, min.day, min.hour), (1, 1, 1, 0));
        let max = Timestamp::MAX.to_civil();
        assert_eq!(
            (
                max.year, max.month, max.day, max.hour, max.minute, max.second
            ),
            (9999, 12, 31, 23, 59, 59)
        );
        assert_eq!(max.nanosecond, 999_999_999);
    }

    #[test]
    fn constructors_reject_out_of_range_values_by_side() {
        assert_eq!(
            Timestamp::from_unix_secs(MIN_SECS - 1),
            Err(TimestampError::BeforeMin)
        );
        assert_eq!(
            Timestamp::from_unix_secs(MAX_SECS + 1),
            Err(TimestampError::AfterMax)
        );
        assert_eq!(
            Timestamp::from_unix(0, NANOS_PER_SEC),
            Err(TimestampError::InvalidNanos(NANOS_PER_SEC))
        );
        assert_eq!(
            Timestamp::from_unix_millis(i64::MIN),
            Err(TimestampError::BeforeMin)
        );
        assert_eq!(
            Timestamp::from_unix_millis(i64::MAX),
            Err(TimestampError::AfterMax)
        );
        assert_eq!(
            Timestamp::from_unix_micros(i64::MAX),
            Err(TimestampError::AfterMax)
        );
        assert_eq!(
            Timestamp::from_unix_nanos(i128::MIN),
            Err(TimestampError::BeforeMin)
        );
        assert_eq!(
            Timestamp::from_unix_nanos(i128::MAX),
            Err(TimestampError::AfterMax)
        );
        assert!(Timestamp::from_unix_secs(MIN_SECS).is_ok());
        assert!(Timestamp::from_unix(MAX_SECS, NANOS_PER_SEC - 1).is_ok());
    }

    #[test]
    fn negative_units_round_toward_negative_infinity() {
        let ts = Timestamp::from_unix_nanos(-1).unwrap();
        assert_eq!((ts.unix_secs(), ts.subsec_nanos()), (-1, 999_999_999));
        assert_eq!(ts.unix_millis(), -1);
        assert_eq!(ts.unix_micros(), -1);
        assert_eq!(ts.unix_nanos(), -1);
        let ms = Timestamp::from_unix_millis(-1_500).unwrap();
        assert_eq!((ms.unix_secs(), ms.subsec_nanos()), (-2, 500_000_000));
        assert_eq!(ms.unix_millis(), -1_500);
        let us = Timestamp::from_unix_micros(-1).unwrap();
        assert_eq!((us.unix_secs(), us.subsec_nanos()), (-1, 999_999_000));
    }

    #[test]
    fn order_follows_the_time_line() {
        let a = Timestamp::from_unix_nanos(-1).unwrap();
        let b = Timestamp::UNIX_EPOCH;
        let c = Timestamp::from_unix_nanos(1).unwrap();
        assert!(a < b && b < c);
        assert!(Timestamp::MIN < a && c < Timestamp::MAX);
    }

    #[test]
    fn units_round_trip_at_the_range_ends() {
        for ts in [Timestamp::MIN, Timestamp::MAX, Timestamp::UNIX_EPOCH] {
            assert_eq!(Timestamp::from_unix_nanos(ts.unix_nanos()), Ok(ts));
            let micros = Timestamp::from_unix_micros(ts.unix_micros()).unwrap();
            assert_eq!(micros.unix_micros(), ts.unix_micros());
            let millis = Timestamp::from_unix_millis(ts.unix_millis()).unwrap();
            assert_eq!(millis.unix_millis(), ts.unix_millis());
        }
    }
}
