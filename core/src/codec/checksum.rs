//! The payload checksum: CRC-32/ISO-HDLC (the zlib, gzip and PNG CRC).
//!
//! Invariant: [`crc32`] of a slice equals the CRC-32 that zlib's `crc32()`,
//! Python's `zlib.crc32` and every gzip implementation compute, so an
//! independent reader can check a frame with its platform's standard CRC.
//!
//! Why this CRC rather than CRC-32C: `crc32fast` is already in the dependency
//! tree, is hardware accelerated (PCLMULQDQ on x86-64, the CRC instructions on
//! AArch64), and the polynomial is available in every language's standard
//! library, which CRC-32C is not. Both detect all burst errors up to 32 bits;
//! the checksum guards against corruption and decoder bugs, not against an
//! attacker (that is the AEAD tag's job).
//!
//! Speed: without std, `crc32fast` can only use the instructions the target
//! is compiled for, which for generic x86-64 means its table fallback (about
//! 3 GB/s). Std builds should enable this crate's `std` feature, which lets
//! it detect PCLMULQDQ at run time (tens of GB/s), so that the checksum
//! stays a small fraction of the cost of encryption or decompression.

/// Computes the CRC-32/ISO-HDLC of `bytes`.
#[inline]
#[must_use]
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

/// An incremental CRC-32/ISO-HDLC, for payloads produced in pieces.
///
/// Feeding the same bytes in any split gives the same [`Crc32::finish`] as
/// [`crc32`] over their concatenation.
#[derive(Clone, Default)]
pub struct Crc32(crc32fast::Hasher);

impl Crc32 {
    /// A fresh checksum over zero bytes.
    #[must_use]
    pub fn new() -> Self {
        Self(crc32fast::Hasher::new())
    }

    /// Adds `bytes` to the checksum.
    #[inline]
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The checksum of every byte fed so far.
    #[must_use]
    pub fn finish(&self) -> u32 {
        self.0.clone().finalize()
    }
}

impl core::fmt::Debug for Crc32 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("Crc32").field(&self.finish()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_standard_check_value() {
        // The catalogue check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn incremental_equals_one_shot() {
        let data: [u8; 300] = core::array::from_fn(|i| (i * 7 + 3) as u8);
        for split in [0, 1, 17, 150, 299, 300] {
            let mut c = Crc32::new();
            c.update(&data[..split]);
            c.update(&data[split..]);
            assert_eq!(c.finish(), crc32(&data), "split at {split}");
        }
    }
}
