//! The pool's state and rules as a state machine that performs no side
//! effect: it never creates, closes or drops a pooled object on its own
//! initiative. It says what to do, and the caller does it (synchronously,
//! or across `.await`s, fallibly) and reports back.
//!
//! The calling order is on [`PoolStore`].
//!
//! # Invariants
//!
//! - `idle + in_use + opening <= max_size` at all times, where `opening`
//!   counts permits handed out and not yet reported;
//! - idle objects sit on a LIFO stack: the most recently used (cache-warm)
//!   one goes out first and the coldest ones sit at the bottom, where
//!   eviction takes them from;
//! - eviction uses a low-water mark: the fewest idle objects seen during an
//!   idle-timeout interval. Those were not needed during the whole interval,
//!   so evicting them (down to the minimum size) cannot have hurt any
//!   checkout in it;
//! - the statistics add up: `created = in_use + idle + shrunk + detached +
//!   discarded` and `acquired = hits + misses`;
//! - a permit from another store is refused with an error and changes
//!   nothing. Objects carry no tag: handing one store another's object is a
//!   caller bug the store cannot see (it only refuses more returns than
//!   checkouts).

use alloc::vec::Vec;
use core::fmt;

use mechops_core::time::Instant;

use super::config::{ConfigError, PoolConfig, ResetFn};
use super::id::PoolId;
use super::stats::PoolStats;

/// What [`PoolStore::checkout`] asks the caller to do.
#[must_use = "a Create permit must be reported back"]
#[derive(Debug)]
pub enum Checkout<T> {
    /// An idle object, now handed out.
    Idle(T),
    /// No idle object: create one and report it with
    /// [`PoolStore::handle_created`] or [`PoolStore::handle_create_failed`].
    Create(CreatePermit),
    /// The pool is at its maximum and nothing is idle.
    Exhausted,
}

/// The right to create one object in a reserved slot of a [`PoolStore`].
///
/// Neither `Clone` nor `Copy`: each permit is reported back exactly once.
/// See [`PoolStore`] for what happens to one that is lost.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a permit not reported back keeps its slot reserved"]
pub struct CreatePermit {
    pool: PoolId,
    /// Whether the object is for a checkout (handed out) or for stock (idle).
    checkout: bool,
}

impl CreatePermit {
    /// Whether the created object will be handed out (a checkout's permit)
    /// rather than go idle (a permit from [`PoolStore::poll_create`]).
    pub fn is_checkout(&self) -> bool {
        self.checkout
    }
}

/// A permit reported to a store that did not issue it. The store is
/// unchanged; the value (if one came with it) is handed back.
#[derive(Debug, PartialEq, Eq)]
pub struct ForeignPermit<T> {
    /// The object reported with the permit, if any.
    pub value: Option<T>,
}

impl<T> fmt::Display for ForeignPermit<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the create permit was issued by another pool")
    }
}

impl<T: fmt::Debug> core::error::Error for ForeignPermit<T> {}

/// The state of a growable pool; every operation takes `&mut self`.
///
/// # Calling order
///
/// - To hand an object out, call [`PoolStore::checkout`]. It answers
///   [`Checkout::Idle`] with an object, [`Checkout::Exhausted`] at the
///   maximum, or [`Checkout::Create`] with a [`CreatePermit`]: the slot is
///   reserved (counted as *opening*), and the caller creates the object and
///   reports back with [`PoolStore::handle_created`] (which hands it out) or
///   [`PoolStore::handle_create_failed`].
/// - After a checkout, and after building, drain [`PoolStore::poll_create`]:
///   it hands out permits for objects the pool wants idle (the initial size,
///   the rest of a growth batch, refilling the minimum); report each the
///   same way, and the created object goes idle.
/// - Give an object back with [`PoolStore::handle_returned`] (reset, then
///   idle), or, if it turned out broken, drop it and call
///   [`PoolStore::handle_discarded`] so its slot frees; an object kept for
///   good is reported with [`PoolStore::handle_detached`].
/// - With an idle timeout, call [`PoolStore::poll_evicted`]`(now)` until it
///   returns `None` and drop or close what it returns; then come back at
///   [`PoolStore::poll_timeout`].
///
/// **Every permit must come back** through `handle_created` or
/// `handle_create_failed`, exactly once. A permit is a plain token (it
/// borrows nothing, so it can cross an `.await` or a thread): the store
/// cannot see one being dropped, and a lost permit keeps its slot opening for
/// the pool's whole life. Code that may lose one (a future that can be
/// cancelled, a create hook that can panic) holds it in a guard that reports
/// `handle_create_failed` on drop, as [`PoolStore::checkout_with`] does.
///
///
/// ```
/// use mechops_alloc::pool::{Checkout, PoolConfig, PoolStore};
///
/// let mut store: PoolStore<Vec<u8>> = PoolStore::new(PoolConfig::new(2), None).unwrap();
/// let conn = match store.checkout() {
///     Checkout::Idle(conn) => conn,
///     // Open the connection here (perhaps across an `.await`); on failure
///     // report `store.handle_create_failed(permit)` instead.
///     Checkout::Create(permit) => store.handle_created(permit, Vec::new()).unwrap().unwrap(),
///     Checkout::Exhausted => return,
/// };
/// assert_eq!((store.stats().in_use, store.idle()), (1, 0));
/// store.handle_returned(conn);
/// assert!(matches!(store.checkout(), Checkout::Idle(_)));
/// ```
pub struct PoolStore<T> {
    idle: Vec<T>,
    /// Objects evicted and not yet handed to the caller by `poll_evicted`.
    evicted: Vec<T>,
    reset: Option<ResetFn<T>>,
    config: PoolConfig,
    stats: PoolStats,
    id: PoolId,
    /// Permits handed out and not yet reported.
    opening: usize,
    /// Objects wanted idle, not yet handed out as permits by `poll_create`.
    stock_wanted: usize,
    /// Fewest idle objects since the current interval began.
    low_water: usize,
    /// When the current idle-timeout interval began.
    interval_start: Option<Instant>,
}

impl<T> fmt::Debug for PoolStore<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolStore")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .field("opening", &self.opening)
            .finish_non_exhaustive()
    }
}

/// Reports a permit as failed unless disarmed: a create hook that panics
/// frees its slot on the way out.
struct PermitGuard<'a, T> {
    store: &'a mut PoolStore<T>,
    permit: Option<CreatePermit>,
}

impl<T> Drop for PermitGuard<'_, T> {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            // Issued by this store, so it cannot be foreign.
            let _ = self.store.handle_create_failed(permit);
        }
    }
}

impl<T> PoolStore<T> {
    /// An empty store for a validated configuration; `reset` runs on every
    /// object handed back. The initial objects are asked for through
    /// [`poll_create`](Self::poll_create).
    pub fn new(config: PoolConfig, reset: Option<ResetFn<T>>) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            idle: Vec::with_capacity(config.initial_size.max(config.min_size)),
            evicted: Vec::new(),
            reset,
            stats: PoolStats::default(),
            id: PoolId::fresh(),
            opening: 0,
            stock_wanted: config.initial_size.max(config.min_size),
            low_water: 0,
            interval_start: None,
            config,
        })
    }

    /// Hands out an idle object, or a permit to create one, or says the
    /// pool is exhausted. A miss also asks for the rest of the growth batch
    /// through [`poll_create`](Self::poll_create).
    #[inline]
    pub fn checkout(&mut self) -> Checkout<T> {
        match self.take_idle() {
            Some(obj) => Checkout::Idle(obj),
            None => self.checkout_miss(),
        }
    }

    #[inline]
    fn take_idle(&mut self) -> Option<T> {
        let obj = self.idle.pop()?;
        self.low_water = self.low_water.min(self.idle.len());
        self.stats.hits += 1;
        self.handed_out();
        Some(obj)
    }

    #[cold]
    fn checkout_miss(&mut self) -> Checkout<T> {
        let batch = self.config.growth.batch(self.live(), self.config.max_size);
        if batch == 0 {
            self.stats.exhausted += 1;
            return Checkout::Exhausted;
        }
        self.opening += 1;
        self.stock_wanted += batch - 1;
        Checkout::Create(CreatePermit {
            pool: self.id,
            checkout: true,
        })
    }

    /// A permit for an object the pool wants idle, if there is room for it.
    pub fn poll_create(&mut self) -> Option<CreatePermit> {
        if self.stock_wanted == 0 {
            return None;
        }
        if self.live() >= self.config.max_size {
            self.stock_wanted = 0;
            return None;
        }
        self.stock_wanted -= 1;
        self.opening += 1;
        Some(CreatePermit {
            pool: self.id,
            checkout: false,
        })
    }

    /// Reports the object created under `permit`: a checkout's object is
    /// handed back to the caller as checked out (`Some`); a stock object
    /// goes idle (`None`).
    pub fn handle_created(
        &mut self,
        permit: CreatePermit,
        value: T,
    ) -> Result<Option<T>, ForeignPermit<T>> {
        if permit.pool != self.id {
            return Err(ForeignPermit { value: Some(value) });
        }
        self.opening -= 1;
        self.stats.created += 1;
        if permit.checkout {
            self.stats.misses += 1;
            self.handed_out();
            Ok(Some(value))
        } else {
            self.idle.push(value);
            Ok(None)
        }
    }

    /// Reports that creating under `permit` failed: its slot frees.
    pub fn handle_create_failed(&mut self, permit: CreatePermit) -> Result<(), ForeignPermit<T>> {
        if permit.pool != self.id {
            return Err(ForeignPermit { value: None });
        }
        self.opening -= 1;
        self.stats.create_failures += 1;
        Ok(())
    }

    #[inline]
    fn handed_out(&mut self) {
        self.stats.acquired += 1;
        self.stats.in_use += 1;
        self.stats.high_water = self.stats.high_water.max(self.stats.in_use);
    }

    /// Takes back a checked-out object, resetting it, and makes it idle.
    ///
    /// Handing back more objects than were handed out is a caller bug; the
    /// extra objects are dropped rather than let the pool exceed its
    /// maximum. If the reset hook panics, the object is dropped and counted
    /// as discarded, so its slot frees.
    #[inline]
    pub fn handle_returned(&mut self, mut obj: T) {
        if self.stats.in_use == 0 {
            return;
        }
        if let Some(reset) = self.reset.as_mut() {
            /// Releases the slot as discarded if the hook unwinds.
            struct OnUnwind<'a>(&'a mut PoolStats);
            impl Drop for OnUnwind<'_> {
                fn drop(&mut self) {
                    self.0.in_use -= 1;
                    self.0.discarded += 1;
                }
            }
            let guard = OnUnwind(&mut self.stats);
            reset(&mut obj);
            core::mem::forget(guard);
        }
        self.stats.in_use -= 1;
        self.stats.released += 1;
        self.idle.push(obj);
    }

    /// Reports that a checked-out object was broken and has been dropped or
    /// closed by the caller: its slot frees, and the minimum size is
    /// refilled through [`poll_create`](Self::poll_create).
    pub fn handle_discarded(&mut self) {
        if self.stats.in_use > 0 {
            self.stats.in_use -= 1;
            self.stats.discarded += 1;
            self.want_minimum();
        }
    }

    /// Reports that a checked-out object will not come back (the caller
    /// keeps it): its slot frees.
    pub fn handle_detached(&mut self) {
        if self.stats.in_use > 0 {
            self.stats.in_use -= 1;
            self.stats.detached += 1;
        }
    }

    fn want_minimum(&mut self) {
        let have = self.live() + self.stock_wanted;
        self.stock_wanted += self.config.min_size.saturating_sub(have);
    }

    /// Hands out the next idle object that has left the pool, for the caller
    /// to drop or close; `None` when there is nothing (more) to evict at
    /// `now`.
    ///
    /// `now` is any monotonic time from an origin the caller chooses. The
    /// first call starts an idle-timeout interval; once one has run its
    /// course, the objects idle through all of it leave, coldest first, but
    /// never below the minimum size. A `now` earlier than the interval start
    /// (a clock that went backwards) restarts the interval without evicting.
    pub fn poll_evicted(&mut self, now: Instant) -> Option<T> {
        if let Some(obj) = self.evicted.pop() {
            return Some(obj);
        }
        let timeout = self.config.idle_timeout?;
        let Some(start) = self.interval_start else {
            self.restart_interval(now);
            return None;
        };
        let elapsed = match now.checked_duration_since(start) {
            Some(elapsed) => elapsed,
            None => {
                self.restart_interval(now);
                return None;
            }
        };
        if elapsed < timeout {
            return None;
        }
        let above_min = self.live().saturating_sub(self.config.min_size);
        let count = self.low_water.min(above_min).min(self.idle.len());
        // The bottom of the stack holds the objects unused the longest;
        // reversed so that `pop` hands out the coldest first.
        self.evicted.extend(self.idle.drain(..count).rev());
        self.stats.shrunk += count as u64;
        self.restart_interval(now);
        self.evicted.pop()
    }

    fn restart_interval(&mut self, now: Instant) {
        self.interval_start = Some(now);
        self.low_water = self.idle.len();
    }

    /// When [`poll_evicted`](Self::poll_evicted) next has work: `None`
    /// without an idle timeout, [`Instant::ZERO`] (at once) when evicted
    /// objects wait or no interval has started yet.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let timeout = self.config.idle_timeout?;
        if !self.evicted.is_empty() {
            return Some(Instant::ZERO);
        }
        Some(self.interval_start.map_or(Instant::ZERO, |s| s + timeout))
    }

    /// Live objects: idle, handed out, and being created.
    pub fn live(&self) -> usize {
        self.idle.len() + self.stats.in_use as usize + self.opening
    }

    /// Objects idle in the pool.
    pub fn idle(&self) -> usize {
        self.idle.len()
    }

    /// Permits handed out and not yet reported.
    pub fn opening(&self) -> usize {
        self.opening
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

    // Synchronous drivers: the conveniences that create objects on the
    // spot. They are built only from the calls above.

    /// [`checkout`](Self::checkout), creating with `create` on the spot
    /// (and the rest of a growth batch, as idle stock); `None` when
    /// exhausted. A panicking `create` frees its slot.
    #[inline]
    pub fn checkout_with(&mut self, create: &mut dyn FnMut() -> T) -> Option<T> {
        match self.take_idle() {
            Some(obj) => Some(obj),
            None => self.create_now(create),
        }
    }

    #[cold]
    fn create_now(&mut self, create: &mut dyn FnMut() -> T) -> Option<T> {
        let Checkout::Create(permit) = self.checkout_miss() else {
            return None;
        };
        let obj = self.run_create(permit, create);
        self.fill_with(create);
        obj
    }

    fn run_create(&mut self, permit: CreatePermit, create: &mut dyn FnMut() -> T) -> Option<T> {
        let mut guard = PermitGuard {
            store: self,
            permit: Some(permit),
        };
        let value = create();
        let permit = guard.permit.take()?;
        guard.store.handle_created(permit, value).ok().flatten()
    }

    /// Creates every object [`poll_create`](Self::poll_create) asks for,
    /// with `create`; returns how many.
    pub fn fill_with(&mut self, create: &mut dyn FnMut() -> T) -> usize {
        let mut made = 0;
        while let Some(permit) = self.poll_create() {
            self.run_create(permit, create);
            made += 1;
        }
        made
    }

    /// Hands out up to `n` objects at once into `out` (growing as
    /// [`checkout_with`](Self::checkout_with) would), so a per-thread cache
    /// pays for one lock per batch; returns how many were added.
    pub fn checkout_batch_with(
        &mut self,
        n: usize,
        out: &mut Vec<T>,
        create: &mut dyn FnMut() -> T,
    ) -> usize {
        let mut added = 0;
        while added < n {
            match self.checkout_with(create) {
                Some(obj) => out.push(obj),
                None => break,
            }
            added += 1;
        }
        added
    }

    /// Evicts what is due at `now` and drops it; returns how many.
    pub fn maintain(&mut self, now: Instant) -> usize {
        let mut dropped = 0;
        while self.poll_evicted(now).is_some() {
            dropped += 1;
        }
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Growth, PoolBuilder};
    use super::*;
    use alloc::boxed::Box;
    use alloc::vec;
    use core::time::Duration;

    fn store(config: PoolConfig) -> PoolStore<Vec<u8>> {
        PoolStore::new(config, Some(Box::new(|v: &mut Vec<u8>| v.clear()))).unwrap()
    }

    fn at(secs: u64) -> Instant {
        Instant::from_secs(secs)
    }

    #[test]
    fn initial_objects_are_asked_for_not_made() {
        let mut c = PoolConfig::new(8);
        c.initial_size = 3;
        let mut s = store(c);
        assert_eq!(s.idle(), 0);
        let permits: Vec<_> = core::iter::from_fn(|| s.poll_create()).collect();
        assert_eq!(permits.len(), 3);
        assert_eq!(s.opening(), 3);
        for p in permits {
            assert!(!p.is_checkout());
            assert_eq!(s.handle_created(p, vec![1]), Ok(None));
        }
        assert_eq!((s.idle(), s.opening(), s.stats().created), (3, 0, 3));
    }

    #[test]
    fn checkout_prefers_idle_then_permits_then_refuses() {
        let mut s = store(PoolConfig::new(2));
        let Checkout::Create(p) = s.checkout() else {
            panic!("empty pool asks to create")
        };
        // The reserved slot counts: one more permit, then exhausted.
        let Checkout::Create(q) = s.checkout() else {
            panic!("room for a second")
        };
        assert!(matches!(s.checkout(), Checkout::Exhausted));
        let a = s.handle_created(p, vec![1]).unwrap().unwrap();
        s.handle_create_failed(q).unwrap();
        assert_eq!((s.live(), s.stats().create_failures), (1, 1));
        s.handle_returned(a);
        assert!(matches!(s.checkout(), Checkout::Idle(v) if v.is_empty()));
        let st = s.stats();
        assert_eq!((st.hits, st.misses, st.exhausted), (1, 1, 1));
    }

    #[test]
    fn foreign_permits_are_refused_and_change_nothing() {
        let mut a = store(PoolConfig::new(1));
        let mut b = store(PoolConfig::new(1));
        let Checkout::Create(p) = a.checkout() else {
            panic!("create")
        };
        let err = b.handle_created(p, vec![7]).unwrap_err();
        assert_eq!(err.value, Some(vec![7]));
        assert_eq!(b.live(), 0);
        assert_eq!(a.opening(), 1);
    }

    #[test]
    fn growth_batches_come_as_stock_permits() {
        let mut c = PoolConfig::new(10);
        c.growth = Growth::Step(3);
        let mut s = store(c);
        let Checkout::Create(p) = s.checkout() else {
            panic!("create")
        };
        let _obj = s.handle_created(p, vec![]).unwrap();
        assert_eq!(s.fill_with(&mut Vec::new), 2);
        assert_eq!((s.live(), s.idle()), (3, 2));
    }

    #[test]
    fn discard_frees_the_slot_and_refills_the_minimum() {
        let mut c = PoolConfig::new(2);
        c.min_size = 1;
        let mut s = store(c);
        s.fill_with(&mut Vec::new);
        let obj = s.checkout_with(&mut Vec::new).unwrap();
        drop(obj);
        s.handle_discarded();
        assert_eq!(s.live(), 0);
        assert_eq!(s.fill_with(&mut Vec::new), 1);
        let st = s.stats();
        assert_eq!(st.created, st.in_use + st.idle + st.discarded);
    }

    #[test]
    fn eviction_hands_out_the_coldest_and_keeps_the_minimum() {
        let mut n = 0u8;
        let mut make = move || {
            n += 1;
            vec![n]
        };
        let mut s = PoolBuilder::new(10, Vec::new)
            .initial_size(6)
            .min_size(2)
            .idle_timeout(Duration::from_secs(10))
            .build_store()
            .unwrap();
        s.fill_with(&mut make);
        assert_eq!(
            s.poll_timeout(),
            Some(Instant::ZERO),
            "interval not started"
        );
        assert_eq!(s.poll_evicted(at(0)), None);
        assert_eq!(s.poll_timeout(), Some(at(10)));
        let a = s.checkout_with(&mut make).unwrap();
        s.handle_returned(a);
        assert_eq!(s.poll_evicted(at(5)), None, "interval not over");
        // Low water 5 idle, live 6, min 2: four leave, coldest (first made)
        // first.
        let out: Vec<_> = core::iter::from_fn(|| s.poll_evicted(at(10))).collect();
        assert_eq!(out, vec![vec![1], vec![2], vec![3], vec![4]]);
        assert_eq!((s.live(), s.stats().shrunk), (2, 4));
        assert_eq!(s.maintain(at(30)), 0, "never below the minimum");
    }

    #[test]
    fn backwards_time_restarts_the_interval() {
        let mut s = PoolBuilder::new(4, || 0u8)
            .initial_size(4)
            .idle_timeout(Duration::from_secs(1))
            .build_store()
            .unwrap();
        s.fill_with(&mut || 0);
        s.maintain(at(100));
        let held: Vec<_> = (0..3)
            .map(|_| s.checkout_with(&mut || 0).unwrap())
            .collect();
        assert_eq!(s.maintain(at(50)), 0, "clock went back");
        assert_eq!(s.maintain(at(52)), 1);
        assert_eq!(s.stats().in_use, 3);
        drop(held);
    }

    #[test]
    fn extra_returns_are_dropped() {
        let mut s = store(PoolConfig::new(1));
        s.handle_returned(Vec::new());
        assert_eq!((s.idle(), s.stats().released), (0, 0));
    }

    #[test]
    fn panicking_create_frees_its_slot() {
        let mut s = store(PoolConfig::new(1));
        let r = std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| {
            s.checkout_with(&mut || panic!("create failed"))
        }));
        assert!(r.is_err());
        assert_eq!((s.live(), s.opening()), (0, 0));
        assert!(s.checkout_with(&mut Vec::new).is_some());
    }

    #[test]
    fn panicking_reset_frees_its_slot() {
        let mut s = PoolStore::new(
            PoolConfig::new(2),
            Some(Box::new(|_: &mut u8| panic!("reset failed"))),
        )
        .unwrap();
        for _ in 0..3 {
            let a = s.checkout_with(&mut || 1).unwrap();
            let b = s.checkout_with(&mut || 2).unwrap();
            for obj in [a, b] {
                let r = std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| {
                    s.handle_returned(obj)
                }));
                assert!(r.is_err());
            }
            assert_eq!(s.live(), 0, "both slots free again");
        }
        assert_eq!(s.stats().discarded, 6);
    }
}
