//! The 16-byte UUID value and what can be read from its bits.
//!
//! The bytes are stored in RFC 9562 network order, so the derived ordering of
//! the array is the ordering of the 128-bit big-endian number, and for v7 the
//! ordering by timestamp then counter.

use core::fmt;

/// A UUID as defined by RFC 9562: 16 bytes in network order.
///
/// Ordering, equality and hashing are those of the bytes. `Display` writes
/// the lowercase hyphenated form; `FromStr` accepts every form that
/// [`Uuid::parse_str`] does.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct Uuid([u8; 16]);

/// The version field (the high nibble of byte 6), as RFC 9562 §4.2 names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Version {
    /// Version 0 appears only in the nil UUID.
    Nil,
    /// Gregorian time-based.
    V1,
    /// DCE security.
    V2,
    /// Name-based with MD5.
    V3,
    /// Random.
    V4,
    /// Name-based with SHA-1.
    V5,
    /// Reordered Gregorian time-based.
    V6,
    /// Unix-epoch time-based.
    V7,
    /// Custom, vendor-specific layout.
    V8,
    /// Version 15 appears only in the max UUID.
    Max,
    /// A value RFC 9562 reserves (9 to 14).
    Reserved(u8),
}

impl Version {
    /// The numeric value of the version field (0 to 15).
    #[must_use]
    pub const fn number(self) -> u8 {
        match self {
            Self::Nil => 0,
            Self::V1 => 1,
            Self::V2 => 2,
            Self::V3 => 3,
            Self::V4 => 4,
            Self::V5 => 5,
            Self::V6 => 6,
            Self::V7 => 7,
            Self::V8 => 8,
            Self::Max => 15,
            Self::Reserved(n) => n,
        }
    }

    const fn from_nibble(nibble: u8) -> Self {
        match nibble {
            0 => Self::Nil,
            1 => Self::V1,
            2 => Self::V2,
            3 => Self::V3,
            4 => Self::V4,
            5 => Self::V5,
            6 => Self::V6,
            7 => Self::V7,
            8 => Self::V8,
            15 => Self::Max,
            n => Self::Reserved(n),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Nil => f.write_str("nil"),
            Self::Max => f.write_str("max"),
            Self::Reserved(n) => write!(f, "reserved ({n})"),
            other => write!(f, "{}", other.number()),
        }
    }
}

/// The variant field (the high bits of byte 8), RFC 9562 §4.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Variant {
    /// `0xx`: reserved, NCS backward compatibility (also the nil UUID).
    Ncs,
    /// `10x`: the variant RFC 9562 specifies.
    Rfc9562,
    /// `110`: reserved, Microsoft backward compatibility.
    Microsoft,
    /// `111`: reserved for the future (also the max UUID).
    Future,
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ncs => "NCS",
            Self::Rfc9562 => "RFC 9562",
            Self::Microsoft => "Microsoft",
            Self::Future => "future",
        })
    }
}

impl Uuid {
    /// The nil UUID, all bits zero (RFC 9562 §5.9).
    pub const NIL: Self = Self([0; 16]);
    /// The max UUID, all bits one (RFC 9562 §5.10).
    pub const MAX: Self = Self([0xFF; 16]);

    /// Wraps 16 bytes in network order, unchanged.
    #[must_use]
    #[inline]
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The 16 bytes in network order.
    #[must_use]
    #[inline]
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The 16 bytes in network order, by value.
    #[must_use]
    #[inline]
    pub const fn into_bytes(self) -> [u8; 16] {
        self.0
    }

    /// The UUID whose big-endian 128-bit value is `value`.
    #[must_use]
    #[inline]
    pub const fn from_u128(value: u128) -> Self {
        Self(value.to_be_bytes())
    }

    /// The big-endian 128-bit value of the UUID.
    #[must_use]
    #[inline]
    pub const fn as_u128(&self) -> u128 {
        u128::from_be_bytes(self.0)
    }

    /// A v4 UUID from 16 random bytes: the six version and variant bits are
    /// overwritten, the other 122 bits are kept as given.
    #[must_use]
    #[inline]
    pub const fn from_random_bytes(bytes: [u8; 16]) -> Self {
        Self::from_u128(with_version_and_variant(u128::from_be_bytes(bytes), 4))
    }

    /// The version field.
    #[must_use]
    #[inline]
    pub const fn version(&self) -> Version {
        Version::from_nibble(self.0[6] >> 4)
    }

    /// The variant field.
    #[must_use]
    #[inline]
    pub const fn variant(&self) -> Variant {
        let b = self.0[8];
        if b & 0x80 == 0 {
            Variant::Ncs
        } else if b & 0x40 == 0 {
            Variant::Rfc9562
        } else if b & 0x20 == 0 {
            Variant::Microsoft
        } else {
            Variant::Future
        }
    }

    /// Whether this is the nil UUID.
    #[must_use]
    #[inline]
    pub const fn is_nil(&self) -> bool {
        self.as_u128() == 0
    }

    /// Whether this is the max UUID.
    #[must_use]
    #[inline]
    pub const fn is_max(&self) -> bool {
        self.as_u128() == u128::MAX
    }

    /// The Unix time in milliseconds embedded in a v7 UUID of the RFC 9562
    /// variant; `None` for any other version or variant, where those bits are
    /// not a Unix timestamp.
    #[must_use]
    #[inline]
    pub const fn unix_millis(&self) -> Option<u64> {
        if matches!(self.version(), Version::V7) && matches!(self.variant(), Variant::Rfc9562) {
            Some((self.as_u128() >> 80) as u64)
        } else {
            None
        }
    }
}

/// Sets the version nibble and the `10` variant bits of a 128-bit value.
#[inline]
pub(super) const fn with_version_and_variant(value: u128, version: u8) -> u128 {
    const VERSION_MASK: u128 = 0xF << 76;
    const VARIANT_MASK: u128 = 0b11 << 62;
    (value & !VERSION_MASK & !VARIANT_MASK) | ((version as u128) << 76) | (0b10 << 62)
}

impl From<[u8; 16]> for Uuid {
    fn from(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }
}

impl From<Uuid> for [u8; 16] {
    fn from(uuid: Uuid) -> Self {
        uuid.0
    }
}

impl From<u128> for Uuid {
    fn from(value: u128) -> Self {
        Self::from_u128(value)
    }
}

impl From<Uuid> for u128 {
    fn from(uuid: Uuid) -> Self {
        uuid.as_u128()
    }
}

impl AsRef<[u8]> for Uuid {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uuid({self})")
    }
}

#[cfg(feature = "serde")]
mod serde_impl {
    //! Human-readable formats get the hyphenated string; binary formats get
    //! the 16 bytes, so a UUID costs 16 bytes plus framing there.

    use super::Uuid;
    use crate::uuid::Case;
    use core::fmt;
    use serde::de::{self, Visitor};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    impl Serialize for Uuid {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            if serializer.is_human_readable() {
                serializer.serialize_str(&self.hyphenated(Case::Lower))
            } else {
                serializer.serialize_bytes(self.as_bytes())
            }
        }
    }

    struct UuidVisitor;

    impl<'de> Visitor<'de> for UuidVisitor {
        type Value = Uuid;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a UUID string or 16 bytes")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Uuid, E> {
            Uuid::parse_str(v).map_err(E::custom)
        }

        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Uuid, E> {
            let bytes: [u8; 16] = v
                .try_into()
                .map_err(|_| E::invalid_length(v.len(), &"16 bytes"))?;
            Ok(Uuid::from_bytes(bytes))
        }

        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Uuid, A::Error> {
            let mut bytes = [0u8; 16];
            for (i, slot) in bytes.iter_mut().enumerate() {
                *slot = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(i, &"16 bytes"))?;
            }
            if seq.next_element::<u8>()?.is_some() {
                return Err(de::Error::invalid_length(17, &"16 bytes"));
            }
            Ok(Uuid::from_bytes(bytes))
        }
    }

    impl<'de> Deserialize<'de> for Uuid {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            if deserializer.is_human_readable() {
                deserializer.deserialize_str(UuidVisitor)
            } else {
                deserializer.deserialize_bytes(UuidVisitor)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nil_and_max_have_their_special_versions() {
        assert_eq!(Uuid::NIL.version(), Version::Nil);
        assert_eq!(Uuid::NIL.variant(), Variant::Ncs);
        assert!(Uuid::NIL.is_nil());
        assert_eq!(Uuid::MAX.version(), Version::Max);
        assert_eq!(Uuid::MAX.variant(), Variant::Future);
        assert!(Uuid::MAX.is_max());
        assert_eq!(Uuid::MAX.unix_millis(), None);
    }

    #[test]
    fn variant_reads_the_leading_bits() {
        let with = |b: u8| {
            let mut bytes = [0u8; 16];
            bytes[8] = b;
            Uuid::from_bytes(bytes).variant()
        };
        assert_eq!(with(0x7F), Variant::Ncs);
        assert_eq!(with(0x80), Variant::Rfc9562);
        assert_eq!(with(0xBF), Variant::Rfc9562);
        assert_eq!(with(0xC0), Variant::Microsoft);
        assert_eq!(with(0xDF), Variant::Microsoft);
        assert_eq!(with(0xE0), Variant::Future);
    }

    #[test]
    fn every_version_nibble_maps_back_to_its_number() {
        for n in 0..16u8 {
            let mut bytes = [0u8; 16];
            bytes[6] = n << 4;
            assert_eq!(Uuid::from_bytes(bytes).version().number(), n);
        }
    }

    #[test]
    fn from_random_bytes_sets_only_version_and_variant() {
        let u = Uuid::from_random_bytes([0xFF; 16]);
        assert_eq!(u.version(), Version::V4);
        assert_eq!(u.variant(), Variant::Rfc9562);
        // Version 0b0100 clears three of four bits, variant 0b10 one of two.
        assert_eq!(u.as_u128().count_ones(), 128 - 3 - 1);
        let z = Uuid::from_random_bytes([0; 16]);
        assert_eq!(z.as_u128(), (4 << 76) | (0b10 << 62));
    }

    #[test]
    fn ordering_is_the_big_endian_number() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(1 << 127);
        assert!(a < b);
        assert_eq!(Uuid::from_u128(0x1234).as_u128(), 0x1234);
        assert_eq!(u128::from(Uuid::from(7u128)), 7);
    }

    #[test]
    fn unix_millis_only_for_rfc_v7() {
        let v7 = Uuid::from_u128(with_version_and_variant(0x0123_4567_89AB << 80, 7));
        assert_eq!(v7.unix_millis(), Some(0x0123_4567_89AB));
        let v4 = Uuid::from_u128(with_version_and_variant(0x0123_4567_89AB << 80, 4));
        assert_eq!(v4.unix_millis(), None);
        let mut ms_variant = v7.into_bytes();
        ms_variant[8] |= 0xC0;
        assert_eq!(Uuid::from_bytes(ms_variant).unix_millis(), None);
    }
}
