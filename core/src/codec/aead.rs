//! XChaCha20-Poly1305 in place, with the key and the nonce source supplied by
//! the caller.
//!
//! Invariants:
//! - key material lives only inside [`Key`], which never exposes it (its
//!   `Debug` is redacted) and wipes it on drop;
//! - [`Key::open_in_place`] verifies the tag before it touches the buffer, so
//!   a rejected message leaves the ciphertext as it was and no unauthenticated
//!   plaintext is ever produced;
//! - nonces are 24 random bytes: with XChaCha20 the chance of a repeat among
//!   2^64 messages under one key is about 2^-64, so callers need no counter.
//!
//! ```
//! use mechops_core::codec::aead::{Key, TAG_LEN};
//!
//! let key = Key::from_bytes(&[7; 32]);
//! let nonce = [1u8; 24];
//! let mut buf = *b"attack at dawn";
//! let tag = key.seal_in_place(&nonce, b"header", &mut buf)?;
//! assert_ne!(&buf, b"attack at dawn");
//! key.open_in_place(&nonce, b"header", &mut buf, &tag)?;
//! assert_eq!(&buf, b"attack at dawn");
//! # Ok::<(), mechops_core::codec::aead::AeadError>(())
//! ```

use core::fmt;

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use rand_core::CryptoRng;

pub use super::header::{NONCE_LEN, TAG_LEN};

/// Length of a key in bytes.
pub const KEY_LEN: usize = 32;

/// Why sealing or opening failed.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AeadError {
    /// The tag does not verify: wrong key, wrong nonce, or altered data.
    AuthenticationFailed,
    /// The message exceeds what XChaCha20-Poly1305 can encrypt under one
    /// nonce (2^38 bytes).
    MessageTooLong,
    /// A key was given with the wrong length.
    BadKeyLength {
        /// The length given.
        len: usize,
    },
}

impl fmt::Display for AeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::AuthenticationFailed => {
                f.write_str("authentication failed: wrong key or tampered data")
            }
            Self::MessageTooLong => f.write_str("message too long for one AEAD nonce"),
            Self::BadKeyLength { len } => {
                write!(f, "key must be {KEY_LEN} bytes, got {len}")
            }
        }
    }
}

impl core::error::Error for AeadError {}

/// A 32-byte XChaCha20-Poly1305 key.
#[derive(Clone)]
pub struct Key {
    // The cipher holds the key and wipes it on drop (chacha20poly1305's
    // `zeroize` feature), so this type needs no unsafe of its own.
    cipher: XChaCha20Poly1305,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

impl Key {
    /// A key from its 32 bytes. The caller should wipe its copy.
    #[must_use]
    pub fn from_bytes(bytes: &[u8; KEY_LEN]) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new(bytes.into()),
        }
    }

    /// A key from a slice that must be exactly 32 bytes.
    ///
    /// # Errors
    /// [`AeadError::BadKeyLength`] for any other length.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, AeadError> {
        let arr: &[u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| AeadError::BadKeyLength { len: bytes.len() })?;
        Ok(Self::from_bytes(arr))
    }

    /// A fresh random key drawn from `rng`, also returned as bytes so that
    /// the caller can store it (the `mechops keygen` path).
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> (Self, [u8; KEY_LEN]) {
        let mut bytes = [0u8; KEY_LEN];
        rng.fill_bytes(&mut bytes);
        (Self::from_bytes(&bytes), bytes)
    }

    /// Encrypts `buf` in place and returns the detached tag; `aad` is
    /// authenticated but not encrypted.
    ///
    /// # Errors
    /// [`AeadError::MessageTooLong`] beyond 2^38 bytes.
    pub fn seal_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN], AeadError> {
        let nonce: &XNonce = nonce.into();
        let tag = self
            .cipher
            .encrypt_inout_detached(nonce, aad, buf.into())
            .map_err(|_| AeadError::MessageTooLong)?;
        Ok(tag.into())
    }

    /// Verifies `tag` over `aad` and the ciphertext in `buf`, then decrypts
    /// `buf` in place. On error `buf` is unchanged.
    ///
    /// # Errors
    /// [`AeadError::AuthenticationFailed`] when the tag does not verify.
    pub fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AeadError> {
        let nonce: &XNonce = nonce.into();
        let tag: &Tag = tag.into();
        self.cipher
            .decrypt_inout_detached(nonce, aad, buf.into(), tag)
            .map_err(|_| AeadError::AuthenticationFailed)
    }
}

/// Where the nonce of a sealed frame comes from.
pub enum NonceSource<'r> {
    /// Exactly these bytes. The caller promises never to reuse them with the
    /// same key; tests and deterministic replays use this.
    Explicit([u8; NONCE_LEN]),
    /// 24 bytes drawn from a cryptographic generator.
    Random(&'r mut dyn CryptoRng),
}

impl NonceSource<'_> {
    /// Produces the nonce.
    pub fn nonce(self) -> [u8; NONCE_LEN] {
        match self {
            Self::Explicit(n) => n,
            Self::Random(rng) => random_nonce(rng),
        }
    }
}

impl fmt::Debug for NonceSource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Explicit(n) => f.debug_tuple("Explicit").field(n).finish(),
            Self::Random(_) => f.write_str("Random(..)"),
        }
    }
}

/// 24 random bytes for a nonce.
pub fn random_nonce<R: CryptoRng + ?Sized>(rng: &mut R) -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut n);
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_draft_test_vector() {
        // draft-irtf-cfrg-xchacha-03, appendix A.3.1.
        let key: [u8; 32] = core::array::from_fn(|i| 0x80 + i as u8);
        let nonce: [u8; 24] = core::array::from_fn(|i| 0x40 + i as u8);
        let aad = [
            0x50, 0x51, 0x52, 0x53, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7,
        ];
        let mut msg = *b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
        let tag = Key::from_bytes(&key)
            .seal_in_place(&nonce, &aad, &mut msg)
            .unwrap();
        assert_eq!(&msg[..8], &[0xbd, 0x6d, 0x17, 0x9d, 0x3e, 0x83, 0xd4, 0x3b]);
        assert_eq!(
            tag,
            [
                0xc0, 0x87, 0x59, 0x24, 0xc1, 0xc7, 0x98, 0x79, 0x47, 0xde, 0xaf, 0xd8, 0x78, 0x0a,
                0xcf, 0x49
            ]
        );
    }

    #[test]
    fn wrong_key_nonce_aad_or_tag_leaves_buffer_unchanged() {
        let key = Key::from_bytes(&[1; 32]);
        let nonce = [2; 24];
        let mut buf = [0xAAu8; 40];
        let tag = key.seal_in_place(&nonce, b"ad", &mut buf).unwrap();
        let sealed = buf;
        let other = Key::from_bytes(&[3; 32]);
        assert_eq!(
            other.open_in_place(&nonce, b"ad", &mut buf, &tag),
            Err(AeadError::AuthenticationFailed)
        );
        assert_eq!(
            key.open_in_place(&[9; 24], b"ad", &mut buf, &tag),
            Err(AeadError::AuthenticationFailed)
        );
        assert_eq!(
            key.open_in_place(&nonce, b"AD", &mut buf, &tag),
            Err(AeadError::AuthenticationFailed)
        );
        let mut bad = tag;
        bad[15] ^= 1;
        assert_eq!(
            key.open_in_place(&nonce, b"ad", &mut buf, &bad),
            Err(AeadError::AuthenticationFailed)
        );
        assert_eq!(buf, sealed);
        key.open_in_place(&nonce, b"ad", &mut buf, &tag).unwrap();
        assert_eq!(buf, [0xAA; 40]);
    }

    #[test]
    fn generated_key_matches_its_bytes() {
        use crate::test_support::ByteCounter;
        let (key, bytes) = Key::generate(&mut ByteCounter(0x2f));
        assert_eq!(bytes, core::array::from_fn(|i| 0x30 + i as u8));
        let nonce = random_nonce(&mut ByteCounter(0x2f));
        assert_eq!(nonce, core::array::from_fn(|i| 0x30 + i as u8));
        let mut buf = *b"key check";
        let tag = key.seal_in_place(&nonce, &[], &mut buf).unwrap();
        Key::from_bytes(&bytes)
            .open_in_place(&nonce, &[], &mut buf, &tag)
            .unwrap();
        assert_eq!(&buf, b"key check");
    }

    #[test]
    fn key_length_and_debug() {
        use std::format;
        assert_eq!(
            Key::from_slice(&[0; 31]).unwrap_err(),
            AeadError::BadKeyLength { len: 31 }
        );
        let key = Key::from_slice(&[0x42; 32]).unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.contains("42") && !shown.contains("66"), "{shown}");
    }
}
