//! Signed durations: differences between timestamps, their breakdown into
//! calendar-free units, and the compact text form `1h30m15s250ms`.
//!
//! Invariant: a [`SignedDuration`] is `secs + nanos / 10^9` seconds with
//! `nanos` in `0..10^9` (the seconds round toward negative infinity), so the
//! derived `Ord` is numeric order. Days are always 86 400 seconds: these are
//! elapsed-time durations, not calendar spans.
//!
//! The text form is a sign followed by one or more `<digits><unit>` parts with
//! units `d`, `h`, `m`, `s`, `ms`, `us` (or `µs`), `ns`, each used at most once
//! and from the largest to the smallest. [`SignedDuration`]'s `Display`
//! writes that form, so parsing what it writes gives the same value.

use core::fmt;

use super::timestamp::{NANOS_PER_SEC, Timestamp, TimestampError};

/// A signed elapsed time with nanosecond precision, within about ±292
/// billion years (an `i64` of seconds).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SignedDuration {
    secs: i64,
    nanos: u32,
}

/// A duration split into units; every field has the sign of the duration
/// and all but `days` are below their next unit (hours < 24, ms < 1000, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Breakdown {
    /// Whole days of 86 400 seconds.
    pub days: i64,
    /// Hours, within ±23.
    pub hours: i64,
    /// Minutes, within ±59.
    pub minutes: i64,
    /// Seconds, within ±59.
    pub seconds: i64,
    /// Milliseconds, within ±999.
    pub millis: i64,
    /// Microseconds, within ±999.
    pub micros: i64,
    /// Nanoseconds, within ±999.
    pub nanos: i64,
}

impl SignedDuration {
    /// No time at all.
    pub const ZERO: Self = Self { secs: 0, nanos: 0 };
    /// The most negative duration.
    pub const MIN: Self = Self {
        secs: i64::MIN,
        nanos: 0,
    };
    /// The most positive duration.
    pub const MAX: Self = Self {
        secs: i64::MAX,
        nanos: NANOS_PER_SEC - 1,
    };

    /// A duration of `secs` seconds plus `nanos` (`0..10^9`) nanoseconds;
    /// `None` if `nanos` is out of range.
    #[inline]
    pub const fn new(secs: i64, nanos: u32) -> Option<Self> {
        if nanos >= NANOS_PER_SEC {
            return None;
        }
        Some(Self { secs, nanos })
    }

    /// Whole seconds.
    #[inline]
    pub const fn from_secs(secs: i64) -> Self {
        Self { secs, nanos: 0 }
    }

    /// Milliseconds.
    #[inline]
    pub const fn from_millis(millis: i64) -> Self {
        Self {
            secs: millis.div_euclid(1_000),
            nanos: millis.rem_euclid(1_000) as u32 * 1_000_000,
        }
    }

    /// Microseconds.
    #[inline]
    pub const fn from_micros(micros: i64) -> Self {
        Self {
            secs: micros.div_euclid(1_000_000),
            nanos: micros.rem_euclid(1_000_000) as u32 * 1_000,
        }
    }

    /// Nanoseconds.
    #[inline]
    pub const fn from_nanos(nanos: i64) -> Self {
        Self {
            secs: nanos.div_euclid(NANOS_PER_SEC as i64),
            nanos: nanos.rem_euclid(NANOS_PER_SEC as i64) as u32,
        }
    }

    /// Nanoseconds as `i128`; `None` beyond the `i64` seconds range.
    pub const fn from_nanos_i128(nanos: i128) -> Option<Self> {
        let secs = nanos.div_euclid(NANOS_PER_SEC as i128);
        if secs < i64::MIN as i128 || secs > i64::MAX as i128 {
            return None;
        }
        Some(Self {
            secs: secs as i64,
            nanos: nanos.rem_euclid(NANOS_PER_SEC as i128) as u32,
        })
    }

    /// Minutes; `None` on overflow.
    #[inline]
    pub const fn from_mins(mins: i64) -> Option<Self> {
        match mins.checked_mul(60) {
            Some(secs) => Some(Self::from_secs(secs)),
            None => None,
        }
    }

    /// Hours; `None` on overflow.
    #[inline]
    pub const fn from_hours(hours: i64) -> Option<Self> {
        match hours.checked_mul(3_600) {
            Some(secs) => Some(Self::from_secs(secs)),
            None => None,
        }
    }

    /// Days of 86 400 seconds; `None` on overflow.
    #[inline]
    pub const fn from_days(days: i64) -> Option<Self> {
        match days.checked_mul(86_400) {
            Some(secs) => Some(Self::from_secs(secs)),
            None => None,
        }
    }

    /// Seconds, rounded toward negative infinity (`-0.5 s` gives `-1`).
    #[inline]
    pub const fn secs_floor(self) -> i64 {
        self.secs
    }

    /// Nanoseconds past [`secs_floor`](Self::secs_floor), in `0..10^9`.
    #[inline]
    pub const fn subsec_nanos_floor(self) -> u32 {
        self.nanos
    }

    /// The whole duration in nanoseconds.
    #[inline]
    pub const fn as_nanos(self) -> i128 {
        self.secs as i128 * NANOS_PER_SEC as i128 + self.nanos as i128
    }

    /// Whether the duration is below zero.
    #[inline]
    pub const fn is_negative(self) -> bool {
        self.secs < 0
    }

    /// Whether the duration is exactly zero.
    #[inline]
    pub const fn is_zero(self) -> bool {
        self.secs == 0 && self.nanos == 0
    }

    /// Whether the duration is above zero.
    #[inline]
    pub const fn is_positive(self) -> bool {
        self.secs > 0 || (self.secs == 0 && self.nanos > 0)
    }

    /// The sum; `None` on overflow.
    #[inline]
    pub const fn checked_add(self, rhs: Self) -> Option<Self> {
        let mut nanos = self.nanos + rhs.nanos;
        let mut carry = 0;
        if nanos >= NANOS_PER_SEC {
            nanos -= NANOS_PER_SEC;
            carry = 1;
        }
        let Some(secs) = self.secs.checked_add(rhs.secs) else {
            return None;
        };
        match secs.checked_add(carry) {
            Some(secs) => Some(Self { secs, nanos }),
            None => None,
        }
    }

    /// The difference; `None` on overflow.
    #[inline]
    pub const fn checked_sub(self, rhs: Self) -> Option<Self> {
        match rhs.checked_neg() {
            Some(neg) => self.checked_add(neg),
            // rhs is MIN-ish: subtracting it is adding its magnitude.
            None => match self.checked_add(Self::MAX) {
                Some(partial) => partial.checked_add(Self { secs: 0, nanos: 1 }),
                None => None,
            },
        }
    }

    /// The negation; `None` for [`SignedDuration::MIN`].
    #[inline]
    pub const fn checked_neg(self) -> Option<Self> {
        if self.nanos == 0 {
            match self.secs.checked_neg() {
                Some(secs) => Some(Self { secs, nanos: 0 }),
                None => None,
            }
        } else {
            // -(s + n) = (-s - 1) + (1 - n); -s - 1 never overflows.
            Some(Self {
                secs: -self.secs - 1,
                nanos: NANOS_PER_SEC - self.nanos,
            })
        }
    }

    /// The absolute value; `None` for [`SignedDuration::MIN`].
    #[inline]
    pub const fn checked_abs(self) -> Option<Self> {
        if self.is_negative() {
            self.checked_neg()
        } else {
            Some(self)
        }
    }

    /// The product with an integer; `None` on overflow.
    pub const fn checked_mul(self, factor: i64) -> Option<Self> {
        let nanos = self.as_nanos();
        match nanos.checked_mul(factor as i128) {
            Some(total) => Self::from_nanos_i128(total),
            None => None,
        }
    }

    /// Magnitude as whole seconds and nanoseconds (no sign).
    #[inline]
    const fn magnitude(self) -> (u64, u32) {
        if !self.is_negative() {
            (self.secs as u64, self.nanos)
        } else if self.nanos == 0 {
            (self.secs.unsigned_abs(), 0)
        } else {
            ((self.secs + 1).unsigned_abs(), NANOS_PER_SEC - self.nanos)
        }
    }

    /// Splits the duration into days, hours, minutes, seconds, milliseconds,
    /// microseconds and nanoseconds, each carrying the duration's sign.
    pub const fn breakdown(self) -> Breakdown {
        let (secs, nanos) = self.magnitude();
        let sign: i64 = if self.is_negative() { -1 } else { 1 };
        let days = secs / 86_400;
        let rem = secs % 86_400;
        Breakdown {
            // `days` fits i64: |secs| <= 2^63 / 86_400 after the division.
            days: sign * days as i64,
            hours: sign * (rem / 3_600) as i64,
            minutes: sign * (rem / 60 % 60) as i64,
            seconds: sign * (rem % 60) as i64,
            millis: sign * (nanos / 1_000_000) as i64,
            micros: sign * (nanos / 1_000 % 1_000) as i64,
            nanos: sign * (nanos % 1_000) as i64,
        }
    }

    /// Parses the compact text form, e.g. `90s`, `1h30m`, `-250ms`,
    /// `1h30m15s250ms`: an optional sign, then one or more `<digits><unit>`
    /// parts with units `d`, `h`, `m`, `s`, `ms`, `us` (or `µs`), `ns`, each
    /// at most once and from the largest to the smallest. Days are 86 400 s.
    pub fn parse(input: &[u8]) -> Result<Self, DurationParseError> {
        parse(input)
    }
}

impl fmt::Debug for SignedDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for SignedDuration {
    /// The compact form: `0s`, `1h30m`, `-1d2h3m4s5ms6us7ns`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("0s");
        }
        if self.is_negative() {
            f.write_str("-")?;
        }
        let b = self.breakdown();
        let parts = [
            (b.days, "d"),
            (b.hours, "h"),
            (b.minutes, "m"),
            (b.seconds, "s"),
            (b.millis, "ms"),
            (b.micros, "us"),
            (b.nanos, "ns"),
        ];
        for (value, unit) in parts {
            if value != 0 {
                write!(f, "{}{unit}", value.unsigned_abs())?;
            }
        }
        Ok(())
    }
}

impl core::str::FromStr for SignedDuration {
    type Err = DurationParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s.as_bytes())
    }
}

impl From<core::time::Duration> for SignedDuration {
    /// Saturates at [`SignedDuration::MAX`] (only beyond 292 billion years).
    fn from(d: core::time::Duration) -> Self {
        match i64::try_from(d.as_secs()) {
            Ok(secs) => Self {
                secs,
                nanos: d.subsec_nanos(),
            },
            Err(_) => Self::MAX,
        }
    }
}

/// Where and why duration text was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DurationParseError {
    kind: DurationParseErrorKind,
    position: usize,
}

/// What was wrong with duration text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DurationParseErrorKind {
    /// No input, or only a sign.
    Empty,
    /// A digit was expected.
    ExpectedDigit,
    /// A number with no unit after it.
    MissingUnit,
    /// Letters that are not one of `d h m s ms us µs ns`.
    UnknownUnit,
    /// A unit repeated or after a smaller one (`1m1h`, `1s1s`).
    UnitOrder,
    /// The value does not fit a [`SignedDuration`].
    Overflow,
}

impl DurationParseError {
    const fn new(kind: DurationParseErrorKind, position: usize) -> Self {
        Self { kind, position }
    }

    /// What was wrong.
    #[inline]
    pub const fn kind(&self) -> DurationParseErrorKind {
        self.kind
    }

    /// Byte index in the input where the problem starts.
    #[inline]
    pub const fn position(&self) -> usize {
        self.position
    }
}

impl fmt::Display for DurationParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.position;
        f.write_str("invalid duration: ")?;
        match self.kind {
            DurationParseErrorKind::Empty => {
                f.write_str("no duration given (expected e.g. 90s, 1h30m or 250ms)")
            }
            DurationParseErrorKind::ExpectedDigit => write!(f, "expected a digit at byte {at}"),
            DurationParseErrorKind::MissingUnit => write!(
                f,
                "number ending at byte {at} has no unit (d, h, m, s, ms, us, ns)"
            ),
            DurationParseErrorKind::UnknownUnit => write!(
                f,
                "unknown unit at byte {at} (expected d, h, m, s, ms, us or ns)"
            ),
            DurationParseErrorKind::UnitOrder => write!(
                f,
                "unit at byte {at} repeats or follows a smaller unit (write largest first)"
            ),
            DurationParseErrorKind::Overflow => {
                write!(f, "value at byte {at} is too large for a duration")
            }
        }
    }
}

impl core::error::Error for DurationParseError {}

/// Units from the largest down: rank, nanoseconds per unit (`µs` is its
/// UTF-8 bytes).
const fn unit_of(token: &[u8]) -> Option<(u8, u128)> {
    match token {
        b"d" => Some((6, 86_400 * NANOS_PER_SEC as u128)),
        b"h" => Some((5, 3_600 * NANOS_PER_SEC as u128)),
        b"m" => Some((4, 60 * NANOS_PER_SEC as u128)),
        b"s" => Some((3, NANOS_PER_SEC as u128)),
        b"ms" => Some((2, 1_000_000)),
        b"us" | [0xC2, 0xB5, b's'] => Some((1, 1_000)),
        b"ns" => Some((0, 1)),
        _ => None,
    }
}

fn parse(input: &[u8]) -> Result<SignedDuration, DurationParseError> {
    use DurationParseErrorKind as K;
    let (negative, mut at) = match input.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    if at == input.len() {
        return Err(DurationParseError::new(K::Empty, at));
    }
    // The magnitude in nanoseconds; u128 has room for any sum of parts that
    // individually fit, and the final check bounds it.
    let mut total: u128 = 0;
    let mut last_rank = u8::MAX;
    while at < input.len() {
        let start = at;
        let mut value: u128 = 0;
        while let Some(&b) = input.get(at) {
            if !b.is_ascii_digit() {
                break;
            }
            value = value * 10 + u128::from(b - b'0');
            // Beyond 2^64 nanoseconds' worth of anything, it cannot fit.
            if value > u128::from(u64::MAX) {
                return Err(DurationParseError::new(K::Overflow, start));
            }
            at += 1;
        }
        if at == start {
            return Err(DurationParseError::new(K::ExpectedDigit, at));
        }
        let unit_start = at;
        while let Some(&b) = input.get(at) {
            if b.is_ascii_digit() {
                break;
            }
            at += 1;
        }
        if unit_start == at {
            return Err(DurationParseError::new(K::MissingUnit, at));
        }
        let Some((rank, scale)) = unit_of(&input[unit_start..at]) else {
            return Err(DurationParseError::new(K::UnknownUnit, unit_start));
        };
        if rank >= last_rank {
            return Err(DurationParseError::new(K::UnitOrder, unit_start));
        }
        last_rank = rank;
        total = match value.checked_mul(scale).and_then(|v| total.checked_add(v)) {
            Some(t) => t,
            None => return Err(DurationParseError::new(K::Overflow, start)),
        };
        if total > i128::MAX as u128 {
            return Err(DurationParseError::new(K::Overflow, start));
        }
    }
    let signed = if negative {
        -(total as i128)
    } else {
        total as i128
    };
    SignedDuration::from_nanos_i128(signed).ok_or(DurationParseError::new(K::Overflow, 0))
}

impl Timestamp {
    /// This instant moved by `duration`; an error names the end of the
    /// range crossed.
    #[inline]
    pub const fn checked_add(self, duration: SignedDuration) -> Result<Self, TimestampError> {
        let mut nanos = self.subsec_nanos() + duration.nanos;
        let mut carry = 0;
        if nanos >= NANOS_PER_SEC {
            nanos -= NANOS_PER_SEC;
            carry = 1;
        }
        // Timestamp seconds are far from i64's ends, so only a huge duration
        // can overflow, and then it is out of range on that side.
        match self.unix_secs().checked_add(duration.secs) {
            Some(secs) => Self::from_unix(secs + carry, nanos),
            None if duration.secs < 0 => Err(TimestampError::BeforeMin),
            None => Err(TimestampError::AfterMax),
        }
    }

    /// This instant moved back by `duration`.
    #[inline]
    pub const fn checked_sub(self, duration: SignedDuration) -> Result<Self, TimestampError> {
        match duration.checked_neg() {
            Some(neg) => self.checked_add(neg),
            None => Err(TimestampError::AfterMax),
        }
    }

    /// This instant moved by `duration`, clamped to the supported range.
    #[inline]
    pub const fn saturating_add(self, duration: SignedDuration) -> Self {
        match self.checked_add(duration) {
            Ok(ts) => ts,
            Err(TimestampError::BeforeMin) => Self::MIN,
            Err(_) => Self::MAX,
        }
    }

    /// The signed time from `earlier` to `self` (negative if `earlier` is
    /// later). Never overflows: the whole range spans about 3 * 10^11 s.
    #[inline]
    pub const fn since(self, earlier: Self) -> SignedDuration {
        let mut secs = self.unix_secs() - earlier.unix_secs();
        let nanos = if self.subsec_nanos() >= earlier.subsec_nanos() {
            self.subsec_nanos() - earlier.subsec_nanos()
        } else {
            secs -= 1;
            self.subsec_nanos() + NANOS_PER_SEC - earlier.subsec_nanos()
        };
        SignedDuration { secs, nanos }
    }

    /// The signed time from `self` to `later`; `a.until(b) == b.since(a)`.
    #[inline]
    pub const fn until(self, later: Self) -> SignedDuration {
        later.since(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    fn d(s: &str) -> SignedDuration {
        SignedDuration::parse(s.as_bytes()).unwrap()
    }

    fn err(s: &str) -> (DurationParseErrorKind, usize) {
        let e = SignedDuration::parse(s.as_bytes()).unwrap_err();
        (e.kind(), e.position())
    }

    #[test]
    fn parses_the_documented_examples() {
        assert_eq!(d("90s"), SignedDuration::from_secs(90));
        assert_eq!(d("1h30m"), SignedDuration::from_secs(5_400));
        assert_eq!(d("250ms"), SignedDuration::from_millis(250));
        assert_eq!(d("2d"), SignedDuration::from_secs(172_800));
        assert_eq!(d("1h30m15s250ms"), SignedDuration::from_millis(5_415_250));
        assert_eq!(d("-1s500ms"), SignedDuration::from_millis(-1_500));
        assert_eq!(d("+7ns"), SignedDuration::from_nanos(7));
        assert_eq!(d("3µs"), SignedDuration::from_micros(3));
        assert_eq!(d("3us"), SignedDuration::from_micros(3));
        assert_eq!(d("0s"), SignedDuration::ZERO);
        assert_eq!(d("90m"), SignedDuration::from_secs(5_400));
    }

    #[test]
    fn rejects_bad_text_with_position() {
        use DurationParseErrorKind as K;
        assert_eq!(err(""), (K::Empty, 0));
        assert_eq!(err("-"), (K::Empty, 1));
        assert_eq!(err("h"), (K::ExpectedDigit, 0));
        assert_eq!(err("90"), (K::MissingUnit, 2));
        assert_eq!(err("1h30"), (K::MissingUnit, 4));
        assert_eq!(err("5y"), (K::UnknownUnit, 1));
        assert_eq!(err("1h 30m"), (K::UnknownUnit, 1));
        assert_eq!(err("1m1h"), (K::UnitOrder, 3));
        assert_eq!(err("1s2s"), (K::UnitOrder, 3));
        assert_eq!(err("1ms1s"), (K::UnitOrder, 4));
        assert_eq!(err("99999999999999999999999d"), (K::Overflow, 0));
        assert_eq!(err("106751991167301d"), (K::Overflow, 0));
        assert_eq!(err("--1s"), (K::ExpectedDigit, 1));
    }

    #[test]
    fn display_is_compact_and_parses_back() {
        let cases = [
            (SignedDuration::ZERO, "0s"),
            (SignedDuration::from_secs(5_400), "1h30m"),
            (SignedDuration::from_millis(-1_500), "-1s500ms"),
            (
                SignedDuration::from_nanos(93_784_005_006_007),
                "1d2h3m4s5ms6us7ns",
            ),
            (SignedDuration::MIN, "-106751991167300d15h30m8s"),
        ];
        for (value, text) in cases {
            assert_eq!(value.to_string(), text);
            assert_eq!(d(text), value);
        }
        assert_eq!(d(&SignedDuration::MAX.to_string()), SignedDuration::MAX);
    }

    #[test]
    fn breakdown_carries_the_sign() {
        let b = SignedDuration::from_nanos(-93_784_005_006_007).breakdown();
        assert_eq!(
            b,
            Breakdown {
                days: -1,
                hours: -2,
                minutes: -3,
                seconds: -4,
                millis: -5,
                micros: -6,
                nanos: -7
            }
        );
        let half = SignedDuration::from_millis(-500).breakdown();
        assert_eq!((half.seconds, half.millis), (0, -500));
        assert_eq!(SignedDuration::MIN.breakdown().days, -106_751_991_167_300);
    }

    #[test]
    fn arithmetic_checks_overflow() {
        let a = SignedDuration::from_millis(1_700);
        let b = SignedDuration::from_millis(-2_300);
        assert_eq!(a.checked_add(b), Some(SignedDuration::from_millis(-600)));
        assert_eq!(a.checked_sub(b), Some(SignedDuration::from_millis(4_000)));
        assert_eq!(b.checked_neg(), Some(SignedDuration::from_millis(2_300)));
        assert_eq!(b.checked_abs(), Some(SignedDuration::from_millis(2_300)));
        assert_eq!(SignedDuration::MIN.checked_neg(), None);
        assert_eq!(
            SignedDuration::MAX.checked_add(SignedDuration::from_nanos(1)),
            None
        );
        assert_eq!(
            SignedDuration::MIN.checked_sub(SignedDuration::from_nanos(1)),
            None
        );
        assert_eq!(
            SignedDuration::from_nanos(-1).checked_sub(SignedDuration::MIN),
            Some(SignedDuration::MAX)
        );
        assert_eq!(a.checked_mul(-3), Some(SignedDuration::from_millis(-5_100)));
        assert_eq!(SignedDuration::MAX.checked_mul(2), None);
        assert!(SignedDuration::from_nanos(1).is_positive());
        assert!(!SignedDuration::ZERO.is_positive() && !SignedDuration::ZERO.is_negative());
    }

    #[test]
    fn timestamp_arithmetic_and_differences() {
        let a = Timestamp::from_unix(10, 900_000_000).unwrap();
        let b = Timestamp::from_unix(12, 100_000_000).unwrap();
        assert_eq!(b.since(a), SignedDuration::from_millis(1_200));
        assert_eq!(a.since(b), SignedDuration::from_millis(-1_200));
        assert_eq!(a.until(b), b.since(a));
        assert_eq!(a.checked_add(SignedDuration::from_millis(1_200)), Ok(b));
        assert_eq!(b.checked_sub(SignedDuration::from_millis(1_200)), Ok(a));
        assert_eq!(
            Timestamp::MAX.since(Timestamp::MIN).secs_floor(),
            315_537_897_599
        );
        assert_eq!(
            Timestamp::MAX.checked_add(SignedDuration::from_nanos(1)),
            Err(TimestampError::AfterMax)
        );
        assert_eq!(
            Timestamp::MIN.checked_add(SignedDuration::from_nanos(-1)),
            Err(TimestampError::BeforeMin)
        );
        assert_eq!(
            Timestamp::MIN.checked_add(SignedDuration::MIN),
            Err(TimestampError::BeforeMin)
        );
        assert_eq!(
            Timestamp::MAX.checked_add(SignedDuration::MAX),
            Err(TimestampError::AfterMax)
        );
        assert_eq!(
            Timestamp::MAX.saturating_add(SignedDuration::MAX),
            Timestamp::MAX
        );
        assert_eq!(
            Timestamp::MIN.saturating_add(SignedDuration::MIN),
            Timestamp::MIN
        );
    }

    #[test]
    fn converts_from_core_duration() {
        let std_like = core::time::Duration::new(3, 7);
        assert_eq!(
            SignedDuration::from(std_like),
            SignedDuration::new(3, 7).unwrap()
        );
        assert_eq!(
            SignedDuration::from(core::time::Duration::MAX),
            SignedDuration::MAX
        );
    }
}
