//! The fast v4 generator: xoshiro256++ seeded from an entropy input.
//!
//! Invariants: every UUID is v4 with the RFC 9562 variant; its other 122
//! bits come from one output of each of two xoshiro256++ streams (bytes 0..8
//! and 8..16, little-endian), the second stream being the first jumped ahead
//! by 2^128 steps, so the streams never overlap and the two outputs are
//! computed in parallel rather than one after the other. The same seed gives
//! the same sequence, on every platform. Not for secrets: xoshiro256++ output
//! reveals its state, so these UUIDs are unique, not unguessable.

use core::fmt;

use rand_core::{Rng, SeedableRng, TryRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use super::Uuid;

/// Fast, non-cryptographic v4 UUIDs (about one nanosecond each).
///
/// Seed it once from real entropy ([`FastV4::from_rng`]) and keep it per
/// thread; seed it with [`FastV4::from_seed`] for reproducible tests.
#[derive(Clone)]
pub struct FastV4 {
    /// Supplies the high 64 bits.
    high: Xoshiro256PlusPlus,
    /// `high` jumped 2^128 steps ahead; supplies the low 64 bits.
    low: Xoshiro256PlusPlus,
}

impl FastV4 {
    /// A generator whose whole sequence is fixed by `seed` (an all-zero seed
    /// is remapped to a fixed non-zero state, as xoshiro requires).
    #[must_use]
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self::from_stream(Xoshiro256PlusPlus::from_seed(seed))
    }

    fn from_stream(high: Xoshiro256PlusPlus) -> Self {
        let mut low = high.clone();
        low.jump();
        Self { high, low }
    }

    /// A generator seeded with 32 bytes from `entropy`.
    #[must_use]
    pub fn from_rng<R: Rng + ?Sized>(entropy: &mut R) -> Self {
        Self::from_stream(Xoshiro256PlusPlus::from_rng(entropy))
    }

    /// A generator seeded with 32 bytes from a fallible `entropy` source.
    ///
    /// # Errors
    /// The source's error, when it cannot supply the seed.
    pub fn try_from_rng<R: TryRng + ?Sized>(entropy: &mut R) -> Result<Self, R::Error> {
        Ok(Self::from_stream(Xoshiro256PlusPlus::try_from_rng(
            entropy,
        )?))
    }

    /// The next v4 UUID.
    #[inline]
    pub fn generate(&mut self) -> Uuid {
        from_words(self.high.next_u64(), self.low.next_u64())
    }

    /// Fills `out` with the next `out.len()` UUIDs; the same values, in the
    /// same order, as that many calls to [`FastV4::generate`].
    #[inline]
    pub fn fill(&mut self, out: &mut [Uuid]) {
        for slot in out {
            *slot = self.generate();
        }
    }
}

/// Version nibble (the high half of byte 6) within the little-endian word
/// of bytes 0..8.
const VERSION_MASK: u64 = 0xF << 52;
const VERSION_4: u64 = 0x4 << 52;
/// Variant bits (the top two of byte 8) within the little-endian word of
/// bytes 8..16.
const VARIANT_MASK: u64 = 0xC0;
const VARIANT_RFC: u64 = 0x80;

/// A v4 UUID whose bytes 0..8 and 8..16 are `first` and `second` in
/// little-endian order, version and variant set. Little-endian because it
/// is the machine order here: the words are stored as they are, without a
/// byte swap, and which byte gets which random bit does not matter.
#[inline(always)]
fn from_words(first: u64, second: u64) -> Uuid {
    let first = (first & !VERSION_MASK) | VERSION_4;
    let second = (second & !VARIANT_MASK) | VARIANT_RFC;
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&first.to_le_bytes());
    bytes[8..].copy_from_slice(&second.to_le_bytes());
    Uuid::from_bytes(bytes)
}

impl fmt::Debug for FastV4 {
    /// Leaves the state out: it would predict every later UUID.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FastV4").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uuid::{Variant, Version};

    #[test]
    fn same_seed_same_sequence_different_seed_different() {
        let mut a = FastV4::from_seed([7; 32]);
        let mut b = FastV4::from_seed([7; 32]);
        let mut c = FastV4::from_seed([8; 32]);
        for _ in 0..100 {
            let (x, y, z) = (a.generate(), b.generate(), c.generate());
            assert_eq!(x, y);
            assert_ne!(x, z);
        }
    }

    #[test]
    fn matches_the_xoshiro_reference_outputs() {
        // Reference: the first two xoshiro256++ outputs for this seed (as in
        // rand_xoshiro's tests) give bytes 0..8 (little-endian); the jumped
        // stream bytes 8..16.
        let mut seed = [0u8; 32];
        for (i, chunk) in seed.chunks_mut(8).enumerate() {
            chunk.copy_from_slice(&(i as u64 + 1).to_le_bytes());
        }
        let mut g = FastV4::from_seed(seed);
        let mut jumped = Xoshiro256PlusPlus::from_seed(seed);
        jumped.jump();
        let uuid_from = |first: u64, second: u64| {
            let mut bytes = [0u8; 16];
            bytes[..8].copy_from_slice(&first.to_le_bytes());
            bytes[8..].copy_from_slice(&second.to_le_bytes());
            bytes[6] = (bytes[6] & 0x0F) | 0x40;
            bytes[8] = (bytes[8] & 0x3F) | 0x80;
            Uuid::from_bytes(bytes)
        };
        assert_eq!(g.generate(), uuid_from(41_943_041, jumped.next_u64()));
        assert_eq!(g.generate(), uuid_from(58_720_359, jumped.next_u64()));
    }

    #[test]
    fn every_uuid_is_rfc_v4() {
        let mut g = FastV4::seed_from_entropy_for_tests();
        for _ in 0..1000 {
            let u = g.generate();
            assert_eq!(u.version(), Version::V4);
            assert_eq!(u.variant(), Variant::Rfc9562);
        }
    }

    #[test]
    fn fill_equals_repeated_generate() {
        let mut a = FastV4::from_seed([1; 32]);
        let mut b = a.clone();
        let mut out = [Uuid::NIL; 37];
        a.fill(&mut out);
        for u in out {
            assert_eq!(u, b.generate());
        }
        assert_eq!(a.generate(), b.generate());
    }

    #[test]
    fn try_from_rng_reads_the_seed_from_the_source() {
        let mut src = rand_xoshiro::SplitMix64::seed_from_u64(5);
        let mut a = FastV4::try_from_rng(&mut src).unwrap();
        let mut src = rand_xoshiro::SplitMix64::seed_from_u64(5);
        let mut b = FastV4::from_rng(&mut src);
        assert_eq!(a.generate(), b.generate());
    }

    impl FastV4 {
        fn seed_from_entropy_for_tests() -> Self {
            Self::from_stream(Xoshiro256PlusPlus::seed_from_u64(0xDEAD_BEEF))
        }
    }

    #[test]
    fn debug_hides_the_state() {
        let g = FastV4::from_seed([3; 32]);
        assert_eq!(std::format!("{g:?}"), "FastV4 { .. }");
    }
}
