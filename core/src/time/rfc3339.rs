//! RFC 3339 formatting into caller buffers and strict RFC 3339 parsing.
//!
//! Output is always `YYYY-MM-DDTHH:MM:SS[.fff|.ffffff|.fffffffff](Z|±HH:MM)`:
//! an upper-case `T`, a fraction of exactly 0, 3, 6 or 9 digits (truncated,
//! never rounded, so the text never names a later instant), and either `Z` or
//! a numeric offset. Local years must fit four digits (0000..=9999).
//!
//! Parsing accepts exactly the RFC 3339 `date-time` grammar: `T`/`t` between
//! date and time, a fraction of 1 to 9 digits, and `Z`, `z` or `±HH:MM`.
//! Fields are range-checked (the day against its month and year). Every error
//! names what was expected and the byte position where the input went wrong.
//!
//! # Leap seconds
//!
//! A [`Timestamp`] counts Unix time, which has no leap seconds, so:
//!
//! - a second of `60` is accepted only where RFC 3339 (section 5.7) puts a
//!   leap second: at the end of a month, at 23:59:60 UTC. The offset is
//!   applied first, so `1990-12-31T15:59:60-08:00` is accepted as the same
//!   instant as `1990-12-31T23:59:60Z`, and `2024-03-14T12:30:60Z` is
//!   rejected with [`ParseErrorKind::LeapSecond`]. No table of the leap
//!   seconds actually inserted is consulted: it changes with every IERS
//!   bulletin, and a parser should not go stale;
//! - the leap second, whatever its fraction, reads as 23:59:59.999999999
//!   UTC, the last instant before midnight. Text order is kept
//!   (`23:59:60.2Z` never reads before `23:59:59.7Z`), and, as with the
//!   truncated fractions of the output, the value read is never later than
//!   the instant written;
//! - formatting never writes `60`: the value a leap second reads as is
//!   written `23:59:59.999999999Z` at nanosecond precision. Every parsed text
//!   formats back to itself except a leap second, and every timestamp
//!   formats to text that parses back to it.
//!
//! The module holds the options and error types; `format` writes text and
//! `parse` reads it.

use core::fmt;

use super::offset::Offset;
use super::timestamp::{Timestamp, TimestampError};

mod format;
mod parse;
#[cfg(test)]
mod tests;

pub(crate) use format::{Head, emit_for, head, offset_word};
use parse::parse_with_offset;

/// The longest text [`Rfc3339Format::format`] writes:
/// `YYYY-MM-DDTHH:MM:SS.fffffffff+HH:MM`.
pub const MAX_RFC3339_LEN: usize = 35;

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
    /// A second of 60 that is not 23:59:60 UTC on the last day of a month,
    /// the only place a leap second stands (see the module docs).
    LeapSecond,
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
            ParseErrorKind::LeapSecond => write!(
                f,
                "second 60 at byte {at} is a leap second, which stands only at \
                 23:59:60 UTC on the last day of a month"
            ),
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

impl Timestamp {
    /// Parses strict RFC 3339, e.g. `1985-04-12T23:20:50.52Z` or
    /// `1996-12-19T16:39:57-08:00`: `T` or `t` between date and time, a
    /// fraction of 1 to 9 digits, then `Z`, `z` or `±HH:MM`. Fields are
    /// range-checked (the day against its month); a leap second `:60` is
    /// accepted only at 23:59:60 UTC at the end of a month and reads as
    /// 23:59:59.999999999 (see the [`time`](crate::time) module docs). Errors say what was
    /// wrong and at which byte.
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
