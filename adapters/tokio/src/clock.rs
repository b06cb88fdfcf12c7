//! The monotonic clock of tokio code: [`TokioClock`] reads
//! `tokio::time::Instant`, so a paused runtime drives it.
//!
//! Under `tokio::time::pause()` (or `#[tokio::test(start_paused = true)]`)
//! tokio's clock stands still until `tokio::time::advance` moves it or the
//! runtime, idle, jumps it to the next timer. A `TokioClock` reads that
//! virtual time, so TTLs, backoff and leases computed by the core in
//! [`Instant`]s run in tests without waiting and without a wall-time
//! assertion. Outside a paused runtime tokio's clock is `std::time::Instant`,
//! the clock `mechops_std::clock::SteadyClock` reads.
//!
//! Invariants:
//!
//! - readings are the core's [`Instant`]: nanoseconds since the clock's
//!   origin; a `tokio::time::Instant` before the origin reads as
//!   [`Instant::ZERO`];
//! - conversions go both ways through the same origin, so a deadline the
//!   core computes from `now()` is slept on at exactly that tokio instant;
//!   [`Instant::MAX`] ("never") maps to a tokio instant centuries away;
//! - copies of a clock share its origin, and so do clocks made with
//!   [`TokioClock::process`] (with each other and with
//!   `mechops_std::clock::steady_now`).

use core::future::IntoFuture;

use mechops_core::time::{Instant, MonotonicClock};
use mechops_std::clock::SteadyClock;
use tokio::time::{Sleep, Timeout};

/// A monotonic clock on `tokio::time::Instant`, reading the time since its
/// origin.
///
/// ```
/// use core::time::Duration;
/// use mechops_core::time::{Instant, MonotonicClock};
/// use mechops_tokio::clock::TokioClock;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let clock = TokioClock::new();
/// let deadline = clock.now() + Duration::from_millis(20);
/// clock.sleep_until(deadline).await;
/// assert!(clock.now() >= deadline);
/// # }
/// ```
#[derive(Clone, Copy, Debug)]
pub struct TokioClock {
    /// Holds the origin (as a `std::time::Instant`, which tokio's converts
    /// to and from exactly) and does the arithmetic of both conversions.
    steady: SteadyClock,
}

impl TokioClock {
    /// A clock whose origin is tokio's now: under a paused runtime, the
    /// virtual now.
    pub fn new() -> Self {
        Self::with_origin(tokio::time::Instant::now())
    }

    /// A clock whose origin is `origin`.
    pub fn with_origin(origin: tokio::time::Instant) -> Self {
        Self {
            steady: SteadyClock::with_origin(origin.into_std()),
        }
    }

    /// The clock whose origin is `mechops-std`'s process-wide one, so its
    /// instants compare with those of `mechops_std::clock::steady_now` and
    /// `SteadyClock::process` (while tokio's time is not paused).
    pub fn process() -> Self {
        Self {
            steady: SteadyClock::process(),
        }
    }

    /// The tokio instant this clock counts from.
    pub fn origin(&self) -> tokio::time::Instant {
        self.tokio_instant(Instant::ZERO)
    }

    /// The core instant of a tokio instant on this clock; instants before
    /// the origin read as [`Instant::ZERO`].
    pub fn instant_of(&self, at: tokio::time::Instant) -> Instant {
        self.steady.instant_of(at.into_std())
    }

    /// The tokio instant of a core instant on this clock.
    pub fn tokio_instant(&self, at: Instant) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.steady.std_instant(at))
    }

    /// A timer that fires at `deadline` on this clock (at once if it has
    /// passed): `tokio::time::sleep_until` of a core instant.
    ///
    /// Cancellation: dropping the returned future cancels the timer and
    /// nothing else. The timer can be moved with `Sleep::reset` and
    /// [`Self::tokio_instant`] when the core's deadline changes.
    pub fn sleep_until(&self, deadline: Instant) -> Sleep {
        tokio::time::sleep_until(self.tokio_instant(deadline))
    }

    /// Runs `future` until `deadline` on this clock:
    /// `tokio::time::timeout_at` of a core instant.
    ///
    /// Cancellation: the timeout, like dropping the returned future, drops
    /// `future` at whichever `.await` it had reached; what that leaves
    /// behind is `future`'s own contract.
    pub fn timeout_at<F: IntoFuture>(
        &self,
        deadline: Instant,
        future: F,
    ) -> Timeout<F::IntoFuture> {
        tokio::time::timeout_at(self.tokio_instant(deadline), future)
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl MonotonicClock for TokioClock {
    #[inline]
    fn now(&self) -> Instant {
        self.instant_of(tokio::time::Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use core::time::Duration;

    use mechops_std::clock::steady_now;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn advancing_tokio_time_moves_the_clock_exactly() {
        let clock = TokioClock::new();
        assert_eq!(clock.now(), Instant::ZERO);
        tokio::time::advance(Duration::from_millis(250)).await;
        assert_eq!(clock.now(), Instant::from_millis(250));
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert_eq!(
            clock.now(),
            Instant::from_millis(250) + Duration::from_secs(3600)
        );
        // A copy shares the origin; a later clock starts its own count.
        let copy = clock;
        assert_eq!(copy.now(), clock.now());
        assert_eq!(TokioClock::new().now(), Instant::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_core_deadline_fires_at_its_virtual_time() {
        let clock = TokioClock::new();
        let ttl = Duration::from_secs(30);
        let deadline = clock.now() + ttl;
        let sleep = clock.sleep_until(deadline);
        tokio::pin!(sleep);

        // Just before the deadline the timer has not fired.
        tokio::time::advance(ttl - Duration::from_millis(1)).await;
        assert!(
            tokio::time::timeout(Duration::ZERO, &mut sleep)
                .await
                .is_err()
        );
        assert!(clock.now() < deadline);

        // The idle runtime jumps to the timer; tokio's timer wheel has a
        // resolution of one millisecond, so it fires within one of the
        // deadline and never before.
        sleep.await;
        let fired = clock.now();
        assert!(fired >= deadline, "{fired} < {deadline}");
        assert!(fired < deadline + Duration::from_millis(1), "{fired}");
    }

    #[tokio::test(start_paused = true)]
    async fn timeout_at_a_core_instant_cuts_a_slow_future() {
        let clock = TokioClock::new();
        let deadline = Instant::from_secs(5);
        let slow = tokio::time::sleep(Duration::from_secs(60));
        assert!(clock.timeout_at(deadline, slow).await.is_err());
        let now = clock.now();
        assert!(now >= deadline && now < deadline + Duration::from_millis(1));
        let quick = tokio::time::sleep(Duration::from_secs(1));
        assert!(
            clock
                .timeout_at(now + Duration::from_secs(2), quick)
                .await
                .is_ok()
        );
        assert!(clock.now() < now + Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn conversions_round_trip_and_saturate() {
        let clock = TokioClock::new();
        let origin = clock.origin();
        for at in [
            Instant::ZERO,
            Instant::from_nanos(1),
            Instant::from_secs(86_400),
        ] {
            assert_eq!(clock.instant_of(clock.tokio_instant(at)), at);
        }
        assert_eq!(
            clock.tokio_instant(Instant::from_millis(7)),
            origin + Duration::from_millis(7)
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        let later = TokioClock::new();
        assert_eq!(later.instant_of(origin), Instant::ZERO);
        // "Never" is far in the future, not an overflow.
        assert!(
            clock.tokio_instant(Instant::MAX) > origin + Duration::from_secs(86_400 * 365 * 99)
        );
    }

    #[test]
    fn process_clocks_share_mechops_std_origin() {
        let a = TokioClock::process();
        let b = TokioClock::process();
        assert_eq!(a.origin(), b.origin());
        assert_eq!(
            a.origin().into_std(),
            SteadyClock::process().std_instant(Instant::ZERO)
        );
        // Unpaused, tokio's now is std's now: readings interleave in order.
        let before = steady_now();
        let reading = a.now();
        let after = steady_now();
        assert!(before <= reading && reading <= after);
    }
}
