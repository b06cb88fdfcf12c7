//! The three one-byte wire codes of the header: payload format, compression
//! and encryption.
//!
//! Invariants: each enum's discriminant is its wire byte; `from_code` is the
//! exact inverse of `code` and rejects every other byte with the
//! [`FrameError`] variant that names the field; `ALL` lists the values in
//! wire-code order. One table per enum, in `wire_codes!`, keeps the code,
//! the name and the error from drifting apart.

use core::fmt;

use super::error::FrameError;
use super::{NONCE_LEN, SEALED_CHECKSUM_LEN, TAG_LEN};

/// Declares a `#[repr(u8)]` wire-code enum from a table of
/// `Variant = code => "name"` rows, with `ALL`, `code`, `from_code`, `name`
/// and `Display`.
macro_rules! wire_codes {
    (
        $(#[$meta:meta])*
        pub enum $ty:ident, what: $what:literal, unknown: $unknown:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $code:literal => $name:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[non_exhaustive]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum $ty {
            $( $(#[$vmeta])* $variant = $code, )+
        }

        impl $ty {
            #[doc = concat!("Every ", $what, ", in wire-code order.")]
            pub const ALL: [Self; [$($code),+].len()] = [$(Self::$variant),+];

            #[doc = concat!("The byte that encodes this ", $what, " on the wire.")]
            #[must_use]
            pub const fn code(self) -> u8 {
                self as u8
            }

            #[doc = concat!("The ", $what, " a wire byte names.")]
            ///
            /// # Errors
            #[doc = concat!("[`FrameError::", stringify!($unknown), "`] for a byte no ", $what, " uses.")]
            pub const fn from_code(code: u8) -> Result<Self, FrameError> {
                match code {
                    $( $code => Ok(Self::$variant), )+
                    other => Err(FrameError::$unknown(other)),
                }
            }

            /// The short lower-case name, as `Display` prints it.
            #[must_use]
            pub const fn name(self) -> &'static str {
                match self {
                    $( Self::$variant => $name, )+
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

wire_codes! {
    /// The encoding of the payload a frame carries.
    pub enum Format, what: "format", unknown: UnknownFormat {
        /// postcard (serde, varint based), the compact default.
        Postcard = 0 => "postcard",
        /// JSON text (UTF-8).
        Json = 1 => "json",
        /// MessagePack.
        MessagePack = 2 => "msgpack",
        /// CBOR (RFC 8949).
        Cbor = 3 => "cbor",
    }
}

wire_codes! {
    /// How the stored payload is compressed.
    pub enum Compression, what: "compression method", unknown: UnknownCompression {
        /// Stored as is.
        None = 0 => "none",
        /// Raw DEFLATE (RFC 1951), no zlib or gzip wrapper.
        Deflate = 1 => "deflate",
    }
}

wire_codes! {
    /// How the body is encrypted.
    pub enum Encryption, what: "encryption method", unknown: UnknownEncryption {
        /// Not encrypted.
        None = 0 => "none",
        /// XChaCha20-Poly1305 with a 24-byte random nonce; the header is the
        /// associated data.
        XChaCha20Poly1305 = 1 => "xchacha20poly1305",
    }
}

impl Encryption {
    /// Bytes the encryption adds around the stored payload: nonce, sealed
    /// checksum and tag.
    #[must_use]
    pub const fn overhead(self) -> usize {
        match self {
            Self::None => 0,
            Self::XChaCha20Poly1305 => NONCE_LEN + SEALED_CHECKSUM_LEN + TAG_LEN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_bytes_name_their_field() {
        for byte in 0..=u8::MAX {
            match Format::from_code(byte) {
                Ok(f) => assert_eq!(f.code(), byte),
                Err(e) => assert_eq!(e, FrameError::UnknownFormat(byte)),
            }
            match Compression::from_code(byte) {
                Ok(c) => assert_eq!(c.code(), byte),
                Err(e) => assert_eq!(e, FrameError::UnknownCompression(byte)),
            }
            match Encryption::from_code(byte) {
                Ok(c) => assert_eq!(c.code(), byte),
                Err(e) => assert_eq!(e, FrameError::UnknownEncryption(byte)),
            }
        }
        let codes = |all: &[u8]| all.iter().copied().eq(0..all.len() as u8);
        assert!(codes(&Format::ALL.map(Format::code)));
        assert!(codes(&Compression::ALL.map(Compression::code)));
        assert!(codes(&Encryption::ALL.map(Encryption::code)));
    }

    #[test]
    fn names_are_the_documented_ones() {
        assert_eq!(
            Format::ALL.map(Format::name),
            ["postcard", "json", "msgpack", "cbor"]
        );
        assert_eq!(Compression::ALL.map(Compression::name), ["none", "deflate"]);
        assert_eq!(
            Encryption::ALL.map(Encryption::name),
            ["none", "xchacha20poly1305"]
        );
        assert_eq!(
            Encryption::XChaCha20Poly1305.overhead(),
            NONCE_LEN + SEALED_CHECKSUM_LEN + TAG_LEN
        );
    }
}
