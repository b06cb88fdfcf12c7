//! The v7 generator shared between threads through `&self`, lock-free.
//!
//! The whole state is one 64-bit atomic: 48 bits of Unix milliseconds above a
//! 16-bit sequence. Each call replaces it, by compare-and-swap, with either
//! `(now, small random start)` when the clock has moved past the stored
//! millisecond, or the stored value plus one. Adding one carries a full
//! sequence into the millisecond, so overflow advances the timestamp instead
//! of failing.
//!
//! Invariants: every successful swap writes a value greater than the one it
//! replaced, so the atomic's modification order is strictly increasing and
//! no two calls get the same state; each UUID is built so that its order is
//! the order of its state. Hence no duplicates across threads, and strictly
//! increasing UUIDs within each thread (successive read-modify-writes by one
//! thread observe later and later values). Relaxed ordering suffices: the
//! state publishes no other memory.

use core::fmt;

use rand_core::Rng;

use super::Uuid;
use super::v7::{MAX_UNIX_MILLIS, V7Error, unix_millis_of};
use super::value::with_version_and_variant;
use crate::sync::{AtomicU64, Ordering, const_unless_loom};
use crate::time::Timestamp;

const SEQ_BITS: u32 = 16;
/// Random bits below the sequence in `rand_b`.
const TAIL_BITS: u32 = 58;

/// A v7 generator for many threads at once, usable from a `static`.
///
/// Each call takes the current time and a random source from the caller
/// (typically a thread-local one), so the shared part is only the atomic.
pub struct SharedV7 {
    state: AtomicU64,
}

impl SharedV7 {
    const_unless_loom! {
        /// A generator that has handed nothing out yet.
        #[must_use]
        pub fn new() -> Self {
            Self { state: AtomicU64::new(0) }
        }
    }

    /// The next UUID for the Unix time `now_ms`: unique among all calls on
    /// this generator, and greater than every UUID this thread got from it.
    ///
    /// Uses 64 random bits from `rng` per call.
    ///
    /// # Errors
    /// [`V7Error::Exhausted`] only when the last representable millisecond
    /// has no sequence values left.
    #[inline]
    pub fn generate<R: Rng + ?Sized>(&self, now_ms: u64, rng: &mut R) -> Result<Uuid, V7Error> {
        self.generate_with(now_ms, rng.next_u64())
    }

    /// [`SharedV7::generate`] for a wall-clock reading, such as a
    /// [`WallClock`](crate::time::WallClock)'s `now()`. Readings before 1970
    /// count as the Unix epoch.
    ///
    /// # Errors
    /// As [`SharedV7::generate`].
    #[inline]
    pub fn generate_at<R: Rng + ?Sized>(
        &self,
        now: Timestamp,
        rng: &mut R,
    ) -> Result<Uuid, V7Error> {
        self.generate_with(unix_millis_of(now), rng.next_u64())
    }

    /// [`SharedV7::generate`] with the 64 random bits supplied directly, for
    /// callers whose entropy source can fail and who draw it beforehand.
    ///
    /// # Errors
    /// As [`SharedV7::generate`].
    #[inline]
    pub fn generate_with(&self, now_ms: u64, random: u64) -> Result<Uuid, V7Error> {
        let now = now_ms.min(MAX_UNIX_MILLIS);
        // The top six random bits start the sequence of a new millisecond:
        // unpredictable, yet leaving at least 65472 values before overflow.
        let fresh = (now << SEQ_BITS) | (random >> TAIL_BITS);
        let mut current = self.state.load(Ordering::Relaxed);
        let next = loop {
            let next = if now > current >> SEQ_BITS {
                fresh
            } else {
                current.checked_add(1).ok_or(V7Error::Exhausted)?
            };
            match self.state.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break next,
                Err(actual) => current = actual,
            }
        };
        Ok(layout(next, random))
    }
}

/// Places the state above the random tail: `ms` (48), version, the top 12
/// sequence bits, variant, the low 4 sequence bits, 58 random bits.
#[inline]
fn layout(state: u64, random: u64) -> Uuid {
    let ms = state >> SEQ_BITS;
    let seq = state & ((1 << SEQ_BITS) - 1);
    let value = (u128::from(ms) << 80)
        | (u128::from(seq >> 4) << 64)
        | (u128::from(seq & 0xF) << TAIL_BITS)
        | u128::from(random & ((1 << TAIL_BITS) - 1));
    Uuid::from_u128(with_version_and_variant(value, 7))
}

impl Default for SharedV7 {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for SharedV7 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedV7")
            .field(
                "last_millis",
                &(self.state.load(Ordering::Relaxed) >> SEQ_BITS),
            )
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::uuid::{Variant, Version};
    use rand_core::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;
    use std::vec::Vec;

    static GLOBAL: SharedV7 = SharedV7::new();

    #[test]
    fn usable_from_a_static_and_carries_the_time() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let u = GLOBAL.generate(1_645_557_742_000, &mut rng).unwrap();
        assert_eq!(u.version(), Version::V7);
        assert_eq!(u.variant(), Variant::Rfc9562);
        assert_eq!(u.unix_millis(), Some(1_645_557_742_000));
        let now = crate::time::Timestamp::from_unix_millis(1_645_557_742_001).unwrap();
        let later = GLOBAL.generate_at(now, &mut rng).unwrap();
        assert_eq!(later.unix_millis(), Some(1_645_557_742_001));
        assert!(later > u);
    }

    #[test]
    fn strictly_increasing_with_a_stuck_or_backward_clock() {
        let g = SharedV7::new();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
        let mut prev = g.generate(10_000, &mut rng).unwrap();
        for i in 0..5_000u64 {
            let now = if i % 3 == 0 { 9_000 } else { 10_000 };
            let next = g.generate(now, &mut rng).unwrap();
            assert!(next > prev);
            prev = next;
        }
    }

    #[test]
    fn sequence_overflow_advances_the_millisecond() {
        let g = SharedV7::new();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let first = g.generate(1, &mut rng).unwrap();
        let mut prev = first;
        // At most 2^16 values fit in one millisecond.
        for _ in 0..(1 << SEQ_BITS) {
            let next = g.generate(1, &mut rng).unwrap();
            assert!(next > prev);
            prev = next;
        }
        assert_eq!(first.unix_millis(), Some(1));
        assert_eq!(prev.unix_millis(), Some(2));
    }

    #[test]
    fn exhaustion_is_an_error_not_a_wrap() {
        let g = SharedV7::new();
        g.state.store(u64::MAX, Ordering::Relaxed);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(4);
        assert_eq!(g.generate(u64::MAX, &mut rng), Err(V7Error::Exhausted));
    }

    #[test]
    fn threads_get_unique_increasing_values() {
        let g = SharedV7::new();
        let per_thread: Vec<Vec<Uuid>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4u64)
                .map(|t| {
                    let g = &g;
                    s.spawn(move || {
                        let mut rng = Xoshiro256PlusPlus::seed_from_u64(t);
                        (0..2_000)
                            .map(|i| g.generate(50 + i / 500, &mut rng).unwrap())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for ids in &per_thread {
            assert!(ids.windows(2).all(|w| w[0] < w[1]));
        }
        let mut all: Vec<Uuid> = per_thread.into_iter().flatten().collect();
        all.sort_unstable();
        let before = all.len();
        all.dedup();
        assert_eq!(all.len(), before);
    }
}
