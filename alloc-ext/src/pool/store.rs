//! The pool's state and rules, without any sharing: wrappers add `Rc`/`Arc`
//! and locking around it.
//!
//! Idle objects sit on a LIFO stack so the most recently used (cache-warm)
//! object goes out first and the coldest ones sit at the bottom, where
//! shrinking takes them from. Shrinking uses a low-water mark: the fewest idle
//! objects seen since the last `maintain`. Those objects were not needed during
//! the whole interval, so dropping them (down to the minimum size) cannot have
//! hurt any acquisition in it.

use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use super::config::{CreateFn, PoolConfig, ResetFn};
use super::stats::PoolStats;

/// The state of a growable pool: idle objects, hooks, configuration and
/// statistics. Every operation takes `&mut self`.
pub struct PoolStore<T> {
    idle: Vec<T>,
    create: CreateFn<T>,
    reset: Option<ResetFn<T>>,
    config: PoolConfig,
    stats: PoolStats,
    /// Fewest idle objects since the last maintenance pass.
    low_water: usize,
    /// When the current maintenance interval began.
    interval_start: Option<Duration>,
}

impl<T> fmt::Debug for PoolStore<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolStore")
            .field("config", &self.config)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<T> PoolStore<T> {
    pub(crate) fn from_parts(
        config: PoolConfig,
        mut create: CreateFn<T>,
        reset: Option<ResetFn<T>>,
    ) -> Self {
        let initial = config.initial_size.max(config.min_size);
        let mut idle = Vec::with_capacity(initial);
        idle.extend((0..initial).map(|_| create()));
        let stats = PoolStats {
            created: initial as u64,
            idle: initial as u64,
            ..PoolStats::default()
        };
        Self {
            low_water: idle.len(),
            idle,
            create,
            reset,
            config,
            stats,
            interval_start: None,
        }
    }

    /// Hands out an idle object, or creates some following the growth
    /// strategy, or gives `None` when the pool is at its maximum.
    pub fn take(&mut self) -> Option<T> {
        if let Some(obj) = self.idle.pop() {
            self.low_water = self.low_water.min(self.idle.len());
            self.stats.hits += 1;
            self.handed_out();
            return Some(obj);
        }
        let live = self.live();
        let batch = self.config.growth.batch(live, self.config.max_size);
        if batch == 0 {
            self.stats.exhausted += 1;
            return None;
        }
        // One object is handed out; the rest of the batch goes idle.
        for _ in 1..batch {
            let obj = (self.create)();
            self.idle.push(obj);
        }
        let obj = (self.create)();
        self.stats.created += batch as u64;
        self.stats.misses += 1;
        self.handed_out();
        Some(obj)
    }

    fn handed_out(&mut self) {
        self.stats.acquired += 1;
        self.stats.in_use += 1;
        self.stats.high_water = self.stats.high_water.max(self.stats.in_use);
    }

    /// Takes back an object handed out by [`take`](Self::take), resetting it.
    ///
    /// Handing back more objects than were handed out is a caller bug; the
    /// extra objects are dropped rather than let the pool exceed its maximum.
    pub fn put(&mut self, mut obj: T) {
        if self.stats.in_use == 0 {
            return;
        }
        if let Some(reset) = self.reset.as_mut() {
            reset(&mut obj);
        }
        self.stats.in_use -= 1;
        self.stats.released += 1;
        self.idle.push(obj);
    }

    /// Hands out up to `n` objects at once into `out` (growing as
    /// [`take`](Self::take) would), so a per-thread cache pays for one lock
    /// per batch; returns how many were added.
    pub fn take_batch(&mut self, n: usize, out: &mut Vec<T>) -> usize {
        let mut added = 0;
        while added < n {
            match self.take() {
                Some(obj) => out.push(obj),
                None => break,
            }
            added += 1;
        }
        added
    }

    /// Records that an object handed out will not come back.
    pub fn detach(&mut self) {
        if self.stats.in_use > 0 {
            self.stats.in_use -= 1;
            self.stats.detached += 1;
        }
    }

    /// Shrinks the pool if an idle-timeout interval has passed since the
    /// last shrink, and returns how many idle objects were dropped.
    ///
    /// `now` is any monotonic time from a fixed origin the caller chooses. The
    /// first call only starts the interval. Objects that stayed idle for the
    /// whole interval are dropped, coldest first, but never below the minimum
    /// size. A `now` earlier than the interval start (a clock that went
    /// backwards) restarts the interval without dropping anything.
    pub fn maintain(&mut self, now: Duration) -> usize {
        let Some(timeout) = self.config.idle_timeout else {
            return 0;
        };
        let Some(start) = self.interval_start else {
            self.restart_interval(now);
            return 0;
        };
        let Some(elapsed) = now.checked_sub(start) else {
            self.restart_interval(now);
            return 0;
        };
        if elapsed < timeout {
            return 0;
        }
        let above_min = self.live().saturating_sub(self.config.min_size);
        let drop_count = self.low_water.min(above_min).min(self.idle.len());
        // The bottom of the stack holds the objects unused the longest.
        self.idle.drain(..drop_count);
        self.stats.shrunk += drop_count as u64;
        self.restart_interval(now);
        drop_count
    }

    fn restart_interval(&mut self, now: Duration) {
        self.interval_start = Some(now);
        self.low_water = self.idle.len();
    }

    /// Live objects: idle plus handed out.
    pub fn live(&self) -> usize {
        self.idle.len() + self.stats.in_use as usize
    }

    /// Objects idle in the pool.
    pub fn idle(&self) -> usize {
        self.idle.len()
    }

    /// The validated configuration.
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// A snapshot of the statistics.
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            idle: self.idle.len() as u64,
            ..self.stats
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Growth, PoolBuilder};
    use super::*;
    use alloc::vec;

    fn counter_store(max: usize) -> PoolBuilder<Vec<u8>> {
        PoolBuilder::new(max, || Vec::with_capacity(8)).reset(|v| v.clear())
    }

    #[test]
    fn initial_objects_are_created_up_front() {
        let s = counter_store(8).initial_size(3).build_store().unwrap();
        assert_eq!(s.idle(), 3);
        assert_eq!(s.stats().created, 3);
    }

    #[test]
    fn minimum_raises_the_initial_count() {
        let s = counter_store(8)
            .min_size(4)
            .initial_size(1)
            .build_store()
            .unwrap();
        assert_eq!(s.idle(), 4);
    }

    #[test]
    fn take_prefers_idle_then_grows_then_refuses() {
        let mut s = counter_store(2).initial_size(1).build_store().unwrap();
        let a = s.take().unwrap();
        let b = s.take().unwrap();
        assert!(s.take().is_none());
        let st = s.stats();
        assert_eq!((st.hits, st.misses, st.exhausted, st.created), (1, 1, 1, 2));
        s.put(a);
        s.put(b);
        assert_eq!(s.stats().in_use, 0);
        assert_eq!(s.idle(), 2);
    }

    #[test]
    fn reset_runs_on_put() {
        let mut s = counter_store(1).build_store().unwrap();
        let mut v = s.take().unwrap();
        v.extend_from_slice(b"dirty");
        s.put(v);
        assert!(s.take().unwrap().is_empty());
    }

    #[test]
    fn lifo_order_hands_out_the_last_returned() {
        let mut n = 0u8;
        let mut s = PoolBuilder::new(4, move || {
            n += 1;
            vec![n]
        })
        .build_store()
        .unwrap();
        let a = s.take().unwrap();
        let b = s.take().unwrap();
        s.put(a);
        s.put(b);
        assert_eq!(s.take().unwrap(), vec![2]);
    }

    #[test]
    fn doubling_growth_batches() {
        let mut s = counter_store(10)
            .growth(Growth::Double)
            .build_store()
            .unwrap();
        let a = s.take().unwrap();
        assert_eq!(s.live(), 1);
        let b = s.take().unwrap();
        assert_eq!(s.live(), 2);
        let c = s.take().unwrap();
        assert_eq!(s.live(), 4);
        assert_eq!(s.idle(), 1);
        drop((a, b, c));
    }

    #[test]
    fn extra_puts_are_dropped() {
        let mut s = counter_store(1).build_store().unwrap();
        s.put(Vec::new());
        assert_eq!(s.idle(), 0);
        assert_eq!(s.stats().released, 0);
    }

    #[test]
    fn maintain_drops_objects_idle_for_a_whole_interval() {
        let mut s = counter_store(10)
            .initial_size(6)
            .min_size(2)
            .idle_timeout(Duration::from_secs(10))
            .build_store()
            .unwrap();
        assert_eq!(s.maintain(Duration::from_secs(0)), 0);
        // Use at most two objects at a time during the interval.
        let a = s.take().unwrap();
        let b = s.take().unwrap();
        s.put(a);
        s.put(b);
        assert_eq!(s.maintain(Duration::from_secs(5)), 0, "interval not over");
        // Low water was 4 idle; live 6, min 2: 4 may go.
        assert_eq!(s.maintain(Duration::from_secs(10)), 4);
        assert_eq!(s.live(), 2);
        assert_eq!(s.stats().shrunk, 4);
        // Nothing idle can go below the minimum.
        assert_eq!(s.maintain(Duration::from_secs(30)), 0);
        assert_eq!(s.live(), 2);
    }

    #[test]
    fn maintain_keeps_objects_in_use_and_handles_backwards_time() {
        let mut s = counter_store(4)
            .initial_size(4)
            .idle_timeout(Duration::from_secs(1))
            .build_store()
            .unwrap();
        s.maintain(Duration::from_secs(100));
        let held: Vec<_> = (0..3).map(|_| s.take().unwrap()).collect();
        assert_eq!(s.maintain(Duration::from_secs(50)), 0, "clock went back");
        assert_eq!(s.maintain(Duration::from_secs(52)), 1);
        assert_eq!(s.stats().in_use, 3);
        drop(held);
    }

    #[test]
    fn detach_keeps_the_identity() {
        let mut s = counter_store(2).build_store().unwrap();
        let v = s.take().unwrap();
        s.detach();
        drop(v);
        let st = s.stats();
        assert_eq!(st.created, st.in_use + st.idle + st.shrunk + st.detached);
        assert!(s.take().is_some(), "a detached object frees a slot");
    }
}
