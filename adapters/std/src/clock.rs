//! The operating system's clocks as inputs for the core: every read of an OS
//! clock in mechops-std lives in this module.
//!
//! [`SteadyClock`] reads `std::time::Instant`, which is monotonic: it is the
//! clock of deadlines, expiry, leases and backoff. [`steady_now`] reads it
//! against one process-wide origin.
//!
//! [`CoarseClock`] reads the same monotonic clock at the kernel's tick: on
//! Linux `CLOCK_MONOTONIC_COARSE`, a few nanoseconds where a precise read
//! costs tens to a hundred on a virtual machine, at most one tick (1 to
//! 4 ms, `clock_getres` says which) behind [`SteadyClock`] and never ahead
//! of it. It is for stamps whose decisions are measured in milliseconds or
//! more (idle since, last known alive), taken on hot paths; deadlines and
//! measured durations keep the precise clock. Elsewhere it is the precise
//! clock.
//!
//! [`SystemClock`] reads `std::time::SystemTime`, which is wall-clock time:
//! it can step backwards when the operating system adjusts it. Code that needs
//! monotonic behaviour (the v7 UUID generator, for one) enforces it itself.
//! A reading outside the core's `0001..=9999` range, possible only on a badly
//! set clock, saturates at [`Timestamp::MIN`] or [`Timestamp::MAX`] rather
//! than failing, because "now" has no caller input to blame.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use mechops_core::time::{Instant, MonotonicClock, Timestamp, WallClock};

/// A monotonic clock on `std::time::Instant`, reading the time since its
/// origin; copies share the origin.
#[derive(Clone, Copy, Debug)]
pub struct SteadyClock {
    origin: std::time::Instant,
}

impl SteadyClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Self {
            origin: std::time::Instant::now(),
        }
    }

    /// A clock whose origin is `origin`.
    pub const fn with_origin(origin: std::time::Instant) -> Self {
        Self { origin }
    }

    /// The clock whose origin is the process-wide one [`steady_now`] uses,
    /// so its readings compare with every other clock made this way.
    pub fn process() -> Self {
        Self {
            origin: *process_origin(),
        }
    }

    /// The core instant of a `std::time::Instant` on this clock; instants
    /// before the origin read as [`Instant::ZERO`].
    pub fn instant_of(&self, at: std::time::Instant) -> Instant {
        Instant::from_duration(at.saturating_duration_since(self.origin))
    }

    /// The `std::time::Instant` of a core instant on this clock.
    pub fn std_instant(&self, at: Instant) -> std::time::Instant {
        self.origin
            .checked_add(at.as_duration())
            .unwrap_or_else(|| self.origin + core::time::Duration::from_secs(86_400 * 365 * 100))
    }
}

impl Default for SteadyClock {
    fn default() -> Self {
        Self::new()
    }
}

impl MonotonicClock for SteadyClock {
    #[inline]
    fn now(&self) -> Instant {
        Instant::from_duration(self.origin.elapsed())
    }
}

/// The monotonic clock at the kernel's tick (see the [module docs](self)),
/// reading the time since an origin shared with a [`SteadyClock`]: its
/// readings compare with that clock's, at most one tick behind.
#[derive(Clone, Copy, Debug)]
pub struct CoarseClock {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    /// The origin as nanoseconds of `CLOCK_MONOTONIC` (the clock behind
    /// `std::time::Instant` there), so a reading is one subtraction.
    origin_nanos: u64,
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    steady: SteadyClock,
}

impl CoarseClock {
    /// A coarse clock counting from `origin`, the origin of a
    /// [`SteadyClock`] (or of any clock on `std::time::Instant`).
    pub fn with_origin(origin: std::time::Instant) -> Self {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            // `at` was read just before `mono`, so the origin lands at or a
            // little before its true place: readings never run ahead.
            let (at, mono) = *monotonic_anchor();
            let origin_nanos = if origin <= at {
                mono.saturating_sub(duration_nanos(at - origin))
            } else {
                mono.saturating_add(duration_nanos(origin - at))
            };
            Self { origin_nanos }
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            Self {
                steady: SteadyClock::with_origin(origin),
            }
        }
    }

    /// The coarse clock of `steady`'s origin.
    pub fn of(steady: &SteadyClock) -> Self {
        Self::with_origin(steady.origin)
    }
}

impl MonotonicClock for CoarseClock {
    #[inline]
    fn now(&self) -> Instant {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            match read_nanos(libc::CLOCK_MONOTONIC_COARSE) {
                Some(nanos) => Instant::from_nanos(nanos.saturating_sub(self.origin_nanos)),
                None => Instant::from_nanos(
                    read_nanos(libc::CLOCK_MONOTONIC)
                        .unwrap_or(0)
                        .saturating_sub(self.origin_nanos),
                ),
            }
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            self.steady.now()
        }
    }
}

/// One `std::time::Instant` and the `CLOCK_MONOTONIC` nanoseconds read just
/// after it: `Instant` on Linux is that clock, so the pair places raw
/// readings of the same clock (at any resolution) among instants.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn monotonic_anchor() -> &'static (std::time::Instant, u64) {
    static ANCHOR: OnceLock<(std::time::Instant, u64)> = OnceLock::new();
    ANCHOR.get_or_init(|| {
        let at = std::time::Instant::now();
        let mono = read_nanos(libc::CLOCK_MONOTONIC).unwrap_or(0);
        (at, mono)
    })
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn duration_nanos(d: core::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Nanoseconds of `clock`, or `None` if the system cannot read it.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[inline]
fn read_nanos(clock: libc::clockid_t) -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec`; an unknown clock id makes
    // the call return -1 without writing.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    if rc != 0 {
        return None;
    }
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u64::try_from(ts.tv_nsec).ok()?;
    Some(secs.wrapping_mul(1_000_000_000).wrapping_add(nanos))
}

fn process_origin() -> &'static std::time::Instant {
    static ORIGIN: OnceLock<std::time::Instant> = OnceLock::new();
    ORIGIN.get_or_init(std::time::Instant::now)
}

/// The monotonic time since a process-wide origin (the first call).
#[inline]
pub fn steady_now() -> Instant {
    SteadyClock::process().now()
}

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SystemClock;

impl SystemClock {
    /// A system clock (it has no state).
    #[inline]
    pub const fn new() -> Self {
        Self
    }
}

impl WallClock for SystemClock {
    #[inline]
    fn now(&self) -> Timestamp {
        from_system_time(SystemTime::now())
    }
}

/// Converts a [`SystemTime`] to a [`Timestamp`], saturating at the ends of
/// the supported range.
pub fn from_system_time(time: SystemTime) -> Timestamp {
    let result = match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs())
            .ok()
            .map(|secs| Timestamp::from_unix(secs, after.subsec_nanos())),
        Err(before) => {
            let before = before.duration();
            let nanos = before.subsec_nanos();
            i64::try_from(before.as_secs()).ok().map(|secs| {
                // Borrow one second when there is a fraction, so the
                // nanosecond field stays non-negative.
                if nanos == 0 {
                    Timestamp::from_unix(-secs, 0)
                } else {
                    Timestamp::from_unix(-secs - 1, 1_000_000_000 - nanos)
                }
            })
        }
    };
    match result {
        Some(Ok(ts)) => ts,
        _ if time < UNIX_EPOCH => Timestamp::MIN,
        _ => Timestamp::MAX,
    }
}

/// The current system time; shorthand for `SystemClock.now()`.
#[inline]
pub fn now() -> Timestamp {
    SystemClock.now()
}

/// The system clock as Unix milliseconds; a clock before 1970 reads as 0 and
/// the v7 generator then keeps its order.
#[must_use]
#[inline]
pub fn unix_millis_now() -> u64 {
    #[cfg(unix)]
    {
        // `clock_gettime(CLOCK_REALTIME)` is what `SystemTime::now` calls;
        // reading it directly skips the `Duration` detour, which is a
        // noticeable share of a v7 UUID.
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable `timespec`; CLOCK_REALTIME
        // always exists, so the call only writes `ts` and returns 0.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
        if rc == 0 {
            #[allow(
                clippy::useless_conversion,
                reason = "time_t and c_long are 32-bit on some targets"
            )]
            let (secs, nanos) = (i64::from(ts.tv_sec), i64::from(ts.tv_nsec));
            return millis_from_parts(secs, nanos);
        }
    }
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| {
        d.as_secs()
            .saturating_mul(1000)
            .saturating_add(u64::from(d.subsec_millis()))
    })
}

/// Unix milliseconds from seconds and nanoseconds; times before 1970 read
/// as 0, a clock 584 million years out saturates (the v7 generator clamps
/// both anyway).
#[inline]
fn millis_from_parts(secs: i64, nanos: i64) -> u64 {
    match u64::try_from(secs) {
        Ok(secs) => secs
            .saturating_mul(1000)
            .saturating_add(u64::try_from(nanos / 1_000_000).unwrap_or(0)),
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;

    #[test]
    fn converts_times_on_both_sides_of_the_epoch() {
        let after = UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        let ts = from_system_time(after);
        assert_eq!((ts.unix_secs(), ts.subsec_nanos()), (1_700_000_000, 5));
        let before = UNIX_EPOCH - Duration::new(1, 250_000_000);
        let ts = from_system_time(before);
        assert_eq!((ts.unix_secs(), ts.subsec_nanos()), (-2, 750_000_000));
        let whole = UNIX_EPOCH - Duration::from_secs(86_400);
        assert_eq!(from_system_time(whole).unix_secs(), -86_400);
    }

    #[test]
    fn saturates_outside_the_supported_range() {
        let far = UNIX_EPOCH + Duration::from_secs(400_000_000_000);
        assert_eq!(from_system_time(far), Timestamp::MAX);
        let past = UNIX_EPOCH - Duration::from_secs(100_000_000_000);
        assert_eq!(from_system_time(past), Timestamp::MIN);
    }

    #[test]
    fn system_clock_reads_a_plausible_present() {
        let ts = SystemClock.now();
        // Later than 2020-01-01 and earlier than the end of the range.
        assert!(ts.unix_secs() > 1_577_836_800);
        assert!(ts < Timestamp::MAX);
    }

    #[test]
    fn millis_from_clock_parts() {
        assert_eq!(
            millis_from_parts(1_645_557_742, 999_999_999),
            1_645_557_742_999
        );
        assert_eq!(millis_from_parts(0, 0), 0);
        assert_eq!(millis_from_parts(-1, 999_000_000), 0);
        assert_eq!(millis_from_parts(i64::MAX, 0), u64::MAX);
        let direct = unix_millis_now();
        let via_std = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        assert!(via_std.abs_diff(direct) < 1_000);
    }

    #[test]
    fn coarse_readings_trail_the_precise_clock_by_at_most_a_tick() {
        let steady = SteadyClock::new();
        let coarse = CoarseClock::of(&steady);
        let mut last = coarse.now();
        for _ in 0..1_000 {
            let before = steady.now();
            let reading = coarse.now();
            let after = steady.now();
            // Never ahead of the precise clock; behind by at most a tick
            // (4 ms at the coarsest kernel setting; 50 ms leaves room for a
            // thread preempted between the reads). Never backwards.
            assert!(reading <= after, "{reading} > {after}");
            assert!(before.saturating_duration_since(reading) < Duration::from_millis(50));
            assert!(reading >= last, "{reading} < {last}");
            last = reading;
        }
        // An origin later than every reading so far reads as zero, not a
        // wrapped value.
        let later = CoarseClock::with_origin(std::time::Instant::now() + Duration::from_secs(60));
        assert_eq!(later.now(), Instant::ZERO);
    }

    #[test]
    fn steady_clocks_share_the_process_origin() {
        let a = steady_now();
        let b = SteadyClock::process().now();
        assert!(b >= a);
        let clock = SteadyClock::new();
        let at = std::time::Instant::now();
        let instant = clock.instant_of(at);
        assert_eq!(clock.std_instant(instant), at);
        assert!(clock.instant_of(at - core::time::Duration::from_secs(1)) <= instant);
    }
}
