//! Support shared by the integration tests.

use rand_core::{TryCryptoRng, TryRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Fixed-seed nonces: deterministic frames for deterministic tests. It claims
/// to be a cryptographic generator only so the frame encoder accepts it; no
/// test relies on its output being unpredictable.
pub(crate) struct Seeded(pub(crate) Xoshiro256PlusPlus);

impl TryRng for Seeded {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        self.0.try_next_u32()
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.0.try_next_u64()
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.0.try_fill_bytes(dst)
    }
}

impl TryCryptoRng for Seeded {}
