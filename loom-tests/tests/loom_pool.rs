//! Loom models of the lock-free pool: every interleaving of 2 and 3 threads
//! acquiring and releasing, checked for double hand-outs, lost objects and
//! statistics that do not add up.
#![cfg(loom)]

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use mechops_core::pool::Pool;

/// An object that records who holds it: a second holder would find the stamp
/// already set.
struct Stamped {
    owner: AtomicUsize,
    uses: u32,
}

impl Stamped {
    fn new() -> Self {
        Self {
            owner: AtomicUsize::new(0),
            uses: 0,
        }
    }
}

fn pool<const N: usize>() -> Arc<Pool<Stamped, N>> {
    Arc::new(Pool::from_fn(|_| Stamped::new()))
}

/// Acquires without waiting; on success stamps, checks, bumps the use count
/// (a plain write that loom checks for unsynchronised access) and releases.
fn use_once<const N: usize>(pool: &Pool<Stamped, N>, me: usize) -> bool {
    let Some(mut object) = pool.try_acquire() else {
        return false;
    };
    assert_eq!(
        object.owner.swap(me, Ordering::Relaxed),
        0,
        "object handed out twice"
    );
    object.uses += 1;
    assert_eq!(
        object.owner.swap(0, Ordering::Relaxed),
        me,
        "object stolen while held"
    );
    true
}

/// After the threads are done: the statistics agree, every object is back
/// exactly once, and (when `uses` is given) the use counts add up.
fn check_quiescent<const N: usize>(
    pool: &Pool<Stamped, N>,
    successes: u64,
    failures: u64,
    uses: Option<u64>,
) {
    let stats = pool.stats();
    assert_eq!(stats.acquires, successes);
    assert_eq!(stats.releases, successes);
    assert_eq!(stats.misses, failures);
    assert_eq!(stats.in_use, 0);
    assert!(stats.high_water <= N);
    let held: Vec<_> = (0..N)
        .map(|_| pool.try_acquire().expect("an object was lost"))
        .collect();
    let mut slots: Vec<usize> = held.iter().map(|g| g.slot()).collect();
    slots.sort_unstable();
    slots.dedup();
    assert_eq!(slots.len(), N, "the free list holds a slot twice");
    if let Some(uses) = uses {
        assert_eq!(held.iter().map(|g| u64::from(g.uses)).sum::<u64>(), uses);
    }
    assert!(pool.try_acquire().is_none());
}

#[test]
fn two_threads_race_for_one_object() {
    loom::model(|| {
        let pool = pool::<1>();
        let other = {
            let pool = Arc::clone(&pool);
            thread::spawn(move || use_once(&pool, 1))
        };
        let mine = use_once(&pool, 2);
        let theirs = other.join().unwrap();
        let ok = u64::from(mine) + u64::from(theirs);
        assert!(ok >= 1, "one of the two must get the object");
        check_quiescent(&pool, ok, 2 - ok, Some(ok));
    });
}

#[test]
fn two_threads_interleave_pops_and_pushes_aba() {
    // One thread holds two objects at once and returns them, which recreates
    // the head value a stalled thread may have read earlier: only the
    // generation tag stops that thread from installing a stale `next`.
    loom::model(|| {
        let pool = pool::<2>();
        let other = {
            let pool = Arc::clone(&pool);
            thread::spawn(move || {
                let a = pool.try_acquire();
                let b = pool.try_acquire();
                let got = u64::from(a.is_some()) + u64::from(b.is_some());
                for g in [&a, &b].into_iter().flatten() {
                    assert_eq!(
                        g.owner.swap(1, Ordering::Relaxed),
                        0,
                        "object handed out twice"
                    );
                }
                for g in [&a, &b].into_iter().flatten() {
                    assert_eq!(g.owner.swap(0, Ordering::Relaxed), 1);
                }
                drop(a);
                drop(b);
                (got, 2 - got)
            })
        };
        let mine = use_once(&pool, 2);
        let (got, missed) = other.join().unwrap();
        check_quiescent(
            &pool,
            got + u64::from(mine),
            missed + u64::from(!mine),
            Some(u64::from(mine)),
        );
    });
}

#[test]
fn three_threads_share_two_objects() {
    loom::model(|| {
        let pool = pool::<2>();
        let handles: Vec<_> = (1..=2)
            .map(|me| {
                let pool = Arc::clone(&pool);
                thread::spawn(move || use_once(&pool, me))
            })
            .collect();
        let mut ok = u64::from(use_once(&pool, 3));
        for h in handles {
            ok += u64::from(h.join().unwrap());
        }
        assert!(
            ok >= 2,
            "two objects for three threads: at least two succeed"
        );
        check_quiescent(&pool, ok, 3 - ok, Some(ok));
    });
}

#[test]
fn reset_hook_is_visible_to_the_next_owner() {
    loom::model(|| {
        let pool = Arc::new(Pool::<Stamped, 1>::from_fn_with_reset(
            |_| Stamped::new(),
            |s| s.uses = 0,
        ));
        let other = {
            let pool = Arc::clone(&pool);
            thread::spawn(move || {
                if let Some(mut g) = pool.try_acquire() {
                    assert_eq!(g.uses, 0, "reset not visible");
                    g.uses = 7;
                }
            })
        };
        if let Some(mut g) = pool.try_acquire() {
            assert_eq!(g.uses, 0, "reset not visible");
            g.uses = 9;
        }
        other.join().unwrap();
        assert_eq!(pool.try_acquire().unwrap().uses, 0);
    });
}

#[test]
fn two_threads_cycle_twice_on_two_objects() {
    // Repeated pops and pushes from both sides: every interleaving of four
    // acquire/release cycles over a two-slot free list.
    loom::model(|| {
        let pool = pool::<2>();
        let other = {
            let pool = Arc::clone(&pool);
            thread::spawn(move || u64::from(use_once(&pool, 1)) + u64::from(use_once(&pool, 1)))
        };
        let mine = u64::from(use_once(&pool, 2)) + u64::from(use_once(&pool, 2));
        let theirs = other.join().unwrap();
        // Two objects, and each thread holds at most one at a time.
        assert_eq!(mine + theirs, 4, "a thread found both objects taken");
        check_quiescent(&pool, 4, 0, Some(4));
    });
}
