//! Stand-in random sources shared by the core's unit tests.

use core::convert::Infallible;

use rand_core::{TryCryptoRng, TryRng};

/// A "cryptographic" source whose every byte is one more than the last
/// (wrapping), starting after the given byte: outputs are distinct and
/// predictable, so tests can assert exact bytes without a real generator.
pub(crate) struct ByteCounter(pub(crate) u8);

impl TryRng for ByteCounter {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for b in dst {
            self.0 = self.0.wrapping_add(1);
            *b = self.0;
        }
        Ok(())
    }
}

impl TryCryptoRng for ByteCounter {}

/// A "cryptographic" source that writes one byte everywhere, so what it
/// produced is recognisable.
pub(crate) struct Marker(pub(crate) u8);

impl TryRng for Marker {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(u32::from_ne_bytes([self.0; 4]))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(u64::from_ne_bytes([self.0; 8]))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        dst.fill(self.0);
        Ok(())
    }
}

impl TryCryptoRng for Marker {}
