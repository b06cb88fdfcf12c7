//! Glue between `serialize` and the core's frame codec (`docs/FORMAT.md`).
//!
//! Writing: the payload is serialized straight into the frame buffer after
//! room for the header (and nonce), so an uncompressed frame is finished in
//! place with no copy of the payload; a compressed one is encoded from the
//! compressed bytes. Nonces are drawn here from a fallible source and handed
//! to the core as explicit bytes, so an entropy failure is an error, not a
//! panic.
//!
//! Reading: the declared original size is checked against the caller's limit
//! before any buffer for the payload exists; then the core verifies the tag
//! (before decrypting), inflates into a buffer of exactly the declared size
//! with its hard limit, and checks the plaintext checksum, in the order
//! `docs/FORMAT.md` lists under "Reading a frame".

use alloc::vec;
use alloc::vec::Vec;
use core::convert::Infallible;

use mechops_core::codec::aead::NonceSource;
pub use mechops_core::codec::aead::{KEY_LEN, Key};
use mechops_core::codec::checksum::crc32;
pub(crate) use mechops_core::codec::frame::parse;
use mechops_core::codec::frame::{self, FrameRef, Sealer, StoredPayload};
use mechops_core::codec::header::NONCE_LEN;
pub use mechops_core::codec::header::{
    Compression, Encryption, Format, FrameError, FrameHeader, FrameSpec, VERSION,
};
use rand_core::{TryCryptoRng, TryRng};

use super::compress::{self, CompressionPolicy};
use super::{Error, FrameCache, PayloadCodec};

/// Payload room reserved before serializing, in bytes.
const INITIAL_PAYLOAD_ROOM: usize = 1024;

/// A frame header; see [`FrameHeader`].
pub type Header = FrameHeader;

/// The payload format a frame names, read without validating the rest of
/// the header (callers dispatch on it, then validate everything).
///
/// # Errors
/// When the format byte is missing or unknown: the first problem a full
/// header decode reports.
pub fn peek_format(data: &[u8]) -> Result<Format, Error> {
    match data.get(5).map(|&code| Format::from_code(code)) {
        Some(Ok(format)) if data.len() >= FrameHeader::LEN => Ok(format),
        _ => Err(FrameHeader::decode(data)
            .err()
            .unwrap_or(FrameError::Truncated {
                needed: FrameHeader::LEN,
            })
            .into()),
    }
}

/// Decodes and validates the header at the start of `data` without
/// decrypting anything, and checks that `data` holds exactly that one frame.
///
/// # Errors
/// The first problem the header shows, [`FrameError::Truncated`] when the
/// body is cut short, and [`Error::TrailingBytes`] when more follows.
pub fn inspect(data: &[u8]) -> Result<Header, Error> {
    let header = frame::parse(data)?.header();
    let frame_len = header.frame_len();
    if data.len() > frame_len {
        return Err(Error::TrailingBytes {
            frame_len,
            input_len: data.len(),
        });
    }
    Ok(header)
}

/// What [`encode`] needs to know beyond the value.
pub(crate) struct Plan<'a, R: ?Sized> {
    pub(crate) policy: CompressionPolicy,
    pub(crate) level: u8,
    pub(crate) deflate: compress::DeflateFn,
    pub(crate) sealing: Option<(&'a Key, &'a mut R)>,
    pub(crate) cache: Option<&'a mut FrameCache>,
}

/// Serializes `value` with `C` and frames it; returns the frame and the
/// payload's size.
pub(crate) fn encode<C, T, R>(value: &T, plan: Plan<'_, R>) -> Result<(Vec<u8>, usize), Error>
where
    C: PayloadCodec,
    T: serde::Serialize + ?Sized,
    R: TryCryptoRng + ?Sized,
{
    let encryption = if plan.sealing.is_some() {
        Encryption::XChaCha20Poly1305
    } else {
        Encryption::None
    };
    let stored_spec = FrameSpec::new(C::FORMAT, Compression::None, encryption);
    let offset = stored_spec.payload_offset();
    // Starting at 1 KiB of payload room saves the handful of reallocations a
    // typical message would otherwise cost on its way up from empty.
    let mut buf = Vec::with_capacity(offset + INITIAL_PAYLOAD_ROOM);
    buf.resize(offset, 0);
    C::encode(value, &mut buf)?;
    let payload_len = buf.len() - offset;
    let checksum = crc32(&buf[offset..]);
    let compressed = match plan.cache {
        Some(cache) => cache.compressed(&buf[offset..], plan.policy, plan.level, |p| {
            compress::compress_with(p, plan.policy, plan.level, plan.deflate)
        })?,
        None => compress::compress_with(&buf[offset..], plan.policy, plan.level, plan.deflate)?,
    };
    let sealer = match plan.sealing {
        None => None,
        Some((key, rng)) => {
            let mut nonce = [0u8; NONCE_LEN];
            rng.try_fill_bytes(&mut nonce)
                .map_err(|_| Error::NonceSourceFailed)?;
            Some(Sealer::new(key, NonceSource::Explicit(nonce)))
        }
    };
    let too_large = |err| match err {
        FrameError::SizeOverflow => Error::PayloadTooLarge(payload_len),
        other => Error::Frame(other),
    };
    match compressed {
        None => {
            // Room for the sealed checksum and tag after the payload.
            buf.resize(buf.len() + encryption.overhead() - nonce_len(encryption), 0);
            let len = frame::finish_in_place(
                &mut buf,
                stored_spec,
                payload_len,
                payload_len,
                checksum,
                sealer,
            )
            .map_err(too_large)?;
            debug_assert_eq!(len, buf.len());
            if buf.capacity() > 4 * buf.len() {
                // Small frames do not keep the initial room alive.
                buf.shrink_to_fit();
            }
            Ok((buf, payload_len))
        }
        Some(bytes) => {
            let spec = FrameSpec::new(C::FORMAT, Compression::Deflate, encryption);
            let mut out = vec![0u8; spec.frame_len(bytes.len()).map_err(too_large)?];
            let stored = StoredPayload {
                format: C::FORMAT,
                compression: Compression::Deflate,
                bytes: &bytes,
                original_size: payload_len,
                checksum,
            };
            frame::encode_stored(stored, &mut out, sealer).map_err(too_large)?;
            Ok((out, payload_len))
        }
    }
}

fn nonce_len(encryption: Encryption) -> usize {
    match encryption {
        Encryption::None => 0,
        _ => NONCE_LEN,
    }
}

/// Verifies, decrypts and inflates one frame spanning all of `data`, which
/// the caller located with `frame::parse` (header valid, body present), and
/// hands header and payload to `use_payload`.
///
/// Unencrypted stored payloads are borrowed straight from `data`; only an
/// encrypted frame is copied (it is decrypted in place) and only a
/// compressed one gets an output buffer, of exactly its declared size.
pub(crate) fn with_payload<R>(
    data: &[u8],
    located: FrameRef<'_>,
    key: Option<&Key>,
    max_decoded_size: usize,
    use_payload: impl FnOnce(Header, &[u8]) -> Result<R, Error>,
) -> Result<R, Error> {
    let header = located.header();
    let original = header.original_size() as usize;
    if original > max_decoded_size {
        return Err(Error::TooLarge {
            declared: u64::from(header.original_size()),
            limit: max_decoded_size,
        });
    }
    let frame_len = located.frame_len();
    if data.len() > frame_len {
        return Err(Error::TrailingBytes {
            frame_len,
            input_len: data.len(),
        });
    }
    // The limit was checked above, so this allocation is bounded by it.
    let mut scratch = match header.compression() {
        Compression::None => Vec::new(),
        _ => vec![0u8; original],
    };
    match (header.encryption(), key) {
        (Encryption::None, None) => use_payload(header, located.payload(&mut scratch)?),
        (Encryption::None, Some(_)) => Err(FrameError::NotEncrypted.into()),
        (_, None) => Err(FrameError::KeyRequired.into()),
        (_, Some(key)) => {
            let mut owned = data.to_vec();
            let decoded = frame::decode(&mut owned, Some(key), &mut scratch)?;
            use_payload(header, decoded.payload)
        }
    }
}

/// A nonce source that cannot exist: the type of "no source" for
/// [`serialize`](super::serialize), which writes unencrypted frames only.
pub(crate) enum NoNonces {}

impl TryRng for NoNonces {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        match *self {}
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        match *self {}
    }

    fn try_fill_bytes(&mut self, _dst: &mut [u8]) -> Result<(), Infallible> {
        match *self {}
    }
}

impl TryCryptoRng for NoNonces {}
