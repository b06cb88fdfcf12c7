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
//! - [`accumulator`]: an incremental frame decoder for byte streams, and a
//!   one-frame reader for blocking `embedded_io` readers;
//! - `postcard` (feature `serde`): serde values into and out of slices,
//!   `embedded_io` readers and writers, and frames.
//!
//! Which entry point fits:
//!
//! | you have | to write | to read |
//! |---|---|---|
//! | a serde value, postcard, no compression | `postcard::to_frame` | `postcard::from_frame` |
//! | payload bytes in any format | [`frame::encode`] | [`frame::decode`] |
//! | a payload compressed elsewhere (DEFLATE needs alloc) | [`frame::encode_stored`] | [`frame::decode`] |
//! | a payload serialized straight into the frame buffer | [`frame::finish_in_place`] | [`frame::decode`] |
//! | only the header (inspection, limits) | | [`header::FrameHeader::decode`], [`frame::parse`] |
//! | a sealed frame to inflate by other means | | [`frame::open`] then [`frame::Opened::payload`] or your own inflater |
//! | a byte stream in chunks | | [`accumulator::FrameAccumulator`] |
//! | a blocking `embedded_io` reader | `write_all` of the frame | [`accumulator::read_frame`] |
//!
//! The core compresses nothing: a DEFLATE encoder needs tens of KiB of
//! working state, which `mechops-alloc` provides; the core only inflates,
//! into a buffer bounded by the frame's declared size.

pub mod accumulator;
pub mod aead;
pub mod checksum;
pub mod frame;
pub mod header;
pub mod inflate;
#[cfg(feature = "serde")]
pub mod postcard;
