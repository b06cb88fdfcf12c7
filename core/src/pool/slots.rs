//! The slot storage and tagged free lists that [`Pool`](super::Pool) and
//! [`ShardedPool`](super::ShardedPool) are both built from; each pool adds
//! only how many free-list heads it has and which one a slot goes to.
//!
//! # Invariants
//!
//! - [`Slots`] owns the `N` objects. Each slot is, at any instant, either in
//!   exactly one [`FreeList`] or owned by exactly one live guard. Every index
//!   that enters a free list or a guard is below `N`: [`Slots::new`] links
//!   only `0..N`, each pool starts its heads at an index below `N` or at
//!   [`NIL`], and [`FreeList::pop`] never returns `NIL`. That is what lets
//!   [`Slots::slot`] skip the bounds check.
//! - A [`FreeList`] head packs the top index with a generation tag that every
//!   successful push and pop bumps, so a compare-and-swap that read a stale
//!   head fails (the ABA problem) unless the tag wrapped all the way round
//!   (2^32 operations with 64-bit atomics, 2^16 otherwise) in between.
//! - A push is a `Release` CAS and a pop an `Acquire` CAS, so everything the
//!   previous owner wrote to an object, the reset hook included, is visible
//!   to the next owner.
//! - Each slot's state word (acquire count shifted left by one, in-use flag
//!   in bit 0) is written only by the slot's current owner, with a plain load
//!   and store, so the statistics cost no read-modify-write on the hot path;
//!   [`Slots::stats`] sums the words. Misses happen on the cold path and use
//!   an ordinary atomic counter.
//! - A release reads no free-list head before its compare-and-swap. The
//!   owner keeps, in its [`Ticket`], the head word its pop installed. While
//!   the slot is out, its `next` still holds the index that pop installed
//!   (only an owner writes `next`), so if the head still holds that word the
//!   slot goes back on top as it is; otherwise the failed compare-and-swap
//!   returns the head to link against. On some processors (Intel's among
//!   them) a load that follows a locked instruction waits for it to finish,
//!   so a load saved between the two compare-and-swaps is latency saved.
//! - Nothing here allocates, blocks on a lock or reads a clock.

use core::mem::{ManuallyDrop, MaybeUninit};

use super::{PoolStats, const_unless_loom};
use crate::sync::{AtomicU32, AtomicUsize, Ordering, UnsafeCell, spin_loop};

/// The head word of a free list: the top slot index in the low bits, the
/// generation tag in the high bits.
#[cfg(any(loom, target_has_atomic = "64"))]
mod word {
    pub(in crate::pool) type Word = u64;
    pub(super) use crate::sync::AtomicU64 as AtomicWord;
    pub(super) const INDEX_BITS: u32 = 32;
}

#[cfg(not(any(loom, target_has_atomic = "64")))]
mod word {
    pub(in crate::pool) type Word = u32;
    pub(super) use crate::sync::AtomicU32 as AtomicWord;
    pub(super) const INDEX_BITS: u32 = 16;
}

pub(super) use word::Word;
use word::{AtomicWord, INDEX_BITS};

const INDEX_MASK: Word = (1 << INDEX_BITS) - 1;

/// The index that marks the end of a free list.
pub(super) const NIL: u32 = INDEX_MASK as u32;

/// The per-slot owner word: acquire count shifted left by one, in-use flag in
/// bit 0.
const IN_USE: usize = 1;
const ONE_ACQUIRE: usize = 2;

#[inline]
const fn pack(index: u32, tag: Word) -> Word {
    (tag << INDEX_BITS) | index as Word
}

#[inline]
const fn index_of(head: Word) -> u32 {
    (head & INDEX_MASK) as u32
}

#[inline]
const fn next_tag(head: Word) -> Word {
    (head >> INDEX_BITS).wrapping_add(1) & (Word::MAX >> INDEX_BITS)
}

/// Keeps a free-list head on a cache line of its own, so that threads
/// working on their objects do not slow down the ones acquiring.
#[cfg_attr(any(target_arch = "x86_64", target_arch = "aarch64"), repr(align(128)))]
#[cfg_attr(
    not(any(target_arch = "x86_64", target_arch = "aarch64")),
    repr(align(64))
)]
struct Padded<T>(T);

/// One object and the bookkeeping that goes with it.
pub(super) struct Slot<T> {
    /// The slot below this one in its free list; meaningful only while the
    /// slot is in the free list. Atomic because a thread that lost a race may
    /// still read it while the winner relinks the slot; the tag makes such a
    /// stale read harmless.
    next: AtomicU32,
    /// Written only by the slot's current owner (see the module docs).
    state: AtomicUsize,
    /// The object; reached only by the slot's owner.
    pub(super) value: UnsafeCell<T>,
}

impl<T> Slot<T> {
    const_unless_loom! {
        fn new(value: T, next: u32) -> Self {
            Self { next: AtomicU32::new(next), state: AtomicUsize::new(0), value: UnsafeCell::new(value) }
        }
    }
}

/// A slot just popped off a free list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Taken {
    pub(super) index: u32,
    /// The head word the pop installed.
    installed: Word,
}

/// What the owner of a slot remembers about it, so that the release reads
/// no free-list head before its compare-and-swap (see the module docs).
#[derive(Clone, Copy, Debug)]
pub(super) struct Ticket {
    pub(super) index: u32,
    /// The head word the pop installed: the release's first guess of the
    /// head it will find.
    installed: Word,
}

/// A Treiber stack of slot indices with a tagged head, padded to a cache
/// line of its own.
pub(super) struct FreeList(Padded<AtomicWord>);

impl FreeList {
    const_unless_loom! {
        /// A free list whose top is slot `top` (or empty, for [`NIL`]); the
        /// rest of the list is the `next` links [`Slots::new`] set up.
        pub(super) fn new(top: u32) -> Self {
            Self(Padded(AtomicWord::new(pack(top, 0))))
        }
    }

    /// Pops a slot of `slots` off this list, or returns the empty head word
    /// it found.
    #[inline]
    pub(super) fn pop<T, const N: usize>(&self, slots: &Slots<T, N>) -> Result<Taken, Word> {
        let head_word = &self.0.0;
        let mut head = head_word.load(Ordering::Acquire);
        loop {
            let index = index_of(head);
            if index == NIL {
                return Err(head);
            }
            // A thread that won a race may be relinking this slot right now;
            // the value read then is stale, and the tag in `head` makes the
            // CAS below fail, so a stale `next` is never installed.
            let next = slots.slot(index).next.load(Ordering::Relaxed);
            let installed = pack(next, next_tag(head));
            match head_word.compare_exchange_weak(
                head,
                installed,
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(Taken { index, installed }),
                Err(actual) => head = actual,
            }
        }
    }

    /// Pushes slot `index` of `slots`, which its owner is done with, onto
    /// this list. `guess` is the head word the owner's pop installed (see
    /// [`Ticket`]): the first attempt expects it, without reading the head.
    #[inline]
    pub(super) fn push<T, const N: usize>(&self, slots: &Slots<T, N>, index: u32, guess: Word) {
        let head_word = &self.0.0;
        // The slot's `next` still holds `index_of(guess)`: the pop read it
        // and installed it in `guess`, and only an owner writes `next`. So if
        // the head still holds `guess`, the slot can go on top as it is.
        let mut head = guess;
        loop {
            match head_word.compare_exchange_weak(
                head,
                pack(index, next_tag(head)),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(actual) => {
                    head = actual;
                    slots
                        .slot(index)
                        .next
                        .store(index_of(head), Ordering::Relaxed);
                }
            }
        }
    }

    /// Whether the head still holds `seen`, judged by a compare-and-swap
    /// that would store the word it expects: as a read-modify-write it reads
    /// the latest value of the head, where a plain load could return an
    /// older one and miss a push. Storing the same word changes nothing
    /// another thread could act on, so it cannot cause an ABA mistake.
    #[inline]
    pub(super) fn still(&self, seen: Word) -> bool {
        self.0
            .0
            .compare_exchange(seen, seen, Ordering::Acquire, Ordering::Acquire)
            .is_ok()
    }
}

/// The `N` slots of a pool, its reset hook and its miss counter.
pub(super) struct Slots<T, const N: usize> {
    array: [Slot<T>; N],
    misses: AtomicUsize,
    reset: Option<fn(&mut T)>,
}

impl<T, const N: usize> Slots<T, N> {
    const_unless_loom! {
        /// Takes ownership of `objects` and links each run of `block`
        /// consecutive slots (`block >= 1`; the last run may be shorter) into
        /// a list of its own, in index order, whose top is the run's first
        /// slot.
        pub(super) fn new(objects: [T; N], block: usize, reset: Option<fn(&mut T)>) -> Self {
            let objects = ManuallyDrop::new(objects);
            let source = (&raw const objects).cast::<T>();
            let mut array = [const { MaybeUninit::<Slot<T>>::uninit() }; N];
            let mut i = 0;
            while i < N {
                // SAFETY: `i < N`, so the read is inside the array; each
                // element is read exactly once and `objects` is never dropped,
                // so every object ends up owned by exactly one slot.
                let value = unsafe { source.add(i).read() };
                let next = if i + 1 < N && (i + 1) % block != 0 { (i + 1) as u32 } else { NIL };
                array[i] = MaybeUninit::new(Slot::new(value, next));
                i += 1;
            }
            // SAFETY: the loop initialised all `N` elements, and
            // `[MaybeUninit<X>; N]` has the layout of `[X; N]`. `array` has no
            // drop glue, so reading it out does not duplicate anything.
            let array = unsafe { (&raw const array).cast::<[Slot<T>; N]>().read() };
            Self { array, misses: AtomicUsize::new(0), reset }
        }
    }

    /// The slot at `index`, without a bounds check.
    ///
    /// Callers pass only indices taken from a free list or held by a guard.
    #[inline(always)]
    pub(super) fn slot(&self, index: u32) -> &Slot<T> {
        debug_assert!((index as usize) < N);
        // SAFETY: indices come only from the free lists and from guards, and
        // every index ever put in either is below `N` (see the module docs).
        unsafe { self.array.get_unchecked(index as usize) }
    }

    /// `taken`, counting a miss when it is `None`.
    #[inline]
    pub(super) fn count_miss(&self, taken: Option<Taken>) -> Option<Taken> {
        if taken.is_none() {
            self.misses.fetch_add(1, Ordering::Relaxed);
        }
        taken
    }

    /// Calls `take` until it yields a slot, backing off between attempts;
    /// a call that has to wait counts as one miss.
    #[inline]
    pub(super) fn take_spinning(&self, mut take: impl FnMut() -> Option<Taken>) -> Taken {
        if let Some(taken) = take() {
            return taken;
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let mut spins: u32 = 1;
        loop {
            for _ in 0..spins {
                spin_loop();
            }
            if let Some(taken) = take() {
                return taken;
            }
            spins = (spins * 2).min(64);
        }
    }

    /// Records that the caller now owns the slot it took.
    #[inline]
    pub(super) fn claim(&self, taken: Taken) -> Ticket {
        let state = &self.slot(taken.index).state;
        // Only the owner writes the state word, so a load and a store suffice.
        state.store(
            state
                .load(Ordering::Relaxed)
                .wrapping_add(ONE_ACQUIRE | IN_USE),
            Ordering::Relaxed,
        );
        Ticket {
            index: taken.index,
            installed: taken.installed,
        }
    }

    /// Runs the reset hook on the slot of `ticket`, which the caller owns,
    /// then marks it free and hands it to `push` with the head word to try
    /// first, even if the hook unwinds.
    #[inline]
    pub(super) fn release(&self, ticket: &Ticket, push: impl Fn(u32, Word)) {
        /// Returns the slot even if the reset hook unwinds.
        struct Return<'a, T, const N: usize, P: Fn(u32, Word)>(&'a Slots<T, N>, Ticket, P);
        impl<T, const N: usize, P: Fn(u32, Word)> Drop for Return<'_, T, N, P> {
            #[inline]
            fn drop(&mut self) {
                let ticket = self.1;
                let state = &self.0.slot(ticket.index).state;
                state.store(state.load(Ordering::Relaxed) & !IN_USE, Ordering::Relaxed);
                (self.2)(ticket.index, ticket.installed);
            }
        }
        let give_back = Return(self, *ticket, push);
        if let Some(reset) = self.reset {
            self.slot(ticket.index).value.with_mut(|value| {
                // SAFETY: the caller owns the slot until `give_back` pushes
                // it, so this is the only access to the object.
                reset(unsafe { &mut *value });
            });
        }
        drop(give_back);
    }

    /// The statistics summed over the slots, in O(N); a snapshot assembled
    /// slot by slot while other threads use the pool.
    pub(super) fn stats(&self) -> PoolStats {
        let mut acquires: u64 = 0;
        let mut in_use: usize = 0;
        let mut touched: usize = 0;
        for slot in &self.array {
            let state = slot.state.load(Ordering::Relaxed);
            acquires += (state / ONE_ACQUIRE) as u64;
            in_use += state & IN_USE;
            touched += usize::from(state != 0);
        }
        PoolStats {
            capacity: N,
            acquires,
            // Saturating: a slot whose acquire count wrapped (after 2^31
            // acquires on 32-bit targets) could otherwise underflow.
            releases: acquires.saturating_sub(in_use as u64),
            misses: self.misses.load(Ordering::Relaxed) as u64,
            in_use,
            high_water: touched,
        }
    }

    /// Exclusive access to every object.
    pub(super) fn objects_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.array.iter_mut().map(|slot| {
            // SAFETY: `&mut self` proves that no guard is alive (each borrows
            // the pool that owns these slots), so nobody else can be
            // accessing any object.
            slot.value.with_mut(|value| unsafe { &mut *value })
        })
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn tagged_head_packs_and_unpacks() {
        let head = pack(5, 7);
        assert_eq!(index_of(head), 5);
        assert_eq!(next_tag(head), 8);
        let wrapped = pack(NIL, Word::MAX >> INDEX_BITS);
        assert_eq!(index_of(wrapped), NIL);
        assert_eq!(next_tag(wrapped), 0);
    }

    #[test]
    fn blocks_are_linked_separately_in_index_order() {
        let slots: Slots<u8, 5> = Slots::new([0; 5], 2, None);
        let next: [u32; 5] = core::array::from_fn(|i| slots.array[i].next.load(Ordering::Relaxed));
        assert_eq!(next, [1, NIL, 3, NIL, NIL]);
        let list = FreeList::new(2);
        let (first, second) = (list.pop(&slots).unwrap(), list.pop(&slots).unwrap());
        assert_eq!((first.index, second.index), (2, 3));
        assert!(list.pop(&slots).is_err());
        // A stale guess costs a failed compare-and-swap, never a wrong link.
        list.push(&slots, 2, first.installed);
        list.push(&slots, 3, second.installed);
        assert_eq!(list.pop(&slots).map(|t| t.index), Ok(3));
        assert_eq!(list.pop(&slots).map(|t| t.index), Ok(2));
        assert!(list.pop(&slots).is_err());
    }
}
