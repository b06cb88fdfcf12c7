//! RFC 3339 formatting into caller buffers and strict RFC 3339 parsing.
//!
//! Output is always `YYYY-MM-DDTHH:MM:SS[.fff|.ffffff|.fffffffff](Z|±HH:MM)`:
//! an upper-case `T`, a fraction of exactly 0, 3, 6 or 9 digits (truncated,
//! never rounded, so the text never names a later instant), and either `Z` or
//! a numeric offset. Local years must fit four digits (0000..=9999).
//!
//! Parsing accepts exactly the RFC 3339 `date-time` grammar: `T`/`t` between
//! date and time, a fraction of 1 to 9 digits, and `Z`, `z` or `±HH:MM`.
//! Fields are range-checked (the day against its month and year). A second of
//! `60` (a leap second) is accepted and clamped to `59` with its fraction kept,
//! because Unix time does not count leap seconds. Every error names what was
//! expected and the byte position where the input went wrong.

use core::fmt;

use super::civil::{self, date_from_shifted_days, days_from_civil, days_in_month};
use super::offset::Offset;
use super::timestamp::{SECS_PER_DAY, Timestamp, TimestampError};

/// The longest text [`Rfc3339Format::format`] writes:
/// `YYYY-MM-DDTHH:MM:SS.fffffffff+HH:MM`.
pub const MAX_RFC3339_LEN: usize = 35;

/// Length of `YYYY-MM-DDTHH:MM:SS`.
const PREFIX_LEN: usize = 19;

/// How many fractional digits to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Precision {
    /// Whole seconds, no fraction.
    #[default]
    Seconds,
    /// Three digits.
    Millis,
    /// Six digits.
    Micros,
    /// Nine digits.
    Nanos,
}

impl Precision {
    /// Number of fractional digits written.
    #[inline]
    pub const fn digits(self) -> usize {
        match self {
            Self::Seconds => 0,
            Self::Millis => 3,
            Self::Micros => 6,
            Self::Nanos => 9,
        }
    }

    /// The coarsest precision that writes `timestamp` without losing digits.
    #[inline]
    pub const fn minimal_for(timestamp: Timestamp) -> Self {
        let n = timestamp.subsec_nanos();
        if n == 0 {
            Self::Seconds
        } else if n % 1_000_000 == 0 {
            Self::Millis
        } else if n % 1_000 == 0 {
            Self::Micros
        } else {
            Self::Nanos
        }
    }
}

/// Options for RFC 3339 output: the precision and the offset style.
///
/// The default writes whole seconds and `Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Rfc3339Format {
    precision: Precision,
    /// `None` writes `Z`; `Some` writes `±HH:MM` (also `+00:00`).
    offset: Option<Offset>,
}

/// Why formatting failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FormatError {
    /// The output buffer is shorter than the text.
    BufferTooSmall {
        /// Bytes the text needs.
        needed: usize,
        /// Bytes the buffer has.
        available: usize,
    },
    /// The local year at the requested offset does not fit four digits
    /// (only `9999-12-31` late in the day at a positive offset can do this).
    YearOutOfRange {
        /// The local year.
        year: u16,
    },
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BufferTooSmall { needed, available } => write!(
                f,
                "RFC 3339 output needs {needed} bytes but the buffer has {available}"
            ),
            Self::YearOutOfRange { year } => {
                write!(
                    f,
                    "local year {year} does not fit the four digits of RFC 3339"
                )
            }
        }
    }
}

impl core::error::Error for FormatError {}

/// Two ASCII digits of `i % 100` for every `i` below 128, as a
/// little-endian `u16` (the tens digit in the low byte, so it lands first in
/// memory). The power-of-two length lets [`pair`] index with a mask instead of
/// a bounds check, and entry 100 reading `00` lets a year of century that
/// carried into the next century index it directly.
const PAIRS: [u16; 128] = {
    let mut table = [0u16; 128];
    let mut i = 0;
    while i < 128 {
        let v = i % 100;
        table[i] = u16::from_le_bytes([b'0' + (v / 10) as u8, b'0' + (v % 10) as u8]);
        i += 1;
    }
    table
};

/// The two digits of `value % 100` (for `value` below 128) as a word to
/// shift into place.
#[inline(always)]
fn pair(value: u32) -> u64 {
    PAIRS[value as usize & 127] as u64
}

/// For each day of the March-based year (0 = 1 March .. 365 = 29 February):
/// `----MM-` as the bytes 4..8 of the date word and `DDT__:__` as the
/// time word, with zero bytes where the year, hour and minute go.
///
/// A table lookup replaces the month-and-day arithmetic and its digit
/// conversions (two multiplications, a select and two pair lookups); it is
/// built at compile time from the Neri-Schneider month formula, and a test
/// compares every entry with the civil conversion.
const MONTH_DAY_WORDS: [[u64; 2]; 366] = {
    let mut table = [[0u64; 2]; 366];
    let mut day_of_year = 0;
    while day_of_year < 366 {
        // 2141 / 2^16 is 5 / 153: the month (March = 3) in the high half,
        // the day of the month times 2141 in the low half.
        let n = 2_141 * day_of_year as u32 + 197_913;
        let month = if n >> 16 > 12 {
            (n >> 16) - 12
        } else {
            n >> 16
        };
        let day = (n & 0xFFFF) / 2_141 + 1;
        let m = [b'0' + (month / 10) as u8, b'0' + (month % 10) as u8];
        let d = [b'0' + (day / 10) as u8, b'0' + (day % 10) as u8];
        table[day_of_year] = [
            u64::from_le_bytes([0, 0, 0, 0, b'-', m[0], m[1], b'-']),
            u64::from_le_bytes([d[0], d[1], b'T', 0, 0, b':', 0, 0]),
        ];
        day_of_year += 1;
    }
    table
};

/// `ceil(2^64 / 86_400)`: one 64x64-bit multiplication by it gives the day
/// number in the high half and the fraction of the day in the low half.
const DAY_RECIPROCAL: u64 = u64::MAX / SECS_PER_DAY as u64 + 1;

/// The text is built in registers as little-endian words and stored with a
/// few wide writes; these are the parts that do not depend on the options.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Head {
    /// `YYYY-MM-` as little-endian bytes.
    pub(crate) date: u64,
    /// `DDTHH:MM` as little-endian bytes.
    pub(crate) time: u64,
    /// The second of the minute, 0..=59.
    pub(crate) second: u32,
}

/// Splits local Unix seconds into the [`Head`] words; `Err` carries a local
/// year that does not fit four digits.
///
/// `local_secs` must lie within one day of the [`Timestamp`] range (any
/// [`Offset`] applied to a timestamp does). Every step is a multiplication,
/// shift, add or table lookup on at most 64 bits (the divisions by constants
/// compile to multiply-shifts), with no data-dependent branch besides the
/// year check:
///
/// - days and the time of day: `s * ceil(2^64 / 86400)` holds the day number
///   in its high half and the fraction of the day in its low half, too large
///   by less than `s` (below 2^39) of 2^64. The top 32 bits of that fraction
///   plus one therefore exceed the exact fraction by less than 81 units of
///   2^-32 and are never below it; scaled by 86400 that is less than 0.002
///   s. Multiplying by 24, then the remainder by 60 twice, reads off hour,
///   minute and second exactly (the mixed-radix digits of a value that is
///   never below the exact second and never reaches the next one);
/// - the date: the century `c` of the March-based day number `n` is one
///   multiply-shift (Neri-Schneider); adding back the `c - c / 4` leap days
///   the Gregorian calendar skips turns `n` into a Julian day count, whose
///   years are exactly 1461 days per 4, so one 32x32-bit multiplication by
///   `ceil(2^32 / 1461)` gives the year in its high half and the day of the
///   year (scaled) in its low half; exact while `4n + 3 < 2^32 / 149`;
/// - the year's digits come from the century and the year within it
///   (`year - 100 c`), with a Jan/Feb carry into the next century handled
///   by the 128-entry pair table; month and day come from
///   [`MONTH_DAY_WORDS`].
#[inline(always)]
pub(crate) fn head(local_secs: i64) -> Result<Head, FormatError> {
    let shifted = (local_secs + civil::SHIFT_SECS) as u64;
    let product = u128::from(shifted) * u128::from(DAY_RECIPROCAL);
    let days = (product >> 64) as u32;

    // Hour, minute and second as mixed-radix digits of the day fraction.
    let fraction = ((product as u64) >> 32) + 1;
    let hours = fraction * 24;
    let minutes = (hours & 0xFFFF_FFFF) * 60;
    let seconds = (minutes & 0xFFFF_FFFF) * 60;

    // Century, then the Julian day count and its year and day of year.
    let century = (4 * days + 3) / 146_097;
    let julian = days + century - (century >> 2);
    let year_product = u64::from(4 * julian + 3) * 2_939_745;
    let year_of_century = (year_product >> 32) as u32 - 100 * century;
    let day_of_year = (year_product as u32) / 11_758_980;
    let [month_day, day_time] = MONTH_DAY_WORDS[(day_of_year as usize).min(365)];
    // January and February belong to the next calendar year.
    let low = year_of_century + u32::from(day_of_year >= 306);
    // The shift by one extra era makes the century 4 for the year 0.
    let high = (century + ((low + 28) >> 7)).wrapping_sub(4);
    if high > 99 {
        return Err(year_out_of_range(local_secs));
    }
    Ok(Head {
        date: month_day | pair(high) | pair(low) << 16,
        time: day_time | pair((hours >> 32) as u32) << 24 | pair((minutes >> 32) as u32) << 48,
        second: (seconds >> 32) as u32,
    })
}

/// The error for a local year beyond 9999, off the hot path.
#[cold]
#[inline(never)]
fn year_out_of_range(local_secs: i64) -> FormatError {
    let (year, _, _) = date_from_shifted_days(civil::shifted_days(local_secs));
    FormatError::YearOutOfRange { year }
}

/// `Z`, or `+HH:MM`/`-HH:MM`, as little-endian bytes.
#[inline(always)]
pub(crate) fn offset_word(offset: Option<Offset>) -> u64 {
    match offset {
        None => b'Z' as u64,
        Some(offset) => {
            let minutes = offset.minutes();
            let sign = if minutes < 0 { b'-' } else { b'+' };
            let abs = u32::from(minutes.unsigned_abs());
            sign as u64 | pair(abs / 60) << 8 | (b':' as u64) << 24 | pair(abs % 60) << 32
        }
    }
}

/// Bytes in the fraction for `FRAC` digits, with its dot.
const fn fraction_len(frac: usize) -> usize {
    if frac == 0 { 0 } else { frac + 1 }
}

/// The fraction `.ddd`, `.dddddd` or `.ddddddddd` (or nothing) as
/// little-endian bytes; digits are truncated, never rounded.
#[inline(always)]
fn fraction<const FRAC: usize>(nanos: u32) -> u128 {
    let dot = b'.' as u128;
    match FRAC {
        0 => 0,
        3 => {
            let ms = nanos / 1_000_000;
            // `(ms * 41) >> 12` is `ms / 100` for every `ms` below 1000.
            let hundreds = (ms * 41) >> 12;
            dot | u128::from(b'0' + hundreds as u8) << 8 | (pair(ms - 100 * hundreds) as u128) << 16
        }
        6 => {
            let us = nanos / 1_000;
            dot | (pair(us / 10_000) as u128) << 8
                | (pair(us / 100 % 100) as u128) << 24
                | (pair(us % 100) as u128) << 40
        }
        _ => {
            dot | u128::from(b'0' + (nanos / 100_000_000) as u8) << 8
                | (pair(nanos / 1_000_000 % 100) as u128) << 16
                | (pair(nanos / 10_000 % 100) as u128) << 32
                | (pair(nanos / 100 % 100) as u128) << 48
                | (pair(nanos % 100) as u128) << 64
        }
    }
}

/// Stores the text for one combination of options: `FRAC` fraction digits
/// and a numeric offset (`NUMERIC`) or `Z`. Every length is a constant here,
/// so each store is a fixed-size write. `out` is exactly the text's length.
#[inline(always)]
fn emit<const FRAC: usize, const NUMERIC: bool>(
    head: Head,
    nanos: u32,
    offset: u64,
    out: &mut [u8],
) {
    // Bytes after `YYYY-MM-DDTHH:MM`: ":SS", the fraction, the offset.
    let at_offset = 3 + fraction_len(FRAC);
    let tail_len = at_offset + if NUMERIC { 6 } else { 1 };
    let low = b':' as u128
        | (pair(head.second) as u128) << 8
        | fraction::<FRAC>(nanos) << 24
        | (offset as u128) << (8 * at_offset);
    out[0..8].copy_from_slice(&head.date.to_le_bytes());
    out[8..16].copy_from_slice(&head.time.to_le_bytes());
    if tail_len <= 16 {
        out[16..16 + tail_len].copy_from_slice(&low.to_le_bytes()[..tail_len]);
    } else {
        // Only nanoseconds with a numeric offset run past 32 bytes.
        out[16..32].copy_from_slice(&low.to_le_bytes());
        let high = offset >> (8 * (16 - at_offset));
        out[32..16 + tail_len].copy_from_slice(&high.to_le_bytes()[..tail_len - 16]);
    }
}

/// Stores the whole text for `format`; `out` is exactly its length.
#[inline(always)]
pub(crate) fn emit_for(format: Rfc3339Format, head: Head, nanos: u32, offset: u64, out: &mut [u8]) {
    match (format.precision, format.offset.is_some()) {
        (Precision::Seconds, false) => emit::<0, false>(head, nanos, offset, out),
        (Precision::Seconds, true) => emit::<0, true>(head, nanos, offset, out),
        (Precision::Millis, false) => emit::<3, false>(head, nanos, offset, out),
        (Precision::Millis, true) => emit::<3, true>(head, nanos, offset, out),
        (Precision::Micros, false) => emit::<6, false>(head, nanos, offset, out),
        (Precision::Micros, true) => emit::<6, true>(head, nanos, offset, out),
        (Precision::Nanos, false) => emit::<9, false>(head, nanos, offset, out),
        (Precision::Nanos, true) => emit::<9, true>(head, nanos, offset, out),
    }
}

impl Rfc3339Format {
    /// Writes `precision` digits of fraction and `Z`.
    #[inline]
    pub const fn new(precision: Precision) -> Self {
        Self {
            precision,
            offset: None,
        }
    }

    /// Writes local time at `offset` followed by `±HH:MM` (`+00:00` for UTC).
    #[inline]
    pub const fn with_offset(self, offset: Offset) -> Self {
        Self {
            offset: Some(offset),
            ..self
        }
    }

    /// Writes UTC followed by `Z`.
    #[inline]
    pub const fn with_z(self) -> Self {
        Self {
            offset: None,
            ..self
        }
    }

    /// The same options with another precision.
    #[inline]
    pub const fn with_precision(self, precision: Precision) -> Self {
        Self { precision, ..self }
    }

    /// The precision.
    #[inline]
    pub const fn precision(self) -> Precision {
        self.precision
    }

    /// The numeric offset, or `None` for `Z`.
    #[inline]
    pub const fn offset(self) -> Option<Offset> {
        self.offset
    }

    /// Seconds added to UTC to get the local time written.
    #[inline]
    pub(crate) const fn offset_seconds(self) -> i64 {
        match self.offset {
            Some(o) => o.seconds() as i64,
            None => 0,
        }
    }

    /// Exact length of the text these options write.
    #[inline]
    pub const fn formatted_len(self) -> usize {
        let fraction = match self.precision {
            Precision::Seconds => 0,
            p => p.digits() + 1,
        };
        let offset = if self.offset.is_some() { 6 } else { 1 };
        PREFIX_LEN + fraction + offset
    }

    /// Writes `timestamp` into the start of `out` and returns the number of
    /// bytes written; nothing is written on error.
    // Always inlined: with the options known at the call site (the usual
    // case) only one of the eight output layouts remains, with every length
    // a constant and no bounds checks. With options known only at run time,
    // one jump picks a layout that does no work for the options it lacks.
    #[inline(always)]
    pub fn format(self, timestamp: Timestamp, out: &mut [u8]) -> Result<usize, FormatError> {
        let utc = Offset::UTC;
        match (self.precision, self.offset) {
            (Precision::Seconds, None) => write::<0, false>(timestamp, utc, out),
            (Precision::Seconds, Some(o)) => write::<0, true>(timestamp, o, out),
            (Precision::Millis, None) => write::<3, false>(timestamp, utc, out),
            (Precision::Millis, Some(o)) => write::<3, true>(timestamp, o, out),
            (Precision::Micros, None) => write::<6, false>(timestamp, utc, out),
            (Precision::Micros, Some(o)) => write::<6, true>(timestamp, o, out),
            (Precision::Nanos, None) => write::<9, false>(timestamp, utc, out),
            (Precision::Nanos, Some(o)) => write::<9, true>(timestamp, o, out),
        }
    }
}

/// [`Rfc3339Format::format`] for one layout: `FRAC` fraction digits and a
/// numeric `offset` (`NUMERIC`) or `Z` (the offset is then unused).
#[inline(always)]
fn write<const FRAC: usize, const NUMERIC: bool>(
    timestamp: Timestamp,
    offset: Offset,
    out: &mut [u8],
) -> Result<usize, FormatError> {
    let len = PREFIX_LEN + fraction_len(FRAC) + if NUMERIC { 6 } else { 1 };
    let available = out.len();
    let Some(out) = out.get_mut(..len) else {
        return Err(FormatError::BufferTooSmall {
            needed: len,
            available,
        });
    };
    let (local, word) = if NUMERIC {
        (
            timestamp.unix_secs() + i64::from(offset.seconds()),
            offset_word(Some(offset)),
        )
    } else {
        (timestamp.unix_secs(), offset_word(None))
    };
    let head = head(local)?;
    emit::<FRAC, NUMERIC>(head, timestamp.subsec_nanos(), word, out);
    Ok(len)
}

/// Where and why RFC 3339 parsing failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParseError {
    kind: ParseErrorKind,
    position: usize,
}

/// What was wrong with RFC 3339 input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The input ended early; the field says what should have come next.
    UnexpectedEnd {
        /// What was expected next, e.g. `"a digit"`.
        expected: &'static str,
    },
    /// A byte other than the expected one.
    Unexpected {
        /// What was expected, e.g. `"a digit"`, `"'-'"`.
        expected: &'static str,
        /// The byte found.
        found: u8,
    },
    /// The month is not 01..=12.
    Month(u8),
    /// The day does not exist in that month of that year.
    Day(u8),
    /// The hour is not 00..=23.
    Hour(u8),
    /// The minute is not 00..=59.
    Minute(u8),
    /// The second is not 00..=60.
    Second(u8),
    /// A `.` not followed by a digit.
    EmptyFraction,
    /// More than nine fractional digits.
    FractionTooLong,
    /// The offset hour is not 00..=23.
    OffsetHour(u8),
    /// The offset minute is not 00..=59.
    OffsetMinute(u8),
    /// Bytes after a complete timestamp.
    TrailingInput,
    /// The text is valid but names an instant outside 0001..=9999 UTC.
    OutOfRange(TimestampError),
}

impl ParseError {
    #[inline]
    const fn new(kind: ParseErrorKind, position: usize) -> Self {
        Self { kind, position }
    }

    /// What was wrong.
    #[inline]
    pub const fn kind(&self) -> ParseErrorKind {
        self.kind
    }

    /// Byte index in the input where the problem starts.
    #[inline]
    pub const fn position(&self) -> usize {
        self.position
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid RFC 3339 timestamp: ")?;
        let at = self.position;
        match self.kind {
            ParseErrorKind::UnexpectedEnd { expected } => {
                write!(f, "input ends at byte {at}, expected {expected}")
            }
            ParseErrorKind::Unexpected { expected, found } => {
                if found.is_ascii_graphic() {
                    write!(
                        f,
                        "expected {expected} at byte {at}, found '{}'",
                        found as char
                    )
                } else {
                    write!(
                        f,
                        "expected {expected} at byte {at}, found byte 0x{found:02x}"
                    )
                }
            }
            ParseErrorKind::Month(v) => write!(f, "month {v:02} at byte {at} is not in 01..=12"),
            ParseErrorKind::Day(v) => {
                write!(f, "day {v:02} at byte {at} does not exist in that month")
            }
            ParseErrorKind::Hour(v) => write!(f, "hour {v:02} at byte {at} is not in 00..=23"),
            ParseErrorKind::Minute(v) => {
                write!(f, "minute {v:02} at byte {at} is not in 00..=59")
            }
            ParseErrorKind::Second(v) => {
                write!(f, "second {v:02} at byte {at} is not in 00..=60")
            }
            ParseErrorKind::EmptyFraction => {
                write!(f, "'.' at byte {at} is not followed by a fraction digit")
            }
            ParseErrorKind::FractionTooLong => {
                write!(f, "fraction has more than 9 digits (byte {at})")
            }
            ParseErrorKind::OffsetHour(v) => {
                write!(f, "offset hour {v:02} at byte {at} is not in 00..=23")
            }
            ParseErrorKind::OffsetMinute(v) => {
                write!(f, "offset minute {v:02} at byte {at} is not in 00..=59")
            }
            ParseErrorKind::TrailingInput => {
                write!(f, "unexpected input after the offset at byte {at}")
            }
            ParseErrorKind::OutOfRange(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for ParseError {}

const DIGIT: &str = "a digit";

/// A cursor over the input that reports positions in its errors.
struct Cursor<'a> {
    input: &'a [u8],
}

impl Cursor<'_> {
    #[inline(always)]
    fn byte(&self, at: usize, expected: &'static str) -> Result<u8, ParseError> {
        match self.input.get(at) {
            Some(&b) => Ok(b),
            None => Err(ParseError::new(
                ParseErrorKind::UnexpectedEnd { expected },
                at,
            )),
        }
    }

    #[inline(always)]
    fn digit(&self, at: usize) -> Result<u32, ParseError> {
        let b = self.byte(at, DIGIT)?;
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return Err(ParseError::new(
                ParseErrorKind::Unexpected {
                    expected: DIGIT,
                    found: b,
                },
                at,
            ));
        }
        Ok(u32::from(d))
    }

    #[inline(always)]
    fn two(&self, at: usize) -> Result<u32, ParseError> {
        Ok(self.digit(at)? * 10 + self.digit(at + 1)?)
    }

    #[inline(always)]
    fn expect(&self, at: usize, want: u8, expected: &'static str) -> Result<(), ParseError> {
        let b = self.byte(at, expected)?;
        if b != want {
            return Err(ParseError::new(
                ParseErrorKind::Unexpected { expected, found: b },
                at,
            ));
        }
        Ok(())
    }
}

/// Powers of ten that scale an `n`-digit fraction to nanoseconds.
const FRACTION_SCALE: [u32; 10] = [
    0,
    100_000_000,
    10_000_000,
    1_000_000,
    100_000,
    10_000,
    1_000,
    100,
    10,
    1,
];

/// Parses strict RFC 3339 and returns the instant with the offset it was
/// written at (`Z` gives [`Offset::UTC`]).
///
/// Well-formed input takes a fast path that checks the fixed-layout first
/// 19 bytes a word at a time; anything it does not accept goes to the
/// byte-by-byte parser, which either accepts it too or explains the error.
#[inline]
pub(crate) fn parse_with_offset(input: &[u8]) -> Result<(Timestamp, Offset), ParseError> {
    match parse_fast(input) {
        Some(parsed) => Ok(parsed),
        None => parse_precise(input),
    }
}

/// The high bit of every byte: the "failed" marker in the word checks.
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// Per-byte addends for a template: a digit position (`'0'`) passes values
/// 0..=9 (0x76 + 9 < 0x80), any other position passes only 0.
const fn limits(template: &[u8; 8]) -> u64 {
    let mut bytes = [0u8; 8];
    let mut i = 0;
    while i < 8 {
        bytes[i] = if template[i] == b'0' { 0x76 } else { 0x7F };
        i += 1;
    }
    u64::from_le_bytes(bytes)
}

/// Checks eight bytes against a template (digits where it has `'0'`, its
/// exact byte elsewhere) and returns, per byte, `10 * d[i] + d[i + 1]`: the
/// value of the two-digit number starting at each digit position.
///
/// XOR with the template maps a digit to 0..=9 and a matching fixed byte to
/// 0; the addends then set a byte's high bit exactly when it is out of
/// bounds. No addition carries across bytes unless a byte already has its
/// high bit set, which fails the check anyway.
#[inline(always)]
const fn two_digit_values(word: u64, template: &[u8; 8]) -> Option<u64> {
    let d = word ^ u64::from_le_bytes(*template);
    if (d | d.wrapping_add(limits(template))) & HIGH_BITS != 0 {
        return None;
    }
    // Every byte is at most 9, so 10 * d + next stays below 100 per byte.
    Some(d.wrapping_mul(10).wrapping_add(d >> 8))
}

#[inline(always)]
const fn byte_at(word: u64, index: u32) -> u32 {
    (word >> (8 * index)) as u32 & 0xFF
}

/// The common case, or `None` to let [`parse_precise`] decide.
#[inline(always)]
fn parse_fast(input: &[u8]) -> Option<(Timestamp, Offset)> {
    // Every valid text has at least 20 bytes: the date-time and `Z`.
    let (head, _) = input.split_first_chunk::<20>()?;
    let rest = &input[19..];
    let [
        d0,
        d1,
        d2,
        d3,
        d4,
        d5,
        d6,
        d7,
        t0,
        t1,
        t2,
        t3,
        t4,
        t5,
        t6,
        t7,
        s0,
        s1,
        s2,
        _,
    ] = *head;
    let date = two_digit_values(
        u64::from_le_bytes([d0, d1, d2, d3, d4, d5, d6, d7]),
        b"0000-00-",
    )?;
    // Lower-casing byte 2 accepts both `T` and `t`.
    let time = u64::from_le_bytes([t0, t1, t2, t3, t4, t5, t6, t7]) | 0x20 << 16;
    let time = two_digit_values(time, b"00t00:00")?;
    let seconds = u64::from_le_bytes([s0, s1, s2, 0, 0, 0, 0, 0]);
    let seconds = two_digit_values(seconds, b":00\0\0\0\0\0")?;

    let year = byte_at(date, 0) * 100 + byte_at(date, 2);
    let month = byte_at(date, 5);
    let day = byte_at(time, 0);
    let hour = byte_at(time, 3);
    let minute = byte_at(time, 6);
    let second = byte_at(seconds, 1);
    // Days up to 28 exist in every month; only later ones need the calendar.
    if !(1..=12).contains(&month)
        || day == 0
        || (day > 28 && day > u32::from(days_in_month(year as u16, month as u8)))
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    // Unix time has no leap seconds.
    let second = if second == 60 { 59 } else { second };

    let mut rest = rest;
    let mut nanos = 0;
    if let [b'.', digits @ ..] = rest {
        let mut count = 0;
        while let Some(&b) = digits.get(count) {
            let digit = b.wrapping_sub(b'0');
            if digit > 9 {
                break;
            }
            if count == 9 {
                return None;
            }
            nanos = nanos * 10 + u32::from(digit);
            count += 1;
        }
        if count == 0 {
            return None;
        }
        nanos *= FRACTION_SCALE[count];
        rest = &digits[count..];
    }
    let offset = match *rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h0, b':', m1, m0] => {
            let word = u64::from_le_bytes([h1, h0, m1, m0, 0, 0, 0, 0]);
            let values = two_digit_values(word, b"0000\0\0\0\0")?;
            let (hours, minutes) = (byte_at(values, 0), byte_at(values, 2));
            if hours > 23 || minutes > 59 {
                return None;
            }
            let total = (hours * 60 + minutes) as i32;
            if sign == b'-' { -total } else { total }
        }
        _ => return None,
    };

    let (y, m) = if month < 3 {
        (year + 399, month + 12)
    } else {
        (year + 400, month)
    };
    let days = civil::days_from_march_year(u64::from(y), u64::from(m), u64::from(day)) as i64
        - civil::MARCH_YEAR_EPOCH;
    let local = days * SECS_PER_DAY + i64::from(hour * 3_600 + minute * 60 + second);
    let timestamp = Timestamp::from_unix(local - i64::from(offset) * 60, nanos).ok()?;
    // The offset is within ±23:59 by the checks above.
    let offset = Offset::from_minutes(offset).ok()?;
    Some((timestamp, offset))
}

/// The byte-by-byte parser: slower, and exact about what went wrong where.
#[cold]
#[inline(never)]
fn parse_precise(input: &[u8]) -> Result<(Timestamp, Offset), ParseError> {
    let c = Cursor { input };
    let year = c.two(0)? * 100 + c.two(2)?;
    c.expect(4, b'-', "'-'")?;
    let month = c.two(5)?;
    if !(1..=12).contains(&month) {
        return Err(ParseError::new(ParseErrorKind::Month(month as u8), 5));
    }
    c.expect(7, b'-', "'-'")?;
    let day = c.two(8)?;
    if day == 0 || day > u32::from(days_in_month(year as u16, month as u8)) {
        return Err(ParseError::new(ParseErrorKind::Day(day as u8), 8));
    }
    let t = c.byte(10, "'T'")?;
    if t | 0x20 != b't' {
        return Err(ParseError::new(
            ParseErrorKind::Unexpected {
                expected: "'T'",
                found: t,
            },
            10,
        ));
    }
    let hour = c.two(11)?;
    if hour > 23 {
        return Err(ParseError::new(ParseErrorKind::Hour(hour as u8), 11));
    }
    c.expect(13, b':', "':'")?;
    let minute = c.two(14)?;
    if minute > 59 {
        return Err(ParseError::new(ParseErrorKind::Minute(minute as u8), 14));
    }
    c.expect(16, b':', "':'")?;
    let mut second = c.two(17)?;
    if second > 60 {
        return Err(ParseError::new(ParseErrorKind::Second(second as u8), 17));
    }
    if second == 60 {
        second = 59;
    }

    let mut at = 19;
    let mut nanos = 0u32;
    const OFFSET_START: &str = "'.', 'Z' or an offset";
    let mut next = c.byte(at, OFFSET_START)?;
    if next == b'.' {
        let start = at + 1;
        at = start;
        while let Some(&b) = input.get(at) {
            let d = b.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            if at - start == 9 {
                return Err(ParseError::new(ParseErrorKind::FractionTooLong, at));
            }
            nanos = nanos * 10 + u32::from(d);
            at += 1;
        }
        let count = at - start;
        if count == 0 {
            return Err(ParseError::new(ParseErrorKind::EmptyFraction, start - 1));
        }
        nanos *= FRACTION_SCALE[count];
        next = c.byte(at, "'Z' or an offset")?;
    }

    let offset = match next {
        b'Z' | b'z' => {
            at += 1;
            Offset::UTC
        }
        b'+' | b'-' => {
            let hours = c.two(at + 1)?;
            if hours > 23 {
                return Err(ParseError::new(
                    ParseErrorKind::OffsetHour(hours as u8),
                    at + 1,
                ));
            }
            c.expect(at + 3, b':', "':'")?;
            let minutes = c.two(at + 4)?;
            if minutes > 59 {
                return Err(ParseError::new(
                    ParseErrorKind::OffsetMinute(minutes as u8),
                    at + 4,
                ));
            }
            let total = (hours * 60 + minutes) as i32;
            let signed = if next == b'-' { -total } else { total };
            at += 6;
            match Offset::from_minutes(signed) {
                Ok(o) => o,
                Err(_) => {
                    return Err(ParseError::new(
                        ParseErrorKind::OffsetHour(hours as u8),
                        at - 5,
                    ));
                }
            }
        }
        found => {
            let expected = if at == 19 {
                OFFSET_START
            } else {
                "'Z' or an offset"
            };
            return Err(ParseError::new(
                ParseErrorKind::Unexpected { expected, found },
                at,
            ));
        }
    };
    if at != input.len() {
        return Err(ParseError::new(ParseErrorKind::TrailingInput, at));
    }

    let days = days_from_civil(year as i32, month as u8, day as u8);
    let local = days * SECS_PER_DAY + i64::from(hour * 3_600 + minute * 60 + second);
    let secs = local - i64::from(offset.seconds());
    match Timestamp::from_unix(secs, nanos) {
        Ok(ts) => Ok((ts, offset)),
        Err(e) => Err(ParseError::new(ParseErrorKind::OutOfRange(e), 0)),
    }
}

impl Timestamp {
    /// Parses strict RFC 3339, e.g. `1985-04-12T23:20:50.52Z` or
    /// `1996-12-19T16:39:57-08:00`: `T` or `t` between date and time, a
    /// fraction of 1 to 9 digits, then `Z`, `z` or `±HH:MM`. Fields are
    /// range-checked (the day against its month); a leap second `:60` is
    /// clamped to `:59`. Errors say what was wrong and at which byte.
    #[inline]
    pub fn parse_rfc3339(input: &[u8]) -> Result<Self, ParseError> {
        parse_with_offset(input).map(|(ts, _)| ts)
    }

    /// Parses strict RFC 3339 and also returns the offset the text used
    /// (`Z` gives [`Offset::UTC`]).
    #[inline]
    pub fn parse_rfc3339_with_offset(input: &[u8]) -> Result<(Self, Offset), ParseError> {
        parse_with_offset(input)
    }

    /// Writes this instant as RFC 3339 into `out` (see [`Rfc3339Format`]);
    /// returns the number of bytes written.
    #[inline(always)]
    pub fn format_rfc3339(
        self,
        format: Rfc3339Format,
        out: &mut [u8],
    ) -> Result<usize, FormatError> {
        format.format(self, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    fn fmt(ts: Timestamp, format: Rfc3339Format) -> std::string::String {
        let mut buf = [0u8; MAX_RFC3339_LEN];
        let n = format.format(ts, &mut buf).unwrap();
        assert_eq!(n, format.formatted_len());
        std::string::String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    fn kind(input: &str) -> (ParseErrorKind, usize) {
        let e = Timestamp::parse_rfc3339(input.as_bytes()).unwrap_err();
        (e.kind(), e.position())
    }

    #[test]
    fn formats_every_precision_and_offset_style() {
        let ts = Timestamp::from_unix(1_700_000_000, 123_456_789).unwrap();
        assert_eq!(
            fmt(ts, Rfc3339Format::new(Precision::Seconds)),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(
            fmt(ts, Rfc3339Format::new(Precision::Millis)),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(
            fmt(ts, Rfc3339Format::new(Precision::Micros)),
            "2023-11-14T22:13:20.123456Z"
        );
        assert_eq!(
            fmt(ts, Rfc3339Format::new(Precision::Nanos)),
            "2023-11-14T22:13:20.123456789Z"
        );
        let east = Offset::from_hm(false, 5, 30).unwrap();
        assert_eq!(
            fmt(ts, Rfc3339Format::new(Precision::Millis).with_offset(east)),
            "2023-11-15T03:43:20.123+05:30"
        );
        let west = Offset::from_hm(true, 23, 59).unwrap();
        assert_eq!(
            fmt(ts, Rfc3339Format::new(Precision::Seconds).with_offset(west)),
            "2023-11-13T22:14:20-23:59"
        );
        assert_eq!(
            fmt(
                ts,
                Rfc3339Format::new(Precision::Seconds).with_offset(Offset::UTC)
            ),
            "2023-11-14T22:13:20+00:00"
        );
        assert_eq!(ts.to_string(), "2023-11-14T22:13:20.123456789Z");
    }

    #[test]
    fn formats_range_ends_and_pre_epoch() {
        let nanos = Rfc3339Format::new(Precision::Nanos);
        assert_eq!(fmt(Timestamp::MIN, nanos), "0001-01-01T00:00:00.000000000Z");
        assert_eq!(fmt(Timestamp::MAX, nanos), "9999-12-31T23:59:59.999999999Z");
        let before = Timestamp::from_unix_nanos(-1).unwrap();
        assert_eq!(fmt(before, nanos), "1969-12-31T23:59:59.999999999Z");
        let west = Offset::from_hm(true, 1, 0).unwrap();
        assert_eq!(
            fmt(
                Timestamp::MIN,
                Rfc3339Format::new(Precision::Seconds).with_offset(west)
            ),
            "0000-12-31T23:00:00-01:00"
        );
    }

    #[test]
    fn format_errors_are_reported_without_writing() {
        let ts = Timestamp::UNIX_EPOCH;
        let mut small = [0u8; 20];
        assert_eq!(
            Rfc3339Format::new(Precision::Millis).format(ts, &mut small),
            Err(FormatError::BufferTooSmall {
                needed: 24,
                available: 20
            })
        );
        assert_eq!(small, [0u8; 20]);
        let east = Offset::from_hm(false, 1, 0).unwrap();
        let mut buf = [0u8; MAX_RFC3339_LEN];
        assert_eq!(
            Rfc3339Format::new(Precision::Seconds)
                .with_offset(east)
                .format(Timestamp::MAX, &mut buf),
            Err(FormatError::YearOutOfRange { year: 10000 })
        );
    }

    #[test]
    fn fractions_truncate_and_never_round_up() {
        let ts = Timestamp::from_unix(0, 999_999_999).unwrap();
        assert_eq!(
            fmt(ts, Rfc3339Format::new(Precision::Millis)),
            "1970-01-01T00:00:00.999Z"
        );
        assert_eq!(
            fmt(ts, Rfc3339Format::new(Precision::Seconds)),
            "1970-01-01T00:00:00Z"
        );
    }

    #[test]
    fn parses_valid_forms() {
        let p = |s: &str| Timestamp::parse_rfc3339(s.as_bytes()).unwrap();
        assert_eq!(p("1970-01-01T00:00:00Z"), Timestamp::UNIX_EPOCH);
        assert_eq!(p("1970-01-01t00:00:00z"), Timestamp::UNIX_EPOCH);
        assert_eq!(p("1970-01-01T01:00:00+01:00"), Timestamp::UNIX_EPOCH);
        assert_eq!(p("1969-12-31T23:00:00-01:00"), Timestamp::UNIX_EPOCH);
        assert_eq!(p("1970-01-01T00:00:00.5Z").subsec_nanos(), 500_000_000);
        assert_eq!(p("1970-01-01T00:00:00.000000001Z").subsec_nanos(), 1);
        assert_eq!(p("0001-01-01T00:00:00Z"), Timestamp::MIN);
        assert_eq!(p("9999-12-31T23:59:59.999999999Z"), Timestamp::MAX);
        assert_eq!(p("0000-12-31T23:00:00-01:00"), Timestamp::MIN);
        let (ts, off) = Timestamp::parse_rfc3339_with_offset(b"2024-02-29T12:00:00-08:00").unwrap();
        assert_eq!(off.minutes(), -480);
        assert_eq!(ts.unix_secs(), 1_709_236_800);
        assert_eq!(
            "1970-01-01T00:00:01Z"
                .parse::<Timestamp>()
                .unwrap()
                .unix_secs(),
            1
        );
    }

    #[test]
    fn parse_errors_name_the_problem_and_position() {
        use ParseErrorKind as K;
        assert_eq!(kind(""), (K::UnexpectedEnd { expected: DIGIT }, 0));
        assert_eq!(kind("2024"), (K::UnexpectedEnd { expected: "'-'" }, 4));
        assert_eq!(
            kind("2o24-01-01T00:00:00Z"),
            (
                K::Unexpected {
                    expected: DIGIT,
                    found: b'o'
                },
                1
            )
        );
        assert_eq!(
            kind("2024/01-01T00:00:00Z"),
            (
                K::Unexpected {
                    expected: "'-'",
                    found: b'/'
                },
                4
            )
        );
        assert_eq!(kind("2024-13-01T00:00:00Z"), (K::Month(13), 5));
        assert_eq!(kind("2024-00-01T00:00:00Z"), (K::Month(0), 5));
        assert_eq!(kind("2023-02-29T00:00:00Z"), (K::Day(29), 8));
        assert_eq!(kind("2024-04-31T00:00:00Z"), (K::Day(31), 8));
        assert_eq!(
            kind("2024-01-01 00:00:00Z"),
            (
                K::Unexpected {
                    expected: "'T'",
                    found: b' '
                },
                10
            )
        );
        assert_eq!(kind("2024-01-01T24:00:00Z"), (K::Hour(24), 11));
        assert_eq!(kind("2024-01-01T00:60:00Z"), (K::Minute(60), 14));
        assert_eq!(kind("2024-01-01T00:00:61Z"), (K::Second(61), 17));
        assert_eq!(
            kind("2024-01-01T00:00:00"),
            (
                K::UnexpectedEnd {
                    expected: "'.', 'Z' or an offset"
                },
                19
            )
        );
        assert_eq!(kind("2024-01-01T00:00:00.Z"), (K::EmptyFraction, 19));
        assert_eq!(
            kind("2024-01-01T00:00:00.1234567890Z"),
            (K::FractionTooLong, 29)
        );
        assert_eq!(
            kind("2024-01-01T00:00:00.123"),
            (
                K::UnexpectedEnd {
                    expected: "'Z' or an offset"
                },
                23
            )
        );
        assert_eq!(
            kind("2024-01-01T00:00:00.123x"),
            (
                K::Unexpected {
                    expected: "'Z' or an offset",
                    found: b'x'
                },
                23
            )
        );
        assert_eq!(kind("2024-01-01T00:00:00+24:00"), (K::OffsetHour(24), 20));
        assert_eq!(kind("2024-01-01T00:00:00+01:60"), (K::OffsetMinute(60), 23));
        assert_eq!(
            kind("2024-01-01T00:00:00+0100"),
            (
                K::Unexpected {
                    expected: "':'",
                    found: b'0'
                },
                22
            )
        );
        assert_eq!(
            kind("2024-01-01T00:00:00+01:0"),
            (K::UnexpectedEnd { expected: DIGIT }, 24)
        );
        assert_eq!(kind("2024-01-01T00:00:00ZZ"), (K::TrailingInput, 20));
        assert_eq!(kind("2024-01-01T00:00:00Z "), (K::TrailingInput, 20));
        assert_eq!(
            kind("0000-12-31T23:59:59Z"),
            (K::OutOfRange(TimestampError::BeforeMin), 0)
        );
        assert_eq!(
            kind("9999-12-31T23:59:59-00:01"),
            (K::OutOfRange(TimestampError::AfterMax), 0)
        );
    }

    #[test]
    fn error_messages_name_position() {
        let e = Timestamp::parse_rfc3339(b"2024-13-01T00:00:00Z").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid RFC 3339 timestamp: month 13 at byte 5 is not in 01..=12"
        );
        let e = Timestamp::parse_rfc3339(b"2024-01-01X").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid RFC 3339 timestamp: expected 'T' at byte 10, found 'X'"
        );
    }

    #[test]
    fn leap_second_is_clamped() {
        let leap = Timestamp::parse_rfc3339(b"1990-12-31T23:59:60.25Z").unwrap();
        let before = Timestamp::parse_rfc3339(b"1990-12-31T23:59:59.25Z").unwrap();
        assert_eq!(leap, before);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]

        /// The word-at-a-time path accepts nothing the precise parser
        /// rejects, and agrees on the value of whatever it accepts.
        #[test]
        fn fast_path_agrees_with_the_precise_parser(
            secs in -62_135_596_800i64..=253_402_300_799,
            nanos in 0u32..1_000_000_000,
            digits in 0usize..=10,
            offset in proptest::option::of(-1439i32..=1439),
            edits in proptest::collection::vec((0usize..40, proptest::prelude::any::<u8>()), 0..3),
        ) {
            let ts = Timestamp::from_unix(secs, nanos).unwrap();
            let mut format = Rfc3339Format::new(Precision::Nanos);
            if let Some(m) = offset {
                format = format.with_offset(Offset::from_minutes(m).unwrap());
            }
            let mut buf = [0u8; MAX_RFC3339_LEN];
            let Ok(n) = format.format(ts, &mut buf) else { return Ok(()); };
            // Cut or extend the fraction to `digits` digits.
            let mut text = buf[..19].to_vec();
            if digits > 0 {
                text.push(b'.');
                text.extend(core::iter::repeat_n(b'7', digits));
            }
            text.extend_from_slice(&buf[29..n]);
            for (at, byte) in edits {
                if !text.is_empty() {
                    let i = at % text.len();
                    text[i] = byte;
                }
            }
            if let Some(fast) = parse_fast(&text) {
                proptest::prop_assert_eq!(parse_precise(&text), Ok(fast));
            }
            proptest::prop_assert_eq!(parse_with_offset(&text), parse_precise(&text));
        }
    }

    /// The head words of local seconds, written out from the civil
    /// conversion with `core::fmt`: slow and plainly right.
    fn reference_head(local: i64) -> (std::string::String, u32) {
        let c = civil::civil_from_unix(local, 0);
        let text = std::format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}",
            c.year,
            c.month,
            c.day,
            c.hour,
            c.minute
        );
        (text, u32::from(c.second))
    }

    fn head_text(head: Head) -> (std::string::String, u32) {
        let mut bytes = head.date.to_le_bytes().to_vec();
        bytes.extend_from_slice(&head.time.to_le_bytes());
        (std::string::String::from_utf8(bytes).unwrap(), head.second)
    }

    /// Every day that any offset can reach, at a second that moves through
    /// the day, matches the civil conversion.
    #[test]
    fn head_matches_the_civil_conversion_on_every_day() {
        let first = Timestamp::MIN.unix_secs() - SECS_PER_DAY;
        let last = Timestamp::MAX.unix_secs() + SECS_PER_DAY;
        let mut local = first;
        let mut second_of_day = 0;
        while local <= last {
            let at = local + second_of_day;
            let want = reference_head(at);
            match head(at) {
                Ok(head) => assert_eq!(head_text(head), want, "{at}"),
                Err(e) => {
                    let year = civil::civil_from_unix(at, 0).year;
                    assert!(year > 9999, "{at}");
                    assert_eq!(e, FormatError::YearOutOfRange { year });
                }
            }
            local += SECS_PER_DAY;
            second_of_day = (second_of_day + 7_919) % SECS_PER_DAY;
        }
    }

    /// The time of day comes from a rounded-up fraction whose error grows
    /// with the instant, so every second of the last and first reachable
    /// days (and of the epoch's) is checked.
    #[test]
    fn head_matches_the_civil_conversion_on_every_second_of_extreme_days() {
        let days = [
            Timestamp::MIN.unix_secs() - SECS_PER_DAY,
            Timestamp::MIN.unix_secs(),
            -SECS_PER_DAY,
            0,
            Timestamp::MAX.unix_secs() - (SECS_PER_DAY - 1),
        ];
        for start in days {
            for at in start..start + SECS_PER_DAY {
                assert_eq!(head_text(head(at).unwrap()), reference_head(at), "{at}");
            }
        }
    }

    #[test]
    fn month_day_words_match_the_civil_conversion() {
        // 2003-03-01 starts a March-based year that ends on 29 February.
        let march_first = days_from_civil(2003, 3, 1) * SECS_PER_DAY;
        for (day_of_year, [date, time]) in MONTH_DAY_WORDS.iter().enumerate() {
            let c = civil::civil_from_unix(march_first + day_of_year as i64 * SECS_PER_DAY, 0);
            let date = date.to_le_bytes();
            let time = time.to_le_bytes();
            assert_eq!(&date[4..], std::format!("-{:02}-", c.month).as_bytes());
            assert_eq!(&time[..3], std::format!("{:02}T", c.day).as_bytes());
            assert_eq!(time[5], b':');
        }
    }

    #[test]
    fn pair_table_wraps_at_one_hundred() {
        for value in 0..128u32 {
            let want = std::format!("{:02}", value % 100);
            assert_eq!(&(pair(value) as u16).to_le_bytes(), want.as_bytes());
        }
        for ms in 0..1000u32 {
            assert_eq!((ms * 41) >> 12, ms / 100);
        }
    }

    #[test]
    fn minimal_precision_keeps_every_digit() {
        let cases = [
            (0, Precision::Seconds),
            (5_000_000, Precision::Millis),
            (5_000, Precision::Micros),
            (5, Precision::Nanos),
        ];
        for (nanos, want) in cases {
            let ts = Timestamp::from_unix(1, nanos).unwrap();
            assert_eq!(Precision::minimal_for(ts), want);
        }
    }
}
