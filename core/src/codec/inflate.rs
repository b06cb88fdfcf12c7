//! Raw DEFLATE (RFC 1951) decompression into a caller buffer with a hard
//! output limit.
//!
//! Invariants:
//! - the limit is the length of the output slice; nothing is ever written
//!   beyond it, and a stream that would produce even one byte more is an
//!   error ([`InflateError::OutputTooLarge`]), never a truncated success;
//! - success means the stream reached its final block *and* every input byte
//!   was consumed: trailing bytes after the end are an error, so one body
//!   cannot hide a second payload;
//! - no allocation: the decoder state ([`Inflater`], about 11 KiB) lives
//!   wherever the caller puts it, and memory use is that state plus the
//!   output slice, whatever the input claims.
//!
//! The accepted input is standard raw DEFLATE, as written by zlib with
//! negative window bits, flate2's `DeflateEncoder` or miniz_oxide's
//! `compress_to_vec`.
//!
//! ```
//! use mechops_core::codec::inflate::{inflate, InflateError};
//!
//! // "hello" as a single stored block: BFINAL=1, BTYPE=00, LEN=5, NLEN=!5.
//! let stream = [0x01, 0x05, 0x00, 0xFA, 0xFF, b'h', b'e', b'l', b'l', b'o'];
//! let mut out = [0u8; 16];
//! let n = inflate(&stream, &mut out)?;
//! assert_eq!(&out[..n], b"hello");
//! // A four-byte limit refuses the five-byte payload.
//! assert_eq!(inflate(&stream, &mut out[..4]), Err(InflateError::OutputTooLarge { limit: 4 }));
//! # Ok::<(), InflateError>(())
//! ```

use core::fmt;

use miniz_oxide::inflate::TINFLStatus;
use miniz_oxide::inflate::core::{DecompressorOxide, decompress, inflate_flags};

/// Why a DEFLATE stream was refused.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InflateError {
    /// The stream would inflate to more than `limit` bytes.
    OutputTooLarge {
        /// The output limit in bytes.
        limit: usize,
    },
    /// The input ends before the stream's final block does.
    Truncated,
    /// The stream is malformed; `at` is the input offset where the decoder
    /// stopped.
    Corrupt {
        /// Input byte offset.
        at: usize,
    },
    /// The stream ended at input offset `at` but more input follows.
    TrailingData {
        /// Input byte offset of the first unused byte.
        at: usize,
    },
}

impl fmt::Display for InflateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::OutputTooLarge { limit } => {
                write!(f, "deflate output exceeds the limit of {limit} bytes")
            }
            Self::Truncated => f.write_str("deflate stream truncated before its final block"),
            Self::Corrupt { at } => write!(f, "corrupt deflate stream near input byte {at}"),
            Self::TrailingData { at } => {
                write!(
                    f,
                    "unexpected data after the deflate stream at input byte {at}"
                )
            }
        }
    }
}

impl core::error::Error for InflateError {}

/// A reusable raw-DEFLATE decoder whose state the caller places (stack,
/// static or heap).
pub struct Inflater {
    state: DecompressorOxide,
}

impl Default for Inflater {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Inflater {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inflater").finish_non_exhaustive()
    }
}

impl Inflater {
    /// A decoder ready for a new stream.
    #[must_use]
    pub fn new() -> Self {
        Self {
            state: DecompressorOxide::new(),
        }
    }

    /// Inflates the whole raw DEFLATE stream `input` into `out` and returns
    /// the number of bytes written. `out.len()` is the hard limit.
    ///
    /// # Errors
    /// See [`InflateError`]; on error the contents of `out` are unspecified
    /// (but nothing past `out.len()` was touched).
    pub fn inflate(&mut self, input: &[u8], out: &mut [u8]) -> Result<usize, InflateError> {
        self.state.init();
        // Without HAS_MORE_INPUT, running out of input is reported as
        // FailedCannotMakeProgress, which is exactly truncation here.
        let flags = inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF
            | inflate_flags::TINFL_FLAG_IGNORE_ADLER32;
        let (status, read, written) = decompress(&mut self.state, input, out, 0, flags);
        match status {
            TINFLStatus::Done if read == input.len() => Ok(written),
            TINFLStatus::Done => Err(InflateError::TrailingData { at: read }),
            TINFLStatus::HasMoreOutput => Err(InflateError::OutputTooLarge { limit: out.len() }),
            TINFLStatus::FailedCannotMakeProgress | TINFLStatus::NeedsMoreInput => {
                Err(InflateError::Truncated)
            }
            _ => Err(InflateError::Corrupt { at: read }),
        }
    }
}

/// Inflates the raw DEFLATE stream `input` into `out` with `out.len()` as
/// the hard limit, using a decoder state on the stack.
///
/// # Errors
/// See [`InflateError`].
pub fn inflate(input: &[u8], out: &mut [u8]) -> Result<usize, InflateError> {
    Inflater::new().inflate(input, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored-block stream for `data` (one block; `data.len() < 65536`).
    fn stored(data: &[u8]) -> std::vec::Vec<u8> {
        let len = data.len() as u16;
        let mut v = std::vec![0x01];
        v.extend_from_slice(&len.to_le_bytes());
        v.extend_from_slice(&(!len).to_le_bytes());
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn exact_fit_succeeds_and_one_less_fails() {
        let data: std::vec::Vec<u8> = (0..1000u32).map(|i| (i * 31) as u8).collect();
        let s = stored(&data);
        let mut out = std::vec![0u8; 1000];
        assert_eq!(inflate(&s, &mut out), Ok(1000));
        assert_eq!(out, data);
        assert_eq!(
            inflate(&s, &mut out[..999]),
            Err(InflateError::OutputTooLarge { limit: 999 })
        );
    }

    #[test]
    fn empty_stream_and_empty_output() {
        // Fixed block holding only end-of-block: bits 1,01,0000000.
        let s = [0x03, 0x00];
        assert_eq!(inflate(&s, &mut []), Ok(0));
        assert_eq!(inflate(&[], &mut [0u8; 4]), Err(InflateError::Truncated));
    }

    #[test]
    fn truncation_and_trailing_data_are_errors() {
        let s = stored(b"abcdef");
        let mut out = [0u8; 64];
        for n in 0..s.len() {
            assert!(inflate(&s[..n], &mut out).is_err(), "prefix {n}");
        }
        let mut t = s.clone();
        t.push(0);
        assert_eq!(
            inflate(&t, &mut out),
            Err(InflateError::TrailingData { at: s.len() })
        );
    }

    #[test]
    fn reserved_block_type_is_corrupt() {
        // BFINAL=1, BTYPE=11 (reserved).
        assert!(matches!(
            inflate(&[0x07, 0, 0], &mut [0u8; 8]),
            Err(InflateError::Corrupt { .. })
        ));
    }

    #[test]
    fn decoder_state_stays_small() {
        // The module docs promise about 11 KiB; a dependency update that
        // grew it a lot would matter to stack-limited callers.
        let size = core::mem::size_of::<Inflater>();
        assert!((8 * 1024..=12 * 1024).contains(&size), "{size} bytes");
    }

    #[test]
    fn inflater_is_reusable() {
        let mut inf = Inflater::new();
        let mut out = [0u8; 8];
        assert_eq!(inf.inflate(&stored(b"one"), &mut out), Ok(3));
        assert!(inf.inflate(&[0x07], &mut out).is_err());
        assert_eq!(inf.inflate(&stored(b"two!"), &mut out), Ok(4));
        assert_eq!(&out[..4], b"two!");
    }
}
