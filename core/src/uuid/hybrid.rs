//! The hybrid v4 generator: fast or secure, switchable at run time.
//!
//! Invariants: the mode is one atomic flag, read once per UUID, so each UUID
//! comes wholly from one source; a switch made with `set_use_fast_mode`
//! applies to every UUID generated after it in happens-before order (the
//! store is `Release`, the load `Acquire`).

use core::fmt;

use rand_core::{CryptoRng, TryCryptoRng};

use super::{FastV4, SecureV4, Uuid};
use crate::sync::{AtomicBool, Ordering, const_unless_loom};

/// Which source a [`HybridGenerator`] is using.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// xoshiro256++ ([`FastV4`]): unique, not unguessable.
    Fast,
    /// A cryptographic source ([`SecureV4`]).
    Secure,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Fast => "fast",
            Self::Secure => "secure",
        })
    }
}

/// A v4 generator whose mode is shared state switched through `&self`; the
/// two sources are the caller's (typically thread-local), so one `static`
/// generator can steer every thread.
pub struct HybridGenerator {
    fast: AtomicBool,
}

impl HybridGenerator {
    const_unless_loom! {
        /// A generator starting in `mode`.
        #[must_use]
        pub fn new(mode: Mode) -> Self {
            Self { fast: AtomicBool::new(matches!(mode, Mode::Fast)) }
        }
    }

    /// Switches to the fast source (`true`) or the secure one (`false`).
    pub fn set_use_fast_mode(&self, fast: bool) {
        self.fast.store(fast, Ordering::Release);
    }

    /// The current mode.
    #[must_use]
    pub fn mode(&self) -> Mode {
        if self.fast.load(Ordering::Acquire) {
            Mode::Fast
        } else {
            Mode::Secure
        }
    }

    /// The next v4 UUID from the source the current mode selects, and that
    /// mode.
    ///
    /// # Errors
    /// The secure source's error, in secure mode.
    #[inline]
    pub fn try_generate<S: TryCryptoRng>(
        &self,
        fast: &mut FastV4,
        secure: &mut SecureV4<S>,
    ) -> Result<(Uuid, Mode), S::Error> {
        match self.mode() {
            Mode::Fast => Ok((fast.generate(), Mode::Fast)),
            Mode::Secure => Ok((secure.try_generate()?, Mode::Secure)),
        }
    }

    /// The next v4 UUID, with an infallible secure source.
    #[inline]
    pub fn generate<S: CryptoRng>(&self, fast: &mut FastV4, secure: &mut SecureV4<S>) -> Uuid {
        match self.mode() {
            Mode::Fast => fast.generate(),
            Mode::Secure => secure.generate(),
        }
    }
}

impl fmt::Debug for HybridGenerator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HybridGenerator")
            .field("mode", &self.mode())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::test_support::Marker;

    static HYBRID: HybridGenerator = HybridGenerator::new(Mode::Fast);

    #[test]
    fn switching_changes_the_source() {
        let g = HybridGenerator::new(Mode::Secure);
        let mut fast = FastV4::from_seed([9; 32]);
        let mut reference = fast.clone();
        let mut secure = SecureV4::new(Marker(0xAA));
        let marked = Uuid::from_random_bytes([0xAA; 16]);
        assert_eq!(g.generate(&mut fast, &mut secure), marked);
        g.set_use_fast_mode(true);
        assert_eq!(g.mode(), Mode::Fast);
        assert_eq!(
            g.try_generate(&mut fast, &mut secure),
            Ok((reference.generate(), Mode::Fast))
        );
        g.set_use_fast_mode(false);
        assert_eq!(
            g.try_generate(&mut fast, &mut secure),
            Ok((marked, Mode::Secure))
        );
    }

    #[test]
    fn a_static_generator_starts_in_its_mode() {
        assert_eq!(HYBRID.mode(), Mode::Fast);
        assert_eq!(std::format!("{HYBRID:?}"), "HybridGenerator { mode: Fast }");
        assert_eq!(std::format!("{}", Mode::Secure), "secure");
    }
}
