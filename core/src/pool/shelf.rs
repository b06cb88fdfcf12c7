//! A lock-free stack of values on numbered places, with a seal.
//!
//! [`Shelf`] holds at most one value per place of the storage it is given
//! (any `AsRef<[ShelfPlace<T>]>`: an array, a boxed slice). A value is put on
//! a place named by its owner ([`Shelf::put`]) and taken back, most recently
//! put first, by whoever comes next ([`Shelf::take`]). It is built for a
//! runtime that keeps objects it owns by index elsewhere (connections by
//! their slot number, say) and wants to hand them between threads without a
//! lock while nothing else needs its attention.
//!
//! # The seal
//!
//! [`Shelf::seal`] stops puts and ordinary takes: from the moment it
//! returns, [`Shelf::put`] hands its value back and [`Shelf::take`] finds
//! nothing, while [`Shelf::take_sealed`] still empties the shelf. The seal is
//! a bit of the head word that every put and take compares and swaps, so a
//! put either lands before the seal (and the sealer's later
//! [`take_sealed`](Shelf::take_sealed) finds it) or fails after it: a
//! sealer that drains after sealing never misses a value. That is what lets
//! a runtime send its objects somewhere else while something (a queue of
//! waiters, a shutdown) needs them, with no store-then-load race between
//! "is anyone waiting" and "put it on the shelf".
//!
//! # Invariants
//!
//! - Each place is, at any instant, empty, or claimed by exactly one caller
//!   (a put writing it, a take reading it), or on the stack exactly once.
//!   Its `full` flag is set by the put that claims it (a swap, so two puts
//!   of one place cannot both claim it) and cleared by the take that read
//!   it, after the read.
//! - The head packs the top place (or none), the seal bit and a
//!   generation tag that every successful push and pop bumps, so a
//!   compare-and-swap that read a stale head fails (the ABA problem) unless
//!   the 31-bit tag wrapped all the way round in between. Every change of
//!   the head is a read-modify-write, so a push's `Release` and a pop's
//!   `Acquire` pair up through any number of seals in between: what a put
//!   wrote is what the take reads.
//! - Nothing here allocates, blocks or reads a clock. Each operation is one
//!   compare-and-swap on the head when it meets no contention.
//!
//! ```
//! use mechops_core::pool::shelf::{Shelf, ShelfPlace};
//!
//! let shelf = Shelf::new([ShelfPlace::new(), ShelfPlace::new()]);
//! assert_eq!(shelf.put(1, "b"), Ok(()));
//! assert_eq!(shelf.put(1, "again"), Err("again")); // place 1 is taken
//! assert_eq!(shelf.take(), Some((1, "b")));
//!
//! shelf.put(0, "a").unwrap();
//! assert!(!shelf.seal());
//! assert_eq!(shelf.put(1, "late"), Err("late"));
//! assert_eq!(shelf.take(), None);
//! assert_eq!(shelf.take_sealed(), Some((0, "a")));
//! ```

use core::fmt;
use core::marker::PhantomData;
use core::mem::MaybeUninit;

use crate::sync::{AtomicBool, AtomicU32, AtomicU64, Ordering, UnsafeCell};

/// The place index that marks an empty stack.
const NIL: u32 = u32::MAX;
const INDEX_MASK: u64 = u32::MAX as u64;
const SEALED: u64 = 1 << 32;
const TAG_SHIFT: u32 = 33;

/// The most places a shelf can use; places past it are never used.
pub const MAX_PLACES: usize = NIL as usize;

#[inline]
const fn index_of(head: u64) -> u32 {
    (head & INDEX_MASK) as u32
}

/// The head after a push or pop of `head`: top `index`, the seal kept, the
/// tag bumped.
#[inline]
const fn next_head(head: u64, index: u32) -> u64 {
    let tag = (head >> TAG_SHIFT).wrapping_add(1);
    (tag << TAG_SHIFT) | (head & SEALED) | index as u64
}

/// One place of a [`Shelf`]: room for one value and its link.
pub struct ShelfPlace<T> {
    /// The place below this one on the stack; meaningful only while the
    /// place is on it. Atomic because a take that lost a race may still read
    /// it while the winner relinks the place; the tag makes that harmless.
    next: AtomicU32,
    /// Set from the put that claims the place until the take that read it
    /// is done with it.
    full: AtomicBool,
    value: UnsafeCell<MaybeUninit<T>>,
}

// SAFETY: a place's value is reached only by the shelf's put that claimed
// the place and the take that popped it, one after the other, ordered by the
// `full` flag and the head (see the module docs); values only move between
// threads, so `T: Send` suffices, as for `Mutex<T>`. A place has no method
// of its own that touches the value.
unsafe impl<T: Send> Sync for ShelfPlace<T> {}

impl<T> ShelfPlace<T> {
    /// An empty place.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Self {
            next: AtomicU32::new(NIL),
            full: AtomicBool::new(false),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// An empty place (loom build: loom atomics are not `const`).
    #[cfg(loom)]
    pub fn new() -> Self {
        Self {
            next: AtomicU32::new(NIL),
            full: AtomicBool::new(false),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }
}

impl<T> Default for ShelfPlace<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> fmt::Debug for ShelfPlace<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShelfPlace").finish_non_exhaustive()
    }
}

/// A lock-free stack of values on the places of `S`, with a seal. See the
/// [module documentation](self).
pub struct Shelf<T, S: AsRef<[ShelfPlace<T>]>> {
    head: AtomicU64,
    places: S,
    _values: PhantomData<T>,
}

// SAFETY: the shelf hands each value from one put to one take, ordered by
// the Release/Acquire pair on the head (module docs); values only move
// between threads, so `T: Send` suffices.
unsafe impl<T: Send, S: AsRef<[ShelfPlace<T>]> + Sync> Sync for Shelf<T, S> {}

impl<T, S: AsRef<[ShelfPlace<T>]>> fmt::Debug for Shelf<T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let head = self.head.load(Ordering::Relaxed);
        f.debug_struct("Shelf")
            .field("places", &self.capacity())
            .field("empty", &(index_of(head) == NIL))
            .field("sealed", &(head & SEALED != 0))
            .finish()
    }
}

impl<T, S: AsRef<[ShelfPlace<T>]>> Shelf<T, S> {
    /// An empty, unsealed shelf over `places`. Places past [`MAX_PLACES`]
    /// are never used.
    pub fn new(places: S) -> Self {
        Self {
            head: AtomicU64::new(u64::from(NIL)),
            places,
            _values: PhantomData,
        }
    }

    /// How many places can hold a value.
    pub fn capacity(&self) -> usize {
        self.places.as_ref().len().min(MAX_PLACES)
    }

    /// Puts `value` on place `index`, or hands it back when the place does
    /// not exist, already holds a value (or is being read), or the shelf is
    /// sealed.
    pub fn put(&self, index: usize, value: T) -> Result<(), T> {
        let Some(place) = self.place(index) else {
            return Err(value);
        };
        let mut head = self.head.load(Ordering::Relaxed);
        if head & SEALED != 0 {
            return Err(value);
        }
        // Acquire: the take that last read this place cleared the flag with
        // Release after its read, which must come before this write.
        if place.full.swap(true, Ordering::Acquire) {
            return Err(value);
        }
        // SAFETY: the swap above claimed the place: no other put can write
        // it and no take can read it until it is on the stack.
        place.value.with_mut(|v| unsafe { (*v).write(value) });
        loop {
            if head & SEALED != 0 {
                // SAFETY: still claimed by this put and not on the stack;
                // the value was written just above.
                let value = place.value.with_mut(|v| unsafe { (*v).assume_init_read() });
                place.full.store(false, Ordering::Release);
                return Err(value);
            }
            place.next.store(index_of(head), Ordering::Relaxed);
            match self.head.compare_exchange_weak(
                head,
                next_head(head, index as u32),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(actual) => head = actual,
            }
        }
    }

    /// Takes the value put last, with its place, unless the shelf is empty
    /// or sealed.
    pub fn take(&self) -> Option<(usize, T)> {
        self.pop(false)
    }

    /// Takes the value put last, with its place, sealed or not: how a
    /// sealer empties the shelf.
    pub fn take_sealed(&self) -> Option<(usize, T)> {
        self.pop(true)
    }

    /// Seals the shelf; whether it was sealed already.
    pub fn seal(&self) -> bool {
        self.head.fetch_or(SEALED, Ordering::AcqRel) & SEALED != 0
    }

    /// Unseals the shelf; whether it was sealed.
    pub fn unseal(&self) -> bool {
        self.head.fetch_and(!SEALED, Ordering::AcqRel) & SEALED != 0
    }

    /// Whether the shelf is sealed (a snapshot).
    pub fn is_sealed(&self) -> bool {
        self.head.load(Ordering::Acquire) & SEALED != 0
    }

    /// Whether no value is on the shelf (a snapshot).
    pub fn is_empty(&self) -> bool {
        index_of(self.head.load(Ordering::Acquire)) == NIL
    }

    fn place(&self, index: usize) -> Option<&ShelfPlace<T>> {
        if index >= MAX_PLACES {
            return None;
        }
        self.places.as_ref().get(index)
    }

    fn pop(&self, sealed_too: bool) -> Option<(usize, T)> {
        let mut head = self.head.load(Ordering::Acquire);
        loop {
            if !sealed_too && head & SEALED != 0 {
                return None;
            }
            let index = index_of(head);
            // Every index on the stack was pushed by `put`, which checked
            // it against the places; `None` cannot happen.
            let place = self.place(index as usize)?;
            // A take that won a race may be relinking this place right
            // now; a stale `next` makes the CAS below fail on the tag.
            let next = place.next.load(Ordering::Relaxed);
            match self.head.compare_exchange_weak(
                head,
                next_head(head, next),
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    // SAFETY: the CAS popped the place, so this take alone
                    // owns it; the put that pushed it wrote the value before
                    // its Release CAS, which this Acquire CAS follows in the
                    // head's modification order (all read-modify-writes).
                    let value = place.value.with_mut(|v| unsafe { (*v).assume_init_read() });
                    place.full.store(false, Ordering::Release);
                    return Some((index as usize, value));
                }
                Err(actual) => head = actual,
            }
        }
    }
}

impl<T, S: AsRef<[ShelfPlace<T>]>> Drop for Shelf<T, S> {
    fn drop(&mut self) {
        while self.take_sealed().is_some() {}
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::vec::Vec;

    fn places<T>(n: usize) -> Vec<ShelfPlace<T>> {
        (0..n).map(|_| ShelfPlace::new()).collect()
    }

    #[test]
    fn last_put_is_taken_first() {
        let shelf = Shelf::new(places(3));
        shelf.put(0, 10).unwrap();
        shelf.put(2, 12).unwrap();
        shelf.put(1, 11).unwrap();
        assert_eq!(shelf.take(), Some((1, 11)));
        assert_eq!(shelf.take(), Some((2, 12)));
        assert_eq!(shelf.take(), Some((0, 10)));
        assert_eq!(shelf.take(), None);
        assert!(shelf.is_empty());
    }

    #[test]
    fn a_place_holds_one_value_and_unknown_places_refuse() {
        let shelf = Shelf::new(places(2));
        assert_eq!(shelf.put(2, 'x'), Err('x'));
        shelf.put(0, 'a').unwrap();
        assert_eq!(shelf.put(0, 'b'), Err('b'));
        assert_eq!(shelf.take(), Some((0, 'a')));
        shelf.put(0, 'b').unwrap();
        assert_eq!(shelf.take(), Some((0, 'b')));
    }

    #[test]
    fn the_seal_stops_puts_and_takes_but_not_draining() {
        let shelf = Shelf::new(places(2));
        shelf.put(0, 1).unwrap();
        assert!(!shelf.seal());
        assert!(shelf.seal());
        assert!(shelf.is_sealed());
        assert_eq!(shelf.put(1, 2), Err(2));
        assert_eq!(shelf.take(), None);
        assert_eq!(shelf.take_sealed(), Some((0, 1)));
        assert_eq!(shelf.take_sealed(), None);
        // A refused put left its place free.
        assert!(shelf.unseal());
        shelf.put(1, 2).unwrap();
        assert_eq!(shelf.take(), Some((1, 2)));
    }

    #[test]
    fn values_left_on_the_shelf_are_dropped_with_it() {
        let counted = Arc::new(());
        let shelf = Shelf::new(places(2));
        shelf.put(0, Arc::clone(&counted)).unwrap();
        shelf.put(1, Arc::clone(&counted)).unwrap();
        assert_eq!(Arc::strong_count(&counted), 3);
        drop(shelf);
        assert_eq!(Arc::strong_count(&counted), 1);
    }

    #[test]
    fn threads_passing_values_lose_and_duplicate_none() {
        const PLACES: usize = 8;
        let shelf = Shelf::new(places::<usize>(PLACES));
        for i in 0..PLACES {
            shelf.put(i, i).unwrap();
        }
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    // Miri interprets every step: fewer rounds keep it to seconds.
                    let rounds = if cfg!(miri) { 200 } else { 20_000 };
                    for _ in 0..rounds {
                        if let Some((index, value)) = shelf.take() {
                            assert_eq!(index, value, "a value moved to another place");
                            shelf.put(index, value).unwrap();
                        }
                    }
                });
            }
        });
        let mut seen = Vec::new();
        while let Some((index, value)) = shelf.take() {
            assert_eq!(index, value);
            seen.push(value);
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..PLACES).collect::<Vec<_>>());
    }
}
