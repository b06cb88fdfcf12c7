//! The monotonic v7 generator for one owner (RFC 9562 §5.7 and §6.2).
//!
//! Layout of each UUID: 48 bits of Unix milliseconds, the version, a 42-bit
//! counter (the 12 bits of `rand_a` and the top 30 of `rand_b`, RFC 9562
//! §6.2 method 1), the variant, and 32 fresh random bits.
//!
//! Invariants: the pair (milliseconds, counter) strictly increases from one
//! UUID to the next, so the UUIDs do too. When `now_ms` moves forward the
//! counter restarts at a random value below 2^41, leaving at least 2^41
//! increments of headroom; when it stands still or steps backwards the
//! previous millisecond is kept and the counter increments; when the counter
//! is full the millisecond advances by one (borrowing from the future, as
//! §6.2 allows) instead of failing.

use core::fmt;

use rand_core::Rng;

use super::Uuid;
use super::value::with_version_and_variant;
use crate::time::Timestamp;

/// The largest Unix millisecond a v7 UUID can hold (2^48 - 1, in the year
/// 10889). Later clock readings are treated as this one.
pub const MAX_UNIX_MILLIS: u64 = (1 << 48) - 1;

/// The Unix millisecond of a wall-clock reading, as the v7 generators take
/// it. A v7 UUID holds no time before 1970, so earlier instants count as the
/// Unix epoch, the same clamping the generators apply past
/// [`MAX_UNIX_MILLIS`] (every [`Timestamp`] is below it).
#[inline]
pub(super) const fn unix_millis_of(now: Timestamp) -> u64 {
    let ms = now.unix_millis();
    if ms < 0 { 0 } else { ms as u64 }
}

const COUNTER_BITS: u32 = 42;
const COUNTER_MAX: u64 = (1 << COUNTER_BITS) - 1;
/// Counter bits that go into `rand_b`, below the variant.
const COUNTER_LOW_BITS: u32 = 30;

/// Why a v7 generator could not produce a UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum V7Error {
    /// Every (timestamp, counter) pair up to [`MAX_UNIX_MILLIS`] is used up:
    /// only reachable with a clock at the end of the 48-bit range.
    Exhausted,
}

impl fmt::Display for V7Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exhausted => f.write_str(
                "UUIDv7 space exhausted: the counter is full at the last representable millisecond",
            ),
        }
    }
}

impl core::error::Error for V7Error {}

/// Strictly increasing v7 UUIDs for one owner (`&mut self`); see
/// [`super::SharedV7`] for a generator shared between threads.
///
/// The random bits come from `R`. The current time is the `now_ms` argument
/// of each call, so tests drive the clock, and a clock that jumps around
/// never breaks the ordering.
#[derive(Clone)]
pub struct V7Generator<R> {
    rng: R,
    /// The last (millisecond, counter) handed out, `None` before the first.
    last: Option<(u64, u64)>,
}

impl<R: Rng> V7Generator<R> {
    /// A generator drawing its random bits from `rng`.
    pub const fn new(rng: R) -> Self {
        Self { rng, last: None }
    }

    /// The source of the random bits.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.rng
    }

    /// The millisecond of the last UUID handed out, if any. It is ahead of
    /// the clock after a step backwards or a counter overflow.
    pub fn last_millis(&self) -> Option<u64> {
        self.last.map(|(ms, _)| ms)
    }

    /// The next UUID for the Unix time `now_ms`, greater than every UUID
    /// this generator has handed out.
    ///
    /// # Errors
    /// [`V7Error::Exhausted`] only when the last representable millisecond
    /// has no counter values left.
    #[inline]
    pub fn generate(&mut self, now_ms: u64) -> Result<Uuid, V7Error> {
        let now = now_ms.min(MAX_UNIX_MILLIS);
        let (ms, counter) = match self.last {
            Some((last_ms, counter)) if now <= last_ms => {
                if counter < COUNTER_MAX {
                    (last_ms, counter + 1)
                } else if last_ms < MAX_UNIX_MILLIS {
                    (last_ms + 1, self.fresh_counter())
                } else {
                    return Err(V7Error::Exhausted);
                }
            }
            _ => (now, self.fresh_counter()),
        };
        self.last = Some((ms, counter));
        let tail = self.rng.next_u32();
        Ok(layout(ms, counter, tail))
    }

    /// [`V7Generator::generate`] for a wall-clock reading, such as a
    /// [`WallClock`](crate::time::WallClock)'s `now()`. Readings before 1970
    /// count as the Unix epoch.
    ///
    /// # Errors
    /// As [`V7Generator::generate`].
    #[inline]
    pub fn generate_at(&mut self, now: Timestamp) -> Result<Uuid, V7Error> {
        self.generate(unix_millis_of(now))
    }

    /// A random counter start with the top bit clear (RFC 9562 §6.2,
    /// counter rollover guards).
    #[inline]
    fn fresh_counter(&mut self) -> u64 {
        self.rng.next_u64() >> (64 - (COUNTER_BITS - 1))
    }
}

/// Places the fields; strictly increasing in (`ms`, `counter`) whatever the
/// tail, because the fields sit in that order above the tail.
#[inline]
fn layout(ms: u64, counter: u64, tail: u32) -> Uuid {
    let value = (u128::from(ms) << 80)
        | (u128::from(counter >> COUNTER_LOW_BITS) << 64)
        | (u128::from(counter & ((1 << COUNTER_LOW_BITS) - 1)) << 32)
        | u128::from(tail);
    Uuid::from_u128(with_version_and_variant(value, 7))
}

impl<R> fmt::Debug for V7Generator<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("V7Generator")
            .field("last_millis", &self.last.map(|(ms, _)| ms))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::uuid::{Variant, Version};
    use rand_core::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn generator() -> V7Generator<Xoshiro256PlusPlus> {
        V7Generator::new(Xoshiro256PlusPlus::seed_from_u64(42))
    }

    #[test]
    fn carries_the_time_version_and_variant() {
        let mut g = generator();
        let u = g.generate(1_645_557_742_000).unwrap();
        assert_eq!(u.version(), Version::V7);
        assert_eq!(u.variant(), Variant::Rfc9562);
        assert_eq!(u.unix_millis(), Some(1_645_557_742_000));
    }

    #[test]
    fn generate_at_takes_the_millisecond_of_a_timestamp() {
        use crate::time::{FixedClock, Timestamp, WallClock};
        let clock = FixedClock(Timestamp::from_unix(1_645_557_742, 999_999_999).unwrap());
        let mut g = generator();
        let u = g.generate_at(clock.now()).unwrap();
        assert_eq!(u.unix_millis(), Some(1_645_557_742_999));
        let before_1970 = Timestamp::from_unix_secs(-86_400).unwrap();
        let mut g = generator();
        assert_eq!(g.generate_at(before_1970).unwrap().unix_millis(), Some(0));
        assert_eq!(unix_millis_of(Timestamp::MIN), 0);
        assert!(unix_millis_of(Timestamp::MAX) < MAX_UNIX_MILLIS);
    }

    #[test]
    fn strictly_increasing_within_one_millisecond() {
        let mut g = generator();
        let mut prev = g.generate(1000).unwrap();
        for _ in 0..10_000 {
            let next = g.generate(1000).unwrap();
            assert!(next > prev);
            assert_eq!(next.unix_millis(), Some(1000));
            prev = next;
        }
    }

    #[test]
    fn clock_stepping_backwards_keeps_the_order() {
        let mut g = generator();
        let mut prev = g.generate(5_000).unwrap();
        for now in [4_999, 0, 3_000, 5_000, 4_000] {
            let next = g.generate(now).unwrap();
            assert!(next > prev, "now = {now}");
            assert_eq!(next.unix_millis(), Some(5_000));
            prev = next;
        }
        let later = g.generate(6_000).unwrap();
        assert!(later > prev);
        assert_eq!(later.unix_millis(), Some(6_000));
    }

    #[test]
    fn counter_overflow_advances_the_timestamp() {
        let mut g = generator();
        g.last = Some((7_000, COUNTER_MAX - 1));
        let a = g.generate(7_000).unwrap();
        assert_eq!(a.unix_millis(), Some(7_000));
        let b = g.generate(7_000).unwrap();
        assert!(b > a);
        assert_eq!(b.unix_millis(), Some(7_001));
        assert_eq!(g.last_millis(), Some(7_001));
        let c = g.generate(7_000).unwrap();
        assert!(c > b);
    }

    #[test]
    fn fresh_counters_leave_headroom() {
        let mut g = generator();
        for ms in 0..1000 {
            g.generate(ms).unwrap();
            let (_, counter) = g.last.unwrap();
            assert!(counter < 1 << (COUNTER_BITS - 1));
        }
    }

    #[test]
    fn far_future_clock_is_clamped_and_exhaustion_is_an_error() {
        let mut g = generator();
        let u = g.generate(u64::MAX).unwrap();
        assert_eq!(u.unix_millis(), Some(MAX_UNIX_MILLIS));
        g.last = Some((MAX_UNIX_MILLIS, COUNTER_MAX));
        assert_eq!(g.generate(u64::MAX), Err(V7Error::Exhausted));
        assert!(std::format!("{}", V7Error::Exhausted).contains("exhausted"));
    }

    #[test]
    fn counter_bits_land_where_the_layout_says() {
        let u = layout(0x0123_4567_89AB, COUNTER_MAX, 0);
        // rand_a all ones, version 7, variant 10, top 30 bits of rand_b ones.
        assert_eq!(u.as_u128(), 0x0123_4567_89AB_7FFF_BFFF_FFFF_0000_0000);
    }
}
