//! When to write a running job's progress to its store.
//!
//! A handler may report progress far more often than a store should write
//! it. [`ProgressThrottle`] lets at most one write through per interval and
//! never loses the last value: a report that arrives too soon is held as
//! pending, and [`ProgressThrottle::poll_timeout`] says when it may be
//! written.
//!
//! # Calling order
//!
//! On each report call [`ProgressThrottle::handle_report`]; write the
//! progress when it returns `true`. When it returns `false`, wake at
//! [`ProgressThrottle::poll_timeout`] and call
//! [`ProgressThrottle::poll_write`], writing the latest progress when that
//! returns `true`. A newer report before then replaces the pending one, so
//! only the latest value is written.
//!
//! # Invariants
//!
//! - Two writes are at least the interval apart, unless the clock stepped
//!   backwards between them (then the next report is written at once, so a
//!   clock step cannot silence progress for the length of the step).
//! - After the last report, the value is written no later than one interval
//!   after the previous write: a pending report always has a deadline.
//!
//! ```
//! use core::time::Duration;
//! use mechops_alloc::job::ProgressThrottle;
//! use mechops_core::time::Timestamp;
//!
//! let at = |ms| Timestamp::from_unix_millis(ms).unwrap();
//! let mut throttle = ProgressThrottle::new(Duration::from_millis(250));
//! assert!(throttle.handle_report(at(0))); // the first report is written
//! assert!(!throttle.handle_report(at(10))); // too soon: held
//! assert!(!throttle.handle_report(at(20))); // replaces the held one
//! assert_eq!(throttle.poll_timeout(), Some(at(250)));
//! assert!(!throttle.poll_write(at(249)));
//! assert!(throttle.poll_write(at(250))); // the report of 20 ms is written
//! assert_eq!(throttle.poll_timeout(), None);
//! ```

use core::time::Duration;

use mechops_core::time::Timestamp;

/// Lets through at most one progress write per interval, keeping the last
/// value. See the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProgressThrottle {
    interval: Duration,
    last_write: Option<Timestamp>,
    pending: bool,
}

impl ProgressThrottle {
    /// The interval [`Lifecycle`](super::Lifecycle) uses unless told
    /// otherwise: four writes a second.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(250);

    /// A throttle writing at most once per `interval` (zero writes every
    /// report).
    pub const fn new(interval: Duration) -> Self {
        Self {
            interval,
            last_write: None,
            pending: false,
        }
    }

    /// The least time between two writes.
    pub const fn interval(&self) -> Duration {
        self.interval
    }

    /// Whether a report is waiting to be written.
    pub const fn is_pending(&self) -> bool {
        self.pending
    }

    /// A new report arrived at `now`: `true` when it must be written now,
    /// `false` when it is held until [`Self::poll_timeout`].
    pub fn handle_report(&mut self, now: Timestamp) -> bool {
        if self.due(now) {
            self.last_write = Some(now);
            self.pending = false;
            true
        } else {
            self.pending = true;
            false
        }
    }

    /// Whether the held report must be written at `now`; `true` also marks
    /// it written.
    pub fn poll_write(&mut self, now: Timestamp) -> bool {
        if self.pending && self.due(now) {
            self.last_write = Some(now);
            self.pending = false;
            true
        } else {
            false
        }
    }

    /// When the held report may be written, or `None` if nothing is held.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        match (self.pending, self.last_write) {
            (true, Some(last)) => Some(super::after(last, self.interval)),
            _ => None,
        }
    }

    /// Forgets the held report and the last write, for a new attempt. A
    /// caller that writes the job's whole record (at completion, failure,
    /// release) calls this too, since that write carries the latest
    /// progress.
    pub fn reset(&mut self) {
        self.last_write = None;
        self.pending = false;
    }

    fn due(&self, now: Timestamp) -> bool {
        match self.last_write {
            None => true,
            Some(last) => now < last || now >= super::after(last, self.interval),
        }
    }
}

impl Default for ProgressThrottle {
    fn default() -> Self {
        Self::new(Self::DEFAULT_INTERVAL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_unix_millis(ms).unwrap()
    }

    #[test]
    fn writes_at_most_once_per_interval_and_always_the_last_value() {
        let mut t = ProgressThrottle::new(Duration::from_millis(100));
        let mut writes = std::vec::Vec::new();
        // A report every 7 ms for one second, polling whenever a write is due.
        for ms in (0..1000).step_by(7) {
            if let Some(due) = t.poll_timeout() {
                if due <= at(ms) {
                    assert!(t.poll_write(due));
                    writes.push(due);
                }
            }
            if t.handle_report(at(ms)) {
                writes.push(at(ms));
            }
        }
        let last = t.poll_timeout().expect("the last report is held");
        assert!(t.poll_write(last));
        writes.push(last);
        for pair in writes.windows(2) {
            assert!(super::super::elapsed(pair[1], pair[0]) >= Duration::from_millis(100));
        }
        assert!(writes.len() <= 11, "{} writes", writes.len());
        assert!(!t.is_pending());
    }

    proptest::proptest! {
        /// Any report pattern, polled at every deadline: writes are at least
        /// an interval apart, and the last report is written at most one
        /// interval after the write before it.
        #[test]
        fn writes_are_spaced_and_the_last_report_is_never_lost(
            interval_ms in 0u64..500,
            gaps in proptest::collection::vec(0i64..400, 1..60),
        ) {
            let interval = Duration::from_millis(interval_ms);
            let mut t = ProgressThrottle::new(interval);
            let mut writes = std::vec::Vec::new();
            let mut now = 0;
            for gap in gaps {
                now += gap;
                while let Some(due) = t.poll_timeout().filter(|&d| d <= at(now)) {
                    proptest::prop_assert!(t.poll_write(due));
                    writes.push(due);
                }
                if t.handle_report(at(now)) {
                    writes.push(at(now));
                }
            }
            let last_report = at(now);
            if let Some(due) = t.poll_timeout() {
                proptest::prop_assert!(t.poll_write(due));
                let previous = *writes.last().unwrap();
                proptest::prop_assert!(due <= super::super::after(previous, interval));
                proptest::prop_assert!(due >= last_report);
                writes.push(due);
            } else {
                proptest::prop_assert_eq!(writes.last(), Some(&last_report));
            }
            for pair in writes.windows(2) {
                proptest::prop_assert!(super::super::elapsed(pair[1], pair[0]) >= interval);
            }
            proptest::prop_assert!(!t.is_pending());
        }
    }

    #[test]
    fn a_clock_stepping_back_does_not_silence_progress() {
        let mut t = ProgressThrottle::new(Duration::from_secs(1));
        assert!(t.handle_report(at(10_000)));
        assert!(t.handle_report(at(5_000)));
    }

    #[test]
    fn zero_interval_writes_every_report_and_reset_forgets() {
        let mut t = ProgressThrottle::new(Duration::ZERO);
        assert!(t.handle_report(at(1)));
        assert!(t.handle_report(at(1)));
        let mut t = ProgressThrottle::default();
        assert!(t.handle_report(at(0)));
        assert!(!t.handle_report(at(1)));
        t.reset();
        assert_eq!(t.poll_timeout(), None);
        assert!(t.handle_report(at(2)));
    }
}
