//! Text encodings of a UUID into caller buffers or a stack string.
//!
//! Invariants: every byte written is ASCII (hex digits, `-`, `{`, `}` or the
//! `urn:uuid:` prefix), which is what makes handing out `&str` views of the
//! written bytes sound; nothing allocates; a buffer that is too small is an
//! error that says how many bytes were needed, and is left untouched. The hex
//! digits come from SSE2 on x86-64 and from 64-bit SWAR elsewhere; the tests
//! hold both to a byte-at-a-time reference.

use core::fmt;
use core::ops::Deref;

use super::Uuid;

/// Letter case of the hex digits `a` to `f`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Case {
    /// `a`-`f`, the RFC 9562 canonical case.
    #[default]
    Lower,
    /// `A`-`F`.
    Upper,
}

impl Case {
    /// What to add to `b'0' + n` for `n >= 10` to land on the right letter.
    #[inline]
    const fn letter_offset(self) -> u64 {
        match self {
            Self::Lower => (b'a' - b'0' - 10) as u64,
            Self::Upper => (b'A' - b'0' - 10) as u64,
        }
    }
}

/// The four text forms of a UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// `67e55044-10b1-426f-9247-bb680e5fe0c8` (36 bytes).
    #[default]
    Hyphenated,
    /// `67e5504410b1426f9247bb680e5fe0c8` (32 bytes).
    Simple,
    /// `urn:uuid:67e55044-10b1-426f-9247-bb680e5fe0c8` (45 bytes).
    Urn,
    /// `{67e55044-10b1-426f-9247-bb680e5fe0c8}` (38 bytes).
    Braced,
}

impl Format {
    /// Every form, in declaration order.
    pub const ALL: [Self; 4] = [Self::Hyphenated, Self::Simple, Self::Urn, Self::Braced];

    /// The exact number of bytes this form takes.
    #[must_use]
    pub const fn encoded_len(self) -> usize {
        match self {
            Self::Hyphenated => HYPHENATED_LEN,
            Self::Simple => SIMPLE_LEN,
            Self::Urn => URN_LEN,
            Self::Braced => BRACED_LEN,
        }
    }
}

pub(super) const SIMPLE_LEN: usize = 32;
pub(super) const HYPHENATED_LEN: usize = 36;
pub(super) const BRACED_LEN: usize = 38;
pub(super) const URN_LEN: usize = 45;
pub(super) const URN_PREFIX: &[u8; 9] = b"urn:uuid:";

/// The longest form, the URN, in bytes.
const MAX_LEN: usize = URN_LEN;

/// Why a UUID could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The output buffer is shorter than the form needs.
    BufferTooSmall {
        /// Bytes the form needs.
        needed: usize,
        /// Bytes the buffer has.
        available: usize,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BufferTooSmall { needed, available } => write!(
                f,
                "output buffer too small for a UUID: {needed} bytes needed, {available} available"
            ),
        }
    }
}

impl core::error::Error for EncodeError {}

/// Eight hex digits of `word`, most significant first, as the big-endian
/// bytes of the returned word.
///
/// SWAR: spread each nibble into its own byte, then turn all eight into ASCII
/// at once, adding the letter offset where the nibble is 10 or more. No byte
/// carries into its neighbour because every intermediate stays below 0x80.
#[cfg(any(test, not(all(target_arch = "x86_64", target_feature = "sse2"))))]
#[inline(always)]
const fn hex8(word: u32, case: Case) -> u64 {
    let x = word as u64;
    let x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
    let x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
    let x = ((x << 4) & 0x0F00_0F00_0F00_0F00) | (x & 0x000F_000F_000F_000F);
    let letters = ((x + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
    x + 0x3030_3030_3030_3030 + letters * case.letter_offset()
}

/// The 32 hex digits of `value` as four little-endian words: digit 0 is the
/// lowest byte of word 0, digit 31 the highest byte of word 3.
#[cfg(any(test, not(all(target_arch = "x86_64", target_feature = "sse2"))))]
#[inline(always)]
fn hex32_swar(value: u128, case: Case) -> [u64; 4] {
    [
        hex8((value >> 96) as u32, case).swap_bytes(),
        hex8((value >> 64) as u32, case).swap_bytes(),
        hex8((value >> 32) as u32, case).swap_bytes(),
        hex8(value as u32, case).swap_bytes(),
    ]
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
use hex32_swar as hex32;

/// The 32 hex digits of `value` as four little-endian words (see the
/// portable version), with SSE2, which every x86-64 CPU has: split all 16
/// bytes into nibbles, interleave high and low nibbles, and turn 16 nibbles
/// into ASCII per instruction.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn hex32(value: u128, case: Case) -> [u64; 4] {
    use core::arch::x86_64::{
        _mm_add_epi8, _mm_and_si128, _mm_cmpgt_epi8, _mm_cvtsi128_si64, _mm_set_epi64x,
        _mm_set1_epi8, _mm_srli_epi16, _mm_unpackhi_epi8, _mm_unpackhi_epi64, _mm_unpacklo_epi8,
    };
    // Vector byte i is UUID byte i (the most significant first).
    let bytes = value.to_be_bytes();
    let [
        b0,
        b1,
        b2,
        b3,
        b4,
        b5,
        b6,
        b7,
        b8,
        b9,
        b10,
        b11,
        b12,
        b13,
        b14,
        b15,
    ] = bytes;
    let first = u64::from_le_bytes([b0, b1, b2, b3, b4, b5, b6, b7]);
    let second = u64::from_le_bytes([b8, b9, b10, b11, b12, b13, b14, b15]);
    // SAFETY: these intrinsics only require SSE2, which this function is
    // compiled for (the `cfg` above checks `target_feature = "sse2"`, part of
    // the x86-64 baseline); none of them touches memory.
    unsafe {
        let v = _mm_set_epi64x(second as i64, first as i64);
        let low_nibble = _mm_set1_epi8(0x0F);
        let high = _mm_and_si128(_mm_srli_epi16::<4>(v), low_nibble);
        let low = _mm_and_si128(v, low_nibble);
        let nine = _mm_set1_epi8(9);
        let zero = _mm_set1_epi8(b'0' as i8);
        let letter_offset = _mm_set1_epi8(case.letter_offset() as i8);
        let to_ascii = |n| {
            let letters = _mm_and_si128(_mm_cmpgt_epi8(n, nine), letter_offset);
            _mm_add_epi8(_mm_add_epi8(n, zero), letters)
        };
        let digits_0_16 = to_ascii(_mm_unpacklo_epi8(high, low));
        let digits_16_32 = to_ascii(_mm_unpackhi_epi8(high, low));
        [
            _mm_cvtsi128_si64(digits_0_16) as u64,
            _mm_cvtsi128_si64(_mm_unpackhi_epi64(digits_0_16, digits_0_16)) as u64,
            _mm_cvtsi128_si64(digits_16_32) as u64,
            _mm_cvtsi128_si64(_mm_unpackhi_epi64(digits_16_32, digits_16_32)) as u64,
        ]
    }
}

const HYPHEN: u8 = b'-';

/// Writes `8-4-4-4-12` with overlapping stores of the digits, each group
/// shifted right by the hyphens before it, then the four hyphens: fewer
/// instructions than cutting and shifting the digit words in registers.
#[inline(always)]
fn write_hyphenated(value: u128, case: Case, out: &mut [u8; HYPHENATED_LEN]) {
    let [w0, w1, w2, w3] = hex32(value, case);
    let mut digits = [0u8; SIMPLE_LEN];
    digits[0..8].copy_from_slice(&w0.to_le_bytes());
    digits[8..16].copy_from_slice(&w1.to_le_bytes());
    digits[16..24].copy_from_slice(&w2.to_le_bytes());
    digits[24..32].copy_from_slice(&w3.to_le_bytes());
    // Right to left, so each store overwrites only bytes a later one fixes.
    out[20..36].copy_from_slice(&digits[16..32]);
    out[19..23].copy_from_slice(&digits[16..20]);
    out[14..18].copy_from_slice(&digits[12..16]);
    out[9..13].copy_from_slice(&digits[8..12]);
    out[0..8].copy_from_slice(&digits[0..8]);
    for at in [8, 13, 18, 23] {
        out[at] = HYPHEN;
    }
}

#[inline(always)]
fn write_simple(value: u128, case: Case, out: &mut [u8; SIMPLE_LEN]) {
    let [w0, w1, w2, w3] = hex32(value, case);
    out[0..8].copy_from_slice(&w0.to_le_bytes());
    out[8..16].copy_from_slice(&w1.to_le_bytes());
    out[16..24].copy_from_slice(&w2.to_le_bytes());
    out[24..32].copy_from_slice(&w3.to_le_bytes());
}

/// Writes `format` into the front of `out`, which must be long enough.
#[inline(always)]
fn write_form(value: u128, format: Format, case: Case, out: &mut [u8]) {
    // The callers checked the length, so every `first_chunk_mut` below
    // succeeds and its check folds away.
    match format {
        Format::Hyphenated => {
            if let Some(dst) = out.first_chunk_mut::<HYPHENATED_LEN>() {
                write_hyphenated(value, case, dst);
            }
        }
        Format::Simple => {
            if let Some(dst) = out.first_chunk_mut::<SIMPLE_LEN>() {
                write_simple(value, case, dst);
            }
        }
        Format::Braced => {
            if let Some(dst) = out.first_chunk_mut::<BRACED_LEN>() {
                dst[0] = b'{';
                if let Some(mid) = dst[1..].first_chunk_mut::<HYPHENATED_LEN>() {
                    write_hyphenated(value, case, mid);
                }
                dst[BRACED_LEN - 1] = b'}';
            }
        }
        Format::Urn => {
            if let Some(dst) = out.first_chunk_mut::<URN_LEN>() {
                dst[..URN_PREFIX.len()].copy_from_slice(URN_PREFIX);
                if let Some(rest) = dst[URN_PREFIX.len()..].first_chunk_mut::<HYPHENATED_LEN>() {
                    write_hyphenated(value, case, rest);
                }
            }
        }
    }
}

/// Views the first `len` bytes of `out` as text.
#[inline(always)]
fn ascii_str(out: &mut [u8], len: usize) -> &mut str {
    let written = &mut out[..len];
    debug_assert!(written.is_ascii());
    // SAFETY: `write_form` filled exactly these bytes with ASCII only (hex
    // digits, '-', '{', '}', "urn:uuid:"), and ASCII is valid UTF-8.
    unsafe { core::str::from_utf8_unchecked_mut(written) }
}

impl Uuid {
    /// Writes the UUID in `format` and `case` to the front of `out` and
    /// returns the written part as text.
    ///
    /// # Errors
    /// [`EncodeError::BufferTooSmall`] when `out` is shorter than
    /// [`Format::encoded_len`]; `out` is then left unchanged.
    #[inline]
    pub fn encode<'a>(
        &self,
        format: Format,
        case: Case,
        out: &'a mut [u8],
    ) -> Result<&'a mut str, EncodeError> {
        let needed = format.encoded_len();
        if out.len() < needed {
            return Err(EncodeError::BufferTooSmall {
                needed,
                available: out.len(),
            });
        }
        write_form(self.as_u128(), format, case, out);
        Ok(ascii_str(out, needed))
    }

    /// Writes `8-4-4-4-12` hex (36 bytes); see [`Uuid::encode`].
    ///
    /// # Errors
    /// [`EncodeError::BufferTooSmall`] when `out` has fewer than 36 bytes.
    #[inline]
    pub fn encode_hyphenated<'a>(
        &self,
        case: Case,
        out: &'a mut [u8],
    ) -> Result<&'a mut str, EncodeError> {
        // The most used form skips the format dispatch of `encode`.
        let available = out.len();
        match out.first_chunk_mut::<HYPHENATED_LEN>() {
            Some(dst) => {
                write_hyphenated(self.as_u128(), case, dst);
                Ok(ascii_str(out, HYPHENATED_LEN))
            }
            None => Err(EncodeError::BufferTooSmall {
                needed: HYPHENATED_LEN,
                available,
            }),
        }
    }

    /// Writes 32 hex digits without separators; see [`Uuid::encode`].
    ///
    /// # Errors
    /// [`EncodeError::BufferTooSmall`] when `out` has fewer than 32 bytes.
    #[inline]
    pub fn encode_simple<'a>(
        &self,
        case: Case,
        out: &'a mut [u8],
    ) -> Result<&'a mut str, EncodeError> {
        self.encode(Format::Simple, case, out)
    }

    /// Writes `urn:uuid:` and the hyphenated form (45 bytes); the prefix is
    /// always lowercase. See [`Uuid::encode`].
    ///
    /// # Errors
    /// [`EncodeError::BufferTooSmall`] when `out` has fewer than 45 bytes.
    #[inline]
    pub fn encode_urn<'a>(
        &self,
        case: Case,
        out: &'a mut [u8],
    ) -> Result<&'a mut str, EncodeError> {
        self.encode(Format::Urn, case, out)
    }

    /// Writes the hyphenated form between `{` and `}` (38 bytes); see
    /// [`Uuid::encode`].
    ///
    /// # Errors
    /// [`EncodeError::BufferTooSmall`] when `out` has fewer than 38 bytes.
    #[inline]
    pub fn encode_braced<'a>(
        &self,
        case: Case,
        out: &'a mut [u8],
    ) -> Result<&'a mut str, EncodeError> {
        self.encode(Format::Braced, case, out)
    }

    /// The UUID in `format` and `case` as a stack string.
    #[must_use]
    #[inline]
    pub fn to_str_in(&self, format: Format, case: Case) -> UuidString {
        let mut buf = [0u8; MAX_LEN];
        write_form(self.as_u128(), format, case, &mut buf);
        UuidString {
            buf,
            len: format.encoded_len() as u8,
        }
    }

    /// The hyphenated form as a stack string.
    #[must_use]
    #[inline]
    pub fn hyphenated(&self, case: Case) -> UuidString {
        self.to_str_in(Format::Hyphenated, case)
    }

    /// The simple form as a stack string.
    #[must_use]
    #[inline]
    pub fn simple(&self, case: Case) -> UuidString {
        self.to_str_in(Format::Simple, case)
    }

    /// The URN form as a stack string.
    #[must_use]
    #[inline]
    pub fn urn(&self, case: Case) -> UuidString {
        self.to_str_in(Format::Urn, case)
    }

    /// The braced form as a stack string.
    #[must_use]
    #[inline]
    pub fn braced(&self, case: Case) -> UuidString {
        self.to_str_in(Format::Braced, case)
    }
}

/// One encoded UUID held on the stack; dereferences to `&str`.
#[derive(Clone, Copy)]
pub struct UuidString {
    buf: [u8; MAX_LEN],
    len: u8,
}

impl UuidString {
    /// The encoded text.
    #[must_use]
    #[inline]
    pub fn as_str(&self) -> &str {
        let bytes = &self.buf[..usize::from(self.len)];
        debug_assert!(bytes.is_ascii());
        // SAFETY: a `UuidString` is only built by `Uuid::to_str_in`, which
        // fills `buf[..len]` through `write_form` with ASCII only.
        unsafe { core::str::from_utf8_unchecked(bytes) }
    }

    /// The encoded bytes.
    #[must_use]
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

impl Deref for UuidString {
    type Target = str;

    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for UuidString {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<[u8]> for UuidString {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl PartialEq for UuidString {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for UuidString {}

impl PartialEq<str> for UuidString {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for UuidString {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Display for UuidString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl fmt::Debug for UuidString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Uuid {
    /// The lowercase hyphenated form; `{:#}` writes the URN form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let format = if f.alternate() {
            Format::Urn
        } else {
            Format::Hyphenated
        };
        f.pad(&self.to_str_in(format, Case::Lower))
    }
}

impl fmt::LowerHex for Uuid {
    /// The lowercase simple form (32 hex digits).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.simple(Case::Lower))
    }
}

impl fmt::UpperHex for Uuid {
    /// The uppercase simple form (32 hex digits).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.simple(Case::Upper))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;
    use std::string::String;

    const SAMPLE: u128 = 0x67e5_5044_10b1_426f_9247_bb68_0e5f_e0c8;

    /// A byte-at-a-time reference to check the SWAR path against.
    fn naive_hex(value: u128, upper: bool) -> String {
        let digits: &[u8; 16] = if upper {
            b"0123456789ABCDEF"
        } else {
            b"0123456789abcdef"
        };
        (0..32)
            .map(|i| char::from(digits[((value >> (124 - 4 * i)) & 0xF) as usize]))
            .collect()
    }

    #[test]
    fn every_form_and_case() {
        let u = Uuid::from_u128(SAMPLE);
        let mut buf = [0u8; 64];
        assert_eq!(
            u.encode_hyphenated(Case::Lower, &mut buf).unwrap(),
            "67e55044-10b1-426f-9247-bb680e5fe0c8"
        );
        assert_eq!(
            u.encode_hyphenated(Case::Upper, &mut buf).unwrap(),
            "67E55044-10B1-426F-9247-BB680E5FE0C8"
        );
        assert_eq!(
            u.encode_simple(Case::Lower, &mut buf).unwrap(),
            "67e5504410b1426f9247bb680e5fe0c8"
        );
        assert_eq!(
            u.encode_urn(Case::Upper, &mut buf).unwrap(),
            "urn:uuid:67E55044-10B1-426F-9247-BB680E5FE0C8"
        );
        assert_eq!(
            u.encode_braced(Case::Lower, &mut buf).unwrap(),
            "{67e55044-10b1-426f-9247-bb680e5fe0c8}"
        );
    }

    #[test]
    fn swar_matches_the_naive_encoder() {
        let mut x = 0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C834_u128;
        for _ in 0..2000 {
            x = x.wrapping_mul(0x2545_F491_4F6C_DD1D_2545_F491_4F6C_DD1D) ^ (x >> 61);
            let u = Uuid::from_u128(x);
            assert_eq!(&*u.simple(Case::Lower), naive_hex(x, false));
            assert_eq!(&*u.simple(Case::Upper), naive_hex(x, true));
        }
        assert_eq!(&*Uuid::MAX.simple(Case::Upper), "F".repeat(32));
        assert_eq!(&*Uuid::NIL.simple(Case::Lower), "0".repeat(32));
    }

    #[test]
    fn simd_and_swar_digits_agree() {
        let mut x = 0x0123_4567_89AB_CDEF_FEDC_BA98_7654_3210_u128;
        for _ in 0..2000 {
            x = x.wrapping_mul(0x2545_F491_4F6C_DD1D_2545_F491_4F6C_DD1D) ^ (x >> 59);
            for case in [Case::Lower, Case::Upper] {
                assert_eq!(hex32(x, case), hex32_swar(x, case), "{x:#x}");
            }
        }
    }

    #[test]
    fn too_small_buffer_is_reported_and_untouched() {
        let u = Uuid::from_u128(SAMPLE);
        for format in Format::ALL {
            let mut buf = [b'x'; 64];
            let short = &mut buf[..format.encoded_len() - 1];
            assert_eq!(
                u.encode(format, Case::Lower, short),
                Err(EncodeError::BufferTooSmall {
                    needed: format.encoded_len(),
                    available: format.encoded_len() - 1
                })
            );
            assert!(buf.iter().all(|&b| b == b'x'));
            assert_eq!(
                u.encode(format, Case::Lower, &mut buf).unwrap().len(),
                format.encoded_len()
            );
        }
        let msg = format!(
            "{}",
            EncodeError::BufferTooSmall {
                needed: 36,
                available: 3
            }
        );
        assert!(msg.contains("36") && msg.contains('3'));
    }

    #[test]
    fn display_and_hex_formatting() {
        let u = Uuid::from_u128(SAMPLE);
        assert_eq!(format!("{u}"), "67e55044-10b1-426f-9247-bb680e5fe0c8");
        assert_eq!(
            format!("{u:#}"),
            "urn:uuid:67e55044-10b1-426f-9247-bb680e5fe0c8"
        );
        assert_eq!(format!("{u:x}"), "67e5504410b1426f9247bb680e5fe0c8");
        assert_eq!(format!("{u:X}"), "67E5504410B1426F9247BB680E5FE0C8");
        assert_eq!(
            format!("{u:?}"),
            "Uuid(67e55044-10b1-426f-9247-bb680e5fe0c8)"
        );
        assert_eq!(format!("[{:>40}]", u.hyphenated(Case::Lower)).len(), 42);
    }
}
