//! Parsing the four text forms, in either case, with positioned errors.
//!
//! Invariants: exactly the hyphenated (36 bytes), simple (32), braced (38)
//! and URN (45, prefix in any case) forms are accepted; hex digits may be
//! upper or lower case, also mixed; anything else is rejected with the byte
//! offset (into the original input) of the first byte that is wrong. The
//! fast path validates and decodes sixteen digits per SSE2 instruction on
//! x86-64 and eight per 64-bit word elsewhere (the two are tested to agree);
//! only a rejected input pays for the byte-by-byte scan that finds the
//! position.

use core::fmt;
use core::str::FromStr;

use super::Uuid;
use super::encode::{BRACED_LEN, HYPHENATED_LEN, SIMPLE_LEN, URN_LEN, URN_PREFIX};

/// Why a text could not be parsed as a UUID. Positions are byte offsets into
/// the whole input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// The length matches none of the forms (32, 36, 38 or 45 bytes).
    InvalidLength {
        /// The input's length in bytes.
        len: usize,
    },
    /// A byte where a hex digit belongs is not one.
    InvalidDigit {
        /// Where the byte is.
        position: usize,
        /// The byte found.
        found: u8,
    },
    /// A byte where a group-separating `-` belongs is something else.
    ExpectedHyphen {
        /// Where the byte is.
        position: usize,
        /// The byte found.
        found: u8,
    },
    /// A 38-byte input is not enclosed in `{` and `}`.
    ExpectedBrace {
        /// Where the brace belongs (0 or 37).
        position: usize,
        /// The brace that belongs there.
        expected: u8,
        /// The byte found.
        found: u8,
    },
    /// A 45-byte input does not start with `urn:uuid:` (in any case).
    InvalidUrnPrefix {
        /// The first byte that differs from the prefix.
        position: usize,
        /// The byte found.
        found: u8,
    },
}

impl ParseError {
    /// The byte offset of the offending byte, when one byte is at fault.
    #[must_use]
    pub const fn position(&self) -> Option<usize> {
        match *self {
            Self::InvalidLength { .. } => None,
            Self::InvalidDigit { position, .. }
            | Self::ExpectedHyphen { position, .. }
            | Self::ExpectedBrace { position, .. }
            | Self::InvalidUrnPrefix { position, .. } => Some(position),
        }
    }
}

/// Shows a byte as `'c'` when it is printable ASCII, as `0xNN` otherwise, so
/// an error line never carries control characters.
struct ShownByte(u8);

impl fmt::Display for ShownByte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_ascii_graphic() || self.0 == b' ' {
            write!(f, "'{}'", char::from(self.0))
        } else {
            write!(f, "byte 0x{:02x}", self.0)
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::InvalidLength { len } => write!(
                f,
                "invalid UUID length {len}: expected 32 (simple), 36 (hyphenated), \
                 38 (braced) or 45 (urn) bytes"
            ),
            Self::InvalidDigit { position, found } => write!(
                f,
                "invalid UUID: expected a hex digit at byte {position}, found {}",
                ShownByte(found)
            ),
            Self::ExpectedHyphen { position, found } => write!(
                f,
                "invalid UUID: expected '-' at byte {position}, found {}",
                ShownByte(found)
            ),
            Self::ExpectedBrace {
                position,
                expected,
                found,
            } => write!(
                f,
                "invalid UUID: expected '{}' at byte {position}, found {}",
                char::from(expected),
                ShownByte(found)
            ),
            Self::InvalidUrnPrefix { position, found } => write!(
                f,
                "invalid UUID: expected the prefix \"urn:uuid:\", found {} at byte {position}",
                ShownByte(found)
            ),
        }
    }
}

impl core::error::Error for ParseError {}

#[cfg(any(test, not(all(target_arch = "x86_64", target_feature = "sse2"))))]
const ONES: u64 = 0x0101_0101_0101_0101;
#[cfg(any(test, not(all(target_arch = "x86_64", target_feature = "sse2"))))]
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Sets the high bit of each byte of `v` that is `>= lo` (for bytes < 0x80).
#[cfg(any(test, not(all(target_arch = "x86_64", target_feature = "sse2"))))]
#[inline(always)]
const fn ge(v: u64, lo: u8) -> u64 {
    v.wrapping_add(ONES * (0x80 - lo as u64))
}

/// Decodes eight ASCII hex digits, given as the big-endian bytes of `x`.
/// Returns the value and whether all eight were hex digits.
///
/// SWAR: for bytes below 0x80, adding `0x80 - lo` sets a byte's high bit
/// exactly when the byte is `>= lo`, and cannot carry into the next byte.
/// Bytes at or above 0x80 are rejected first, so their carries only spoil a
/// result that is discarded anyway.
#[cfg(any(test, not(all(target_arch = "x86_64", target_feature = "sse2"))))]
#[inline(always)]
const fn unhex8(x: u64) -> (u32, bool) {
    let folded = x | (ONES * 0x20);
    let digit = ge(x, b'0') & !ge(x, b'9' + 1);
    let letter = ge(folded, b'a') & !ge(folded, b'f' + 1);
    let valid = ((x & HIGH) == 0) & (((digit | letter) & HIGH) == HIGH);
    let nibbles = (x & (ONES * 0x0F)) + ((letter & HIGH) >> 7) * 9;
    let v = (nibbles | (nibbles >> 4)) & 0x00FF_00FF_00FF_00FF;
    let v = (v | (v >> 8)) & 0x0000_FFFF_0000_FFFF;
    let v = (v | (v >> 16)) & 0xFFFF_FFFF;
    (v as u32, valid)
}

/// Eight bytes at fixed offsets as a big-endian word. The offsets are
/// constants inside a fixed-size array, so the compiler checks them.
macro_rules! word {
    ($s:ident, $a:literal) => {
        u64::from_be_bytes([
            $s[$a],
            $s[$a + 1],
            $s[$a + 2],
            $s[$a + 3],
            $s[$a + 4],
            $s[$a + 5],
            $s[$a + 6],
            $s[$a + 7],
        ])
    };
    ($s:ident, $a:literal, $b:literal) => {
        u64::from_be_bytes([
            $s[$a],
            $s[$a + 1],
            $s[$a + 2],
            $s[$a + 3],
            $s[$b],
            $s[$b + 1],
            $s[$b + 2],
            $s[$b + 3],
        ])
    };
}

/// Decodes 32 hex digits given as four big-endian words of eight ASCII
/// bytes each (digit 0 is the top byte of word 0); `None` if any byte is not
/// a hex digit.
#[cfg(any(test, not(all(target_arch = "x86_64", target_feature = "sse2"))))]
#[inline(always)]
fn combine_swar(words: [u64; 4]) -> Option<u128> {
    let (a, va) = unhex8(words[0]);
    let (b, vb) = unhex8(words[1]);
    let (c, vc) = unhex8(words[2]);
    let (d, vd) = unhex8(words[3]);
    if va & vb & vc & vd {
        Some((u128::from(a) << 96) | (u128::from(b) << 64) | (u128::from(c) << 32) | u128::from(d))
    } else {
        None
    }
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
use combine_swar as combine;

/// As the portable version, with SSE2 (part of every x86-64 CPU): classify
/// and convert 16 digits per instruction, then join digit pairs into bytes
/// with 16-bit shifts and a saturating pack (each pair is at most 0xFF, so
/// the pack never saturates).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn combine(words: [u64; 4]) -> Option<u128> {
    use core::arch::x86_64::{
        __m128i, _mm_add_epi8, _mm_and_si128, _mm_cmpgt_epi8, _mm_cmplt_epi8, _mm_cvtsi128_si64,
        _mm_movemask_epi8, _mm_or_si128, _mm_packus_epi16, _mm_set_epi64x, _mm_set1_epi8,
        _mm_set1_epi16, _mm_slli_epi16, _mm_srli_epi16, _mm_unpackhi_epi64,
    };
    // SAFETY: these intrinsics only require SSE2, which this function is
    // compiled for (the `cfg` above checks `target_feature = "sse2"`); none
    // of them touches memory.
    unsafe {
        // Byte i of a vector is digit i (the words are big-endian).
        let first = _mm_set_epi64x(words[1].swap_bytes() as i64, words[0].swap_bytes() as i64);
        let second = _mm_set_epi64x(words[3].swap_bytes() as i64, words[2].swap_bytes() as i64);
        let in_range = |v: __m128i, lo: u8, hi: u8| {
            // Signed compares: bytes >= 0x80 are negative and fail `lo`.
            _mm_and_si128(
                _mm_cmpgt_epi8(v, _mm_set1_epi8(lo as i8 - 1)),
                _mm_cmplt_epi8(v, _mm_set1_epi8(hi as i8 + 1)),
            )
        };
        let decode = |v: __m128i| {
            let digit = in_range(v, b'0', b'9');
            let letter = in_range(_mm_or_si128(v, _mm_set1_epi8(0x20)), b'a', b'f');
            let valid = _mm_movemask_epi8(_mm_or_si128(digit, letter)) == 0xFFFF;
            let nibbles = _mm_add_epi8(
                _mm_and_si128(v, _mm_set1_epi8(0x0F)),
                _mm_and_si128(letter, _mm_set1_epi8(9)),
            );
            // 16-bit lane = (second digit << 8) | first digit; make it
            // (first << 4) | second.
            let low_byte = _mm_and_si128(nibbles, _mm_set1_epi16(0x00FF));
            let pairs = _mm_or_si128(_mm_slli_epi16::<4>(low_byte), _mm_srli_epi16::<8>(nibbles));
            (pairs, valid)
        };
        let (a, va) = decode(first);
        let (b, vb) = decode(second);
        if !(va & vb) {
            return None;
        }
        let bytes = _mm_packus_epi16(a, b);
        let high = _mm_cvtsi128_si64(bytes) as u64;
        let low = _mm_cvtsi128_si64(_mm_unpackhi_epi64(bytes, bytes)) as u64;
        Some((u128::from(high.swap_bytes()) << 64) | u128::from(low.swap_bytes()))
    }
}

#[inline(always)]
fn parse_simple(s: &[u8; SIMPLE_LEN]) -> Option<u128> {
    combine([word!(s, 0), word!(s, 8), word!(s, 16), word!(s, 24)])
}

#[inline(always)]
fn parse_hyphenated(s: &[u8; HYPHENATED_LEN]) -> Option<u128> {
    if (s[8] != b'-') | (s[13] != b'-') | (s[18] != b'-') | (s[23] != b'-') {
        return None;
    }
    combine([word!(s, 0), word!(s, 9, 14), word!(s, 19, 24), word!(s, 28)])
}

const HYPHENS: [usize; 4] = [8, 13, 18, 23];

/// The first wrong byte of a simple or hyphenated body starting at `offset`.
#[cold]
fn body_error(body: &[u8], hyphens: &[usize], offset: usize) -> ParseError {
    for (i, &found) in body.iter().enumerate() {
        let position = offset + i;
        if hyphens.contains(&i) {
            if found != b'-' {
                return ParseError::ExpectedHyphen { position, found };
            }
        } else if !found.is_ascii_hexdigit() {
            return ParseError::InvalidDigit { position, found };
        }
    }
    // Only reached if the fast path rejected a valid body, which the tests
    // rule out; report the length rather than invent a position.
    ParseError::InvalidLength { len: body.len() }
}

fn hyphenated_at(input: &[u8], offset: usize) -> Result<Uuid, ParseError> {
    match input[offset..].first_chunk::<HYPHENATED_LEN>() {
        Some(body) => parse_hyphenated(body)
            .map(Uuid::from_u128)
            .ok_or_else(|| body_error(body, &HYPHENS, offset)),
        None => Err(ParseError::InvalidLength { len: input.len() }),
    }
}

impl Uuid {
    /// Parses the hyphenated, simple, URN or braced form, in either case.
    ///
    /// # Errors
    /// A [`ParseError`] naming what is wrong and, where one byte is at fault,
    /// its byte offset.
    #[inline]
    pub fn parse_str(input: &str) -> Result<Self, ParseError> {
        Self::parse_ascii(input.as_bytes())
    }

    /// Parses like [`Uuid::parse_str`], from bytes that need not be UTF-8.
    ///
    /// # Errors
    /// As [`Uuid::parse_str`].
    #[inline]
    pub fn parse_ascii(input: &[u8]) -> Result<Self, ParseError> {
        // Fast path for the two bare forms that are well formed; braced,
        // URN and every error take the general path.
        let value = match input.len() {
            HYPHENATED_LEN => input.first_chunk().and_then(parse_hyphenated),
            SIMPLE_LEN => input.first_chunk().and_then(parse_simple),
            _ => None,
        };
        match value {
            Some(value) => Ok(Self::from_u128(value)),
            None => Self::parse_general(input),
        }
    }

    /// Every form, with the position of the first wrong byte on failure.
    #[inline(never)]
    fn parse_general(input: &[u8]) -> Result<Self, ParseError> {
        match input.len() {
            HYPHENATED_LEN => hyphenated_at(input, 0),
            SIMPLE_LEN => match input.first_chunk::<SIMPLE_LEN>() {
                Some(body) => parse_simple(body)
                    .map(Self::from_u128)
                    .ok_or_else(|| body_error(body, &[], 0)),
                None => Err(ParseError::InvalidLength { len: input.len() }),
            },
            BRACED_LEN => {
                let (first, last) = (input[0], input[BRACED_LEN - 1]);
                if first != b'{' {
                    return Err(ParseError::ExpectedBrace {
                        position: 0,
                        expected: b'{',
                        found: first,
                    });
                }
                // Check the body first so a bad digit is reported before a
                // missing closing brace, in reading order.
                let uuid = hyphenated_at(&input[..BRACED_LEN - 1], 1)?;
                if last != b'}' {
                    return Err(ParseError::ExpectedBrace {
                        position: BRACED_LEN - 1,
                        expected: b'}',
                        found: last,
                    });
                }
                Ok(uuid)
            }
            URN_LEN => {
                let prefix = &input[..URN_PREFIX.len()];
                if !prefix.eq_ignore_ascii_case(URN_PREFIX) {
                    let (position, &found) = prefix
                        .iter()
                        .enumerate()
                        .find(|&(i, b)| !b.eq_ignore_ascii_case(&URN_PREFIX[i]))
                        .unwrap_or((0, &input[0]));
                    return Err(ParseError::InvalidUrnPrefix { position, found });
                }
                hyphenated_at(input, URN_PREFIX.len())
            }
            len => Err(ParseError::InvalidLength { len }),
        }
    }
}

impl FromStr for Uuid {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_str(s)
    }
}

impl TryFrom<&str> for Uuid {
    type Error = ParseError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::parse_str(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    const SAMPLE: u128 = 0x67e5_5044_10b1_426f_9247_bb68_0e5f_e0c8;

    #[test]
    fn accepts_every_form_in_either_case() {
        for s in [
            "67e55044-10b1-426f-9247-bb680e5fe0c8",
            "67E55044-10B1-426F-9247-BB680E5FE0C8",
            "67e5504410b1426f9247bb680e5fe0c8",
            "67E5504410b1426F9247BB680e5fe0c8",
            "urn:uuid:67e55044-10b1-426f-9247-bb680e5fe0c8",
            "URN:UUID:67E55044-10B1-426F-9247-BB680E5FE0C8",
            "{67e55044-10b1-426f-9247-bb680e5fe0c8}",
            "{67E55044-10B1-426F-9247-BB680E5FE0C8}",
        ] {
            assert_eq!(Uuid::parse_str(s), Ok(Uuid::from_u128(SAMPLE)), "{s}");
        }
    }

    #[test]
    fn unhex8_agrees_with_a_byte_table_on_every_single_byte() {
        // Put each of the 256 byte values in every one of the 8 slots of an
        // otherwise valid word; validity and value must match the reference.
        for slot in 0..8 {
            for b in 0..=255u8 {
                let mut word = *b"0123abCD";
                word[slot] = b;
                let (value, valid) = unhex8(u64::from_be_bytes(word));
                let text = core::str::from_utf8(&word).ok();
                let expected = text
                    .filter(|t| t.bytes().all(|c| c.is_ascii_hexdigit()))
                    .and_then(|t| u32::from_str_radix(t, 16).ok());
                assert_eq!(valid, expected.is_some(), "slot {slot} byte {b:#x}");
                if let Some(expected) = expected {
                    assert_eq!(value, expected);
                }
            }
        }
    }

    #[test]
    fn simd_and_swar_decoding_agree() {
        let mut x = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let alphabet = b"0123456789abcdefABCDEF-g/:@`G\x00\xff";
        for round in 0..20_000 {
            let mut words = [0u64; 4];
            for word in &mut words {
                let mut bytes = [0u8; 8];
                for b in &mut bytes {
                    let r = next();
                    // Mostly valid digits, sometimes an edge-case byte.
                    let pick = if r % 16 == 0 {
                        16 + (r >> 8) % 15
                    } else {
                        (r >> 8) % 22
                    };
                    *b = alphabet[pick as usize];
                }
                *word = u64::from_be_bytes(bytes);
            }
            if round % 3 == 0 {
                words[round % 4] = next();
            }
            assert_eq!(combine(words), combine_swar(words), "{words:x?}");
        }
    }

    #[test]
    fn length_errors() {
        for s in [
            "",
            "0",
            "67e55044-10b1-426f-9247-bb680e5fe0c",
            "67e55044-10b1-426f-9247-bb680e5fe0c8a",
        ] {
            assert_eq!(
                Uuid::parse_str(s),
                Err(ParseError::InvalidLength { len: s.len() })
            );
        }
    }

    #[test]
    fn positions_of_bad_digits_and_separators() {
        let cases: [(&str, ParseError); 9] = [
            (
                "67e55044-10b1-426f-9247-bb680e5fe0cg",
                ParseError::InvalidDigit {
                    position: 35,
                    found: b'g',
                },
            ),
            (
                "x7e55044-10b1-426f-9247-bb680e5fe0c8",
                ParseError::InvalidDigit {
                    position: 0,
                    found: b'x',
                },
            ),
            (
                "67e55044_10b1-426f-9247-bb680e5fe0c8",
                ParseError::ExpectedHyphen {
                    position: 8,
                    found: b'_',
                },
            ),
            (
                "67e55044-10b1-426f-9247-bb680e5fe-c8",
                ParseError::InvalidDigit {
                    position: 33,
                    found: b'-',
                },
            ),
            (
                "67e5504410b1426f9247bb680e5fe0c\u{7f}",
                ParseError::InvalidDigit {
                    position: 31,
                    found: 0x7f,
                },
            ),
            (
                "[67e55044-10b1-426f-9247-bb680e5fe0c8}",
                ParseError::ExpectedBrace {
                    position: 0,
                    expected: b'{',
                    found: b'[',
                },
            ),
            (
                "{67e55044-10b1-426f-9247-bb680e5fe0c8]",
                ParseError::ExpectedBrace {
                    position: 37,
                    expected: b'}',
                    found: b']',
                },
            ),
            (
                "{67e55044-10b1-426f-9247-bb680e5fz0c8}",
                ParseError::InvalidDigit {
                    position: 33,
                    found: b'z',
                },
            ),
            (
                "urn:uuad:67e55044-10b1-426f-9247-bb680e5fe0c8",
                ParseError::InvalidUrnPrefix {
                    position: 6,
                    found: b'a',
                },
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(Uuid::parse_str(input), Err(expected), "{input}");
        }
        assert_eq!(
            Uuid::parse_str("urn:uuid:67e55044-10b1-426f-9247+bb680e5fe0c8"),
            Err(ParseError::ExpectedHyphen {
                position: 32,
                found: b'+'
            })
        );
    }

    #[test]
    fn non_ascii_input_is_an_error_at_its_byte() {
        // 'é' is two bytes, so this is 36 bytes long with a non-hex at 34.
        let s = "67e55044-10b1-426f-9247-bb680e5fe0é";
        assert_eq!(s.len(), 36);
        assert_eq!(
            Uuid::parse_str(s),
            Err(ParseError::InvalidDigit {
                position: 34,
                found: 0xC3
            })
        );
        assert!(Uuid::parse_ascii(&[0xFF; 32]).is_err());
    }

    #[test]
    fn messages_name_the_problem_and_position() {
        let err = Uuid::parse_str("67e55044-10b1-426f-9247-bb680e5fe0cg").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid UUID: expected a hex digit at byte 35, found 'g'"
        );
        assert_eq!(err.position(), Some(35));
        let err = Uuid::parse_str("67e5504410b1426f9247bb680e5fe0c\n").unwrap_err();
        assert!(err.to_string().ends_with("found byte 0x0a"), "{err}");
        let err = Uuid::parse_str("abc").unwrap_err();
        assert!(
            err.to_string().starts_with("invalid UUID length 3"),
            "{err}"
        );
        assert_eq!(err.position(), None);
    }

    #[test]
    fn from_str_and_try_from() {
        let u: Uuid = "67e55044-10b1-426f-9247-bb680e5fe0c8".parse().unwrap();
        assert_eq!(u.as_u128(), SAMPLE);
        assert_eq!(Uuid::try_from("67e5504410b1426f9247bb680e5fe0c8"), Ok(u));
        assert_eq!(u.to_string().parse::<Uuid>(), Ok(u));
    }
}
