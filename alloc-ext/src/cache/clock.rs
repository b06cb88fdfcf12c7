//! The monotonic time input of the cache.

use core::time::Duration;

/// A monotonic time source: successive calls never go backwards, measured
/// from an origin the implementation chooses.
///
/// Closures `Fn() -> Duration` are clocks, so a test can drive time from a
/// `Cell` and an adapter from `std::time::Instant`.
pub trait Clock {
    /// Whether this clock advances. [`NoClock`] does not, and a cache refuses
    /// to be built with expiry on a clock that does not advance.
    const ADVANCES: bool = true;

    /// The current time since this clock's origin.
    fn now(&self) -> Duration;
}

/// The clock of a cache without expiry: always zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoClock;

impl Clock for NoClock {
    const ADVANCES: bool = false;

    #[inline]
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl<F: Fn() -> Duration> Clock for F {
    #[inline]
    fn now(&self) -> Duration {
        self()
    }
}

/// Nanoseconds since the clock's origin, saturating after 584 years.
#[inline]
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
