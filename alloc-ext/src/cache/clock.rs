//! The clock of a cache without expiry.

use mechops_core::time::{Instant, MonotonicClock};

/// A monotonic clock that never moves: the clock of a cache without expiry,
/// which then never reads a real one. A cache builder refuses expiry unless
/// a clock was set with `clock`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoppedClock;

impl MonotonicClock for StoppedClock {
    #[inline]
    fn now(&self) -> Instant {
        Instant::ZERO
    }
}
