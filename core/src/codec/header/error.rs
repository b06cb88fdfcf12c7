//! [`FrameError`]: every way a frame, or the room given to it, can be wrong.
//!
//! Each variant names the first problem found, with the byte offset or the
//! sizes involved, so a caller can report it without looking at the frame
//! again. Decoding checks the fields in the order the header module
//! documents, so the error for a given input is stable.

use core::fmt;

use crate::codec::inflate::InflateError;

/// Everything that can be wrong with a frame or with the room given to it.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The input ends before the header or body does; `needed` is the total
    /// number of bytes the frame needs.
    Truncated {
        /// Bytes needed in total.
        needed: usize,
    },
    /// The first four bytes are not `MOPF`.
    BadMagic,
    /// The version byte names a version this code does not know.
    UnsupportedVersion(u8),
    /// The CRC-32 over the first 24 header bytes does not match.
    HeaderChecksumMismatch,
    /// A reserved byte is not zero; `offset` is its position in the header.
    ReservedNotZero {
        /// Byte offset of the first offending byte in the header.
        offset: usize,
    },
    /// The format byte is not a known payload format.
    UnknownFormat(u8),
    /// The compression byte is not a known compression method.
    UnknownCompression(u8),
    /// The encryption byte is not a known encryption method.
    UnknownEncryption(u8),
    /// The body length is smaller than the encryption overhead, or an
    /// uncompressed body's length differs from the original size.
    InconsistentLength {
        /// The declared body length.
        body_len: u32,
        /// The declared original size.
        original_size: u32,
    },
    /// A size exceeds what the format (32-bit sizes) or this platform can hold.
    SizeOverflow,
    /// The payload's CRC-32 after decryption and decompression differs from
    /// the one the frame carries.
    ChecksumMismatch {
        /// The checksum the frame carries.
        expected: u32,
        /// The checksum of the decoded payload.
        actual: u32,
    },
    /// The AEAD tag does not verify: wrong key, or the frame was altered.
    AuthenticationFailed,
    /// The frame is encrypted and no key was supplied.
    KeyRequired,
    /// A key was supplied for a frame that is not encrypted; refusing keeps a
    /// downgrade (an attacker stripping encryption) from passing silently.
    NotEncrypted,
    /// Decoding would produce more than `limit` bytes.
    OutputTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// A compressed body does not inflate to exactly the declared original
    /// size.
    OriginalSizeMismatch {
        /// The original size the header declares.
        declared: u32,
    },
    /// The caller's buffer is too small; `needed` bytes are required.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
    },
    /// The DEFLATE body is malformed.
    Inflate(InflateError),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Truncated { needed } => write!(f, "frame truncated: {needed} bytes needed"),
            Self::BadMagic => f.write_str("not a mechops frame (bad magic at byte 0)"),
            Self::UnsupportedVersion(v) => write!(f, "unsupported frame version {v} at byte 4"),
            Self::HeaderChecksumMismatch => {
                f.write_str("frame header corrupt (header check at byte 24 does not match)")
            }
            Self::ReservedNotZero { offset } => {
                write!(f, "reserved frame header byte {offset} is not zero")
            }
            Self::UnknownFormat(b) => write!(f, "unknown payload format {b} at byte 5"),
            Self::UnknownCompression(b) => write!(f, "unknown compression {b} at byte 6"),
            Self::UnknownEncryption(b) => write!(f, "unknown encryption {b} at byte 7"),
            Self::InconsistentLength {
                body_len,
                original_size,
            } => write!(
                f,
                "inconsistent frame lengths: body {body_len} bytes, original size {original_size} bytes"
            ),
            Self::SizeOverflow => f.write_str("frame size exceeds the 32-bit limits of the format"),
            Self::ChecksumMismatch { expected, actual } => write!(
                f,
                "payload checksum mismatch: frame says {expected:#010x}, payload has {actual:#010x}"
            ),
            Self::AuthenticationFailed => {
                f.write_str("authentication failed: wrong key or tampered frame")
            }
            Self::KeyRequired => f.write_str("frame is encrypted and no key was given"),
            Self::NotEncrypted => f.write_str("a key was given but the frame is not encrypted"),
            Self::OutputTooLarge { limit } => {
                write!(f, "decoded payload would exceed the limit of {limit} bytes")
            }
            Self::BufferTooSmall { needed } => {
                write!(f, "buffer too small: {needed} bytes needed")
            }
            Self::OriginalSizeMismatch { declared } => write!(
                f,
                "compressed body does not inflate to the declared {declared} bytes"
            ),
            Self::Inflate(e) => write!(f, "compressed body: {e}"),
        }
    }
}

// The cause is part of the message, which no_std callers print with
// `Display` alone, so `source()` stays `None`: a printer of the cause
// chain then says it once.
impl core::error::Error for FrameError {}

impl From<InflateError> for FrameError {
    fn from(e: InflateError) -> Self {
        match e {
            InflateError::OutputTooLarge { limit } => Self::OutputTooLarge { limit },
            other => Self::Inflate(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_problem() {
        use std::string::ToString;
        assert!(
            FrameError::UnknownFormat(9)
                .to_string()
                .contains("unknown payload format 9")
        );
        assert!(
            FrameError::ReservedNotZero { offset: 21 }
                .to_string()
                .contains("21")
        );
        assert!(
            FrameError::OutputTooLarge { limit: 64 }
                .to_string()
                .contains("64")
        );
    }
}
