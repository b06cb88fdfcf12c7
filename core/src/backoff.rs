//! Exponential backoff with a cap, a maximum number of attempts and jitter.
//!
//! [`Backoff`] is a policy and [`Backoff::delay`] a pure function: the delay
//! before retry number `attempt` follows from the attempt number, the
//! previous delay (for decorrelated jitter) and a random `u64` the caller
//! supplies. The core owns no generator and no clock; [`Backoff::delay_with`]
//! draws the random input from any `rand_core` generator, and [`Retry`]
//! keeps the attempt count and previous delay for callers that want state.
//! [`Retry::next_attempt_at`] turns the delay into a deadline on the
//! monotonic [`Instant`] the caller reads, never on the wall clock, which
//! can step while a retry waits.
//!
//! # Invariants
//!
//! - The un-jittered delay of attempt `n` is `min(cap, base * multiplier^n)`,
//!   computed without overflow; it never decreases as `n` grows.
//! - No delay ever exceeds `cap`.
//! - `delay` returns `None` exactly when `attempt >= max_attempts`.
//! - Jitter ranges (with `d` the un-jittered delay, all bounds inclusive):
//!   none gives `d`; full gives `0..=d`; equal gives `d/2..=d` (`d/2`
//!   rounded down); decorrelated gives `base..=min(cap, 3 * previous)`, with
//!   `previous` taken as `base` for the first attempt and clamped to
//!   `base..=cap`.
//!
//! ```
//! use core::time::Duration;
//! use mechops_core::backoff::{Backoff, Jitter};
//!
//! let policy = Backoff::new(Duration::from_millis(100), Duration::from_secs(5), 4)
//!     .unwrap()
//!     .with_jitter(Jitter::None);
//! let delays: Vec<_> = (0..5).map(|n| policy.delay(n, None, 0)).collect();
//! assert_eq!(
//!     delays,
//!     [
//!         Some(Duration::from_millis(100)),
//!         Some(Duration::from_millis(200)),
//!         Some(Duration::from_millis(400)),
//!         Some(Duration::from_millis(800)),
//!         None, // four attempts, then give up
//!     ]
//! );
//! ```

use core::fmt;
use core::time::Duration;

use crate::time::Instant;

/// How a delay is randomised, so that clients that failed together do not
/// retry together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Jitter {
    /// The exponential delay itself.
    None,
    /// Uniform between zero and the exponential delay.
    #[default]
    Full,
    /// Half the exponential delay, plus uniform up to the other half.
    Equal,
    /// Uniform between `base` and three times the previous delay, capped:
    /// each delay grows from the last one actually used rather than from the
    /// attempt number.
    Decorrelated,
}

/// A backoff policy that cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackoffError {
    /// `base` was longer than `cap`.
    BaseAboveCap,
    /// `cap` did not fit in 2^64 - 1 nanoseconds (about 584 years).
    CapTooLarge,
    /// The multiplier was zero.
    ZeroMultiplier,
}

impl fmt::Display for BackoffError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BaseAboveCap => "backoff base delay is longer than its cap",
            Self::CapTooLarge => "backoff cap exceeds 2^64-1 nanoseconds",
            Self::ZeroMultiplier => "backoff multiplier must be at least 1",
        })
    }
}

impl core::error::Error for BackoffError {}

/// An exponential backoff policy. See the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Backoff {
    base: u64,
    cap: u64,
    max_attempts: u32,
    multiplier: u32,
    jitter: Jitter,
}

impl Backoff {
    /// A policy doubling from `base` up to `cap`, for at most
    /// `max_attempts` retries, with [`Jitter::Full`].
    pub const fn new(
        base: Duration,
        cap: Duration,
        max_attempts: u32,
    ) -> Result<Self, BackoffError> {
        let cap = cap.as_nanos();
        let base = base.as_nanos();
        if cap > u64::MAX as u128 {
            return Err(BackoffError::CapTooLarge);
        }
        if base > cap {
            return Err(BackoffError::BaseAboveCap);
        }
        Ok(Self {
            base: base as u64,
            cap: cap as u64,
            max_attempts,
            multiplier: 2,
            jitter: Jitter::Full,
        })
    }

    /// The same policy with another jitter.
    #[must_use]
    pub const fn with_jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// The same policy growing by `multiplier` per attempt instead of 2
    /// (1 gives a constant delay).
    pub const fn with_multiplier(mut self, multiplier: u32) -> Result<Self, BackoffError> {
        if multiplier == 0 {
            return Err(BackoffError::ZeroMultiplier);
        }
        self.multiplier = multiplier;
        Ok(self)
    }

    /// The delay before the first retry.
    pub const fn base(&self) -> Duration {
        Duration::from_nanos(self.base)
    }

    /// The longest delay.
    pub const fn cap(&self) -> Duration {
        Duration::from_nanos(self.cap)
    }

    /// The number of retries allowed.
    pub const fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The growth factor per attempt.
    pub const fn multiplier(&self) -> u32 {
        self.multiplier
    }

    /// The jitter in use.
    pub const fn jitter(&self) -> Jitter {
        self.jitter
    }

    /// The delay before retry `attempt` (0 for the first retry) without
    /// jitter: `min(cap, base * multiplier^attempt)`, or `None` once the
    /// attempts are exhausted.
    pub const fn ceiling(&self, attempt: u32) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        Some(Duration::from_nanos(self.exponential(attempt)))
    }

    /// The delay before retry `attempt` (0 for the first retry), or `None`
    /// once `max_attempts` retries have been made.
    ///
    /// `random` is any uniformly distributed `u64`; `previous` is the delay
    /// returned for the attempt before (used only by [`Jitter::Decorrelated`];
    /// `None` on the first attempt).
    pub fn delay(&self, attempt: u32, previous: Option<Duration>, random: u64) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        let nanos = match self.jitter {
            Jitter::None => self.exponential(attempt),
            Jitter::Full => uniform(random, self.exponential(attempt)),
            Jitter::Equal => {
                let d = self.exponential(attempt);
                d / 2 + uniform(random, d - d / 2)
            }
            Jitter::Decorrelated => {
                let previous = previous.map_or(self.base, |p| {
                    u64::try_from(p.as_nanos())
                        .unwrap_or(u64::MAX)
                        .clamp(self.base, self.cap)
                });
                let upper = previous.saturating_mul(3).min(self.cap);
                self.base + uniform(random, upper - self.base)
            }
        };
        Some(Duration::from_nanos(nanos))
    }

    /// [`Backoff::delay`] with the random input drawn from `rng`.
    pub fn delay_with<R: rand_core::Rng + ?Sized>(
        &self,
        attempt: u32,
        previous: Option<Duration>,
        rng: &mut R,
    ) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        self.delay(attempt, previous, rng.next_u64())
    }

    /// `min(cap, base * multiplier^attempt)` in nanoseconds, saturating.
    const fn exponential(&self, attempt: u32) -> u64 {
        let factor = match (self.multiplier as u64).checked_pow(attempt) {
            Some(factor) => factor,
            None => u64::MAX,
        };
        let d = self.base.saturating_mul(factor);
        if d < self.cap { d } else { self.cap }
    }
}

/// A uniform value in `0..=max` from a uniform `u64`, by multiply-shift.
/// Each outcome's probability is off by at most one part in
/// `2^64 / (max + 1)`, far below anything jitter cares about, and no
/// division or rejection loop is needed.
#[inline]
const fn uniform(random: u64, max: u64) -> u64 {
    ((random as u128 * (max as u128 + 1)) >> 64) as u64
}

/// The attempt count and previous delay of one operation being retried
/// under a [`Backoff`] policy.
///
/// ```
/// use core::time::Duration;
/// use mechops_core::backoff::{Backoff, Jitter, Retry};
///
/// let policy = Backoff::new(Duration::from_millis(10), Duration::from_secs(1), 3)
///     .unwrap()
///     .with_jitter(Jitter::Decorrelated);
/// let mut retry = Retry::new();
/// let mut randoms = [u64::MAX / 2, 7, u64::MAX].into_iter();
/// while let Some(delay) = retry.next_delay(&policy, randoms.next().unwrap_or(0)) {
///     assert!(delay >= policy.base() && delay <= policy.cap());
/// }
/// assert_eq!(retry.attempts(), 3);
/// ```
///
/// With a monotonic clock, [`Retry::next_attempt_at`] gives the deadline
/// itself:
///
/// ```
/// use core::time::Duration;
/// use mechops_core::backoff::{Backoff, Jitter, Retry};
/// use mechops_core::time::{Instant, ManualClock, MonotonicClock};
///
/// let policy = Backoff::new(Duration::from_millis(100), Duration::from_secs(1), 2)
///     .unwrap()
///     .with_jitter(Jitter::None);
/// let clock = ManualClock::new(Instant::from_secs(60));
/// let mut retry = Retry::new();
/// let due = retry.next_attempt_at(&policy, clock.now(), 0);
/// assert_eq!(due, Some(Instant::from_millis(60_100)));
/// clock.set(due.unwrap());
/// let due = retry.next_attempt_at(&policy, clock.now(), 0);
/// assert_eq!(due, Some(Instant::from_millis(60_300)));
/// assert_eq!(retry.next_attempt_at(&policy, clock.now(), 0), None); // give up
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retry {
    attempt: u32,
    previous: Option<Duration>,
}

impl Retry {
    /// No retries made yet.
    pub const fn new() -> Self {
        Self {
            attempt: 0,
            previous: None,
        }
    }

    /// The delay before the next retry, or `None` when the policy's attempts
    /// are exhausted (further calls keep returning `None`).
    pub fn next_delay(&mut self, policy: &Backoff, random: u64) -> Option<Duration> {
        let delay = policy.delay(self.attempt, self.previous, random)?;
        self.attempt += 1;
        self.previous = Some(delay);
        Some(delay)
    }

    /// When the next retry is due, given the monotonic reading `now` at
    /// which the last attempt failed: `now` plus [`Retry::next_delay`]
    /// (saturating at [`Instant::MAX`]), or `None` when the policy's
    /// attempts are exhausted.
    pub fn next_attempt_at(
        &mut self,
        policy: &Backoff,
        now: Instant,
        random: u64,
    ) -> Option<Instant> {
        self.next_delay(policy, random).map(|delay| now + delay)
    }

    /// Retries handed out so far.
    pub const fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Starts over, after a success.
    pub fn reset(&mut self) {
        *self = Self::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    const MS: Duration = Duration::from_millis(1);

    fn policy(jitter: Jitter) -> Backoff {
        Backoff::new(MS * 10, MS * 1000, 20)
            .unwrap()
            .with_jitter(jitter)
    }

    #[test]
    fn rejects_bad_policies_with_clear_errors() {
        assert_eq!(Backoff::new(MS * 2, MS, 3), Err(BackoffError::BaseAboveCap));
        assert_eq!(
            Backoff::new(MS, Duration::MAX, 3),
            Err(BackoffError::CapTooLarge)
        );
        assert_eq!(
            policy(Jitter::None).with_multiplier(0),
            Err(BackoffError::ZeroMultiplier)
        );
        assert_eq!(
            BackoffError::BaseAboveCap.to_string(),
            "backoff base delay is longer than its cap"
        );
    }

    #[test]
    fn exponential_growth_stops_at_the_cap() {
        let p = policy(Jitter::None);
        assert_eq!(p.delay(0, None, 0), Some(MS * 10));
        assert_eq!(p.delay(3, None, 0), Some(MS * 80));
        assert_eq!(p.delay(7, None, 0), Some(MS * 1000));
        assert_eq!(p.delay(19, None, 0), Some(MS * 1000));
        assert_eq!(p.delay(20, None, 0), None);
        assert_eq!(p.ceiling(19), Some(MS * 1000));
        assert_eq!(p.ceiling(20), None);
    }

    #[test]
    fn huge_attempt_numbers_saturate_instead_of_overflowing() {
        let p = Backoff::new(MS, Duration::from_secs(3600), u32::MAX)
            .unwrap()
            .with_jitter(Jitter::None);
        assert_eq!(
            p.delay(u32::MAX - 1, None, 0),
            Some(Duration::from_secs(3600))
        );
        let constant = p.with_multiplier(1).unwrap();
        assert_eq!(constant.delay(1000, None, 0), Some(MS));
    }

    #[test]
    fn full_jitter_spans_zero_to_the_delay() {
        let p = policy(Jitter::Full);
        assert_eq!(p.delay(2, None, 0), Some(Duration::ZERO));
        assert_eq!(p.delay(2, None, u64::MAX), Some(MS * 40));
        assert_eq!(p.delay(2, None, 1 << 63), Some(MS * 20));
    }

    #[test]
    fn equal_jitter_keeps_at_least_half() {
        let p = policy(Jitter::Equal);
        assert_eq!(p.delay(2, None, 0), Some(MS * 20));
        assert_eq!(p.delay(2, None, u64::MAX), Some(MS * 40));
    }

    #[test]
    fn decorrelated_jitter_grows_from_the_previous_delay() {
        let p = policy(Jitter::Decorrelated);
        assert_eq!(p.delay(0, None, 0), Some(MS * 10));
        assert_eq!(p.delay(0, None, u64::MAX), Some(MS * 30));
        assert_eq!(p.delay(5, Some(MS * 100), u64::MAX), Some(MS * 300));
        assert_eq!(p.delay(5, Some(MS * 900), u64::MAX), Some(MS * 1000));
        // A previous delay outside the policy is clamped into it.
        assert_eq!(p.delay(5, Some(Duration::ZERO), u64::MAX), Some(MS * 30));
    }

    #[test]
    fn retry_tracks_attempts_and_resets() {
        let p = Backoff::new(MS, MS * 8, 2)
            .unwrap()
            .with_jitter(Jitter::None);
        let mut r = Retry::new();
        assert_eq!(r.next_delay(&p, 0), Some(MS));
        assert_eq!(r.next_delay(&p, 0), Some(MS * 2));
        assert_eq!(r.next_delay(&p, 0), None);
        assert_eq!(r.next_delay(&p, 0), None);
        assert_eq!(r.attempts(), 2);
        r.reset();
        assert_eq!(r.next_delay(&p, 0), Some(MS));
    }

    #[test]
    fn next_attempt_at_is_now_plus_the_delay_and_saturates() {
        let p = Backoff::new(MS, MS * 8, 3)
            .unwrap()
            .with_jitter(Jitter::None);
        let mut r = Retry::new();
        let now = Instant::from_secs(10);
        assert_eq!(r.next_attempt_at(&p, now, 0), Some(now + MS));
        assert_eq!(r.next_attempt_at(&p, Instant::MAX, 0), Some(Instant::MAX));
        assert_eq!(r.next_attempt_at(&p, now, 0), Some(now + MS * 4));
        assert_eq!(r.next_attempt_at(&p, now, 0), None);
        assert_eq!(r.attempts(), 3);
        // The deadline uses the same delay sequence as `next_delay`.
        let p = policy(Jitter::Decorrelated);
        let (mut by_delay, mut by_deadline) = (Retry::new(), Retry::new());
        for random in [3, u64::MAX, 1 << 62, 0, 99] {
            let delay = by_delay.next_delay(&p, random).unwrap();
            assert_eq!(
                by_deadline.next_attempt_at(&p, now, random),
                Some(now + delay)
            );
        }
    }

    #[test]
    fn draws_from_a_rand_core_generator() {
        use rand_core::SeedableRng;
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
        let p = policy(Jitter::Full);
        for attempt in 0..20 {
            let d = p.delay_with(attempt, None, &mut rng).unwrap();
            assert!(d <= p.ceiling(attempt).unwrap());
        }
        assert_eq!(p.delay_with(20, None, &mut rng), None);
    }
}
