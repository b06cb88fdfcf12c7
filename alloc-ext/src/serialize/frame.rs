//! Glue between `serialize` and the core's frame format (`docs/FORMAT.md`).
//!
//! Writing: the frame is built in one `Vec` sized exactly once (header, nonce,
//! stored payload, sealed checksum, tag) and encrypted in place.
//! Reading: the header is validated and the declared original size checked
//! against the caller's limit before any buffer for the payload exists; the
//! body is authenticated before it is inflated; inflation runs into a buffer
//! of exactly the declared size with the core's hard limit; the plaintext
//! checksum is verified last. The checks and their order are the ones
//! `docs/FORMAT.md` lists under "Reading a frame".

use alloc::vec;
use alloc::vec::Vec;
use core::convert::Infallible;
use core::fmt;

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use mechops_core::codec::checksum::crc32;
pub use mechops_core::codec::header::{
    Compression, Encryption, Format, FrameError, FrameHeader, FrameSpec, VERSION,
};
use mechops_core::codec::header::{NONCE_LEN, SEALED_CHECKSUM_LEN, TAG_LEN};
use mechops_core::codec::inflate::Inflater;
use rand_core::{TryCryptoRng, TryRng};

use super::Error;

/// A frame header; see [`FrameHeader`].
pub type Header = FrameHeader;

/// A 32-byte XChaCha20-Poly1305 key. Its `Debug` output hides the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Key([u8; 32]);

impl Key {
    /// Wraps 32 key bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The key bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(..)")
    }
}

/// Decodes and validates the header at the start of `data` without
/// decrypting anything, and checks that `data` holds exactly that one frame.
///
/// # Errors
/// The first problem the header shows, [`FrameError::Truncated`] when the
/// body is cut short, and [`Error::TrailingBytes`] when more follows.
pub fn inspect(data: &[u8]) -> Result<Header, Error> {
    let header = FrameHeader::decode(data)?;
    let frame_len = header.frame_len();
    if data.len() < frame_len {
        return Err(FrameError::Truncated { needed: frame_len }.into());
    }
    if data.len() > frame_len {
        return Err(Error::TrailingBytes {
            frame_len,
            input_len: data.len(),
        });
    }
    Ok(header)
}

/// Builds a frame around `payload`, stored as `compressed` when given.
pub(crate) fn seal<R: TryCryptoRng + ?Sized>(
    format: Format,
    payload: &[u8],
    compressed: Option<&[u8]>,
    sealing: Option<(&Key, &mut R)>,
) -> Result<Vec<u8>, Error> {
    let (compression, stored) = match compressed {
        Some(bytes) => (Compression::Deflate, bytes),
        None => (Compression::None, payload),
    };
    let encryption = if sealing.is_some() {
        Encryption::XChaCha20Poly1305
    } else {
        Encryption::None
    };
    let spec = FrameSpec::new(format, compression, encryption);
    let checksum = crc32(payload);
    let header = FrameHeader::new(spec, payload.len(), stored.len(), checksum)
        .map_err(|_| Error::PayloadTooLarge(payload.len()))?;
    let header_bytes = header.to_bytes();
    let mut frame = Vec::with_capacity(header.frame_len());
    frame.extend_from_slice(&header_bytes);
    let Some((key, rng)) = sealing else {
        frame.extend_from_slice(stored);
        return Ok(frame);
    };
    let mut nonce = [0u8; NONCE_LEN];
    rng.try_fill_bytes(&mut nonce)
        .map_err(|_| Error::NonceSourceFailed)?;
    frame.extend_from_slice(&nonce);
    let sealed_from = frame.len();
    frame.extend_from_slice(stored);
    frame.extend_from_slice(&checksum.to_le_bytes());
    let cipher = XChaCha20Poly1305::new(key.as_bytes().into());
    let tag = cipher
        .encrypt_inout_detached(
            &XNonce::from(nonce),
            &header_bytes,
            (&mut frame[sealed_from..]).into(),
        )
        .map_err(|_| Error::PayloadTooLarge(payload.len()))?;
    frame.extend_from_slice(&tag);
    Ok(frame)
}

/// Verifies, decrypts and inflates one frame spanning all of `data`.
pub(crate) fn open(
    data: &[u8],
    key: Option<&Key>,
    max_decoded_size: usize,
) -> Result<(Header, Vec<u8>), Error> {
    let header = FrameHeader::decode(data)?;
    let original = header.original_size();
    if u64::from(original) > max_decoded_size as u64 {
        return Err(Error::TooLarge {
            declared: u64::from(original),
            limit: max_decoded_size,
        });
    }
    let frame_len = header.frame_len();
    if data.len() < frame_len {
        return Err(FrameError::Truncated { needed: frame_len }.into());
    }
    if data.len() > frame_len {
        return Err(Error::TrailingBytes {
            frame_len,
            input_len: data.len(),
        });
    }
    let body = &data[FrameHeader::LEN..];
    // `plain` holds the stored payload; `sealed` the checksum that was
    // encrypted with it, if any.
    let (plain, sealed): (Vec<u8>, Option<u32>) = match (header.encryption(), key) {
        (Encryption::None, None) => (body.to_vec(), None),
        (Encryption::None, Some(_)) => return Err(FrameError::NotEncrypted.into()),
        (_, None) => return Err(FrameError::KeyRequired.into()),
        (_, Some(key)) => {
            let (nonce, rest) = body.split_at(NONCE_LEN);
            let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
            let mut buffer = ciphertext.to_vec();
            let cipher = XChaCha20Poly1305::new(key.as_bytes().into());
            let nonce = XNonce::try_from(nonce).map_err(|_| FrameError::AuthenticationFailed)?;
            let tag = Tag::try_from(tag).map_err(|_| FrameError::AuthenticationFailed)?;
            cipher
                .decrypt_inout_detached(
                    &nonce,
                    &data[..FrameHeader::LEN],
                    buffer.as_mut_slice().into(),
                    &tag,
                )
                .map_err(|_| FrameError::AuthenticationFailed)?;
            let split = buffer.len() - SEALED_CHECKSUM_LEN;
            let mut sealed = [0u8; SEALED_CHECKSUM_LEN];
            sealed.copy_from_slice(&buffer[split..]);
            buffer.truncate(split);
            (buffer, Some(u32::from_le_bytes(sealed)))
        }
    };
    let payload = match header.compression() {
        Compression::Deflate => {
            // The limit was checked above, so this allocation is bounded by it.
            let mut out = vec![0u8; original as usize];
            let written = Inflater::new()
                .inflate(&plain, &mut out)
                .map_err(FrameError::from)?;
            if written != out.len() {
                return Err(FrameError::InconsistentLength {
                    body_len: header.body_len(),
                    original_size: original,
                }
                .into());
            }
            out
        }
        _ => plain,
    };
    let expected = sealed.or(header.checksum()).unwrap_or(0);
    let actual = crc32(&payload);
    if expected != actual {
        return Err(FrameError::ChecksumMismatch { expected, actual }.into());
    }
    Ok((header, payload))
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
