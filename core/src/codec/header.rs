//! The fixed 28-byte frame header and the frame error type.
//!
//! Invariants of every [`FrameHeader`] value (constructed or decoded):
//! - its format, compression and encryption are known to this version;
//! - `body_len` is at least the overhead its encryption adds, and for an
//!   uncompressed frame the stored payload is exactly `original_size` bytes;
//! - the whole frame length (`28 + body_len`) fits in a `u32` and a `usize`;
//! - the checksum field is zero for encrypted frames, whose checksum travels
//!   inside the ciphertext (see `docs/FORMAT.md`, "Why the checksum moves").
//!
//! Decoding checks, in this order, so that errors are stable and each names
//! the first problem: length, magic, version, header check, reserved bytes,
//! format, compression, encryption, then lengths. The header check (a CRC-32
//! over the first 24 bytes) comes before the field checks so that a corrupt
//! header on a noisy link reads as corruption, not as an unknown flag.
//!
//! ```
//! use mechops_core::codec::header::{Compression, Encryption, Format, FrameHeader, FrameSpec};
//!
//! let spec = FrameSpec::new(Format::Postcard, Compression::None, Encryption::None);
//! let payload = b"hello";
//! let checksum = mechops_core::codec::checksum::crc32(payload);
//! let header = FrameHeader::new(spec, payload.len(), payload.len(), checksum)?;
//!
//! let bytes = header.to_bytes();
//! assert_eq!(&bytes[..4], b"MOPF");
//! assert_eq!(FrameHeader::decode(&bytes)?, header);
//! assert_eq!(header.frame_len(), FrameHeader::LEN + 5);
//! # Ok::<(), mechops_core::codec::header::FrameError>(())
//! ```

use super::checksum::crc32;

mod codes;
mod error;

pub use codes::{Compression, Encryption, Format};
pub use error::FrameError;

/// The four bytes every frame starts with: ASCII `MOPF`.
pub const MAGIC: [u8; 4] = *b"MOPF";

/// The only frame format version this code reads and writes.
pub const VERSION: u8 = 1;

/// Length of the random nonce that starts an encrypted body.
pub const NONCE_LEN: usize = 24;

/// Length of the Poly1305 tag that ends an encrypted body.
pub const TAG_LEN: usize = 16;

/// Length of the payload checksum carried inside an encrypted body.
pub const SEALED_CHECKSUM_LEN: usize = 4;

/// Largest frame (header plus body) the format can describe.
pub const MAX_FRAME_LEN: usize = u32::MAX as usize;

// Byte offsets inside the header; docs/FORMAT.md lists the same table.
const OFF_VERSION: usize = 4;
const OFF_FORMAT: usize = 5;
const OFF_COMPRESSION: usize = 6;
const OFF_ENCRYPTION: usize = 7;
const OFF_ORIGINAL_SIZE: usize = 8;
const OFF_BODY_LEN: usize = 12;
const OFF_CHECKSUM: usize = 16;
const OFF_RESERVED: usize = 20;
const OFF_HEADER_CHECK: usize = 24;

/// The three choices that shape a frame: payload format, compression and
/// encryption.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FrameSpec {
    /// The payload's encoding.
    pub format: Format,
    /// How the stored payload is compressed.
    pub compression: Compression,
    /// How the body is encrypted.
    pub encryption: Encryption,
}

impl FrameSpec {
    /// Bundles the three choices.
    #[must_use]
    pub const fn new(format: Format, compression: Compression, encryption: Encryption) -> Self {
        Self {
            format,
            compression,
            encryption,
        }
    }

    /// Offset, from the start of the frame, of the stored (possibly
    /// compressed, possibly encrypted) payload.
    #[must_use]
    pub const fn payload_offset(&self) -> usize {
        match self.encryption {
            Encryption::None => FrameHeader::LEN,
            Encryption::XChaCha20Poly1305 => FrameHeader::LEN + NONCE_LEN,
        }
    }

    /// Bytes a frame adds to its stored payload: header plus encryption
    /// overhead.
    #[must_use]
    pub const fn overhead(&self) -> usize {
        FrameHeader::LEN + self.encryption.overhead()
    }

    /// Total frame length for a stored payload of `stored_len` bytes.
    ///
    /// # Errors
    /// [`FrameError::SizeOverflow`] when the frame would exceed
    /// [`MAX_FRAME_LEN`].
    pub const fn frame_len(&self, stored_len: usize) -> Result<usize, FrameError> {
        match stored_len.checked_add(self.overhead()) {
            Some(n) if n <= MAX_FRAME_LEN => Ok(n),
            _ => Err(FrameError::SizeOverflow),
        }
    }
}

/// A decoded or about-to-be-encoded frame header.
///
/// See the module docs for the invariants every value keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(into = "WireHeader", try_from = "WireHeader"))]
pub struct FrameHeader {
    spec: FrameSpec,
    original_size: u32,
    body_len: u32,
    checksum: u32,
}

impl FrameHeader {
    /// Length of the encoded header in bytes.
    pub const LEN: usize = 28;

    /// A header for a frame whose payload is `original_size` bytes before
    /// compression and `stored_len` bytes as stored (after compression,
    /// before encryption), with `checksum` the CRC-32 of the uncompressed
    /// payload.
    ///
    /// For an encrypted spec the checksum is kept here for the encoder but
    /// written inside the ciphertext, and the header field on the wire is zero.
    ///
    /// # Errors
    /// [`FrameError::SizeOverflow`] when a size does not fit the format;
    /// [`FrameError::InconsistentLength`] when an uncompressed payload's
    /// stored length differs from its original size.
    pub fn new(
        spec: FrameSpec,
        original_size: usize,
        stored_len: usize,
        checksum: u32,
    ) -> Result<Self, FrameError> {
        let original_size = u32::try_from(original_size).map_err(|_| FrameError::SizeOverflow)?;
        let frame_len = spec.frame_len(stored_len)?;
        let body_len =
            u32::try_from(frame_len - Self::LEN).map_err(|_| FrameError::SizeOverflow)?;
        let header = Self {
            spec,
            original_size,
            body_len,
            checksum,
        };
        header.check_lengths()?;
        Ok(header)
    }

    /// The format, compression and encryption.
    #[must_use]
    pub const fn spec(&self) -> FrameSpec {
        self.spec
    }

    /// The payload's encoding.
    #[must_use]
    pub const fn format(&self) -> Format {
        self.spec.format
    }

    /// How the stored payload is compressed.
    #[must_use]
    pub const fn compression(&self) -> Compression {
        self.spec.compression
    }

    /// How the body is encrypted.
    #[must_use]
    pub const fn encryption(&self) -> Encryption {
        self.spec.encryption
    }

    /// Size of the payload after decryption and decompression.
    #[must_use]
    pub const fn original_size(&self) -> u32 {
        self.original_size
    }

    /// Number of bytes after the header.
    #[must_use]
    pub const fn body_len(&self) -> u32 {
        self.body_len
    }

    /// Length of the stored payload: the body minus nonce, sealed checksum
    /// and tag. For a compressed frame this is the compressed size.
    #[must_use]
    pub const fn stored_len(&self) -> usize {
        // The invariant body_len >= overhead makes this subtraction exact.
        self.body_len as usize - self.spec.encryption.overhead()
    }

    /// Header plus body: the number of bytes the whole frame occupies.
    #[must_use]
    pub const fn frame_len(&self) -> usize {
        Self::LEN + self.body_len as usize
    }

    /// CRC-32/ISO-HDLC of the uncompressed payload, when the header carries
    /// it. Encrypted frames carry it inside the ciphertext, so a header read
    /// from the wire reports `None` for them.
    #[must_use]
    pub const fn checksum(&self) -> Option<u32> {
        match self.spec.encryption {
            Encryption::None => Some(self.checksum),
            Encryption::XChaCha20Poly1305 => None,
        }
    }

    /// Compression ratio `stored / original` (1.0 for an empty payload).
    #[must_use]
    pub fn ratio(&self) -> f64 {
        if self.original_size == 0 {
            1.0
        } else {
            self.stored_len() as f64 / f64::from(self.original_size)
        }
    }

    fn check_lengths(&self) -> Result<(), FrameError> {
        let body_len = self.body_len as usize;
        let overhead = self.spec.encryption.overhead();
        let inconsistent = body_len < overhead
            || (self.spec.compression == Compression::None
                && body_len - overhead != self.original_size as usize);
        if inconsistent {
            return Err(FrameError::InconsistentLength {
                body_len: self.body_len,
                original_size: self.original_size,
            });
        }
        if Self::LEN
            .checked_add(body_len)
            .is_none_or(|n| n > MAX_FRAME_LEN)
        {
            return Err(FrameError::SizeOverflow);
        }
        Ok(())
    }

    /// The 28 wire bytes of this header, header check included.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[..4].copy_from_slice(&MAGIC);
        b[OFF_VERSION] = VERSION;
        b[OFF_FORMAT] = self.spec.format.code();
        b[OFF_COMPRESSION] = self.spec.compression.code();
        b[OFF_ENCRYPTION] = self.spec.encryption.code();
        b[OFF_ORIGINAL_SIZE..OFF_ORIGINAL_SIZE + 4]
            .copy_from_slice(&self.original_size.to_le_bytes());
        b[OFF_BODY_LEN..OFF_BODY_LEN + 4].copy_from_slice(&self.body_len.to_le_bytes());
        let wire_checksum = self.checksum().unwrap_or(0);
        b[OFF_CHECKSUM..OFF_CHECKSUM + 4].copy_from_slice(&wire_checksum.to_le_bytes());
        // Bytes 20..24 stay zero: reserved.
        let check = crc32(&b[..OFF_HEADER_CHECK]);
        b[OFF_HEADER_CHECK..].copy_from_slice(&check.to_le_bytes());
        b
    }

    /// Writes the header into the first [`FrameHeader::LEN`] bytes of `out`
    /// and returns the number of bytes written.
    ///
    /// # Errors
    /// [`FrameError::BufferTooSmall`] when `out` is shorter than the header.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, FrameError> {
        let dst = out
            .get_mut(..Self::LEN)
            .ok_or(FrameError::BufferTooSmall { needed: Self::LEN })?;
        dst.copy_from_slice(&self.to_bytes());
        Ok(Self::LEN)
    }

    /// Reads and validates the header at the start of `bytes`; bytes after
    /// the header are ignored.
    ///
    /// # Errors
    /// [`FrameError::Truncated`] when fewer than 28 bytes are given, otherwise
    /// the first problem found in the order the module docs give.
    pub fn decode(bytes: &[u8]) -> Result<Self, FrameError> {
        let Some(b) = bytes.first_chunk::<{ Self::LEN }>() else {
            return Err(FrameError::Truncated { needed: Self::LEN });
        };
        if b[..4] != MAGIC {
            return Err(FrameError::BadMagic);
        }
        if b[OFF_VERSION] != VERSION {
            return Err(FrameError::UnsupportedVersion(b[OFF_VERSION]));
        }
        if crc32(&b[..OFF_HEADER_CHECK]) != read_u32(b, OFF_HEADER_CHECK) {
            return Err(FrameError::HeaderChecksumMismatch);
        }
        if let Some(i) = b[OFF_RESERVED..OFF_HEADER_CHECK]
            .iter()
            .position(|&x| x != 0)
        {
            return Err(FrameError::ReservedNotZero {
                offset: OFF_RESERVED + i,
            });
        }
        let spec = FrameSpec {
            format: Format::from_code(b[OFF_FORMAT])?,
            compression: Compression::from_code(b[OFF_COMPRESSION])?,
            encryption: Encryption::from_code(b[OFF_ENCRYPTION])?,
        };
        let checksum = read_u32(b, OFF_CHECKSUM);
        if spec.encryption != Encryption::None && checksum != 0 {
            let i = b[OFF_CHECKSUM..OFF_CHECKSUM + 4]
                .iter()
                .position(|&x| x != 0)
                .unwrap_or(0);
            return Err(FrameError::ReservedNotZero {
                offset: OFF_CHECKSUM + i,
            });
        }
        let header = Self {
            spec,
            original_size: read_u32(b, OFF_ORIGINAL_SIZE),
            body_len: read_u32(b, OFF_BODY_LEN),
            checksum,
        };
        header.check_lengths()?;
        Ok(header)
    }
}

fn read_u32(b: &[u8; FrameHeader::LEN], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The serde shape of a header: its wire fields, validated on the way in.
#[cfg(feature = "serde")]
#[derive(serde::Serialize, serde::Deserialize)]
struct WireHeader {
    version: u8,
    format: u8,
    compression: u8,
    encryption: u8,
    original_size: u32,
    body_len: u32,
    checksum: u32,
}

#[cfg(feature = "serde")]
impl From<FrameHeader> for WireHeader {
    fn from(h: FrameHeader) -> Self {
        Self {
            version: VERSION,
            format: h.spec.format.code(),
            compression: h.spec.compression.code(),
            encryption: h.spec.encryption.code(),
            original_size: h.original_size,
            body_len: h.body_len,
            checksum: h.checksum,
        }
    }
}

#[cfg(feature = "serde")]
impl TryFrom<WireHeader> for FrameHeader {
    type Error = FrameError;

    fn try_from(w: WireHeader) -> Result<Self, FrameError> {
        if w.version != VERSION {
            return Err(FrameError::UnsupportedVersion(w.version));
        }
        let header = Self {
            spec: FrameSpec {
                format: Format::from_code(w.format)?,
                compression: Compression::from_code(w.compression)?,
                encryption: Encryption::from_code(w.encryption)?,
            },
            original_size: w.original_size,
            body_len: w.body_len,
            checksum: w.checksum,
        };
        header.check_lengths()?;
        Ok(header)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(spec: FrameSpec) -> FrameHeader {
        let stored = if spec.compression == Compression::None {
            100
        } else {
            40
        };
        FrameHeader::new(spec, 100, stored, 0xDEAD_BEEF).unwrap()
    }

    fn all_specs() -> impl Iterator<Item = FrameSpec> {
        Format::ALL.into_iter().flat_map(|f| {
            Compression::ALL.into_iter().flat_map(move |c| {
                Encryption::ALL
                    .into_iter()
                    .map(move |e| FrameSpec::new(f, c, e))
            })
        })
    }

    #[test]
    fn round_trips_every_spec() {
        for spec in all_specs() {
            let h = sample(spec);
            let d = FrameHeader::decode(&h.to_bytes()).unwrap();
            assert_eq!(d.spec(), spec);
            assert_eq!(d.original_size(), 100);
            assert_eq!(d.body_len(), h.body_len());
            assert_eq!(d.stored_len(), h.stored_len());
            match spec.encryption {
                Encryption::None => assert_eq!(d.checksum(), Some(0xDEAD_BEEF)),
                _ => assert_eq!(d.checksum(), None),
            }
        }
    }

    #[test]
    fn rejects_short_input() {
        let b = sample(FrameSpec::new(
            Format::Json,
            Compression::None,
            Encryption::None,
        ))
        .to_bytes();
        for n in 0..FrameHeader::LEN {
            assert_eq!(
                FrameHeader::decode(&b[..n]),
                Err(FrameError::Truncated { needed: 28 })
            );
        }
    }

    #[test]
    fn every_bit_flip_is_rejected() {
        for spec in all_specs() {
            let b = sample(spec).to_bytes();
            for bit in 0..FrameHeader::LEN * 8 {
                let mut c = b;
                c[bit / 8] ^= 1 << (bit % 8);
                assert!(FrameHeader::decode(&c).is_err(), "{spec:?} bit {bit}");
            }
        }
    }

    /// Re-seals a header after editing a byte, so field checks are reached.
    fn resealed(mut b: [u8; FrameHeader::LEN]) -> [u8; FrameHeader::LEN] {
        let check = crc32(&b[..OFF_HEADER_CHECK]);
        b[OFF_HEADER_CHECK..].copy_from_slice(&check.to_le_bytes());
        b
    }

    #[test]
    fn names_each_bad_field() {
        let b = sample(FrameSpec::new(
            Format::Cbor,
            Compression::Deflate,
            Encryption::None,
        ))
        .to_bytes();
        let mut m = b;
        m[0] = b'X';
        assert_eq!(FrameHeader::decode(&m), Err(FrameError::BadMagic));
        let mut m = b;
        m[OFF_VERSION] = 2;
        assert_eq!(
            FrameHeader::decode(&resealed(m)),
            Err(FrameError::UnsupportedVersion(2))
        );
        let mut m = b;
        m[OFF_FORMAT] = 4;
        assert_eq!(
            FrameHeader::decode(&resealed(m)),
            Err(FrameError::UnknownFormat(4))
        );
        let mut m = b;
        m[OFF_COMPRESSION] = 9;
        assert_eq!(
            FrameHeader::decode(&resealed(m)),
            Err(FrameError::UnknownCompression(9))
        );
        let mut m = b;
        m[OFF_ENCRYPTION] = 0x80;
        assert_eq!(
            FrameHeader::decode(&resealed(m)),
            Err(FrameError::UnknownEncryption(0x80))
        );
        for off in OFF_RESERVED..OFF_HEADER_CHECK {
            let mut m = b;
            m[off] = 1;
            assert_eq!(
                FrameHeader::decode(&resealed(m)),
                Err(FrameError::ReservedNotZero { offset: off })
            );
        }
        let mut m = b;
        m[OFF_HEADER_CHECK] ^= 0x40;
        assert_eq!(
            FrameHeader::decode(&m),
            Err(FrameError::HeaderChecksumMismatch)
        );
    }

    #[test]
    fn encrypted_header_keeps_checksum_field_zero() {
        let h = sample(FrameSpec::new(
            Format::Postcard,
            Compression::None,
            Encryption::XChaCha20Poly1305,
        ));
        let b = h.to_bytes();
        assert_eq!(&b[OFF_CHECKSUM..OFF_CHECKSUM + 4], &[0; 4]);
        let mut m = b;
        m[OFF_CHECKSUM + 2] = 7;
        assert_eq!(
            FrameHeader::decode(&resealed(m)),
            Err(FrameError::ReservedNotZero {
                offset: OFF_CHECKSUM + 2
            })
        );
    }

    #[test]
    fn lengths_are_checked() {
        let spec = FrameSpec::new(Format::Postcard, Compression::None, Encryption::None);
        assert_eq!(
            FrameHeader::new(spec, 10, 9, 0),
            Err(FrameError::InconsistentLength {
                body_len: 9,
                original_size: 10
            })
        );
        assert_eq!(
            FrameHeader::new(spec, 0, usize::MAX, 0),
            Err(FrameError::SizeOverflow)
        );
        let max = MAX_FRAME_LEN - FrameHeader::LEN;
        assert!(FrameHeader::new(spec, max, max, 0).is_ok());
        assert_eq!(
            FrameHeader::new(spec, max + 1, max + 1, 0),
            Err(FrameError::SizeOverflow)
        );
        let sealed = FrameSpec::new(
            Format::Postcard,
            Compression::Deflate,
            Encryption::XChaCha20Poly1305,
        );
        let mut b = FrameHeader::new(sealed, 5, 3, 0).unwrap().to_bytes();
        // A sealed body shorter than its overhead cannot be a frame.
        b[OFF_BODY_LEN..OFF_BODY_LEN + 4].copy_from_slice(&43u32.to_le_bytes());
        assert_eq!(
            FrameHeader::decode(&resealed(b)),
            Err(FrameError::InconsistentLength {
                body_len: 43,
                original_size: 5
            })
        );
    }
}
