//! The system clock as an input for the core.
//!
//! [`SystemClock`] reads `std::time::SystemTime`, which is wall-clock time:
//! it can step backwards when the operating system adjusts it. Code that needs
//! monotonic behaviour (the v7 UUID generator, for one) enforces it itself.
//! A reading outside the core's `0001..=9999` range, possible only on a badly
//! set clock, saturates at [`Timestamp::MIN`] or [`Timestamp::MAX`] rather
//! than failing, because "now" has no caller input to blame.

use std::time::{SystemTime, UNIX_EPOCH};

use mechops_core::time::{Clock, Timestamp};

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

impl Clock for SystemClock {
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
}
