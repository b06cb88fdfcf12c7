//! Loom models of the lock-free pool: every interleaving of 2 and 3 threads
//! acquiring and releasing, checked for double hand-outs, lost objects and
//! statistics that do not add up.
#![cfg(loom)]

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use mechops_core::pool::{Pool, ShardedPool};

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

/// A sharded pool of `N` stamped objects in `S` shards.
fn sharded<const N: usize, const S: usize>() -> Arc<ShardedPool<Stamped, N, S>> {
    Arc::new(ShardedPool::from_fn(|_| Stamped::new()))
}

/// Stamps an object held by `me`; a second holder would find the stamp set.
fn stamp(object: &Stamped, me: usize) {
    assert_eq!(
        object.owner.swap(me, Ordering::Relaxed),
        0,
        "object handed out twice"
    );
}

fn unstamp(object: &Stamped, me: usize) {
    assert_eq!(
        object.owner.swap(0, Ordering::Relaxed),
        me,
        "object stolen while held"
    );
}

#[test]
fn sharded_two_threads_steal_across_two_shards() {
    // One object per shard. Each thread takes two objects through its own
    // hint, so whichever runs second steals from the other's shard while
    // the other may be popping or pushing there.
    loom::model(|| {
        let pool = sharded::<2, 2>();
        let other = {
            let pool = Arc::clone(&pool);
            thread::spawn(move || {
                let a = pool.try_acquire_hinted(1);
                let b = pool.try_acquire_hinted(1);
                for g in [&a, &b].into_iter().flatten() {
                    stamp(g, 1);
                }
                for g in [&a, &b].into_iter().flatten() {
                    unstamp(g, 1);
                }
                let got = u64::from(a.is_some()) + u64::from(b.is_some());
                drop(a);
                drop(b);
                got
            })
        };
        let mut mine = 0;
        if let Some(mut g) = pool.try_acquire_hinted(0) {
            stamp(&g, 2);
            g.uses += 1;
            unstamp(&g, 2);
            mine = 1;
        }
        let theirs = other.join().unwrap();
        // Two objects: the other thread, holding at most two, and this one
        // cannot all miss; a miss means both objects were out at the time.
        assert!(theirs >= 1 || mine == 1);

        let stats = pool.stats();
        assert_eq!(stats.acquires, mine + theirs);
        assert_eq!(stats.releases, mine + theirs);
        assert_eq!(stats.misses, 3 - mine - theirs);
        assert_eq!(stats.in_use, 0);
        // Every object is back in its home shard exactly once.
        let held: Vec<_> = (0..2)
            .map(|h| pool.try_acquire_hinted(h).expect("an object was lost"))
            .collect();
        assert_eq!(
            held.iter()
                .map(|g| (g.slot(), g.shard()))
                .collect::<Vec<_>>(),
            [(0, 0), (1, 1)]
        );
        assert_eq!(held.iter().map(|g| u64::from(g.uses)).sum::<u64>(), mine);
        assert!(pool.try_acquire().is_none());
    });
}

#[test]
fn sharded_none_means_every_shard_was_empty_at_once() {
    // This thread holds the shard-1 object, gives it back, then takes the
    // shard-0 object: it never holds both, so one object is always free and
    // the searching thread must never get `None`. A search that looked at
    // shard 1 before the release and at shard 0 after the take would see
    // each empty; the second pass over the heads must notice and search
    // again. (The searcher is the spawned thread so that this interleaving
    // needs only two preemptions.)
    loom::model(|| {
        let pool = sharded::<2, 2>();
        let y = pool.try_acquire_hinted(1).unwrap();
        stamp(&y, 1);
        let searcher = {
            let pool = Arc::clone(&pool);
            thread::spawn(move || {
                let got = pool
                    .try_acquire_hinted(1)
                    .expect("None while an object was free");
                stamp(&got, 2);
                unstamp(&got, 2);
            })
        };
        unstamp(&y, 1);
        drop(y);
        let x = pool
            .try_acquire_hinted(0)
            .expect("one object is always free");
        stamp(&x, 1);
        unstamp(&x, 1);
        drop(x);
        searcher.join().unwrap();
        let stats = pool.stats();
        assert_eq!((stats.acquires, stats.misses, stats.in_use), (3, 0, 0));
    });
}
