//! The per-endpoint circuit breaker.
//!
//! # Invariants
//!
//! - The only transitions are closed to open (the failure threshold is
//!   reached), open to half-open (the open duration has passed, seen by
//!   [`Breaker::admits`]), half-open to closed (the trial connect succeeded)
//!   and half-open to open (the trial failed; the next open duration uses
//!   the next backoff attempt).
//! - Half-open admits exactly one trial at a time. Results of connects that
//!   started before the breaker opened, or that are not the trial, change
//!   no state: only the trial decides.

use core::time::Duration;

use mechops_core::time::Instant;

use super::BreakerConfig;

/// The state a [`Breaker`] is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Connects are allowed.
    Closed,
    /// Connects are refused until the open duration passes.
    Open,
    /// One trial connect is allowed; its result closes or re-opens.
    HalfOpen,
}

impl BreakerState {
    /// Whether going from `self` to `next` is a legal transition (staying
    /// put is legal).
    pub const fn can_become(self, next: Self) -> bool {
        matches!(
            (self, next),
            (Self::Closed, Self::Closed | Self::Open)
                | (Self::Open, Self::Open | Self::HalfOpen)
                | (Self::HalfOpen, Self::HalfOpen | Self::Closed | Self::Open)
        )
    }
}

impl core::fmt::Display for BreakerState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half-open",
        })
    }
}

/// A circuit breaker for one endpoint.
///
/// The only transitions are closed to open (the failure threshold is
/// reached), open to half-open (the open duration has passed, seen by
/// [`Breaker::admits`]), half-open to closed (the trial connect succeeded)
/// and half-open to open (the trial failed; the next open duration uses the
/// next backoff attempt). Half-open admits one trial at a time, and only
/// the trial's result changes state.
///
/// ```
/// use core::time::Duration;
/// use mechops_alloc::conn::{Breaker, BreakerConfig, BreakerState};
/// use mechops_core::backoff::{Backoff, Jitter};
/// use mechops_core::time::Instant;
///
/// let config = BreakerConfig {
///     failure_threshold: 1,
///     backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(8), 10)
///         .unwrap()
///         .with_jitter(Jitter::None),
/// };
/// let mut breaker = Breaker::new();
/// let t0 = Instant::ZERO;
/// let trial = breaker.on_attempt();
/// breaker.on_failure(trial, t0, &config, 0);
/// assert_eq!(breaker.state(), BreakerState::Open);
/// assert!(!breaker.admits(t0 + Duration::from_millis(999)));
/// assert!(breaker.admits(t0 + Duration::from_secs(1)));
/// assert_eq!(breaker.state(), BreakerState::HalfOpen);
/// let trial = breaker.on_attempt();
/// assert!(trial && !breaker.admits(t0 + Duration::from_secs(1)));
/// breaker.on_success(trial);
/// assert_eq!(breaker.state(), BreakerState::Closed);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Breaker {
    state: BreakerState,
    /// Consecutive failures while closed.
    failures: u32,
    /// Backoff attempt for the next open duration.
    attempt: u32,
    /// End of the open duration.
    until: Instant,
    /// A half-open trial is in flight.
    trial: bool,
    previous: Option<Duration>,
}

impl Default for Breaker {
    fn default() -> Self {
        Self::new()
    }
}

impl Breaker {
    /// A closed breaker.
    pub const fn new() -> Self {
        Self {
            state: BreakerState::Closed,
            failures: 0,
            attempt: 0,
            until: Instant::ZERO,
            trial: false,
            previous: None,
        }
    }

    /// The current state (an open breaker whose duration has passed still
    /// says open until [`Breaker::admits`] is asked).
    pub const fn state(&self) -> BreakerState {
        self.state
    }

    /// When an open breaker will admit a trial; `None` unless open.
    pub const fn reopens_at(&self) -> Option<Instant> {
        match self.state {
            BreakerState::Open => Some(self.until),
            _ => None,
        }
    }

    /// Whether a connect may start at `now`, without changing state.
    pub fn would_admit(&self, now: Instant) -> bool {
        match self.state {
            BreakerState::Closed => true,
            BreakerState::Open => now >= self.until,
            BreakerState::HalfOpen => !self.trial,
        }
    }

    /// Whether a connect may start at `now`; moves an open breaker whose
    /// duration has passed to half-open.
    pub fn admits(&mut self, now: Instant) -> bool {
        if self.state == BreakerState::Open && now >= self.until {
            self.state = BreakerState::HalfOpen;
            self.trial = false;
        }
        self.would_admit(now)
    }

    /// A connect starts (after [`Breaker::admits`] said yes); returns
    /// whether it is the half-open trial, to be passed back with its result.
    pub fn on_attempt(&mut self) -> bool {
        if self.state == BreakerState::HalfOpen {
            self.trial = true;
            true
        } else {
            false
        }
    }

    /// A connect succeeded.
    pub fn on_success(&mut self, trial: bool) {
        match self.state {
            BreakerState::Closed => self.failures = 0,
            BreakerState::HalfOpen if trial => *self = Self::new(),
            _ => {}
        }
    }

    /// A connect failed at `now`; `random` jitters the open duration.
    pub fn on_failure(&mut self, trial: bool, now: Instant, config: &BreakerConfig, random: u64) {
        match self.state {
            BreakerState::Closed => {
                self.failures = self.failures.saturating_add(1);
                if self.failures >= config.failure_threshold {
                    self.attempt = 0;
                    self.previous = None;
                    self.open(now, config, random);
                }
            }
            BreakerState::HalfOpen if trial => {
                self.attempt = self.attempt.saturating_add(1);
                self.open(now, config, random);
            }
            _ => {}
        }
    }

    /// A connect was abandoned: a half-open trial frees its place.
    pub fn on_cancel(&mut self, trial: bool) {
        if self.state == BreakerState::HalfOpen && trial {
            self.trial = false;
        }
    }

    fn open(&mut self, now: Instant, config: &BreakerConfig, random: u64) {
        let backoff = &config.backoff;
        let delay = backoff
            .delay(self.attempt, self.previous, random)
            .unwrap_or(backoff.cap());
        self.previous = Some(delay);
        self.state = BreakerState::Open;
        self.trial = false;
        self.failures = 0;
        self.until = now.saturating_add(delay);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mechops_core::backoff::{Backoff, Jitter};

    fn config(threshold: u32) -> BreakerConfig {
        BreakerConfig {
            failure_threshold: threshold,
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(4), 2)
                .unwrap()
                .with_jitter(Jitter::None),
        }
    }

    fn at(secs: u64) -> Instant {
        Instant::from_secs(secs)
    }

    #[test]
    fn opens_after_the_threshold_of_consecutive_failures() {
        let c = config(3);
        let mut b = Breaker::new();
        b.on_failure(false, at(0), &c, 0);
        b.on_failure(false, at(0), &c, 0);
        b.on_success(false);
        b.on_failure(false, at(0), &c, 0);
        b.on_failure(false, at(0), &c, 0);
        assert_eq!(b.state(), BreakerState::Closed);
        b.on_failure(false, at(0), &c, 0);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.reopens_at(), Some(at(1)));
    }

    #[test]
    fn failed_trials_back_off_longer_and_stay_at_the_cap() {
        let c = config(1);
        let mut b = Breaker::new();
        b.on_failure(false, at(0), &c, 0);
        let mut expected = [at(1), at(3), at(7), at(11)].into_iter();
        assert_eq!(b.reopens_at(), expected.next());
        for now in [1, 3, 7] {
            assert!(!b.admits(at(now) - Duration::from_nanos(1)));
            assert!(b.admits(at(now)));
            let trial = b.on_attempt();
            assert!(trial);
            // A second connect is refused while the trial is out.
            assert!(!b.admits(at(now)));
            b.on_failure(trial, at(now), &c, 0);
            assert_eq!(b.reopens_at(), expected.next());
        }
    }

    #[test]
    fn only_the_trial_decides_a_half_open_breaker() {
        let c = config(1);
        let mut b = Breaker::new();
        b.on_failure(false, at(0), &c, 0);
        // A late success from a connect started before the breaker opened.
        b.on_success(false);
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.admits(at(1)));
        let trial = b.on_attempt();
        b.on_failure(false, at(1), &c, 0);
        b.on_success(false);
        assert_eq!(b.state(), BreakerState::HalfOpen);
        b.on_cancel(trial);
        assert!(b.admits(at(1)));
        let trial = b.on_attempt();
        b.on_success(trial);
        assert_eq!(b.state(), BreakerState::Closed);
    }

    proptest::proptest! {
        /// Random inputs in any order: every transition is legal, a
        /// half-open breaker never has two trials out, and an open one
        /// never admits before its time.
        #[test]
        fn random_inputs_make_only_legal_transitions(
            threshold in 1u32..4,
            ops in proptest::collection::vec((0u8..5, 0u64..50, proptest::prelude::any::<u64>()), 1..200),
        ) {
            let c = BreakerConfig {
                failure_threshold: threshold,
                backoff: Backoff::new(Duration::from_millis(5), Duration::from_millis(40), 3).unwrap(),
            };
            let mut b = Breaker::new();
            let mut now = Instant::ZERO;
            let mut trials = 0u32;
            let mut out: std::vec::Vec<bool> = std::vec::Vec::new();
            for (op, step, random) in ops {
                let before = b.state();
                match op {
                    0 => now += Duration::from_millis(step),
                    1 => {
                        let reopens = b.reopens_at();
                        if b.admits(now) {
                            if let Some(at) = reopens {
                                proptest::prop_assert!(now >= at);
                            }
                            let trial = b.on_attempt();
                            trials += u32::from(trial);
                            proptest::prop_assert!(trials <= 1, "two half-open trials");
                            out.push(trial);
                        }
                    }
                    2..=4 => {
                        if let Some(trial) = out.pop() {
                            trials -= u32::from(trial);
                            match op {
                                2 => b.on_success(trial),
                                3 => b.on_failure(trial, now, &c, random),
                                _ => b.on_cancel(trial),
                            }
                        }
                    }
                    _ => unreachable!(),
                }
                proptest::prop_assert!(before.can_become(b.state()), "{} -> {}", before, b.state());
                if let Some(at) = b.reopens_at() {
                    proptest::prop_assert!(at <= now + c.backoff.cap());
                }
            }
        }
    }

    #[test]
    fn legal_transitions() {
        use BreakerState::*;
        assert!(Closed.can_become(Open));
        assert!(!Closed.can_become(HalfOpen));
        assert!(!Open.can_become(Closed));
        assert!(HalfOpen.can_become(Closed) && HalfOpen.can_become(Open));
    }
}
