//! The fast v4 generator: xoshiro256++ seeded from an entropy input.
//!
//! Invariants: every UUID is v4 with the RFC 9562 variant; its other 122
//! bits come from one output of each of two xoshiro256++ streams, the second
//! being the first jumped ahead by 2^128 steps, so the streams never overlap
//! and the two outputs are computed in parallel rather than one after the
//! other. The same seed gives the same sequence, on every platform. Not for
//! secrets: xoshiro256++ output reveals its state, so these UUIDs are
//! unique, not unguessable.

use core::fmt;

use rand_core::{Rng, SeedableRng, TryRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use super::Uuid;
use super::value::with_version_and_variant;

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
        let hi = self.high.next_u64();
        let lo = self.low.next_u64();
        Uuid::from_u128(with_version_and_variant(
            (u128::from(hi) << 64) | u128::from(lo),
            4,
        ))
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
        // rand_xoshiro's tests) give the high halves; the jumped stream the
        // low halves.
        let mut seed = [0u8; 32];
        for (i, chunk) in seed.chunks_mut(8).enumerate() {
            chunk.copy_from_slice(&(i as u64 + 1).to_le_bytes());
        }
        let mut g = FastV4::from_seed(seed);
        let mut jumped = Xoshiro256PlusPlus::from_seed(seed);
        jumped.jump();
        let first = (u128::from(41_943_041_u64) << 64) | u128::from(jumped.next_u64());
        let second = (u128::from(58_720_359_u64) << 64) | u128::from(jumped.next_u64());
        assert_eq!(g.generate().as_u128(), with_version_and_variant(first, 4));
        assert_eq!(g.generate().as_u128(), with_version_and_variant(second, 4));
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
