//! RFC 3339 output: the text is built in registers as little-endian words
//! and stored with a few fixed-size writes, with no division and no
//! data-dependent branch besides the four-digit year check (see [`head`]).

use super::super::civil::{self, date_from_shifted_days};
use super::super::offset::Offset;
use super::super::timestamp::{SECS_PER_DAY, Timestamp};
use super::{FormatError, Precision, Rfc3339Format};

/// Length of `YYYY-MM-DDTHH:MM:SS`.
const PREFIX_LEN: usize = 19;

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
pub(super) fn pair(value: u32) -> u64 {
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
pub(super) const MONTH_DAY_WORDS: [[u64; 2]; 366] = {
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
