//! The one error type of `serialize` / `deserialize`.
//!
//! Every variant names the problem; decoding errors of the payload formats
//! carry the format and the serde crate's own message (which usually includes
//! a byte offset or line and column).

use alloc::boxed::Box;
use core::fmt;

use super::Format;

/// Why a value could not be serialized or a frame could not be deserialized.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The payload format's serde crate refused to encode the value.
    Encode {
        /// The format being written.
        format: Format,
        /// The serde crate's message.
        detail: Box<str>,
    },
    /// The payload did not decode as the format named in the header.
    Decode {
        /// The format being read.
        format: Format,
        /// The serde crate's message.
        detail: Box<str>,
    },
    /// The format is not compiled into this codec set (MessagePack and CBOR
    /// need `mechops-std`).
    FormatUnavailable(Format),
    /// The frame holds a different format than the codec asked to decode it.
    FormatMismatch {
        /// The format the caller's codec reads.
        expected: Format,
        /// The format named in the frame header.
        found: Format,
    },
    /// The compression level is outside 0..=10.
    InvalidLevel(u8),
    /// The options carry a key but no nonce source was supplied.
    NonceSourceMissing,
    /// The nonce source failed to produce random bytes; nothing was encrypted.
    NonceSourceFailed,
    /// The header says the payload is larger than the configured limit; nothing
    /// was allocated for it.
    TooLarge {
        /// The size the header declares.
        declared: u64,
        /// The configured maximum decoded size.
        limit: usize,
    },
    /// The input holds more bytes than the one frame its header describes.
    TrailingBytes {
        /// The frame's length according to its header.
        frame_len: usize,
        /// The input's length.
        input_len: usize,
    },
    /// The value serializes to more bytes than a frame can declare.
    PayloadTooLarge(usize),
    /// The frame itself is malformed, tampered with or truncated.
    Frame(mechops_core::codec::header::FrameError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Encode { format, detail } => {
                write!(f, "cannot encode value as {format}: {detail}")
            }
            Self::Decode { format, detail } => write!(f, "payload is not valid {format}: {detail}"),
            Self::FormatUnavailable(format) => {
                write!(
                    f,
                    "format {format} is not available here (it needs mechops-std)"
                )
            }
            Self::FormatMismatch { expected, found } => {
                write!(f, "frame holds {found}, expected {expected}")
            }
            Self::NonceSourceFailed => {
                f.write_str("the nonce source failed to produce random bytes")
            }
            Self::InvalidLevel(level) => {
                write!(f, "compression level {level} is outside 0..=10")
            }
            Self::NonceSourceMissing => {
                f.write_str("encryption needs a nonce source: use serialize_with_rng")
            }
            Self::TooLarge { declared, limit } => write!(
                f,
                "frame declares {declared} decoded bytes, above the limit of {limit}"
            ),
            Self::TrailingBytes {
                frame_len,
                input_len,
            } => write!(
                f,
                "{} trailing bytes after the {frame_len}-byte frame",
                input_len - frame_len
            ),
            Self::PayloadTooLarge(len) => {
                write!(f, "payload of {len} bytes is too large for a frame")
            }
            Self::Frame(err) => fmt::Display::fmt(err, f),
        }
    }
}

impl core::error::Error for Error {}

impl From<mechops_core::codec::header::FrameError> for Error {
    fn from(err: mechops_core::codec::header::FrameError) -> Self {
        Self::Frame(err)
    }
}
