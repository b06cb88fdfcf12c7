//! The lowest-latency pool: a `&mut self` pool whose objects never move.
//!
//! Objects live in a slab (`Vec<T>`) for the pool's whole life; what moves is
//! a 32-bit index on a LIFO stack of idle slots. Acquiring pops an index,
//! releasing resets the object in place and pushes the index back: no object
//! is copied, nothing is atomic, and the create and reset hooks are generic
//! parameters the compiler inlines.
//!
//! Invariants: the slab never holds more than `max_size` objects; an index is
//! either on the idle stack or held by exactly one [`HfSlot`] or guard, never
//! both (tokens are neither `Clone` nor `Copy`, and carry the id of the pool
//! that issued them, so another pool refuses them); every object goes
//! through the reset hook before its index goes back on the stack, and a
//! reset hook that panics still gives the slot back (as the core's fixed
//! pool does), so a panic loses no slot.

use alloc::vec::Vec;
use core::fmt;
use core::ops::{Deref, DerefMut};

use super::id::PoolId;
use super::stats::PoolStats;

/// A slot on loan from a [`HighFrequencyPool`]: hand it back with
/// [`HighFrequencyPool::put`]. A token dropped without being put back keeps
/// its object out of circulation (counted as in use) until the pool drops.
///
/// A token only works with the pool that issued it: another pool refuses it
/// ([`ForeignSlot`], or `None` from `get`).
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a slot not put back stays out of the pool"]
pub struct HfSlot {
    index: u32,
    pool: PoolId,
}

/// A slot handed to a pool that did not issue it; the pool is unchanged
/// and the slot is handed back.
#[derive(Debug, PartialEq, Eq)]
pub struct ForeignSlot(pub HfSlot);

impl fmt::Display for ForeignSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the slot was issued by another high-frequency pool")
    }
}

impl core::error::Error for ForeignSlot {}

/// A single-owner pool for hot loops; see the module docs.
pub struct HighFrequencyPool<T, F, R> {
    slab: Vec<T>,
    idle: Vec<u32>,
    create: F,
    reset: R,
    id: PoolId,
    max_size: usize,
    /// The fast path counts only these two; hits and objects in use follow
    /// from them and the cold-path counters.
    acquired: u64,
    released: u64,
    high_water: u64,
    /// Cold-path counters: created, misses, exhausted.
    stats: PoolStats,
}

impl<T, F, R> fmt::Debug for HighFrequencyPool<T, F, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HighFrequencyPool")
            .field("max_size", &self.max_size)
            .field("live", &self.slab.len())
            .field("idle", &self.idle.len())
            .finish_non_exhaustive()
    }
}

impl<T, F, R> HighFrequencyPool<T, F, R>
where
    F: FnMut() -> T,
    R: FnMut(&mut T),
{
    /// A pool of at most `max_size` objects (capped at `u32::MAX`) with
    /// `prefill` of them created up front (capped at `max_size`).
    pub fn new(max_size: usize, prefill: usize, mut create: F, reset: R) -> Self {
        let max_size = max_size.min(u32::MAX as usize);
        let prefill = prefill.min(max_size);
        let reserve = max_size.min(4096).max(prefill);
        let mut slab = Vec::with_capacity(reserve);
        slab.extend((0..prefill).map(|_| create()));
        let mut idle = Vec::with_capacity(reserve);
        // Lowest index on top, so the first objects handed out are the
        // first created.
        idle.extend((0..prefill as u32).rev());
        Self {
            slab,
            idle,
            create,
            reset,
            id: PoolId::fresh(),
            max_size,
            acquired: 0,
            released: 0,
            high_water: 0,
            stats: PoolStats {
                created: prefill as u64,
                ..PoolStats::default()
            },
        }
    }

    /// Hands out a slot: the most recently returned one, else a new object;
    /// `None` at the maximum size.
    #[inline]
    pub fn take(&mut self) -> Option<HfSlot> {
        let index = match self.idle.pop() {
            Some(index) => index,
            None => self.grow()?,
        };
        self.acquired += 1;
        let in_use = self.acquired - self.released;
        if in_use > self.high_water {
            self.high_water = in_use;
        }
        Some(HfSlot {
            index,
            pool: self.id,
        })
    }

    #[cold]
    fn grow(&mut self) -> Option<u32> {
        if self.slab.len() >= self.max_size {
            self.stats.exhausted += 1;
            return None;
        }
        self.stats.misses += 1;
        self.stats.created += 1;
        // `max_size` is capped at `u32::MAX`, so the index fits.
        let index = self.slab.len() as u32;
        let obj = (self.create)();
        self.slab.push(obj);
        Some(index)
    }

    /// The object behind a slot; `None` for a slot of another pool.
    #[inline]
    pub fn get(&self, slot: &HfSlot) -> Option<&T> {
        if slot.pool != self.id {
            return None;
        }
        self.slab.get(slot.index as usize)
    }

    /// The object behind a slot, for changes; `None` for a slot of another
    /// pool.
    #[inline]
    pub fn get_mut(&mut self, slot: &HfSlot) -> Option<&mut T> {
        if slot.pool != self.id {
            return None;
        }
        self.slab.get_mut(slot.index as usize)
    }

    /// Takes a slot back, resetting its object in place; a slot of another
    /// pool is refused and handed back.
    #[inline]
    pub fn put(&mut self, slot: HfSlot) -> Result<(), ForeignSlot> {
        if slot.pool != self.id {
            return Err(ForeignSlot(slot));
        }
        self.release(slot.index);
        Ok(())
    }

    /// Resets the object at `index` (issued by this pool) and puts the
    /// index back, even if the reset hook panics.
    #[inline]
    fn release(&mut self, index: u32) {
        /// Gives the slot back if the hook unwinds.
        struct OnUnwind<'a> {
            idle: &'a mut Vec<u32>,
            released: &'a mut u64,
            index: u32,
        }
        impl Drop for OnUnwind<'_> {
            fn drop(&mut self) {
                *self.released += 1;
                self.idle.push(self.index);
            }
        }
        let _guard = OnUnwind {
            idle: &mut self.idle,
            released: &mut self.released,
            index,
        };
        if let Some(obj) = self.slab.get_mut(index as usize) {
            (self.reset)(obj);
        }
    }

    /// Hands out an object in a guard that puts it back on drop.
    #[inline]
    pub fn acquire(&mut self) -> Option<HfPooled<'_, T, F, R>> {
        let index = self.take()?.index;
        Some(HfPooled { index, pool: self })
    }

    /// Objects idle in the pool.
    pub fn idle(&self) -> usize {
        self.idle.len()
    }

    /// A snapshot of the statistics.
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            acquired: self.acquired,
            released: self.released,
            hits: self.acquired - self.stats.misses,
            in_use: self.acquired - self.released,
            idle: self.idle.len() as u64,
            high_water: self.high_water,
            ..self.stats
        }
    }
}

/// An object on loan from a [`HighFrequencyPool`], returned on drop.
pub struct HfPooled<'a, T, F, R>
where
    F: FnMut() -> T,
    R: FnMut(&mut T),
{
    index: u32,
    pool: &'a mut HighFrequencyPool<T, F, R>,
}

impl<T, F: FnMut() -> T, R: FnMut(&mut T)> Deref for HfPooled<'_, T, F, R> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // The guard's index came from `take` on this very pool.
        &self.pool.slab[self.index as usize]
    }
}

impl<T, F: FnMut() -> T, R: FnMut(&mut T)> DerefMut for HfPooled<'_, T, F, R> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.pool.slab[self.index as usize]
    }
}

impl<T, F: FnMut() -> T, R: FnMut(&mut T)> Drop for HfPooled<'_, T, F, R> {
    #[inline]
    fn drop(&mut self) {
        self.pool.release(self.index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_and_resets_in_place() {
        let mut p = HighFrequencyPool::new(4, 1, Vec::<u8>::new, |v: &mut Vec<u8>| v.clear());
        {
            let mut g = p.acquire().unwrap();
            g.push(9);
        }
        let s = p.take().unwrap();
        assert!(p.get(&s).unwrap().is_empty());
        p.get_mut(&s).unwrap().push(1);
        p.put(s).unwrap();
        let st = p.stats();
        assert_eq!((st.hits, st.misses, st.created, st.in_use), (2, 0, 1, 0));
    }

    #[test]
    fn never_exceeds_max_and_tracks_high_water() {
        let mut p = HighFrequencyPool::new(2, 0, || 0u8, |_: &mut u8| {});
        let a = p.take().unwrap();
        let b = p.take().unwrap();
        assert_ne!(a, b);
        assert!(p.take().is_none());
        let st = p.stats();
        assert_eq!((st.exhausted, st.misses, st.high_water), (1, 2, 2));
        p.put(a).unwrap();
        p.put(b).unwrap();
        assert_eq!(p.idle(), 2);
        assert_eq!(p.stats().in_use, 0);
    }

    #[test]
    fn lifo_hands_back_the_last_returned() {
        let mut n = 0u8;
        let mut p = HighFrequencyPool::new(
            4,
            0,
            move || {
                n += 1;
                n
            },
            |_: &mut u8| {},
        );
        let a = p.take().unwrap();
        let b = p.take().unwrap();
        p.put(a).unwrap();
        p.put(b).unwrap();
        let c = p.take().unwrap();
        assert_eq!(p.get(&c), Some(&2));
        p.put(c).unwrap();
    }

    #[test]
    fn slots_of_another_pool_are_refused() {
        let mut a = HighFrequencyPool::new(2, 2, || 0u8, |_: &mut u8| {});
        let mut b = HighFrequencyPool::new(2, 2, || 0u8, |_: &mut u8| {});
        let from_a = a.take().unwrap();
        assert_eq!(b.get(&from_a), None);
        assert_eq!(b.get_mut(&from_a), None);
        let from_a = b.put(from_a).unwrap_err().0;
        let st = b.stats();
        assert_eq!((st.in_use, st.idle, st.released), (0, 2, 0));
        a.put(from_a).unwrap();
        assert_eq!(a.stats().in_use, 0);
    }

    #[test]
    fn a_panicking_reset_gives_the_slot_back() {
        let mut p = HighFrequencyPool::new(2, 0, || 0u8, |_: &mut u8| panic!("reset failed"));
        for _ in 0..3 {
            let a = p.take().unwrap();
            let b = p.take().unwrap();
            for s in [a, b] {
                let r = std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| p.put(s)));
                assert!(r.is_err());
            }
            assert_eq!(p.idle(), 2, "both slots back");
            let r = std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| {
                drop(p.acquire());
            }));
            assert!(r.is_err());
            assert_eq!(p.idle(), 2, "the guard's slot is back too");
        }
        assert_eq!(p.stats().in_use, 0);
    }
}
