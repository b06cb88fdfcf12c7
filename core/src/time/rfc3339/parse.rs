//! RFC 3339 input: a word-at-a-time fast path for well-formed text, and a
//! byte-by-byte parser that accepts the same language and says what went
//! wrong where.

use super::super::civil::{self, days_from_civil, days_in_month};
use super::super::offset::Offset;
use super::super::timestamp::{SECS_PER_DAY, Timestamp};
use super::{ParseError, ParseErrorKind};

pub(super) const DIGIT: &str = "a digit";

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

/// The nanoseconds a leap second `23:59:60[.f]` reads as, after
/// `23:59:59`: the last instant before midnight, which Unix time has (see
/// the module docs of `rfc3339` for why).
const LEAP_SECOND_NANOS: u32 = 999_999_999;

/// Whether the Unix second `secs` is 23:59:59 UTC on the last day of a
/// month: the only second a leap second may follow (RFC 3339 section 5.7).
/// `secs` lies within a day of the [`Timestamp`] range.
const fn ends_a_month(secs: i64) -> bool {
    let next = civil::civil_from_unix(secs + 1, 0);
    next.day == 1 && next.hour == 0 && next.minute == 0 && next.second == 0
}

/// Parses strict RFC 3339 and returns the instant with the offset it was
/// written at (`Z` gives [`Offset::UTC`]).
///
/// Well-formed input takes a fast path that checks the fixed-layout first
/// 19 bytes a word at a time; anything it does not accept goes to the
/// byte-by-byte parser, which either accepts it too or explains the error.
#[inline]
pub(super) fn parse_with_offset(input: &[u8]) -> Result<(Timestamp, Offset), ParseError> {
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
pub(super) fn parse_fast(input: &[u8]) -> Option<(Timestamp, Offset)> {
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
        || second > 59
    {
        // Leap seconds too: [`parse_precise`] checks where they may stand.
        return None;
    }

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
pub(super) fn parse_precise(input: &[u8]) -> Result<(Timestamp, Offset), ParseError> {
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
    let second = c.two(17)?;
    if second > 60 {
        return Err(ParseError::new(ParseErrorKind::Second(second as u8), 17));
    }
    // A leap second is read at its `:59`, then moved to the last nanosecond
    // of that second once the offset says where it stands in UTC.
    let leap = second == 60;
    let second = second - u32::from(leap);

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
    if leap {
        if !ends_a_month(secs) {
            return Err(ParseError::new(ParseErrorKind::LeapSecond, 17));
        }
        nanos = LEAP_SECOND_NANOS;
    }
    match Timestamp::from_unix(secs, nanos) {
        Ok(ts) => Ok((ts, offset)),
        Err(e) => Err(ParseError::new(ParseErrorKind::OutOfRange(e), 0)),
    }
}
