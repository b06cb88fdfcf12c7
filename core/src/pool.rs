//! A fixed-capacity, lock-free object pool.
//!
//! [`Pool<T, N>`] owns `N` objects for its whole life. [`Pool::try_acquire`]
//! hands one out behind a [`PoolGuard`], which gives exclusive access to it
//! and gives it back when dropped.
//!
//! # Invariants
//!
//! - Every slot is, at any instant, either in the free list or owned by
//!   exactly one live guard: never both, never neither. The free list is a
//!   Treiber stack of slot indices whose head word packs the top index with a
//!   generation tag; every successful push or pop bumps the tag, so a
//!   compare-and-swap that read a stale head fails instead of corrupting the
//!   list (the ABA problem). A stale head goes unnoticed only if the tag wraps
//!   all the way round (2^32 operations on targets with 64-bit atomics, 2^16
//!   otherwise) while one thread sits between its load and its CAS.
//! - The release of a slot (`Release` CAS on the head) happens-before the
//!   next acquire of that slot (`Acquire` load/CAS), so whatever the previous
//!   owner wrote to the object, the reset hook included, is visible to the next.
//! - Nothing here allocates, blocks on a lock or reads a clock.
//!   [`Pool::try_acquire`] is wait-free when the pool is empty and lock-free
//!   otherwise.
//!
//! # Statistics without read-modify-writes on the hot path
//!
//! An acquire and a release cost one CAS each on the shared head, which is
//! the floor for a lock-free pool; the release reads nothing shared before
//! its CAS (the guard remembers the head word its acquire installed). Shared statistics counters would add a
//! contended read-modify-write to each, roughly doubling the cost, so the
//! pool derives its statistics instead:
//!
//! - each slot keeps a word that only its current owner writes, with a plain
//!   load and store (no read-modify-write, and the cache line is already the
//!   owner's): the number of times it was acquired, and whether it is in use;
//! - acquires, releases and objects in use are sums over the slots;
//! - the high-water mark is the number of slots ever acquired: the free list is
//!   a stack that starts in index order and gets returned slots pushed on top,
//!   so a never-used slot is popped only when every used slot is out, which
//!   makes "slots ever used" equal to "most slots out at once";
//! - misses happen on the cold path, so they are an ordinary atomic counter.
//!
//! [`Pool::stats`] therefore costs O(N). While other threads use the pool its
//! result is a snapshot assembled slot by slot; once they stop it is exact.
//!
//! # Many threads at once
//!
//! Every acquire and release of a `Pool` is a CAS on one head word, so
//! threads that acquire at the same time take turns owning its cache line.
//! [`ShardedPool`] splits the free list into shards with a head each and lets
//! each thread name its shard with a hint; use it when threads contend.
//!
//! # Getting objects into a `static`
//!
//! [`Pool::new`] and [`Pool::with_reset`] are `const fn` and take the objects
//! by value as an array, so a pool can be a `static` initialised at compile
//! time:
//!
//! ```
//! use mechops_core::pool::Pool;
//!
//! static BUFFERS: Pool<[u8; 256], 4> = Pool::new([[0; 256]; 4]);
//!
//! let mut buffer = BUFFERS.try_acquire().expect("four buffers are free");
//! buffer[0] = 7;
//! drop(buffer);
//! assert_eq!(BUFFERS.stats().in_use, 0);
//! ```
//!
//! Objects that cannot be built in a constant context go through
//! [`Pool::from_fn`] instead, for example in a lazily initialised static.
//!
//! # Thread safety
//!
//! The bounds follow `Mutex<T>`: the pool hands each object to one thread at
//! a time, so `Pool<T, N>: Sync` needs only `T: Send`. A pool of `Rc` values
//! is therefore neither `Send` nor `Sync`:
//!
//! ```compile_fail,E0277
//! use mechops_core::pool::Pool;
//! use std::rc::Rc;
//!
//! fn shared_across_threads<S: Sync>(_: &S) {}
//!
//! let pool: Pool<Rc<u32>, 2> = Pool::new([Rc::new(1), Rc::new(2)]);
//! shared_across_threads(&pool); // `Rc<u32>` cannot be sent between threads
//! ```
//!
//! A guard hands out `&T`, so sharing a guard between threads needs
//! `T: Sync`; a guard to a `Cell` stays on one thread at a time:
//!
//! ```compile_fail,E0277
//! use mechops_core::pool::Pool;
//! use std::cell::Cell;
//!
//! fn shared_across_threads<S: Sync>(_: &S) {}
//!
//! let pool: Pool<Cell<u32>, 2> = Pool::new([Cell::new(1), Cell::new(2)]);
//! let guard = pool.try_acquire().unwrap();
//! shared_across_threads(&guard); // `Cell<u32>` cannot be shared between threads
//! ```
//!
//! Moving a guard to another thread needs `T: Send`:
//!
//! ```compile_fail,E0277
//! use mechops_core::pool::Pool;
//! use std::rc::Rc;
//!
//! fn sent_to_another_thread<S: Send>(_: S) {}
//!
//! let pool: Pool<Rc<u32>, 1> = Pool::new([Rc::new(1)]);
//! sent_to_another_thread(pool.try_acquire().unwrap()); // `Rc<u32>` is not `Send`
//! ```
//!
//! A pool of `Cell` values, like a `Mutex<Cell<u32>>`, *can* be shared:
//! each `Cell` is only ever reached through one guard, on one thread. Its
//! guards can move between threads but not be shared by them:
//!
//! ```
//! use mechops_core::pool::Pool;
//! use std::cell::Cell;
//!
//! let pool: Pool<Cell<u32>, 2> = Pool::new([Cell::new(0), Cell::new(0)]);
//! std::thread::scope(|s| {
//!     for _ in 0..2 {
//!         s.spawn(|| {
//!             let cell = pool.acquire();
//!             cell.set(cell.get() + 1);
//!         });
//!     }
//! });
//! let guard = pool.try_acquire().unwrap();
//! std::thread::scope(|s| {
//!     s.spawn(move || drop(guard));
//! });
//! assert_eq!(pool.stats().in_use, 0);
//! ```

use core::fmt;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};

pub mod sharded;
#[cfg(any(loom, feature = "portable-atomic", target_has_atomic = "64"))]
pub mod shelf;
mod slots;

pub use sharded::{ShardedPool, ShardedPoolGuard};
use slots::{FreeList, NIL, Slots, Taken, Ticket};

use crate::sync::const_unless_loom;

/// The largest capacity a [`Pool`] can have on this target: 2^32 - 1 slots
/// where 64-bit atomics exist, 2^16 - 1 otherwise.
pub const MAX_CAPACITY: usize = NIL as usize;

/// A fixed-capacity, lock-free pool of `N` objects of type `T`.
///
/// See the [module documentation](self) for the algorithm, the statistics,
/// and how to place a pool in a `static`.
pub struct Pool<T, const N: usize> {
    head: FreeList,
    slots: Slots<T, N>,
}

// SAFETY: the pool gives each object to one guard at a time, and the
// Release/Acquire pair on the free-list head orders one owner's accesses
// before the next owner's; objects only ever move between threads, so
// `T: Send` suffices, exactly as for `Mutex<T>`. Shared access to one object
// from several threads goes through `&PoolGuard`, whose own `Sync` requires
// `T: Sync`.
unsafe impl<T: Send, const N: usize> Sync for Pool<T, N> {}

impl<T, const N: usize> Pool<T, N> {
    const_unless_loom! {
        /// Creates a pool that owns `objects` and hands them back as they were
        /// left by their last user.
        ///
        /// Fails to compile if `N` exceeds [`MAX_CAPACITY`].
        pub fn new(objects: [T; N]) -> Self {
            Self::build(objects, None)
        }
    }

    const_unless_loom! {
        /// Creates a pool that owns `objects` and runs `reset` on each object
        /// as it is released, before any other thread can acquire it.
        ///
        /// If `reset` panics, the object is still returned to the pool (in
        /// whatever state the hook left it), so the pool never loses capacity.
        pub fn with_reset(objects: [T; N], reset: fn(&mut T)) -> Self {
            Self::build(objects, Some(reset))
        }
    }

    /// Creates a pool whose object `i` is `make(i)`, for objects that cannot
    /// be built in a constant context.
    pub fn from_fn(make: impl FnMut(usize) -> T) -> Self {
        Self::new(core::array::from_fn(make))
    }

    /// Like [`Pool::from_fn`], with a reset hook as in [`Pool::with_reset`].
    pub fn from_fn_with_reset(make: impl FnMut(usize) -> T, reset: fn(&mut T)) -> Self {
        Self::with_reset(core::array::from_fn(make), reset)
    }

    const_unless_loom! {
        fn build(objects: [T; N], reset: Option<fn(&mut T)>) -> Self {
            const { assert!(N <= MAX_CAPACITY, "Pool capacity exceeds MAX_CAPACITY") };
            // One list through all `N` slots (a block of at least 1, so the
            // linking never divides by zero).
            let block = if N == 0 { 1 } else { N };
            let first = if N == 0 { NIL } else { 0 };
            Self { head: FreeList::new(first), slots: Slots::new(objects, block, reset) }
        }
    }

    /// The number of objects the pool owns.
    #[inline]
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Hands out a free object, or `None` at once if every object is in use.
    ///
    /// Never blocks and never allocates. A `None` counts as a miss.
    #[inline]
    pub fn try_acquire(&self) -> Option<PoolGuard<'_, T, N>> {
        let taken = self.head.pop(&self.slots).ok();
        self.slots.count_miss(taken).map(|taken| self.guard(taken))
    }

    /// Hands out a free object, spinning until another thread releases one if
    /// every object is in use.
    ///
    /// A call that has to wait counts as one miss. This spins rather than
    /// sleeps (the core has no scheduler to sleep on), so call it only when
    /// another thread is sure to release an object; in single-threaded code
    /// an exhausted pool would spin forever, so use [`Pool::try_acquire`].
    pub fn acquire(&self) -> PoolGuard<'_, T, N> {
        let taken = self.slots.take_spinning(|| self.head.pop(&self.slots).ok());
        self.guard(taken)
    }

    /// A snapshot of the pool's statistics, in O(N).
    ///
    /// Exact when no other thread is using the pool; otherwise each field is
    /// a value it held during the call, and in-flight operations may be
    /// counted or not.
    pub fn stats(&self) -> PoolStats {
        self.slots.stats()
    }

    /// Exclusive access to every object, for inspection or bulk
    /// reinitialisation while no guard exists.
    pub fn objects_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.slots.objects_mut()
    }

    #[inline]
    fn guard(&self, taken: Taken) -> PoolGuard<'_, T, N> {
        PoolGuard {
            pool: self,
            ticket: self.slots.claim(taken),
            _owns: PhantomData,
        }
    }
}

impl<T, const N: usize> fmt::Debug for Pool<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Exclusive access to one object of a [`Pool`]; gives the object back when
/// dropped (after the pool's reset hook, if any).
///
/// `Send` when `T: Send`, `Sync` when `T: Send + Sync`.
pub struct PoolGuard<'a, T, const N: usize> {
    pool: &'a Pool<T, N>,
    ticket: Ticket,
    /// The guard behaves like `&'a mut T` for `Send` and `Sync`.
    _owns: PhantomData<&'a mut T>,
}

impl<T, const N: usize> PoolGuard<'_, T, N> {
    /// The index of the object's slot, stable for the pool's life (useful to
    /// tell objects apart in logs and tests).
    #[inline]
    pub fn slot(&self) -> usize {
        self.ticket.index as usize
    }
}

impl<T, const N: usize> Deref for PoolGuard<'_, T, N> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        self.pool.slots.slot(self.ticket.index).value.with(|value| {
            // SAFETY: the guard owns the slot (it was popped off the free list
            // and is pushed back only when the guard drops), so no `&mut T`
            // exists elsewhere; the returned borrow is tied to `&self`.
            unsafe { &*value }
        })
    }
}

impl<T, const N: usize> DerefMut for PoolGuard<'_, T, N> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        self.pool
            .slots
            .slot(self.ticket.index)
            .value
            .with_mut(|value| {
                // SAFETY: as in `deref`, and `&mut self` makes this borrow unique.
                unsafe { &mut *value }
            })
    }
}

impl<T, const N: usize> Drop for PoolGuard<'_, T, N> {
    #[inline]
    fn drop(&mut self) {
        let pool = self.pool;
        pool.slots.release(&self.ticket, |index, guess| {
            pool.head.push(&pool.slots, index, guess);
        });
    }
}

impl<T: fmt::Debug, const N: usize> fmt::Debug for PoolGuard<'_, T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolGuard")
            .field("slot", &self.ticket.index)
            .field("value", &**self)
            .finish()
    }
}

/// What a [`Pool`] has done so far; see [`Pool::stats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PoolStats {
    /// The number of objects the pool owns.
    pub capacity: usize,
    /// Objects handed out.
    pub acquires: u64,
    /// Objects given back.
    pub releases: u64,
    /// Calls that found the pool empty: each `None` from
    /// [`Pool::try_acquire`], and each [`Pool::acquire`] that had to wait.
    pub misses: u64,
    /// Objects out right now.
    pub in_use: usize,
    /// The most objects that were ever out at once.
    pub high_water: usize,
}

impl PoolStats {
    /// Objects free right now.
    #[inline]
    pub const fn available(&self) -> usize {
        self.capacity - self.in_use
    }
}

#[cfg(all(test, not(loom)))]
pub(crate) mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn hands_out_every_object_once_then_misses() {
        let pool = Pool::new([10, 11, 12]);
        let a = pool.try_acquire().unwrap();
        let b = pool.try_acquire().unwrap();
        let c = pool.try_acquire().unwrap();
        assert!(pool.try_acquire().is_none());
        let mut seen = [*a, *b, *c];
        seen.sort_unstable();
        assert_eq!(seen, [10, 11, 12]);
        let stats = pool.stats();
        assert_eq!(
            (stats.acquires, stats.releases, stats.misses, stats.in_use),
            (3, 0, 1, 3)
        );
        drop((a, b, c));
        let stats = pool.stats();
        assert_eq!((stats.releases, stats.in_use, stats.available()), (3, 0, 3));
    }

    #[test]
    fn released_object_keeps_its_changes_without_reset() {
        let pool = Pool::new([0u32]);
        *pool.try_acquire().unwrap() = 41;
        assert_eq!(*pool.try_acquire().unwrap(), 41);
    }

    #[test]
    fn reset_hook_runs_on_release() {
        let pool: Pool<Vec<u8>, 2> = Pool::from_fn_with_reset(|_| Vec::new(), Vec::clear);
        {
            let mut v = pool.try_acquire().unwrap();
            v.extend_from_slice(b"abc");
        }
        for _ in 0..2 {
            let v = pool.try_acquire().unwrap();
            assert!(v.is_empty());
            core::mem::forget(v);
        }
    }

    #[test]
    fn reset_hook_panic_still_returns_the_object() {
        let pool = Pool::with_reset([1u8], |_| panic!("reset failed"));
        let result = std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| {
            drop(pool.try_acquire().unwrap());
        }));
        assert!(result.is_err());
        let stats = pool.stats();
        assert_eq!((stats.releases, stats.in_use), (1, 0));
        let again = pool.try_acquire();
        assert!(again.is_some());
        core::mem::forget(again);
    }

    /// Takes both objects of a two-object pool whose reset hook adds one to
    /// the object and then panics, and drops each guard in its own
    /// `catch_unwind`, three times over: each unwind must still return its
    /// slot, or a later round finds the pool empty. Shared with the sharded
    /// pool's test.
    pub(super) fn release_through_panicking_hooks<G: Deref<Target = u32>>(
        acquire: impl Fn() -> Option<G>,
        stats: impl Fn() -> PoolStats,
    ) {
        for round in 1..=3 {
            let guards = [acquire().unwrap(), acquire().unwrap()];
            assert!(acquire().is_none());
            for guard in guards {
                let unwound = std::panic::catch_unwind(core::panic::AssertUnwindSafe(move || {
                    drop(guard);
                }));
                assert!(unwound.is_err());
            }
            let stats = stats();
            assert_eq!(
                (stats.in_use, stats.releases, stats.available()),
                (0, 2 * round, 2)
            );
        }
        // The objects come back as the hook left them.
        let guards = [acquire().unwrap(), acquire().unwrap()];
        assert_eq!([*guards[0], *guards[1]], [3, 3]);
        core::mem::forget(guards);
    }

    /// The reset hook used with [`release_through_panicking_hooks`].
    pub(super) fn count_then_panic(uses: &mut u32) {
        *uses += 1;
        panic!("reset failed");
    }

    #[test]
    fn panicking_reset_hooks_lose_no_slot() {
        let pool: Pool<u32, 2> = Pool::with_reset([0, 0], count_then_panic);
        release_through_panicking_hooks(|| pool.try_acquire(), || pool.stats());
    }

    #[test]
    fn high_water_tracks_most_objects_out_at_once() {
        let pool = Pool::new([0u8; 8]);
        for _ in 0..100 {
            drop(pool.try_acquire().unwrap());
        }
        assert_eq!(pool.stats().high_water, 1);
        let held: Vec<_> = (0..5).map(|_| pool.try_acquire().unwrap()).collect();
        drop(held);
        let two: Vec<_> = (0..2).map(|_| pool.try_acquire().unwrap()).collect();
        drop(two);
        let stats = pool.stats();
        assert_eq!(stats.high_water, 5);
        assert_eq!(stats.acquires, 107);
        assert_eq!(stats.releases, 107);
    }

    #[test]
    fn lifo_reuse_of_the_last_released_slot() {
        let pool = Pool::new([0u8; 4]);
        let a = pool.try_acquire().unwrap();
        let slot = a.slot();
        drop(a);
        assert_eq!(pool.try_acquire().unwrap().slot(), slot);
    }

    #[test]
    fn zero_capacity_pool_always_misses() {
        let pool: Pool<u8, 0> = Pool::new([]);
        assert!(pool.try_acquire().is_none());
        assert_eq!(pool.stats().misses, 1);
        assert_eq!(pool.capacity(), 0);
    }

    #[test]
    fn drops_every_object_exactly_once() {
        use std::rc::Rc;
        let tracker = Rc::new(());
        {
            let pool = Pool::from_fn(|_| Rc::clone(&tracker));
            let _g = pool.try_acquire().unwrap();
            assert_eq!(Rc::strong_count(&tracker), 5);
            let _: &Pool<Rc<()>, 4> = &pool;
        }
        assert_eq!(Rc::strong_count(&tracker), 1);
    }

    #[test]
    fn objects_mut_reaches_every_object() {
        let mut pool = Pool::new([1, 2, 3]);
        for v in pool.objects_mut() {
            *v *= 10;
        }
        let mut all: Vec<i32> = pool.objects_mut().map(|v| *v).collect();
        all.sort_unstable();
        assert_eq!(all, [10, 20, 30]);
    }

    #[test]
    fn acquire_waits_for_a_release_from_another_thread() {
        let pool = Pool::new([0u64; 1]);
        let first = pool.try_acquire().unwrap();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| *pool.acquire() + 1);
            // Released only after the waiter is running (or about to run):
            // either way it must get the object.
            std::thread::yield_now();
            drop(first);
            assert_eq!(waiter.join().unwrap(), 1);
        });
        assert_eq!(pool.stats().in_use, 0);
    }
}
