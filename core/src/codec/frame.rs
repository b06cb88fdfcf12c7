//! Frame encoding and decoding into caller buffers.
//!
//! Invariants:
//! - an encoder writes exactly [`FrameSpec::frame_len`] bytes and nothing
//!   outside them; a too-small buffer is reported with the size needed;
//! - a decoder returns a payload only after every check in
//!   `docs/FORMAT.md` ("Reading a frame") passed: header, lengths, tag (before
//!   any decryption), inflate to exactly the declared size, then checksum;
//! - decoded payloads borrow the caller's buffers: the frame itself (in place
//!   for stored and encrypted payloads) or a scratch slice for compressed ones;
//! - a key is required for an encrypted frame and refused for a plain one.
//!
//! Writing and reading a sealed frame:
//!
//! ```
//! use mechops_core::codec::aead::{Key, NonceSource};
//! use mechops_core::codec::frame::{self, Sealer};
//! use mechops_core::codec::header::Format;
//!
//! let key = Key::from_bytes(&[9; 32]);
//! let mut buf = [0u8; 128];
//! let sealer = Sealer::new(&key, NonceSource::Explicit([3; 24]));
//! let n = frame::encode(Format::Json, br#"{"a":1}"#, &mut buf, Some(sealer))?;
//!
//! let mut scratch = [0u8; 0]; // only compressed frames need scratch space
//! let decoded = frame::decode(&mut buf[..n], Some(&key), &mut scratch)?;
//! assert_eq!(decoded.payload, br#"{"a":1}"#);
//! assert_eq!(decoded.header.format(), Format::Json);
//! # Ok::<(), mechops_core::codec::header::FrameError>(())
//! ```

use super::aead::{Key, NONCE_LEN, NonceSource, TAG_LEN};
use super::checksum::crc32;
use super::header::{
    Compression, Encryption, Format, FrameError, FrameHeader, FrameSpec, SEALED_CHECKSUM_LEN,
};
use super::inflate::{InflateError, Inflater};

/// A key and a nonce source: what it takes to seal one frame.
#[derive(Debug)]
pub struct Sealer<'a> {
    key: &'a Key,
    nonce: NonceSource<'a>,
}

impl<'a> Sealer<'a> {
    /// Seals with `key` and a nonce from `nonce`.
    #[must_use]
    pub fn new(key: &'a Key, nonce: NonceSource<'a>) -> Self {
        Self { key, nonce }
    }
}

/// Describes a stored payload for [`encode_stored`]: its bytes as they go on
/// the wire (compressed or not) and the facts about the original.
#[derive(Clone, Copy, Debug)]
pub struct StoredPayload<'a> {
    /// The payload's encoding.
    pub format: Format,
    /// How `bytes` is compressed.
    pub compression: Compression,
    /// The stored bytes (the payload, or its raw DEFLATE stream).
    pub bytes: &'a [u8],
    /// Length of the uncompressed payload.
    pub original_size: usize,
    /// CRC-32 of the uncompressed payload ([`crc32`]).
    pub checksum: u32,
}

/// Encodes an uncompressed `payload` as one frame at the start of `out` and
/// returns the frame length. With a sealer the frame is encrypted.
///
/// # Errors
/// [`FrameError::BufferTooSmall`] when `out` cannot hold the frame,
/// [`FrameError::SizeOverflow`] beyond the format's 32-bit sizes.
pub fn encode(
    format: Format,
    payload: &[u8],
    out: &mut [u8],
    sealer: Option<Sealer<'_>>,
) -> Result<usize, FrameError> {
    encode_stored(
        StoredPayload {
            format,
            compression: Compression::None,
            bytes: payload,
            original_size: payload.len(),
            checksum: crc32(payload),
        },
        out,
        sealer,
    )
}

/// Encodes an already stored (possibly compressed) payload as one frame at
/// the start of `out` and returns the frame length.
///
/// # Errors
/// As [`encode`], plus [`FrameError::InconsistentLength`] when an
/// uncompressed payload's length differs from `original_size`.
pub fn encode_stored(
    stored: StoredPayload<'_>,
    out: &mut [u8],
    sealer: Option<Sealer<'_>>,
) -> Result<usize, FrameError> {
    let spec = FrameSpec::new(
        stored.format,
        stored.compression,
        encryption_of(sealer.as_ref()),
    );
    let len = spec.frame_len(stored.bytes.len())?;
    let start = spec.payload_offset();
    let dst = out
        .get_mut(start..start + stored.bytes.len())
        .ok_or(FrameError::BufferTooSmall { needed: len })?;
    dst.copy_from_slice(stored.bytes);
    finish_in_place(
        out,
        spec,
        stored.original_size,
        stored.bytes.len(),
        stored.checksum,
        sealer,
    )
}

fn encryption_of(sealer: Option<&Sealer<'_>>) -> Encryption {
    if sealer.is_some() {
        Encryption::XChaCha20Poly1305
    } else {
        Encryption::None
    }
}

/// Completes a frame whose stored payload the caller already wrote at
/// `buf[spec.payload_offset()..][..stored_len]` (for instance by serializing
/// straight into the buffer): writes the header and, when `spec` is
/// encrypted, the nonce, sealed checksum and tag. Returns the frame length.
///
/// `spec.encryption` must agree with `sealer`.
///
/// # Errors
/// [`FrameError::KeyRequired`] / [`FrameError::NotEncrypted`] when `spec`
/// and `sealer` disagree; [`FrameError::BufferTooSmall`],
/// [`FrameError::SizeOverflow`], [`FrameError::InconsistentLength`] as for
/// [`encode_stored`].
pub fn finish_in_place(
    buf: &mut [u8],
    spec: FrameSpec,
    original_size: usize,
    stored_len: usize,
    checksum: u32,
    sealer: Option<Sealer<'_>>,
) -> Result<usize, FrameError> {
    match (spec.encryption, &sealer) {
        (Encryption::None, Some(_)) => return Err(FrameError::NotEncrypted),
        (Encryption::XChaCha20Poly1305, None) => return Err(FrameError::KeyRequired),
        _ => {}
    }
    let header = FrameHeader::new(spec, original_size, stored_len, checksum)?;
    let len = header.frame_len();
    let frame = buf
        .get_mut(..len)
        .ok_or(FrameError::BufferTooSmall { needed: len })?;
    let (head, body) = frame.split_at_mut(FrameHeader::LEN);
    head.copy_from_slice(&header.to_bytes());
    match (spec.encryption, sealer) {
        (Encryption::None, None) => Ok(len),
        (Encryption::XChaCha20Poly1305, Some(sealer)) => {
            let nonce = sealer.nonce.nonce();
            let (nonce_dst, rest) = body.split_at_mut(NONCE_LEN);
            nonce_dst.copy_from_slice(&nonce);
            let (plain, tag_dst) = rest.split_at_mut(rest.len() - TAG_LEN);
            plain[stored_len..].copy_from_slice(&checksum.to_le_bytes());
            let tag = sealer
                .key
                .seal_in_place(&nonce, head, plain)
                .map_err(|_| FrameError::SizeOverflow)?;
            tag_dst.copy_from_slice(&tag);
            Ok(len)
        }
        // Mismatches were refused above, before anything was written.
        (Encryption::XChaCha20Poly1305, None) => Err(FrameError::KeyRequired),
        (_, Some(_)) => Err(FrameError::NotEncrypted),
    }
}

/// A frame located in a byte slice: its validated header and its body,
/// borrowed. Nothing in the body has been checked yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameRef<'a> {
    header: FrameHeader,
    body: &'a [u8],
}

impl<'a> FrameRef<'a> {
    /// The frame's header.
    #[must_use]
    pub const fn header(&self) -> FrameHeader {
        self.header
    }

    /// The body: everything after the header.
    #[must_use]
    pub const fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The nonce of an encrypted frame.
    #[must_use]
    pub fn nonce(&self) -> Option<&'a [u8; NONCE_LEN]> {
        match self.header.encryption() {
            Encryption::None => None,
            _ => self.body.first_chunk::<NONCE_LEN>(),
        }
    }

    /// Bytes the frame occupies; the next frame starts there.
    #[must_use]
    pub const fn frame_len(&self) -> usize {
        self.header.frame_len()
    }

    /// The payload of an unencrypted frame after inflating (into `scratch`
    /// when compressed) and checking its checksum.
    ///
    /// # Errors
    /// [`FrameError::KeyRequired`] for an encrypted frame; otherwise as
    /// [`decode`].
    pub fn payload<'s>(&self, scratch: &'s mut [u8]) -> Result<&'s [u8], FrameError>
    where
        'a: 's,
    {
        if self.header.encryption() != Encryption::None {
            return Err(FrameError::KeyRequired);
        }
        let expected = self.header.checksum().unwrap_or(0);
        finish_payload(&self.header, self.body, expected, scratch)
    }
}

/// Locates the frame at the start of `bytes`, validating its header and that
/// the whole body is present. Bytes after the frame are not looked at.
///
/// # Errors
/// Header errors, and [`FrameError::Truncated`] with the frame's length when
/// `bytes` ends early.
pub fn parse(bytes: &[u8]) -> Result<FrameRef<'_>, FrameError> {
    let header = FrameHeader::decode(bytes)?;
    let needed = header.frame_len();
    let frame = bytes
        .get(..needed)
        .ok_or(FrameError::Truncated { needed })?;
    Ok(FrameRef {
        header,
        body: &frame[FrameHeader::LEN..],
    })
}

/// A decoded frame: its header and the plaintext, uncompressed payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// The frame's header; `header.frame_len()` is where the next frame starts.
    pub header: FrameHeader,
    /// The payload exactly as serialized in `header.format()`.
    pub payload: &'a [u8],
}

/// Decodes the frame at the start of `frame`: verifies and decrypts in place
/// when encrypted, inflates into `scratch` when compressed, checks the
/// checksum, and returns the payload.
///
/// `scratch` must hold `header.original_size()` bytes for a compressed
/// frame and is unused otherwise; callers with their own limit check
/// [`FrameHeader::original_size`] (via [`parse`] or [`FrameHeader::decode`])
/// before providing it. On an encrypted frame the body is decrypted in place
/// only once its tag verified; after a successful decode (or a failure
/// after decryption, such as a checksum mismatch) the buffer holds the
/// plaintext and cannot be decoded again.
///
/// # Errors
/// The first failed check, in the order of `docs/FORMAT.md`.
pub fn decode<'a>(
    frame: &'a mut [u8],
    key: Option<&Key>,
    scratch: &'a mut [u8],
) -> Result<Decoded<'a>, FrameError> {
    let header = parse(frame)?.header;
    // Checked before decrypting: decryption is in place, so failing after it
    // would leave the caller unable to retry with a larger scratch buffer.
    let size = header.original_size() as usize;
    if header.compression() != Compression::None && scratch.len() < size {
        return Err(FrameError::BufferTooSmall { needed: size });
    }
    let opened = open_parsed(header, frame, key)?;
    let payload = opened.payload(scratch)?;
    Ok(Decoded {
        header: opened.header,
        payload,
    })
}

/// A frame whose body is authenticated and decrypted (or was never
/// encrypted) but not yet inflated or checksummed: what a reader that
/// inflates by other means (a streaming decoder, another DEFLATE backend)
/// works from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opened<'a> {
    /// The frame's header.
    pub header: FrameHeader,
    /// The stored payload: raw DEFLATE when the frame is compressed.
    pub stored: &'a [u8],
    /// The CRC-32 the uncompressed payload must have.
    pub checksum: u32,
}

impl<'a> Opened<'a> {
    /// Inflates into `scratch` when compressed (which must hold the original
    /// size), then verifies the checksum, and returns the payload.
    ///
    /// # Errors
    /// As the last steps of [`decode`].
    pub fn payload<'s>(&self, scratch: &'s mut [u8]) -> Result<&'s [u8], FrameError>
    where
        'a: 's,
    {
        finish_payload(&self.header, self.stored, self.checksum, scratch)
    }
}

/// Verifies the tag of the encrypted frame at the start of `frame` and
/// decrypts its body in place; on failure the body is left as it was.
///
/// # Errors
/// Header and length errors, [`FrameError::NotEncrypted`] for a plain
/// frame, [`FrameError::AuthenticationFailed`] for a wrong key or any
/// alteration.
pub fn open<'a>(frame: &'a mut [u8], key: &Key) -> Result<Opened<'a>, FrameError> {
    let header = parse(frame)?.header;
    open_parsed(header, frame, Some(key))
}

/// Opens a frame whose `header` [`parse`] already validated against `frame`.
fn open_parsed<'a>(
    header: FrameHeader,
    frame: &'a mut [u8],
    key: Option<&Key>,
) -> Result<Opened<'a>, FrameError> {
    let (head, rest) = frame.split_at_mut(FrameHeader::LEN);
    let body = &mut rest[..header.body_len() as usize];
    let (stored, checksum): (&'a [u8], u32) = match (header.encryption(), key) {
        (Encryption::None, None) => (body, header.checksum().unwrap_or(0)),
        (Encryption::None, Some(_)) => return Err(FrameError::NotEncrypted),
        (_, None) => return Err(FrameError::KeyRequired),
        (_, Some(key)) => open_body(head, body, key)?,
    };
    Ok(Opened {
        header,
        stored,
        checksum,
    })
}

/// Verifies and decrypts the body of an encrypted frame in place; returns
/// the stored payload and the checksum it carried.
///
/// The associated data is the header exactly as it arrived, so a reader
/// authenticates the bytes it was given, not its own re-encoding of them.
fn open_body<'a>(aad: &[u8], body: &'a mut [u8], key: &Key) -> Result<(&'a [u8], u32), FrameError> {
    let (nonce, rest) = body.split_at_mut(NONCE_LEN);
    let nonce: &[u8; NONCE_LEN] = (&*nonce).try_into().map_err(|_| FrameError::SizeOverflow)?;
    let (sealed, tag) = rest.split_at_mut(rest.len() - TAG_LEN);
    let tag: &[u8; TAG_LEN] = (&*tag).try_into().map_err(|_| FrameError::SizeOverflow)?;
    key.open_in_place(nonce, aad, sealed, tag)
        .map_err(|_| FrameError::AuthenticationFailed)?;
    let (stored, crc) = sealed.split_at(sealed.len() - SEALED_CHECKSUM_LEN);
    let crc = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    Ok((stored, crc))
}

/// Inflates when needed, then checks the payload's size and checksum.
fn finish_payload<'s>(
    header: &FrameHeader,
    stored: &'s [u8],
    expected: u32,
    scratch: &'s mut [u8],
) -> Result<&'s [u8], FrameError> {
    let payload: &'s [u8] = match header.compression() {
        Compression::None => stored,
        Compression::Deflate => {
            let declared = header.original_size();
            let size = declared as usize;
            let out = scratch
                .get_mut(..size)
                .ok_or(FrameError::BufferTooSmall { needed: size })?;
            let n = match Inflater::new().inflate(stored, out) {
                Ok(n) => n,
                Err(InflateError::OutputTooLarge { .. }) => {
                    return Err(FrameError::OriginalSizeMismatch { declared });
                }
                Err(e) => return Err(FrameError::Inflate(e)),
            };
            if n != size {
                return Err(FrameError::OriginalSizeMismatch { declared });
            }
            out
        }
    };
    let actual = crc32(payload);
    if actual != expected {
        return Err(FrameError::ChecksumMismatch { expected, actual });
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [0x11; 32];

    fn spec_frames() -> impl Iterator<Item = (Format, bool)> {
        Format::ALL
            .into_iter()
            .flat_map(|f| [(f, false), (f, true)])
    }

    #[test]
    fn uncompressed_round_trip_every_format_and_encryption() {
        let key = Key::from_bytes(&KEY);
        for (format, sealed) in spec_frames() {
            for len in [0usize, 1, 100, 1000] {
                let payload: std::vec::Vec<u8> = (0..len).map(|i| (i * 13) as u8).collect();
                let mut buf = std::vec![0u8; len + 100];
                let sealer = sealed.then(|| Sealer::new(&key, NonceSource::Explicit([5; 24])));
                let n = encode(format, &payload, &mut buf, sealer).unwrap();
                let overhead = if sealed { 72 } else { 28 };
                assert_eq!(n, len + overhead);
                let k = sealed.then_some(&key);
                let d = decode(&mut buf[..n], k, &mut []).unwrap();
                assert_eq!(d.payload, &payload[..]);
                assert_eq!(d.header.format(), format);
                assert_eq!(d.header.frame_len(), n);
            }
        }
    }

    #[test]
    fn buffer_too_small_names_the_size() {
        let mut buf = [0u8; 40];
        assert_eq!(
            encode(Format::Postcard, &[1; 20], &mut buf, None),
            Err(FrameError::BufferTooSmall { needed: 48 })
        );
        let key = Key::from_bytes(&KEY);
        let sealer = Sealer::new(&key, NonceSource::Explicit([0; 24]));
        assert_eq!(
            encode(Format::Postcard, &[], &mut buf, Some(sealer)),
            Err(FrameError::BufferTooSmall { needed: 72 })
        );
    }

    #[test]
    fn key_presence_must_match() {
        let key = Key::from_bytes(&KEY);
        let mut buf = [0u8; 128];
        let n = encode(Format::Cbor, b"x", &mut buf, None).unwrap();
        assert_eq!(
            decode(&mut buf[..n], Some(&key), &mut []),
            Err(FrameError::NotEncrypted)
        );
        let sealer = Sealer::new(&key, NonceSource::Explicit([0; 24]));
        let n = encode(Format::Cbor, b"x", &mut buf, Some(sealer)).unwrap();
        assert_eq!(
            decode(&mut buf[..n], None, &mut []),
            Err(FrameError::KeyRequired)
        );
        assert_eq!(
            parse(&buf[..n]).unwrap().payload(&mut []),
            Err(FrameError::KeyRequired)
        );
        let spec = FrameSpec::new(
            Format::Cbor,
            Compression::None,
            Encryption::XChaCha20Poly1305,
        );
        assert_eq!(
            finish_in_place(&mut buf, spec, 0, 0, 0, None),
            Err(FrameError::KeyRequired)
        );
    }

    #[test]
    fn random_nonces_differ() {
        let key = Key::from_bytes(&KEY);
        let mut rng = crate::test_support::ByteCounter(0);
        let mut a = [0u8; 80];
        let mut b = [0u8; 80];
        encode(
            Format::Json,
            b"same",
            &mut a,
            Some(Sealer::new(&key, NonceSource::Random(&mut rng))),
        )
        .unwrap();
        encode(
            Format::Json,
            b"same",
            &mut b,
            Some(Sealer::new(&key, NonceSource::Random(&mut rng))),
        )
        .unwrap();
        assert_ne!(a[28..52], b[28..52]);
        assert_ne!(a[52..], b[52..]);
        assert_eq!(
            decode(&mut a, Some(&key), &mut []).unwrap().payload,
            b"same"
        );
    }

    #[test]
    fn compressed_stored_frame_round_trips_and_checks_size() {
        // "hello" as one stored DEFLATE block.
        let deflated = [0x01, 0x05, 0x00, 0xFA, 0xFF, b'h', b'e', b'l', b'l', b'o'];
        let stored = |original_size| StoredPayload {
            format: Format::MessagePack,
            compression: Compression::Deflate,
            bytes: &deflated,
            original_size,
            checksum: crc32(b"hello"),
        };
        let mut buf = [0u8; 64];
        let n = encode_stored(stored(5), &mut buf, None).unwrap();
        let mut scratch = [0u8; 5];
        assert_eq!(
            decode(&mut buf[..n], None, &mut scratch).unwrap().payload,
            b"hello"
        );
        let mut small = [0u8; 4];
        assert_eq!(
            decode(&mut buf[..n], None, &mut small),
            Err(FrameError::BufferTooSmall { needed: 5 })
        );
        for wrong in [4, 6] {
            let n = encode_stored(stored(wrong), &mut buf, None).unwrap();
            let mut scratch = [0u8; 8];
            assert_eq!(
                decode(&mut buf[..n], None, &mut scratch),
                Err(FrameError::OriginalSizeMismatch {
                    declared: wrong as u32
                })
            );
        }
    }

    #[test]
    fn small_scratch_is_refused_before_decrypting() {
        let key = Key::from_bytes(&KEY);
        let deflated = [0x01, 0x05, 0x00, 0xFA, 0xFF, b'h', b'e', b'l', b'l', b'o'];
        let stored = StoredPayload {
            format: Format::Postcard,
            compression: Compression::Deflate,
            bytes: &deflated,
            original_size: 5,
            checksum: crc32(b"hello"),
        };
        let mut buf = [0u8; 96];
        let sealer = Sealer::new(&key, NonceSource::Explicit([2; 24]));
        let n = encode_stored(stored, &mut buf, Some(sealer)).unwrap();
        let mut small = [0u8; 4];
        assert_eq!(
            decode(&mut buf[..n], Some(&key), &mut small),
            Err(FrameError::BufferTooSmall { needed: 5 })
        );
        // The frame is untouched, so a retry with room succeeds.
        let mut room = [0u8; 5];
        assert_eq!(
            decode(&mut buf[..n], Some(&key), &mut room)
                .unwrap()
                .payload,
            b"hello"
        );
    }

    #[test]
    fn checksum_mismatch_is_reported() {
        let mut buf = [0u8; 64];
        let n = encode(Format::Json, b"[1,2]", &mut buf, None).unwrap();
        buf[n - 1] ^= 0x04;
        assert!(matches!(
            decode(&mut buf[..n], None, &mut []),
            Err(FrameError::ChecksumMismatch { .. })
        ));
    }

    #[test]
    fn nonce_is_exposed_for_sealed_frames_only() {
        let key = Key::from_bytes(&KEY);
        let mut buf = [0u8; 128];
        let n = encode(Format::Json, b"1", &mut buf, None).unwrap();
        assert_eq!(parse(&buf[..n]).unwrap().nonce(), None);
        let sealer = Sealer::new(&key, NonceSource::Explicit([0xC3; 24]));
        let n = encode(Format::Json, b"1", &mut buf, Some(sealer)).unwrap();
        assert_eq!(parse(&buf[..n]).unwrap().nonce(), Some(&[0xC3; 24]));
    }

    #[test]
    fn open_decrypts_without_inflating() {
        let key = Key::from_bytes(&KEY);
        let deflated = [0x01, 0x02, 0x00, 0xFD, 0xFF, b'o', b'k'];
        let stored = StoredPayload {
            format: Format::Postcard,
            compression: Compression::Deflate,
            bytes: &deflated,
            original_size: 2,
            checksum: crc32(b"ok"),
        };
        let mut buf = [0u8; 96];
        let sealer = Sealer::new(&key, NonceSource::Explicit([1; 24]));
        let n = encode_stored(stored, &mut buf, Some(sealer)).unwrap();
        let opened = open(&mut buf[..n], &key).unwrap();
        assert_eq!(opened.stored, &deflated);
        assert_eq!(opened.checksum, crc32(b"ok"));
        let mut scratch = [0u8; 2];
        assert_eq!(opened.payload(&mut scratch).unwrap(), b"ok");
        let mut plain = [0u8; 64];
        let m = encode(Format::Postcard, b"ok", &mut plain, None).unwrap();
        assert_eq!(open(&mut plain[..m], &key), Err(FrameError::NotEncrypted));
    }

    #[test]
    fn parse_reports_truncation_with_frame_length() {
        let mut buf = [0u8; 64];
        let n = encode(Format::Json, b"[1,2]", &mut buf, None).unwrap();
        assert_eq!(
            parse(&buf[..n - 1]),
            Err(FrameError::Truncated { needed: n })
        );
        assert_eq!(parse(&buf[..n + 3]).unwrap().frame_len(), n);
    }
}
