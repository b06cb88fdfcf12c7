//! The lowest-latency pool: a `&mut self` LIFO stack with inlined hooks.
//!
//! Nothing here is shared, so nothing is atomic: acquiring and releasing are a
//! `Vec` pop and push plus plain counter updates, and the create and reset
//! hooks are generic parameters the compiler inlines rather than boxed
//! closures. The live count never exceeds the maximum given at construction.

use alloc::vec::Vec;
use core::fmt;
use core::ops::{Deref, DerefMut};

use super::stats::PoolStats;

/// A single-owner pool for hot loops; see the module docs.
pub struct HighFrequencyPool<T, F, R> {
    idle: Vec<T>,
    create: F,
    reset: R,
    max_size: usize,
    in_use: usize,
    stats: PoolStats,
}

impl<T, F, R> fmt::Debug for HighFrequencyPool<T, F, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HighFrequencyPool")
            .field("max_size", &self.max_size)
            .field("in_use", &self.in_use)
            .field("idle", &self.idle.len())
            .finish_non_exhaustive()
    }
}

impl<T, F, R> HighFrequencyPool<T, F, R>
where
    F: FnMut() -> T,
    R: FnMut(&mut T),
{
    /// A pool of at most `max_size` live objects with `prefill` of them
    /// created up front (capped at `max_size`).
    pub fn new(max_size: usize, prefill: usize, mut create: F, reset: R) -> Self {
        let prefill = prefill.min(max_size);
        let mut idle = Vec::with_capacity(max_size.min(4096).max(prefill));
        idle.extend((0..prefill).map(|_| create()));
        Self {
            idle,
            create,
            reset,
            max_size,
            in_use: 0,
            stats: PoolStats {
                created: prefill as u64,
                ..PoolStats::default()
            },
        }
    }

    /// Hands out an object: the most recently returned one, else a new one;
    /// `None` at the maximum size.
    #[inline]
    pub fn take(&mut self) -> Option<T> {
        let obj = match self.idle.pop() {
            Some(obj) => {
                self.stats.hits += 1;
                obj
            }
            None => self.grow()?,
        };
        self.in_use += 1;
        self.stats.acquired += 1;
        if self.in_use as u64 > self.stats.high_water {
            self.stats.high_water = self.in_use as u64;
        }
        Some(obj)
    }

    #[cold]
    fn grow(&mut self) -> Option<T> {
        if self.idle.len() + self.in_use >= self.max_size {
            self.stats.exhausted += 1;
            return None;
        }
        self.stats.misses += 1;
        self.stats.created += 1;
        Some((self.create)())
    }

    /// Takes back an object from [`take`](Self::take), resetting it. Objects
    /// beyond those handed out are dropped so the maximum holds.
    #[inline]
    pub fn put(&mut self, mut obj: T) {
        if self.in_use == 0 {
            return;
        }
        (self.reset)(&mut obj);
        self.in_use -= 1;
        self.stats.released += 1;
        self.idle.push(obj);
    }

    /// Hands out an object in a guard that puts it back on drop.
    #[inline]
    pub fn acquire(&mut self) -> Option<HfPooled<'_, T, F, R>> {
        let obj = self.take()?;
        Some(HfPooled {
            obj: Some(obj),
            pool: self,
        })
    }

    /// Drops idle objects until at most `keep` remain; returns how many went.
    pub fn shrink_idle_to(&mut self, keep: usize) -> usize {
        let excess = self.idle.len().saturating_sub(keep);
        self.idle.drain(..excess);
        self.stats.shrunk += excess as u64;
        excess
    }

    /// Objects idle in the pool.
    pub fn idle(&self) -> usize {
        self.idle.len()
    }

    /// A snapshot of the statistics.
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            in_use: self.in_use as u64,
            idle: self.idle.len() as u64,
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
    obj: Option<T>,
    pool: &'a mut HighFrequencyPool<T, F, R>,
}

impl<T, F: FnMut() -> T, R: FnMut(&mut T)> Deref for HfPooled<'_, T, F, R> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // The option is `Some` from construction until drop.
        self.obj.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl<T, F: FnMut() -> T, R: FnMut(&mut T)> DerefMut for HfPooled<'_, T, F, R> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        self.obj.as_mut().unwrap_or_else(|| unreachable!())
    }
}

impl<T, F: FnMut() -> T, R: FnMut(&mut T)> Drop for HfPooled<'_, T, F, R> {
    #[inline]
    fn drop(&mut self) {
        if let Some(obj) = self.obj.take() {
            self.pool.put(obj);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_and_resets() {
        let mut p = HighFrequencyPool::new(4, 1, Vec::<u8>::new, |v: &mut Vec<u8>| v.clear());
        {
            let mut g = p.acquire().unwrap();
            g.push(9);
        }
        assert!(p.take().unwrap().is_empty());
        let st = p.stats();
        assert_eq!((st.hits, st.misses, st.created), (2, 0, 1));
    }

    #[test]
    fn never_exceeds_max() {
        let mut p = HighFrequencyPool::new(2, 0, || 0u8, |_: &mut u8| {});
        let a = p.take().unwrap();
        let b = p.take().unwrap();
        assert!(p.take().is_none());
        assert_eq!(p.stats().exhausted, 1);
        p.put(a);
        p.put(b);
        p.put(5);
        assert_eq!(
            p.idle(),
            2,
            "an object that was never handed out is refused"
        );
    }

    #[test]
    fn shrink_keeps_the_requested_number() {
        let mut p = HighFrequencyPool::new(8, 6, || 0u8, |_: &mut u8| {});
        assert_eq!(p.shrink_idle_to(2), 4);
        assert_eq!(p.idle(), 2);
        assert_eq!(p.stats().shrunk, 4);
    }
}
