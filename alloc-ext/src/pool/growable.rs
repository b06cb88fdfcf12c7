//! The growable single-threaded pool, [`GrowablePool`], and its guard.
//!
//! `GrowablePool` is a cheap, cloneable `Rc` handle so that guards can outlive the
//! borrow they were made from and still find their way home. It is neither
//! `Send` nor `Sync`; the thread-safe form lives in `mechops-std`.

use alloc::rc::Rc;
use core::cell::RefCell;
use core::fmt;
use core::mem::ManuallyDrop;
use core::ops::{Deref, DerefMut};

use mechops_core::time::Instant;

use super::config::{CreateFn, PoolBuilder};
use super::stats::PoolStats;
use super::store::PoolStore;

/// The store and the hook that creates its objects on the spot.
struct Inner<T> {
    store: PoolStore<T>,
    create: CreateFn<T>,
}

/// A growable, single-threaded object pool; clones share the same objects.
/// A thin synchronous driver of a [`PoolStore`].
pub struct GrowablePool<T> {
    store: Rc<RefCell<Inner<T>>>,
}

impl<T> Clone for GrowablePool<T> {
    fn clone(&self) -> Self {
        Self {
            store: Rc::clone(&self.store),
        }
    }
}

impl<T> fmt::Debug for GrowablePool<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrowablePool")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<T> GrowablePool<T> {
    /// Starts a [`PoolBuilder`] with at most `max_size` live objects made by
    /// `create`.
    pub fn builder(max_size: usize, create: impl FnMut() -> T + Send + 'static) -> PoolBuilder<T> {
        PoolBuilder::new(max_size, create)
    }

    pub(crate) fn from_parts(store: PoolStore<T>, create: CreateFn<T>) -> Self {
        Self {
            store: Rc::new(RefCell::new(Inner { store, create })),
        }
    }

    /// Hands out an object, growing if needed; `None` at the maximum size.
    ///
    /// The guard returns the object (through the reset hook) when dropped.
    pub fn acquire(&self) -> Option<Pooled<T>> {
        let obj = {
            let inner = &mut *self.store.borrow_mut();
            inner.store.checkout_with(&mut inner.create)?
        };
        Some(Pooled {
            obj: ManuallyDrop::new(obj),
            pool: Rc::clone(&self.store),
        })
    }

    /// Drops idle objects due for eviction at `now`; see
    /// [`PoolStore::poll_evicted`].
    pub fn maintain(&self, now: Instant) -> usize {
        // Taken out first so that a panicking `Drop` of an object cannot
        // leave the store borrowed.
        let mut dropped = 0;
        loop {
            let evicted = self.store.borrow_mut().store.poll_evicted(now);
            match evicted {
                Some(obj) => drop(obj),
                None => return dropped,
            }
            dropped += 1;
        }
    }

    /// When [`maintain`](Self::maintain) next has work; see
    /// [`PoolStore::poll_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.store.borrow().store.poll_timeout()
    }

    /// A snapshot of the statistics.
    pub fn stats(&self) -> PoolStats {
        self.store.borrow().store.stats()
    }
}

/// An object on loan from a [`GrowablePool`]; derefs to it and returns it on drop.
pub struct Pooled<T> {
    obj: ManuallyDrop<T>,
    pool: Rc<RefCell<Inner<T>>>,
}

impl<T> Pooled<T> {
    /// Drops the object as broken; its slot frees and the pool's minimum
    /// is refilled on the next acquisition.
    pub fn discard(self) {
        let mut this = ManuallyDrop::new(self);
        this.pool.borrow_mut().store.handle_discarded();
        // SAFETY: `this` is never dropped, so `obj` is taken exactly once and
        // `pool` is dropped exactly once below.
        let obj = unsafe { ManuallyDrop::take(&mut this.obj) };
        // SAFETY: as above; `pool` is not touched again.
        unsafe { core::ptr::drop_in_place(&mut this.pool) };
        drop(obj);
    }

    /// Takes the object out of the pool for good; the pool's slot is freed.
    pub fn detach(self) -> T {
        let mut this = ManuallyDrop::new(self);
        this.pool.borrow_mut().store.handle_detached();
        // SAFETY: `this` is never dropped, so `obj` is read exactly once and
        // `pool` is dropped exactly once below.
        let obj = unsafe { ManuallyDrop::take(&mut this.obj) };
        // SAFETY: as above; `pool` is not touched again.
        unsafe { core::ptr::drop_in_place(&mut this.pool) };
        obj
    }
}

impl<T> Deref for Pooled<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.obj
    }
}

impl<T> DerefMut for Pooled<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.obj
    }
}

impl<T: fmt::Debug> fmt::Debug for Pooled<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Pooled").field(&*self.obj).finish()
    }
}

impl<T> Drop for Pooled<T> {
    fn drop(&mut self) {
        // SAFETY: `drop` runs once and `obj` is not used after this take.
        let obj = unsafe { ManuallyDrop::take(&mut self.obj) };
        self.pool.borrow_mut().store.handle_returned(obj);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn guard_returns_on_drop_and_resets() {
        let pool = GrowablePool::builder(2, Vec::<u8>::new)
            .reset(|v| v.clear())
            .build()
            .unwrap();
        {
            let mut g = pool.acquire().unwrap();
            g.push(1);
            assert_eq!(pool.stats().in_use, 1);
        }
        let st = pool.stats();
        assert_eq!((st.in_use, st.idle, st.released), (0, 1, 1));
        assert!(pool.acquire().unwrap().is_empty());
    }

    #[test]
    fn exhaustion_gives_none() {
        let pool = GrowablePool::builder(1, || 0u32).build().unwrap();
        let g = pool.acquire().unwrap();
        assert!(pool.acquire().is_none());
        drop(g);
        assert!(pool.acquire().is_some());
    }

    #[test]
    fn detach_frees_the_slot_and_keeps_the_object() {
        let pool = GrowablePool::builder(1, || 7u32).build().unwrap();
        let g = pool.acquire().unwrap();
        assert_eq!(g.detach(), 7);
        let st = pool.stats();
        assert_eq!((st.in_use, st.detached, st.idle), (0, 1, 0));
        assert!(pool.acquire().is_some());
    }

    #[test]
    fn guard_outlives_the_handle() {
        let pool = GrowablePool::builder(1, || 1u8).build().unwrap();
        let g = pool.acquire().unwrap();
        let stats_handle = pool.clone();
        drop(pool);
        drop(g);
        assert_eq!(stats_handle.stats().idle, 1);
    }
}
