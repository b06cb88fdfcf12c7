//! Per-thread shard hints for `mechops_core::pool::ShardedPool`, which takes
//! the hint as an input because the core knows nothing of threads.
//!
//! Invariants:
//!
//! - a thread gets its number on first use and keeps it for its life;
//! - threads alive at the same time that have asked hold distinct numbers;
//! - a thread's number is given back when it exits, and the smallest free
//!   number is handed out next, so the numbers in use stay dense (`0..k` for
//!   `k` live threads that asked) and `hint % S` puts up to `S` threads on
//!   `S` different shards, even when short-lived threads come and go.
//!
//! The registry lock is taken only at a thread's first call and at its exit;
//! every other call reads one thread-local word.

use core::cell::Cell;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Numbers handed out so far, and those given back by exited threads.
struct Registry {
    next: usize,
    free: Vec<usize>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    next: 0,
    free: Vec::new(),
});

fn registry() -> MutexGuard<'static, Registry> {
    // Every critical section leaves the registry consistent, so a poisoned
    // lock is still usable.
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A thread's claim on a number; gives it back when the thread exits.
struct Claim(usize);

impl Claim {
    fn register() -> Self {
        let mut registry = registry();
        let smallest = registry
            .free
            .iter()
            .enumerate()
            .min_by_key(|&(_, &number)| number)
            .map(|(position, _)| position);
        match smallest {
            Some(position) => Self(registry.free.swap_remove(position)),
            None => {
                registry.next += 1;
                Self(registry.next - 1)
            }
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        registry().free.push(self.0);
    }
}

thread_local! {
    /// Owns the claim, so that thread exit returns the number.
    static CLAIM: Claim = Claim::register();
    /// The claimed number, or `usize::MAX` before the first call: a plain
    /// word, so the common case is one thread-local load.
    static CACHED: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// This thread's shard hint for
/// [`ShardedPool::try_acquire_hinted`](mechops_core::pool::ShardedPool::try_acquire_hinted):
/// a small number, fixed for the thread's
/// life, distinct from the hints of the other live threads.
///
/// During thread teardown (after this thread's claim was given back) it
/// returns the number the thread had, or 0 if it never had one: a hint only
/// steers which shard is tried first, so any value is safe.
#[inline]
pub fn thread_shard_hint() -> usize {
    let cached = CACHED.with(Cell::get);
    if cached != usize::MAX {
        return cached;
    }
    claim_hint()
}

#[cold]
fn claim_hint() -> usize {
    let number = CLAIM.try_with(|claim| claim.0).unwrap_or(0);
    CACHED.with(|cached| cached.set(number));
    number
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;
    use std::thread;

    // One test, because the registry is process-wide: separate tests running
    // in parallel would take each other's numbers.
    #[test]
    fn live_threads_get_distinct_stable_hints_and_exits_free_them() {
        let mine = thread_shard_hint();
        assert_eq!(thread_shard_hint(), mine, "a thread keeps its hint");

        let start = Barrier::new(4);
        let hints: Vec<usize> = thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        // All four are alive while each takes its hint.
                        start.wait();
                        let hint = thread_shard_hint();
                        start.wait();
                        assert_eq!(thread_shard_hint(), hint);
                        hint
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut distinct = hints.clone();
        distinct.push(mine);
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 5, "live threads share a hint: {hints:?}");

        // The four exited: their numbers are free again, and the next thread
        // gets the smallest of them.
        let free = registry().free.clone();
        for hint in &hints {
            assert!(free.contains(hint), "{hint} not given back: {free:?}");
        }
        let smallest = *hints.iter().min().unwrap();
        let next = thread::spawn(thread_shard_hint).join().unwrap();
        assert_eq!(next, smallest);
    }
}
