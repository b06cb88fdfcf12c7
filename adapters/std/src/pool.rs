//! Thread-safe pools: [`SharedPool`], the growable pool behind a mutex with a
//! guard that returns objects on drop, and [`LocalCache`], a per-thread front
//! for it that serves acquisitions without any atomic operation.
//!
//! Invariants:
//!
//! - the shared pool keeps every invariant of `mechops_alloc::pool`: never
//!   more live objects than the maximum, reset before reuse, consistent
//!   statistics. Objects held by a local cache count as in use there;
//! - a local cache holds at most `2 × batch` idle objects and gives all of
//!   them back when dropped, so no object is lost when a thread ends;
//! - a panic in a reset or create hook poisons nothing and loses no slot:
//!   the object in flight is dropped and its slot frees.
//!
//! Shrinking needs a time: [`SharedPool::maintain`] reads the
//! [`SteadyClock`] and hands the store that `Instant`; the store never reads
//! a clock itself. Evicted objects are dropped after the lock is released.

use core::fmt;
use core::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use mechops_alloc::pool::{ConfigError, CreateFn, PoolBuilder, PoolStats, PoolStore};
use mechops_core::time::{Instant, MonotonicClock};

use crate::clock::SteadyClock;

mod session;
mod shard_hint;

pub use session::{SessionPoolError, SharedSessionPool};
pub use shard_hint::thread_shard_hint;

/// The store and the hook that creates its objects on the spot.
struct Inner<T> {
    store: PoolStore<T>,
    create: CreateFn<T>,
}

impl<T> Inner<T> {
    fn checkout(&mut self) -> Option<T> {
        self.store.checkout_with(&mut self.create)
    }
}

struct Shared<T> {
    inner: Mutex<Inner<T>>,
    clock: SteadyClock,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, Inner<T>> {
        // The store stays consistent if a hook panicked mid-call (the object
        // in flight is dropped and its slot freed), so a poisoned lock is
        // still usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A growable pool shared between threads; clones share the same objects.
pub struct SharedPool<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Clone for SharedPool<T> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> fmt::Debug for SharedPool<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedPool")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<T> SharedPool<T> {
    /// Builds a shared pool from a [`PoolBuilder`] (sizes, growth, hooks).
    pub fn new(builder: PoolBuilder<T>) -> Result<Self, ConfigError> {
        let (store, create) = builder.build_parts()?;
        Ok(Self::from_parts(store, create))
    }

    /// Wraps a store and the hook that creates its objects; objects the
    /// store asks for are created at once.
    pub fn from_parts(mut store: PoolStore<T>, mut create: CreateFn<T>) -> Self {
        store.fill_with(&mut create);
        Self {
            shared: Arc::new(Shared {
                inner: Mutex::new(Inner { store, create }),
                clock: SteadyClock::new(),
            }),
        }
    }

    /// Hands out an object, growing if needed; `None` at the maximum size.
    ///
    /// The guard borrows the pool, so acquiring touches no reference count;
    /// [`acquire_owned`](Self::acquire_owned) gives a guard that owns a
    /// handle instead, for objects that must outlive the borrow.
    pub fn acquire(&self) -> Option<SharedPooled<'_, T>> {
        let obj = self.shared.lock().checkout()?;
        Some(SharedPooled {
            obj: Some(obj),
            shared: &self.shared,
        })
    }

    /// Like [`acquire`](Self::acquire), with a `'static` guard.
    pub fn acquire_owned(&self) -> Option<OwnedPooled<T>> {
        let obj = self.shared.lock().checkout()?;
        Some(OwnedPooled {
            obj: Some(obj),
            shared: Arc::clone(&self.shared),
        })
    }

    /// Drops objects idle for a whole idle-timeout interval, timed by the
    /// [`SteadyClock`]; returns how many were dropped.
    pub fn maintain(&self) -> usize {
        self.maintain_at(self.shared.clock.now())
    }

    /// [`maintain`](Self::maintain) at a given reading of a monotonic clock
    /// (for tests and simulations). Objects are dropped outside the lock.
    pub fn maintain_at(&self, now: Instant) -> usize {
        let mut dropped = 0;
        loop {
            let evicted = self.shared.lock().store.poll_evicted(now);
            match evicted {
                Some(obj) => drop(obj),
                None => return dropped,
            }
            dropped += 1;
        }
    }

    /// When [`maintain`](Self::maintain) next has work, on the pool's
    /// [`SteadyClock`]; see `PoolStore::poll_timeout`.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.shared.lock().store.poll_timeout()
    }

    /// A per-thread front that moves objects `batch` at a time (clamped to
    /// `1..=4096`).
    pub fn local_cache<R: FnMut(&mut T)>(&self, batch: usize, reset: R) -> LocalCache<T, R> {
        let batch = batch.clamp(1, 4096);
        LocalCache {
            pool: self.clone(),
            idle: Vec::with_capacity(batch * 2),
            batch,
            reset,
            hits: 0,
            refills: 0,
        }
    }

    /// A snapshot of the statistics.
    pub fn stats(&self) -> PoolStats {
        self.shared.lock().store.stats()
    }
}

/// An object on loan from a [`SharedPool`]; returned (and reset) on drop.
pub struct SharedPooled<'a, T> {
    obj: Option<T>,
    shared: &'a Shared<T>,
}

impl<T> SharedPooled<'_, T> {
    /// Drops the object as broken; its slot frees.
    pub fn discard(mut self) {
        drop(self.obj.take());
        self.shared.lock().store.handle_discarded();
    }

    /// Takes the object out of the pool for good; its slot is freed.
    pub fn detach(mut self) -> T {
        self.shared.lock().store.handle_detached();
        self.obj
            .take()
            .unwrap_or_else(|| unreachable!("the object is present until drop"))
    }
}

impl<T> Deref for SharedPooled<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.obj
            .as_ref()
            .unwrap_or_else(|| unreachable!("the object is present until drop"))
    }
}

impl<T> DerefMut for SharedPooled<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.obj
            .as_mut()
            .unwrap_or_else(|| unreachable!("the object is present until drop"))
    }
}

impl<T: fmt::Debug> fmt::Debug for SharedPooled<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SharedPooled").field(&self.obj).finish()
    }
}

impl<T> Drop for SharedPooled<'_, T> {
    fn drop(&mut self) {
        if let Some(obj) = self.obj.take() {
            self.shared.lock().store.handle_returned(obj);
        }
    }
}

/// An object on loan from a [`SharedPool`] that keeps the pool alive;
/// returned (and reset) on drop.
pub struct OwnedPooled<T> {
    obj: Option<T>,
    shared: Arc<Shared<T>>,
}

impl<T> OwnedPooled<T> {
    /// Drops the object as broken; its slot frees.
    pub fn discard(mut self) {
        drop(self.obj.take());
        self.shared.lock().store.handle_discarded();
    }

    /// Takes the object out of the pool for good; its slot is freed.
    pub fn detach(mut self) -> T {
        self.shared.lock().store.handle_detached();
        self.obj
            .take()
            .unwrap_or_else(|| unreachable!("the object is present until drop"))
    }
}

impl<T> Deref for OwnedPooled<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.obj
            .as_ref()
            .unwrap_or_else(|| unreachable!("the object is present until drop"))
    }
}

impl<T> DerefMut for OwnedPooled<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.obj
            .as_mut()
            .unwrap_or_else(|| unreachable!("the object is present until drop"))
    }
}

impl<T: fmt::Debug> fmt::Debug for OwnedPooled<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("OwnedPooled").field(&self.obj).finish()
    }
}

impl<T> Drop for OwnedPooled<T> {
    fn drop(&mut self) {
        if let Some(obj) = self.obj.take() {
            self.shared.lock().store.handle_returned(obj);
        }
    }
}

/// A per-thread cache in front of a [`SharedPool`]: `&mut self`, no atomics
/// on the fast path; it refills and flushes in batches under one lock.
///
/// Keep one per thread (in a `thread_local!`, or in a worker's state). It is
/// `Send` when `T` and the reset hook are, but not `Sync`.
pub struct LocalCache<T, R: FnMut(&mut T)> {
    pool: SharedPool<T>,
    idle: Vec<T>,
    batch: usize,
    reset: R,
    hits: u64,
    refills: u64,
}

impl<T, R: FnMut(&mut T)> fmt::Debug for LocalCache<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalCache")
            .field("idle", &self.idle.len())
            .field("batch", &self.batch)
            .field("hits", &self.hits)
            .field("refills", &self.refills)
            .finish_non_exhaustive()
    }
}

impl<T, R: FnMut(&mut T)> LocalCache<T, R> {
    /// Hands out an object from the local stack, refilling a batch from the
    /// shared pool when it is empty; `None` when the shared pool is at its
    /// maximum and has nothing idle.
    #[inline]
    pub fn take(&mut self) -> Option<T> {
        if let Some(obj) = self.idle.pop() {
            self.hits += 1;
            return Some(obj);
        }
        self.refill()
    }

    #[cold]
    fn refill(&mut self) -> Option<T> {
        self.refills += 1;
        let inner = &mut *self.pool.shared.lock();
        inner
            .store
            .checkout_batch_with(self.batch, &mut self.idle, &mut inner.create);
        self.idle.pop()
    }

    /// Takes an object back, resetting it; beyond `2 × batch` idle objects
    /// a batch goes back to the shared pool. If the reset hook panics, the
    /// object is dropped and its slot in the shared pool frees.
    #[inline]
    pub fn put(&mut self, mut obj: T) {
        /// Frees the slot of the object being reset if the hook unwinds.
        struct OnUnwind<'a, T>(&'a Shared<T>);
        impl<T> Drop for OnUnwind<'_, T> {
            fn drop(&mut self) {
                self.0.lock().store.handle_discarded();
            }
        }
        let guard = OnUnwind(&self.pool.shared);
        (self.reset)(&mut obj);
        core::mem::forget(guard);
        self.idle.push(obj);
        if self.idle.len() > self.batch * 2 {
            self.flush(self.batch);
        }
    }

    /// Hands out an object in a guard that puts it back here on drop.
    #[inline]
    pub fn acquire(&mut self) -> Option<LocalPooled<'_, T, R>> {
        let obj = self.take()?;
        Some(LocalPooled {
            obj: Some(obj),
            cache: self,
        })
    }

    #[cold]
    fn flush(&mut self, n: usize) {
        let mut inner = self.pool.shared.lock();
        let keep = self.idle.len().saturating_sub(n);
        for obj in self.idle.drain(keep..) {
            inner.store.handle_returned(obj);
        }
    }

    /// Objects idle in this cache.
    pub fn idle(&self) -> usize {
        self.idle.len()
    }

    /// Acquisitions served locally, and refills from the shared pool.
    pub fn local_stats(&self) -> (u64, u64) {
        (self.hits, self.refills)
    }
}

impl<T, R: FnMut(&mut T)> Drop for LocalCache<T, R> {
    fn drop(&mut self) {
        self.flush(self.idle.len());
    }
}

/// An object on loan from a [`LocalCache`], returned there on drop.
pub struct LocalPooled<'a, T, R: FnMut(&mut T)> {
    obj: Option<T>,
    cache: &'a mut LocalCache<T, R>,
}

impl<T, R: FnMut(&mut T)> Deref for LocalPooled<'_, T, R> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        self.obj
            .as_ref()
            .unwrap_or_else(|| unreachable!("the object is present until drop"))
    }
}

impl<T, R: FnMut(&mut T)> DerefMut for LocalPooled<'_, T, R> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        self.obj
            .as_mut()
            .unwrap_or_else(|| unreachable!("the object is present until drop"))
    }
}

impl<T, R: FnMut(&mut T)> Drop for LocalPooled<'_, T, R> {
    #[inline]
    fn drop(&mut self) {
        if let Some(obj) = self.obj.take() {
            self.cache.put(obj);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(max: usize) -> SharedPool<Vec<u8>> {
        SharedPool::new(PoolBuilder::new(max, Vec::new).reset(|v| v.clear())).unwrap()
    }

    #[test]
    fn guard_returns_and_resets() {
        let p = pool(2);
        {
            let mut g = p.acquire().unwrap();
            g.push(1);
        }
        assert!(p.acquire().unwrap().is_empty());
        let s = p.stats();
        assert_eq!((s.released, s.hits, s.misses), (2, 1, 1));
    }

    #[test]
    fn owned_guards_outlive_the_handle_and_cross_threads() {
        let p = pool(1);
        let mut g = p.acquire_owned().unwrap();
        let stats = p.clone();
        drop(p);
        g.push(7);
        std::thread::spawn(move || drop(g)).join().unwrap();
        let s = stats.stats();
        assert_eq!((s.in_use, s.idle, s.released), (0, 1, 1));
        assert!(stats.acquire().unwrap().is_empty(), "reset on return");
    }

    #[test]
    fn bounded_and_detachable() {
        let p = pool(1);
        let g = p.acquire().unwrap();
        assert!(p.acquire().is_none());
        let v = g.detach();
        assert!(v.is_empty());
        assert!(p.acquire().is_some());
        assert_eq!(p.stats().detached, 1);
    }

    #[test]
    fn local_cache_batches_and_gives_back_on_drop() {
        let p = pool(64);
        {
            let mut local = p.local_cache(4, |v: &mut Vec<u8>| v.clear());
            let held: Vec<_> = (0..10).map(|_| local.take().unwrap()).collect();
            assert_eq!(p.stats().in_use, 12, "three batches of four");
            for mut v in held {
                v.push(1);
                local.put(v);
            }
            assert!(local.idle() <= 8);
            {
                let g = local.acquire().unwrap();
                assert!(g.is_empty());
            }
            let (hits, refills) = local.local_stats();
            assert_eq!((hits, refills), (8, 3));
        }
        let s = p.stats();
        assert_eq!(s.in_use, 0);
        assert_eq!(s.idle, 12);
    }

    #[test]
    fn panicking_hooks_lose_no_slot() {
        let p = SharedPool::new(
            PoolBuilder::new(2, || 0u8).reset(|v| assert!(*v == 0, "reset failed")),
        )
        .unwrap();
        for _ in 0..3 {
            let mut a = p.acquire().unwrap();
            *a = 1;
            let r = std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| drop(a)));
            assert!(r.is_err());
            let mut local = p.local_cache(1, |v: &mut u8| assert!(*v == 0, "reset failed"));
            let mut b = local.take().unwrap();
            b = b.wrapping_add(1);
            let r = std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| local.put(b)));
            assert!(r.is_err());
            drop(local);
            assert_eq!(p.stats().in_use, 0, "both slots free again");
        }
        let broken = p.acquire().unwrap();
        broken.discard();
        let s = p.stats();
        assert_eq!((s.in_use, s.discarded), (0, 7));
        assert!(p.acquire().is_some());
    }

    #[test]
    fn maintain_at_shrinks() {
        use core::time::Duration;
        let p = SharedPool::new(
            PoolBuilder::new(8, || 0u8)
                .initial_size(8)
                .idle_timeout(Duration::from_secs(1)),
        )
        .unwrap();
        assert_eq!(p.maintain_at(Instant::ZERO), 0);
        assert_eq!(p.maintain_at(Instant::from_secs(2)), 8);
    }

    #[test]
    fn shared_between_threads_without_double_hand_out() {
        let p = SharedPool::new(PoolBuilder::new(4, || 0u64)).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let p = p.clone();
                std::thread::spawn(move || {
                    for _ in 0..2000 {
                        if let Some(mut g) = p.acquire() {
                            // Ownership stamp: nobody else may hold it.
                            assert_eq!(*g, 0, "object handed out twice");
                            *g = 1;
                            core::hint::spin_loop();
                            *g = 0;
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = p.stats();
        assert!(s.created <= 4);
        assert_eq!(s.in_use, 0);
        assert_eq!(s.acquired, s.released);
    }
}
