//! A monotonic instant and the two clock traits.
//!
//! [`Instant`] is a reading of a monotonic clock: nanoseconds since an origin
//! the caller picks (process start, boot, a test's zero), as smoltcp's
//! `Instant` is. It says nothing about the calendar; two instants compare
//! only when they come from the same clock. [`Timestamp`] is the other kind
//! of time, a point on the UTC calendar read from a wall clock that can step.
//!
//! Invariants:
//!
//! - an `Instant` is a `u64` of nanoseconds, so it spans 584 years from its
//!   origin; arithmetic saturates at [`Instant::ZERO`] and [`Instant::MAX`]
//!   instead of wrapping or panicking, because a deadline past the end of
//!   time is simply "never";
//! - the core never reads a clock: code that needs "now" takes an `Instant`
//!   (deadlines, expiry, leases) or a [`Timestamp`] (calendar time), or a
//!   [`MonotonicClock`] / [`WallClock`] the caller owns.

use core::fmt;
use core::ops::{Add, AddAssign, Sub};
use core::time::Duration;

use super::Timestamp;

/// A reading of a monotonic clock, in nanoseconds since the clock's origin.
///
/// ```
/// use core::time::Duration;
/// use mechops_core::time::Instant;
///
/// let start = Instant::from_millis(1_000);
/// let deadline = start + Duration::from_millis(250);
/// assert_eq!(deadline.saturating_duration_since(start), Duration::from_millis(250));
/// assert_eq!(start.checked_duration_since(deadline), None);
/// assert_eq!(Instant::MAX + Duration::from_secs(1), Instant::MAX);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Instant {
    nanos: u64,
}

/// Nanoseconds of a duration, saturating at `u64::MAX` (584 years).
#[inline]
const fn duration_nanos(d: Duration) -> u64 {
    let n = d.as_nanos();
    if n > u64::MAX as u128 {
        u64::MAX
    } else {
        n as u64
    }
}

impl Instant {
    /// The clock's origin.
    pub const ZERO: Self = Self { nanos: 0 };
    /// The last representable instant, 584 years after the origin; used as
    /// "never" for deadlines.
    pub const MAX: Self = Self { nanos: u64::MAX };

    /// The instant `nanos` nanoseconds after the origin.
    #[inline]
    pub const fn from_nanos(nanos: u64) -> Self {
        Self { nanos }
    }

    /// The instant `micros` microseconds after the origin (saturating).
    #[inline]
    pub const fn from_micros(micros: u64) -> Self {
        Self {
            nanos: micros.saturating_mul(1_000),
        }
    }

    /// The instant `millis` milliseconds after the origin (saturating).
    #[inline]
    pub const fn from_millis(millis: u64) -> Self {
        Self {
            nanos: millis.saturating_mul(1_000_000),
        }
    }

    /// The instant `secs` seconds after the origin (saturating).
    #[inline]
    pub const fn from_secs(secs: u64) -> Self {
        Self {
            nanos: secs.saturating_mul(1_000_000_000),
        }
    }

    /// The instant `elapsed` after the origin (saturating).
    #[inline]
    pub const fn from_duration(elapsed: Duration) -> Self {
        Self {
            nanos: duration_nanos(elapsed),
        }
    }

    /// Nanoseconds since the origin.
    #[inline]
    pub const fn as_nanos(self) -> u64 {
        self.nanos
    }

    /// Whole milliseconds since the origin.
    #[inline]
    pub const fn as_millis(self) -> u64 {
        self.nanos / 1_000_000
    }

    /// The time since the origin.
    #[inline]
    pub const fn as_duration(self) -> Duration {
        Duration::from_nanos(self.nanos)
    }

    /// The time from `earlier` to `self`, or `None` when `earlier` is later.
    #[inline]
    pub const fn checked_duration_since(self, earlier: Self) -> Option<Duration> {
        match self.nanos.checked_sub(earlier.nanos) {
            Some(n) => Some(Duration::from_nanos(n)),
            None => None,
        }
    }

    /// The time from `earlier` to `self`, zero when `earlier` is later.
    #[inline]
    pub const fn saturating_duration_since(self, earlier: Self) -> Duration {
        Duration::from_nanos(self.nanos.saturating_sub(earlier.nanos))
    }

    /// `self + d`, or `None` past [`Instant::MAX`].
    #[inline]
    pub const fn checked_add(self, d: Duration) -> Option<Self> {
        let n = d.as_nanos();
        if n > u64::MAX as u128 {
            return None;
        }
        match self.nanos.checked_add(n as u64) {
            Some(nanos) => Some(Self { nanos }),
            None => None,
        }
    }

    /// `self - d`, or `None` before the origin.
    #[inline]
    pub const fn checked_sub(self, d: Duration) -> Option<Self> {
        let n = d.as_nanos();
        if n > u64::MAX as u128 {
            return None;
        }
        match self.nanos.checked_sub(n as u64) {
            Some(nanos) => Some(Self { nanos }),
            None => None,
        }
    }

    /// `self + d`, saturating at [`Instant::MAX`].
    #[inline]
    pub const fn saturating_add(self, d: Duration) -> Self {
        Self {
            nanos: self.nanos.saturating_add(duration_nanos(d)),
        }
    }

    /// `self - d`, saturating at [`Instant::ZERO`].
    #[inline]
    pub const fn saturating_sub(self, d: Duration) -> Self {
        Self {
            nanos: self.nanos.saturating_sub(duration_nanos(d)),
        }
    }
}

impl Add<Duration> for Instant {
    type Output = Self;
    /// Saturates at [`Instant::MAX`].
    #[inline]
    fn add(self, d: Duration) -> Self {
        self.saturating_add(d)
    }
}

impl AddAssign<Duration> for Instant {
    #[inline]
    fn add_assign(&mut self, d: Duration) {
        *self = self.saturating_add(d);
    }
}

impl Sub<Duration> for Instant {
    type Output = Self;
    /// Saturates at [`Instant::ZERO`].
    #[inline]
    fn sub(self, d: Duration) -> Self {
        self.saturating_sub(d)
    }
}

impl Sub for Instant {
    type Output = Duration;
    /// Zero when `rhs` is later.
    #[inline]
    fn sub(self, rhs: Self) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Instant({:?})", Duration::from_nanos(self.nanos))
    }
}

impl fmt::Display for Instant {
    /// The time since the origin, as `Duration`'s `Debug` prints it (`1.5s`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", Duration::from_nanos(self.nanos))
    }
}

/// A source of monotonic time: successive readings never go backwards.
///
/// Deadlines, expiry, leases and backoff run on this clock, never on a
/// [`WallClock`], because a wall clock steps when the operating system
/// corrects it. `mechops-std` supplies one on `std::time::Instant`,
/// `mechops-tokio` one on `tokio::time::Instant` (so a paused tokio runtime
/// drives it); tests use [`ManualClock`].
pub trait MonotonicClock {
    /// The current reading.
    fn now(&self) -> Instant;
}

impl<C: MonotonicClock + ?Sized> MonotonicClock for &C {
    #[inline]
    fn now(&self) -> Instant {
        (**self).now()
    }
}

/// A source of calendar time: the current [`Timestamp`].
///
/// It can step backwards or forwards when the operating system adjusts it;
/// code that needs an order of events enforces it itself (the v7 UUID
/// generator does). `mechops-std` supplies the system clock; tests supply a
/// [`FixedClock`].
pub trait WallClock {
    /// The current instant on the UTC time line.
    fn now(&self) -> Timestamp;
}

impl<C: WallClock + ?Sized> WallClock for &C {
    #[inline]
    fn now(&self) -> Timestamp {
        (**self).now()
    }
}

/// A wall clock that always reads the same instant: for tests and for
/// replaying recorded inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FixedClock(pub Timestamp);

impl WallClock for FixedClock {
    #[inline]
    fn now(&self) -> Timestamp {
        self.0
    }
}

/// A monotonic clock that moves only when told to: the fake clock of
/// deterministic tests. Not `Sync`; share it by reference within a thread.
///
/// ```
/// use core::time::Duration;
/// use mechops_core::time::{Instant, ManualClock, MonotonicClock};
///
/// let clock = ManualClock::new(Instant::ZERO);
/// clock.advance(Duration::from_millis(5));
/// assert_eq!(clock.now(), Instant::from_millis(5));
/// ```
#[derive(Debug, Default)]
pub struct ManualClock {
    now: core::cell::Cell<Instant>,
}

impl ManualClock {
    /// A clock reading `start`.
    #[inline]
    pub const fn new(start: Instant) -> Self {
        Self {
            now: core::cell::Cell::new(start),
        }
    }

    /// Moves the clock forward by `d` (saturating).
    #[inline]
    pub fn advance(&self, d: Duration) {
        self.now.set(self.now.get().saturating_add(d));
    }

    /// Sets the reading to `to` if that is not earlier than the current one:
    /// a monotonic clock never goes back. Returns whether it moved.
    #[inline]
    pub fn set(&self, to: Instant) -> bool {
        let moved = to >= self.now.get();
        if moved {
            self.now.set(to);
        }
        moved
    }
}

impl MonotonicClock for ManualClock {
    #[inline]
    fn now(&self) -> Instant {
        self.now.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_at_both_ends() {
        let t = Instant::from_secs(1);
        assert_eq!(t - Duration::from_secs(2), Instant::ZERO);
        assert_eq!(Instant::MAX + Duration::from_nanos(1), Instant::MAX);
        assert_eq!(t.checked_sub(Duration::from_secs(2)), None);
        assert_eq!(Instant::MAX.checked_add(Duration::from_nanos(1)), None);
        assert_eq!(Instant::ZERO.checked_add(Duration::MAX), None);
        assert_eq!(Instant::from_duration(Duration::MAX), Instant::MAX);
        assert_eq!(Instant::from_millis(u64::MAX), Instant::MAX);
        assert_eq!(Instant::ZERO - t, Duration::ZERO);
        assert_eq!(t - Instant::ZERO, Duration::from_secs(1));
    }

    #[test]
    fn unit_constructors_agree() {
        assert_eq!(Instant::from_secs(2), Instant::from_millis(2_000));
        assert_eq!(Instant::from_millis(2), Instant::from_micros(2_000));
        assert_eq!(Instant::from_micros(2), Instant::from_nanos(2_000));
        assert_eq!(Instant::from_millis(1_500).as_millis(), 1_500);
        assert_eq!(
            Instant::from_millis(1_500).as_duration(),
            Duration::from_millis(1_500)
        );
    }

    #[test]
    fn manual_clock_never_goes_back() {
        let clock = ManualClock::new(Instant::from_secs(10));
        assert!(!clock.set(Instant::from_secs(9)));
        assert_eq!(clock.now(), Instant::from_secs(10));
        assert!(clock.set(Instant::from_secs(11)));
        clock.advance(Duration::from_secs(1));
        assert_eq!(clock.now(), Instant::from_secs(12));
        let by_ref: &dyn MonotonicClock = &clock;
        assert_eq!((&by_ref).now(), Instant::from_secs(12));
    }

    #[test]
    fn fixed_clock_reads_its_instant_also_through_a_reference() {
        let ts = Timestamp::from_unix_millis(1_700_000_000_123).unwrap();
        let clock = FixedClock(ts);
        assert_eq!(clock.now(), ts);
        let by_ref: &dyn WallClock = &clock;
        assert_eq!((&by_ref).now(), ts);
    }
}
