//! Codecs: the frame format, postcard, bounded inflate and AEAD, into caller
//! buffers.
//!
//! Invariants shared by every submodule: nothing allocates, nothing panics on
//! any input, every output goes into a slice the caller owns and every size
//! read from the wire is checked before it is used. The byte format is
//! specified in `docs/FORMAT.md`.
//!
//! - [`header`]: the 28-byte frame header, its enums and [`header::FrameError`];
//! - [`checksum`]: the CRC-32 carried by frames;
//! - [`inflate`]: raw DEFLATE decompression with a hard output limit;
//! - [`aead`]: XChaCha20-Poly1305 in place, keys and nonce sources;
//! - [`frame`]: whole frames into and out of caller buffers;
//! - [`accumulator`]: an incremental frame decoder for byte streams;
//! - `postcard` (feature `serde`): serde values into and out of slices,
//!   `embedded_io` readers and writers, and frames.

pub mod accumulator;
pub mod aead;
pub mod checksum;
pub mod frame;
pub mod header;
pub mod inflate;
#[cfg(feature = "serde")]
pub mod postcard;
