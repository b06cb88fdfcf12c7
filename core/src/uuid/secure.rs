//! The secure v4 generator: every random bit from a cryptographic source.
//!
//! Invariants: the 122 random bits of each UUID are bytes read from the
//! caller's `TryCryptoRng` and nothing else; a failing source is reported,
//! never papered over with weaker bits.

use core::convert::Infallible;

use rand_core::{CryptoRng, TryCryptoRng};

use super::Uuid;

/// v4 UUIDs whose random bits all come from `R`, a cryptographically secure
/// source (in std, the OS through `mechops_std::entropy`).
#[derive(Debug, Clone)]
pub struct SecureV4<R> {
    rng: R,
}

/// How many UUIDs [`SecureV4::try_fill`] requests from the source at once.
const BATCH: usize = 16;

impl<R: TryCryptoRng> SecureV4<R> {
    /// Wraps a cryptographically secure source.
    pub const fn new(rng: R) -> Self {
        Self { rng }
    }

    /// The source, for reuse elsewhere.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.rng
    }

    /// Unwraps the source.
    pub fn into_inner(self) -> R {
        self.rng
    }

    /// The next v4 UUID, reading 16 bytes from the source.
    ///
    /// # Errors
    /// The source's error; no UUID is produced from partial randomness.
    #[inline]
    pub fn try_generate(&mut self) -> Result<Uuid, R::Error> {
        let mut bytes = [0u8; 16];
        self.rng.try_fill_bytes(&mut bytes)?;
        Ok(Uuid::from_random_bytes(bytes))
    }

    /// Fills `out` with v4 UUIDs, requesting randomness from the source in
    /// batches of 256 bytes.
    ///
    /// # Errors
    /// The source's error; `out` may then be partly filled.
    pub fn try_fill(&mut self, out: &mut [Uuid]) -> Result<(), R::Error> {
        let mut bytes = [0u8; 16 * BATCH];
        for chunk in out.chunks_mut(BATCH) {
            let want = &mut bytes[..16 * chunk.len()];
            self.rng.try_fill_bytes(want)?;
            for (slot, random) in chunk.iter_mut().zip(want.chunks_exact(16)) {
                let mut one = [0u8; 16];
                one.copy_from_slice(random);
                *slot = Uuid::from_random_bytes(one);
            }
        }
        Ok(())
    }
}

impl<R: CryptoRng> SecureV4<R> {
    /// The next v4 UUID from an infallible source.
    #[inline]
    pub fn generate(&mut self) -> Uuid {
        infallible(self.try_generate())
    }

    /// Fills `out` from an infallible source.
    pub fn fill(&mut self, out: &mut [Uuid]) {
        infallible(self.try_fill(out));
    }
}

#[inline]
fn infallible<T>(result: Result<T, Infallible>) -> T {
    match result {
        Ok(value) => value,
        Err(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uuid::{Variant, Version};
    use rand_core::TryRng;

    /// Counts bytes and hands out a known pattern; declared crypto so the
    /// test can check that every bit comes from the source.
    struct Pattern {
        next: u8,
        fail: bool,
    }

    #[derive(Debug, PartialEq)]
    struct Broken;

    impl core::fmt::Display for Broken {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.write_str("entropy source broken")
        }
    }

    impl core::error::Error for Broken {}

    impl TryRng for Pattern {
        type Error = Broken;
        fn try_next_u32(&mut self) -> Result<u32, Broken> {
            let mut b = [0; 4];
            self.try_fill_bytes(&mut b)?;
            Ok(u32::from_le_bytes(b))
        }
        fn try_next_u64(&mut self) -> Result<u64, Broken> {
            let mut b = [0; 8];
            self.try_fill_bytes(&mut b)?;
            Ok(u64::from_le_bytes(b))
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Broken> {
            if self.fail {
                return Err(Broken);
            }
            for b in dst {
                *b = self.next;
                self.next = self.next.wrapping_add(1);
            }
            Ok(())
        }
    }

    impl TryCryptoRng for Pattern {}

    #[test]
    fn bits_come_from_the_source() {
        let mut g = SecureV4::new(Pattern {
            next: 0,
            fail: false,
        });
        let u = g.try_generate().unwrap();
        let expected: [u8; 16] = core::array::from_fn(|i| i as u8);
        assert_eq!(u, Uuid::from_random_bytes(expected));
        assert_eq!(u.version(), Version::V4);
        assert_eq!(u.variant(), Variant::Rfc9562);
        assert_eq!(g.get_mut().next, 16);
    }

    #[test]
    fn fill_consumes_sixteen_bytes_per_uuid_in_order() {
        let mut g = SecureV4::new(Pattern {
            next: 0,
            fail: false,
        });
        let mut out = [Uuid::NIL; 20];
        g.try_fill(&mut out).unwrap();
        for (i, u) in out.iter().enumerate() {
            let expected: [u8; 16] = core::array::from_fn(|j| (16 * i + j) as u8);
            assert_eq!(*u, Uuid::from_random_bytes(expected));
        }
    }

    #[test]
    fn a_failing_source_is_an_error() {
        let mut g = SecureV4::new(Pattern {
            next: 0,
            fail: true,
        });
        assert_eq!(g.try_generate(), Err(Broken));
        assert_eq!(g.try_fill(&mut [Uuid::NIL; 3]), Err(Broken));
        assert!(g.into_inner().fail);
    }

    #[test]
    fn infallible_sources_generate_directly() {
        // ChaCha-free stand-in: the test only needs an infallible CryptoRng.
        let mut g = SecureV4::new(crate::test_support::ByteCounter(0));
        let a = g.generate();
        let mut out = [Uuid::NIL; 2];
        g.fill(&mut out);
        assert_ne!(a, out[0]);
        assert_ne!(out[0], out[1]);
        assert_eq!(a.as_bytes()[0], 1);
        assert_eq!(out[1].as_bytes()[0], 33);
    }
}
