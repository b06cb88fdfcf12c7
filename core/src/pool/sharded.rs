//! A fixed-capacity, lock-free object pool split into shards, so that threads
//! working on different shards do not contend for one free-list head.
//!
//! [`ShardedPool<T, N, S>`] owns `N` objects in one array, cut into `S`
//! contiguous blocks of `N.div_ceil(S)` slots. Each block is the home of one
//! shard: a Treiber free list, exactly as in [`Pool`](super::Pool), whose head
//! sits on a cache line of its own. A caller names the shard it prefers with
//! a hint ([`ShardedPool::try_acquire_hinted`]); threads that pass different
//! hints touch different heads and, because each block is contiguous and each
//! free list is a stack, mostly different objects, so they do not bounce
//! cache lines between cores.
//!
//! # Invariants
//!
//! - Every slot is, at any instant, either in its home shard's free list or
//!   owned by exactly one live guard. A released object always goes back to
//!   its home shard (the shard is derived from the slot index, so a guard
//!   needs no extra field), whichever shard the caller asked for.
//! - Each head packs the top index with a generation tag that every push and
//!   pop bumps, so a stale compare-and-swap fails (ABA-safe), as in
//!   [`Pool`](super::Pool); the tag width is the same.
//! - A caller whose preferred shard is empty steals from the others in turn.
//!   `None` from [`ShardedPool::try_acquire_hinted`] therefore still means
//!   the whole pool was empty at one moment: the call reads every head, finds
//!   each empty, then checks every head again and finds each word unchanged.
//!   Every push and pop changes a head's tag, so each shard stayed empty from
//!   its first read to its second, and all those intervals share the moment
//!   between the two passes. If any head changed, the call starts over. The
//!   second pass uses a compare-and-swap of the word with itself rather than
//!   a load: a read-modify-write reads the latest value of the head, while a
//!   load may return an older one and miss a push made meanwhile (the loom
//!   model `sharded_none_means_every_shard_was_empty_at_once` finds that
//!   interleaving with loads). The identity swap changes nothing another
//!   thread could act on, so it cannot cause an ABA mistake.
//! - The release of a slot (`Release` CAS) happens-before its next acquire
//!   (`Acquire` load/CAS), so the previous owner's writes and the reset
//!   hook's are visible to the next owner.
//! - Nothing here allocates, blocks on a lock, reads a clock or knows which
//!   thread calls it: the hint is an input. `mechops_std::pool::thread_shard_hint`
//!   supplies a per-thread one.
//!
//! # Statistics
//!
//! As in [`Pool`](super::Pool), acquires, releases and objects in use are
//! derived from one word per slot written only by the slot's owner, and
//! misses (the cold path) use an atomic counter, so the hot path has no extra
//! read-modify-write. The high-water mark is the number of slots ever
//! acquired, which within one shard equals the most of its objects out at
//! once (each shard is a stack that starts in index order). Summed over
//! shards it is the sum of the shards' peaks: exact with one shard, and with
//! several an upper bound of the most objects out at once (two threads that
//! each use one object of their own shard, at different times, count two).
//!
//! # Choosing `S` and the hints
//!
//! `S` is the number of threads expected to use the pool at once (a power of
//! two makes `hint % S` a mask). Hints only steer: any hint is valid, and two
//! threads passing the same hint are merely as contended as with
//! [`Pool`](super::Pool). Each shard gets `N.div_ceil(S)` slots and the last
//! may get fewer, or none if `S > N`; a thread whose shard runs dry steals.
//!
//! ```
//! use mechops_core::pool::ShardedPool;
//!
//! static BUFFERS: ShardedPool<[u8; 64], 8, 2> = ShardedPool::new([[0; 64]; 8]);
//!
//! let mut buffer = BUFFERS.try_acquire_hinted(1).expect("eight buffers are free");
//! assert_eq!(buffer.shard(), 1);
//! buffer[0] = 7;
//! drop(buffer);
//! assert_eq!(BUFFERS.stats().in_use, 0);
//! ```
//!
//! # Thread safety
//!
//! The bounds are those of [`Pool`](super::Pool) and `Mutex<T>`:
//! `ShardedPool<T, N, S>: Sync` needs only `T: Send`. A pool of `Rc` values
//! cannot be shared between threads:
//!
//! ```compile_fail,E0277
//! use mechops_core::pool::ShardedPool;
//! use std::rc::Rc;
//!
//! fn shared_across_threads<X: Sync>(_: &X) {}
//!
//! let pool: ShardedPool<Rc<u32>, 2, 2> = ShardedPool::new([Rc::new(1), Rc::new(2)]);
//! shared_across_threads(&pool); // `Rc<u32>` cannot be sent between threads
//! ```
//!
//! A guard hands out `&T`, so sharing a guard needs `T: Sync`:
//!
//! ```compile_fail,E0277
//! use mechops_core::pool::ShardedPool;
//! use std::cell::Cell;
//!
//! fn shared_across_threads<X: Sync>(_: &X) {}
//!
//! let pool: ShardedPool<Cell<u32>, 2, 2> = ShardedPool::new([Cell::new(1), Cell::new(2)]);
//! let guard = pool.try_acquire().unwrap();
//! shared_across_threads(&guard); // `Cell<u32>` cannot be shared between threads
//! ```
//!
//! Moving a guard to another thread needs `T: Send`:
//!
//! ```compile_fail,E0277
//! use mechops_core::pool::ShardedPool;
//! use std::rc::Rc;
//!
//! fn sent_to_another_thread<X: Send>(_: X) {}
//!
//! let pool: ShardedPool<Rc<u32>, 1, 1> = ShardedPool::new([Rc::new(1)]);
//! sent_to_another_thread(pool.try_acquire().unwrap()); // `Rc<u32>` is not `Send`
//! ```
//!
//! A pool of `Cell` values can be shared, and its guards moved, between
//! threads:
//!
//! ```
//! use mechops_core::pool::ShardedPool;
//! use std::cell::Cell;
//!
//! let pool: ShardedPool<Cell<u32>, 2, 2> = ShardedPool::new([Cell::new(0), Cell::new(0)]);
//! std::thread::scope(|s| {
//!     for hint in 0..2 {
//!         let pool = &pool;
//!         s.spawn(move || {
//!             let cell = pool.acquire_hinted(hint);
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
use core::mem::MaybeUninit;
use core::ops::{Deref, DerefMut};

use super::slots::{FreeList, NIL, Slots, Taken, Ticket, Word};
use super::{MAX_CAPACITY, PoolStats, const_unless_loom};

/// A fixed-capacity, lock-free pool of `N` objects of type `T`, split into
/// `S` shards with one free-list head each.
///
/// See the [module documentation](self) for the algorithm, the statistics
/// and how to pick hints.
pub struct ShardedPool<T, const N: usize, const S: usize> {
    heads: [FreeList; S],
    slots: Slots<T, N>,
}

// SAFETY: as for `Pool`: each object is owned by one guard at a time, and the
// Release/Acquire pair on its home shard's head orders one owner's accesses
// before the next owner's, so objects only move between threads and
// `T: Send` suffices. Shared access from several threads goes through
// `&ShardedPoolGuard`, whose `Sync` requires `T: Sync`.
unsafe impl<T: Send, const N: usize, const S: usize> Sync for ShardedPool<T, N, S> {}

impl<T, const N: usize, const S: usize> ShardedPool<T, N, S> {
    /// Slots per shard (the home block size). At least 1, so that dividing
    /// by it is defined even for an empty pool.
    const BLOCK: usize = if N == 0 { 1 } else { N.div_ceil(S) };

    const_unless_loom! {
        /// Creates a pool that owns `objects` and hands them back as they were
        /// left by their last user.
        ///
        /// Fails to compile if `S` is zero or `N` exceeds [`MAX_CAPACITY`].
        pub fn new(objects: [T; N]) -> Self {
            Self::build(objects, None)
        }
    }

    const_unless_loom! {
        /// Creates a pool that owns `objects` and runs `reset` on each object
        /// as it is released, before any other thread can acquire it.
        ///
        /// If `reset` panics, the object still goes back to the pool.
        pub fn with_reset(objects: [T; N], reset: fn(&mut T)) -> Self {
            Self::build(objects, Some(reset))
        }
    }

    /// Creates a pool whose object `i` is `make(i)`, for objects that cannot
    /// be built in a constant context.
    pub fn from_fn(make: impl FnMut(usize) -> T) -> Self {
        Self::new(core::array::from_fn(make))
    }

    /// Like [`ShardedPool::from_fn`], with a reset hook as in
    /// [`ShardedPool::with_reset`].
    pub fn from_fn_with_reset(make: impl FnMut(usize) -> T, reset: fn(&mut T)) -> Self {
        Self::with_reset(core::array::from_fn(make), reset)
    }

    const_unless_loom! {
        fn build(objects: [T; N], reset: Option<fn(&mut T)>) -> Self {
            const {
                assert!(S > 0, "a ShardedPool needs at least one shard");
                assert!(N <= MAX_CAPACITY, "ShardedPool capacity exceeds MAX_CAPACITY");
            };
            let block = Self::BLOCK;
            // Each home block is its own list, in index order.
            let slots = Slots::new(objects, block, reset);
            let mut heads = [const { MaybeUninit::<FreeList>::uninit() }; S];
            let mut shard = 0;
            while shard < S {
                let first = shard * block;
                let top = if first < N { first as u32 } else { NIL };
                heads[shard] = MaybeUninit::new(FreeList::new(top));
                shard += 1;
            }
            // SAFETY: the loop initialised all `S` heads, `[MaybeUninit<X>; S]`
            // has the layout of `[X; S]`, and `MaybeUninit` has no drop glue,
            // so reading the array out does not duplicate anything.
            let heads = unsafe { (&raw const heads).cast::<[FreeList; S]>().read() };
            Self { heads, slots }
        }
    }

    /// The number of objects the pool owns.
    #[inline]
    pub const fn capacity(&self) -> usize {
        N
    }

    /// The number of shards.
    #[inline]
    pub const fn shards(&self) -> usize {
        S
    }

    /// Hands out a free object, trying shard 0 first; `None` at once if every
    /// object is in use.
    ///
    /// Threads that all call this contend on shard 0 as on a
    /// [`Pool`](super::Pool); give each thread its own hint through
    /// [`ShardedPool::try_acquire_hinted`] to spread them.
    #[inline]
    pub fn try_acquire(&self) -> Option<ShardedPoolGuard<'_, T, N, S>> {
        self.try_acquire_hinted(0)
    }

    /// Hands out a free object, trying shard `hint % S` first and stealing
    /// from the other shards, in order, when that one is empty.
    ///
    /// Returns `None` only if the whole pool was empty at one moment during
    /// the call (see the module docs); never blocks, never allocates. A
    /// `None` counts as a miss.
    #[inline]
    pub fn try_acquire_hinted(&self, hint: usize) -> Option<ShardedPoolGuard<'_, T, N, S>> {
        let taken = self.take(hint % S);
        self.slots.count_miss(taken).map(|taken| self.guard(taken))
    }

    /// Hands out a free object from shard 0 first, spinning until another
    /// thread releases one if every object is in use; see
    /// [`ShardedPool::acquire_hinted`].
    pub fn acquire(&self) -> ShardedPoolGuard<'_, T, N, S> {
        self.acquire_hinted(0)
    }

    /// Like [`ShardedPool::try_acquire_hinted`], but spins until another
    /// thread releases an object when every object is in use.
    ///
    /// A call that has to wait counts as one miss. Call it only when another
    /// thread is sure to release an object: in single-threaded code an
    /// exhausted pool would spin forever.
    pub fn acquire_hinted(&self, hint: usize) -> ShardedPoolGuard<'_, T, N, S> {
        let first = hint % S;
        let taken = self.slots.take_spinning(|| self.take(first));
        self.guard(taken)
    }

    /// A snapshot of the pool's statistics, in O(N).
    ///
    /// Exact when no other thread is using the pool, except `high_water`,
    /// which is the sum of the shards' peaks (see the module docs).
    pub fn stats(&self) -> PoolStats {
        self.slots.stats()
    }

    /// Exclusive access to every object, for inspection or bulk
    /// reinitialisation while no guard exists.
    pub fn objects_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.slots.objects_mut()
    }

    /// The home shard of slot `index`.
    #[inline(always)]
    const fn home(index: u32) -> usize {
        index as usize / Self::BLOCK
    }

    /// Takes a free slot, from shard `first` if it has one, else by stealing.
    #[inline]
    fn take(&self, first: usize) -> Option<Taken> {
        match self.heads[first].pop(&self.slots) {
            Ok(taken) => Some(taken),
            Err(_) if S == 1 => None,
            Err(_) => self.steal(first),
        }
    }

    /// The slow path of [`ShardedPool::take`]: tries every shard starting
    /// with `first`, and reports empty only after a second pass finds every
    /// head word exactly as the first pass left it empty.
    #[cold]
    fn steal(&self, first: usize) -> Option<Taken> {
        let mut seen: [Word; S] = [0; S];
        loop {
            for (k, empty) in seen.iter_mut().enumerate() {
                match self.heads[(first + k) % S].pop(&self.slots) {
                    Ok(taken) => return Some(taken),
                    Err(head) => *empty = head,
                }
            }
            // `still` reads each head's latest value (see `FreeList::still`).
            let unchanged = seen
                .iter()
                .enumerate()
                .all(|(k, &empty)| self.heads[(first + k) % S].still(empty));
            if unchanged {
                return None;
            }
        }
    }

    #[inline]
    fn guard(&self, taken: Taken) -> ShardedPoolGuard<'_, T, N, S> {
        ShardedPoolGuard {
            pool: self,
            ticket: self.slots.claim(taken),
            _owns: PhantomData,
        }
    }
}

impl<T, const N: usize, const S: usize> fmt::Debug for ShardedPool<T, N, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardedPool")
            .field("shards", &S)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Exclusive access to one object of a [`ShardedPool`]; gives the object back
/// to its home shard when dropped (after the pool's reset hook, if any).
///
/// `Send` when `T: Send`, `Sync` when `T: Send + Sync`.
pub struct ShardedPoolGuard<'a, T, const N: usize, const S: usize> {
    pool: &'a ShardedPool<T, N, S>,
    ticket: Ticket,
    /// The guard behaves like `&'a mut T` for `Send` and `Sync`.
    _owns: PhantomData<&'a mut T>,
}

impl<T, const N: usize, const S: usize> ShardedPoolGuard<'_, T, N, S> {
    /// The index of the object's slot, stable for the pool's life.
    #[inline]
    pub fn slot(&self) -> usize {
        self.ticket.index as usize
    }

    /// The object's home shard, where it returns on drop (not necessarily
    /// the shard the caller asked for, if that one was empty).
    #[inline]
    pub fn shard(&self) -> usize {
        ShardedPool::<T, N, S>::home(self.ticket.index)
    }
}

impl<T, const N: usize, const S: usize> Deref for ShardedPoolGuard<'_, T, N, S> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        self.pool.slots.slot(self.ticket.index).value.with(|value| {
            // SAFETY: the guard owns the slot (popped off a free list, pushed
            // back only when the guard drops), so no `&mut T` exists elsewhere;
            // the returned borrow is tied to `&self`.
            unsafe { &*value }
        })
    }
}

impl<T, const N: usize, const S: usize> DerefMut for ShardedPoolGuard<'_, T, N, S> {
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

impl<T, const N: usize, const S: usize> Drop for ShardedPoolGuard<'_, T, N, S> {
    #[inline]
    fn drop(&mut self) {
        let pool = self.pool;
        // A released object always goes back to its home shard.
        // A stolen object's guess is a head word of another shard; it fails
        // like any stale guess, or, if it matches by chance, is still right
        // (see `FreeList::push`).
        pool.slots.release(&self.ticket, |index, guess| {
            pool.heads[ShardedPool::<T, N, S>::home(index)].push(&pool.slots, index, guess);
        });
    }
}

impl<T: fmt::Debug, const N: usize, const S: usize> fmt::Debug for ShardedPoolGuard<'_, T, N, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardedPoolGuard")
            .field("slot", &self.ticket.index)
            .field("value", &**self)
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn each_shard_starts_with_its_own_block() {
        let pool: ShardedPool<usize, 6, 3> = ShardedPool::from_fn(|i| i);
        let a = pool.try_acquire_hinted(0).unwrap();
        let b = pool.try_acquire_hinted(1).unwrap();
        let c = pool.try_acquire_hinted(5).unwrap();
        assert_eq!((a.slot(), b.slot(), c.slot()), (0, 2, 4));
        assert_eq!((a.shard(), b.shard(), c.shard()), (0, 1, 2));
        assert_eq!((*a, *b, *c), (0, 2, 4));
    }

    #[test]
    fn steals_when_the_preferred_shard_is_empty_then_misses() {
        let pool: ShardedPool<u8, 4, 2> = ShardedPool::new([0; 4]);
        let held: Vec<_> = (0..4)
            .map(|_| pool.try_acquire_hinted(1).unwrap())
            .collect();
        let shards: Vec<usize> = held.iter().map(|g| g.shard()).collect();
        assert_eq!(shards, [1, 1, 0, 0], "own shard first, then the other");
        assert!(pool.try_acquire_hinted(1).is_none());
        assert!(pool.try_acquire_hinted(0).is_none());
        let stats = pool.stats();
        assert_eq!(
            (
                stats.acquires,
                stats.misses,
                stats.in_use,
                stats.available()
            ),
            (4, 2, 4, 0)
        );
        drop(held);
        let stats = pool.stats();
        assert_eq!((stats.releases, stats.in_use), (4, 0));
    }

    #[test]
    fn stolen_object_returns_to_its_home_shard() {
        let pool: ShardedPool<u8, 2, 2> = ShardedPool::new([0; 2]);
        let own = pool.try_acquire_hinted(0).unwrap();
        let stolen = pool.try_acquire_hinted(0).unwrap();
        assert_eq!((own.shard(), stolen.shard()), (0, 1));
        drop(stolen);
        // The stolen object went back to shard 1, so shard 1 serves it again.
        let again = pool.try_acquire_hinted(1).unwrap();
        assert_eq!(again.slot(), 1);
        drop(own);
        assert_eq!(pool.try_acquire_hinted(0).unwrap().slot(), 0);
    }

    #[test]
    fn every_object_is_handed_out_once_whatever_the_hints() {
        let pool: ShardedPool<usize, 7, 3> = ShardedPool::from_fn(|i| i * 10);
        let held: Vec<_> = (0..7)
            .map(|h| pool.try_acquire_hinted(h * 7 + 1).unwrap())
            .collect();
        assert!(pool.try_acquire().is_none());
        let mut values: Vec<usize> = held.iter().map(|g| **g).collect();
        values.sort_unstable();
        assert_eq!(values, [0, 10, 20, 30, 40, 50, 60]);
        // Blocks of 3: slots 6 alone in shard 2.
        assert!(held.iter().all(|g| g.shard() == g.slot() / 3));
    }

    #[test]
    fn more_shards_than_objects_still_serves_every_object() {
        let pool: ShardedPool<u8, 2, 4> = ShardedPool::new([1, 2]);
        let a = pool.try_acquire_hinted(3).unwrap();
        let b = pool.try_acquire_hinted(2).unwrap();
        assert!(pool.try_acquire_hinted(1).is_none());
        assert_eq!(*a + *b, 3);
    }

    #[test]
    fn reset_hook_runs_on_release_and_survives_a_panic() {
        let pool: ShardedPool<Vec<u8>, 2, 2> =
            ShardedPool::from_fn_with_reset(|_| Vec::new(), Vec::clear);
        pool.try_acquire_hinted(1)
            .unwrap()
            .extend_from_slice(b"abc");
        assert!(pool.try_acquire_hinted(1).unwrap().is_empty());

        let panicky: ShardedPool<u8, 1, 2> =
            ShardedPool::with_reset([1], |_| panic!("reset failed"));
        let result = std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| {
            drop(panicky.try_acquire_hinted(1).unwrap());
        }));
        assert!(result.is_err());
        assert_eq!(panicky.stats().in_use, 0);
        let again = panicky.try_acquire_hinted(1);
        assert!(again.is_some());
        core::mem::forget(again);
    }

    /// As for `Pool`; with hint 0 every second object is stolen from shard
    /// 1, so the unwinding release of a stolen object is covered too.
    #[test]
    fn panicking_reset_hooks_lose_no_slot() {
        use crate::pool::tests::{count_then_panic, release_through_panicking_hooks};
        let pool: ShardedPool<u32, 2, 2> = ShardedPool::with_reset([0, 0], count_then_panic);
        release_through_panicking_hooks(|| pool.try_acquire_hinted(0), || pool.stats());
    }

    #[test]
    fn high_water_is_the_sum_of_the_shards_peaks() {
        let pool: ShardedPool<u8, 8, 2> = ShardedPool::new([0; 8]);
        for _ in 0..50 {
            drop(pool.try_acquire_hinted(0).unwrap());
        }
        assert_eq!(pool.stats().high_water, 1);
        for _ in 0..50 {
            drop(pool.try_acquire_hinted(1).unwrap());
        }
        // Never two out at once, but each shard peaked at one.
        assert_eq!(pool.stats().high_water, 2);
        let held: Vec<_> = (0..3)
            .map(|_| pool.try_acquire_hinted(0).unwrap())
            .collect();
        drop(held);
        let stats = pool.stats();
        assert_eq!(
            (stats.high_water, stats.acquires, stats.releases),
            (4, 103, 103)
        );
    }

    #[test]
    fn single_shard_behaves_like_the_plain_pool() {
        let pool: ShardedPool<u8, 3, 1> = ShardedPool::new([0; 3]);
        let held: Vec<_> = (0..3)
            .map(|h| pool.try_acquire_hinted(h).unwrap())
            .collect();
        assert_eq!(held.iter().map(|g| g.slot()).collect::<Vec<_>>(), [0, 1, 2]);
        assert!(pool.try_acquire_hinted(9).is_none());
        assert_eq!(pool.stats().misses, 1);
    }

    #[test]
    fn zero_capacity_pool_always_misses() {
        let pool: ShardedPool<u8, 0, 2> = ShardedPool::new([]);
        assert!(pool.try_acquire_hinted(1).is_none());
        assert_eq!(
            (pool.capacity(), pool.shards(), pool.stats().misses),
            (0, 2, 1)
        );
    }

    #[test]
    fn drops_every_object_exactly_once() {
        use std::rc::Rc;
        let tracker = Rc::new(());
        {
            let pool: ShardedPool<Rc<()>, 5, 2> = ShardedPool::from_fn(|_| Rc::clone(&tracker));
            let _g = pool.try_acquire_hinted(1).unwrap();
            assert_eq!(Rc::strong_count(&tracker), 6);
        }
        assert_eq!(Rc::strong_count(&tracker), 1);
    }

    #[test]
    fn objects_mut_reaches_every_object() {
        let mut pool: ShardedPool<i32, 3, 2> = ShardedPool::new([1, 2, 3]);
        for v in pool.objects_mut() {
            *v *= 10;
        }
        let mut all: Vec<i32> = pool.objects_mut().map(|v| *v).collect();
        all.sort_unstable();
        assert_eq!(all, [10, 20, 30]);
    }

    #[test]
    fn acquire_waits_for_a_release_from_another_thread() {
        let pool: ShardedPool<u64, 2, 2> = ShardedPool::new([0; 2]);
        let first = pool.try_acquire_hinted(0).unwrap();
        let second = pool.try_acquire_hinted(1).unwrap();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| *pool.acquire_hinted(0) + 1);
            std::thread::yield_now();
            drop(second);
            assert_eq!(waiter.join().unwrap(), 1);
        });
        drop(first);
        assert_eq!(pool.stats().in_use, 0);
    }

    #[test]
    fn threads_with_their_own_hints_share_the_pool() {
        let pool: ShardedPool<u64, 4, 2> = ShardedPool::new([0; 4]);
        std::thread::scope(|s| {
            for hint in 0..2 {
                let pool = &pool;
                s.spawn(move || {
                    for _ in 0..1000 {
                        let mut a = pool.acquire_hinted(hint);
                        let mut b = pool.acquire_hinted(hint);
                        *a += 1;
                        *b += 1;
                    }
                });
            }
        });
        let mut pool = pool;
        assert_eq!(pool.objects_mut().map(|v| *v).sum::<u64>(), 4000);
        assert_eq!(pool.stats().acquires, 4000);
    }
}
