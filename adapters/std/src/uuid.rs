//! Process-wide UUID generators and convenience functions.
//!
//! Invariants:
//! - fast UUIDs come from a per-thread [`FastV4`] seeded from OS entropy; a
//!   thread reseeds it when the process has forked since it was seeded, so a
//!   child never repeats its parent's sequence;
//! - secure UUIDs take every random bit from the thread's fork-safe
//!   [`BufferedEntropy`](crate::entropy::BufferedEntropy);
//! - v7 UUIDs come from one process-wide lock-free [`SharedV7`], so they are
//!   unique and increasing across all threads of the process; their random
//!   bits come from a per-thread ChaCha12 CSPRNG seeded from OS entropy
//!   (reseeded after a fork like the fast generator), and the clock is read
//!   on every call;
//! - the global hybrid generator starts in secure mode; only
//!   [`set_use_fast_mode`] makes it fast.

use core::cell::UnsafeCell;

use chacha20::ChaCha12Rng;
use mechops_core::uuid::{FastV4, HybridGenerator, Mode, SharedV7, Uuid, V7Error};
use rand_core::{Rng, SeedableRng};

use crate::clock::unix_millis_now;
use crate::entropy::{
    EntropyError, OsEntropy, current_fork_generation, expect_entropy, fork_generation,
};

/// Why a process-wide generator could not produce a UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UuidError {
    /// The OS could not supply entropy.
    #[error(transparent)]
    Entropy(#[from] EntropyError),
    /// The v7 generator has no values left (clock at the end of its range).
    #[error(transparent)]
    V7(#[from] V7Error),
}

static SHARED_V7: SharedV7 = SharedV7::new();
static HYBRID: HybridGenerator = HybridGenerator::new(Mode::Secure);

/// A thread's user-space generators and the fork generation they were
/// seeded in.
struct ThreadGenerators {
    fast: FastV4,
    /// Fast UUIDs generated ahead in one tight loop, handed out one per
    /// call: the generator state then stays in registers while filling,
    /// instead of making a round trip through memory for every UUID.
    batch: [Uuid; FAST_BATCH],
    /// Index of the next unused entry of `batch`; `FAST_BATCH` when empty.
    next: usize,
    /// Random bits for v7: a CSPRNG (RFC 9562 §6.9 asks for one), seeded
    /// from the OS, so v7 needs no system call per UUID.
    v7_bits: ChaCha12Rng,
    generation: u64,
}

/// Fast UUIDs generated per refill of a thread's batch.
const FAST_BATCH: usize = 32;

impl ThreadGenerators {
    fn seeded() -> Result<Self, EntropyError> {
        Ok(Self {
            generation: fork_generation(),
            fast: FastV4::try_from_rng(&mut OsEntropy)?,
            batch: [Uuid::NIL; FAST_BATCH],
            next: FAST_BATCH,
            v7_bits: ChaCha12Rng::try_from_rng(&mut OsEntropy)?,
        })
    }

    /// The next fast UUID from the batch, refilling it when used up.
    #[inline(always)]
    fn next_fast(&mut self) -> Uuid {
        if self.next >= FAST_BATCH {
            self.fast.fill(&mut self.batch);
            self.next = 0;
        }
        let uuid = self.batch[self.next];
        self.next += 1;
        uuid
    }
}

std::thread_local! {
    /// Accessed only through [`with_generators`] and
    /// [`with_generators_slow`], which never nest (see their SAFETY notes).
    static GENERATORS: UnsafeCell<Option<ThreadGenerators>> = const { UnsafeCell::new(None) };
}

/// Runs `f` with this thread's generators: seeded on first use, and
/// reseeded first if the process forked since they were seeded.
///
/// The common case (seeded, same fork generation) is kept small and always
/// inlined, because it wraps a generator that costs about a nanosecond; the
/// rest is in [`with_generators_slow`].
#[inline(always)]
fn with_generators<T>(mut f: impl FnMut(&mut ThreadGenerators) -> T) -> Result<T, EntropyError> {
    let ready = GENERATORS.try_with(|cell| {
        // SAFETY: the thread-local is only reached through this function and
        // `with_generators_slow`, and neither is re-entered while the
        // reference lives: `f` is one of this module's closures, which
        // touch only the generators they are given and their own captures.
        let slot = unsafe { &mut *cell.get() };
        let state = slot
            .as_mut()
            .filter(|state| state.generation == current_fork_generation())?;
        Some(f(state))
    });
    match ready {
        Ok(Some(value)) => Ok(value),
        _ => with_generators_slow(&mut f),
    }
}

/// First use on this thread, first use after a fork, or thread teardown
/// (when the thread-local is gone, `f` gets one-off generators).
#[cold]
#[inline(never)]
fn with_generators_slow<T>(
    f: &mut impl FnMut(&mut ThreadGenerators) -> T,
) -> Result<T, EntropyError> {
    let reseeded = GENERATORS.try_with(|cell| {
        // SAFETY: as in `with_generators`, which has returned its reference
        // before calling here; seeding reads only the OS.
        let slot = unsafe { &mut *cell.get() };
        ThreadGenerators::seeded().map(|fresh| f(slot.insert(fresh)))
    });
    match reseeded {
        Ok(result) => result,
        Err(_) => Ok(f(&mut ThreadGenerators::seeded()?)),
    }
}

/// A fast v4 UUID: xoshiro256++ per thread, seeded from OS entropy. Unique,
/// not unguessable: use [`generate_secure_uuid`] for tokens.
///
/// # Panics
/// If the OS cannot supply the seed (see [`try_generate_fast_uuid`]).
#[must_use]
#[inline]
pub fn generate_fast_uuid() -> Uuid {
    expect_entropy(try_generate_fast_uuid())
}

/// Like [`generate_fast_uuid`], reporting a failure to seed.
///
/// # Errors
/// The OS could not supply the seed for this thread's generator.
#[inline]
pub fn try_generate_fast_uuid() -> Result<Uuid, EntropyError> {
    with_generators(ThreadGenerators::next_fast)
}

/// Fills `out` with fast v4 UUIDs; the bulk form of [`generate_fast_uuid`].
///
/// # Errors
/// The OS could not supply the seed for this thread's generator.
pub fn fill_fast_uuids(out: &mut [Uuid]) -> Result<(), EntropyError> {
    with_generators(|g| g.fast.fill(out))
}

/// A secure v4 UUID: all 122 random bits from OS entropy (buffered per
/// thread, fork-safe).
///
/// # Panics
/// If the OS cannot supply entropy (see [`try_generate_secure_uuid`]).
#[must_use]
#[inline]
pub fn generate_secure_uuid() -> Uuid {
    expect_entropy(try_generate_secure_uuid())
}

/// Like [`generate_secure_uuid`], reporting an entropy failure.
///
/// # Errors
/// The OS could not supply entropy.
#[inline]
pub fn try_generate_secure_uuid() -> Result<Uuid, EntropyError> {
    crate::entropy::with_thread_entropy(|e| e.take16().map(Uuid::from_random_bytes))
}

/// Fills `out` with secure v4 UUIDs.
///
/// # Errors
/// The OS could not supply entropy; `out` may then be partly filled.
pub fn fill_secure_uuids(out: &mut [Uuid]) -> Result<(), EntropyError> {
    crate::entropy::with_thread_entropy(|e| {
        for slot in out {
            *slot = Uuid::from_random_bytes(e.take16()?);
        }
        Ok(())
    })
}

/// A v7 UUID for the current system time from the process-wide generator:
/// unique and strictly increasing across every thread of the process, also
/// when the clock steps backwards.
///
/// # Panics
/// If the OS cannot supply entropy, or the clock is past the year 10889 (see
/// [`try_generate_v7`]).
#[must_use]
#[inline]
pub fn generate_v7() -> Uuid {
    match try_generate_v7() {
        Ok(uuid) => uuid,
        Err(err) => panic!("{err}"),
    }
}

/// Like [`generate_v7`], reporting failures.
///
/// # Errors
/// [`UuidError::Entropy`] when the OS cannot supply entropy;
/// [`UuidError::V7`] when the v7 space is exhausted.
#[inline]
pub fn try_generate_v7() -> Result<Uuid, UuidError> {
    let random = with_generators(|g| g.v7_bits.next_u64())?;
    Ok(SHARED_V7.generate_with(unix_millis_now(), random)?)
}

/// Switches the global hybrid generator ([`generate_uuid`]) to the fast
/// source (`true`) or back to the secure one (`false`, the initial mode).
pub fn set_use_fast_mode(fast: bool) {
    HYBRID.set_use_fast_mode(fast);
}

/// The global hybrid generator's mode.
#[must_use]
pub fn hybrid_mode() -> Mode {
    HYBRID.mode()
}

/// A v4 UUID from the global hybrid generator: fast or secure as
/// [`set_use_fast_mode`] last chose.
///
/// # Panics
/// If the OS cannot supply entropy (see [`try_generate_uuid`]).
#[must_use]
#[inline]
pub fn generate_uuid() -> Uuid {
    expect_entropy(try_generate_uuid())
}

/// Like [`generate_uuid`], reporting an entropy failure.
///
/// # Errors
/// The OS could not supply entropy (or the fast generator's seed).
#[inline]
pub fn try_generate_uuid() -> Result<Uuid, EntropyError> {
    match HYBRID.mode() {
        Mode::Fast => try_generate_fast_uuid(),
        Mode::Secure => try_generate_secure_uuid(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mechops_core::uuid::{Variant, Version};
    use std::collections::HashSet;

    #[test]
    fn every_kind_has_its_version_and_variant() {
        for u in [
            generate_fast_uuid(),
            generate_secure_uuid(),
            generate_uuid(),
        ] {
            assert_eq!(u.version(), Version::V4);
            assert_eq!(u.variant(), Variant::Rfc9562);
        }
        let v7 = generate_v7();
        assert_eq!(v7.version(), Version::V7);
        assert_eq!(v7.variant(), Variant::Rfc9562);
        let now = unix_millis_now();
        let embedded = v7.unix_millis().unwrap();
        // The generator may run ahead of the clock, never behind it.
        assert!(embedded + 1_000 >= now && embedded <= now + 1_000);
    }

    #[test]
    fn no_repeats_across_threads() {
        let all: Vec<Uuid> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        let mut v = Vec::new();
                        for _ in 0..500 {
                            v.push(generate_fast_uuid());
                            v.push(generate_secure_uuid());
                            v.push(generate_v7());
                        }
                        v
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let unique: HashSet<Uuid> = all.iter().copied().collect();
        assert_eq!(unique.len(), all.len());
    }

    #[test]
    fn v7_is_strictly_increasing_per_thread() {
        let mut prev = generate_v7();
        for _ in 0..10_000 {
            let next = generate_v7();
            assert!(next > prev);
            prev = next;
        }
    }

    #[test]
    fn bulk_fills_are_fresh() {
        let mut fast = [Uuid::NIL; 300];
        fill_fast_uuids(&mut fast).unwrap();
        let mut secure = [Uuid::NIL; 300];
        fill_secure_uuids(&mut secure).unwrap();
        let unique: HashSet<Uuid> = fast.iter().chain(secure.iter()).copied().collect();
        assert_eq!(unique.len(), 600);
        assert!(secure.iter().all(|u| u.version() == Version::V4));
    }
}
