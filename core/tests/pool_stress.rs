//! Ownership-stamp stress test of the lock-free pool on every core.
//!
//! Every object carries an owner stamp. Each thread acquires objects, stamps
//! them with its id (finding anything but "free" there means a double
//! hand-out), bumps a plain counter inside the object, unstamps and releases.
//! Threads sometimes hold two objects at once, so the free list is reordered
//! constantly and stale heads (the ABA case) come up often.
//!
//! Release builds run at least 10^8 pool operations (acquires plus releases,
//! successful or missed) across all threads; debug builds run far fewer.
//!
//! The sharded pool gets the same test with each thread passing its own
//! shard hint, and one object in shard 1, so threads steal from each other's
//! shards all the time.

use core::ops::DerefMut;
use core::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use mechops_core::pool::{Pool, ShardedPool};

const FREE: usize = 0;
const CAPACITY: usize = 3;

#[cfg(debug_assertions)]
const TOTAL_OPERATIONS: u64 = 400_000;
#[cfg(not(debug_assertions))]
const TOTAL_OPERATIONS: u64 = 100_000_000;

/// Operations for the sharded pool: as many as for the plain one.
const SHARDED_OPERATIONS: u64 = TOTAL_OPERATIONS;
const SHARDED_CAPACITY: usize = 3;
const SHARDS: usize = 2;

struct Stamped {
    owner: AtomicUsize,
    uses: u64,
}

static POOL: Pool<Stamped, CAPACITY> = Pool::new([
    Stamped {
        owner: AtomicUsize::new(FREE),
        uses: 0,
    },
    Stamped {
        owner: AtomicUsize::new(FREE),
        uses: 0,
    },
    Stamped {
        owner: AtomicUsize::new(FREE),
        uses: 0,
    },
]);

static SHARDED: ShardedPool<Stamped, SHARDED_CAPACITY, SHARDS> = ShardedPool::new([
    Stamped {
        owner: AtomicUsize::new(FREE),
        uses: 0,
    },
    Stamped {
        owner: AtomicUsize::new(FREE),
        uses: 0,
    },
    Stamped {
        owner: AtomicUsize::new(FREE),
        uses: 0,
    },
]);

#[derive(Default)]
struct Tally {
    operations: u64,
    acquired: u64,
    missed: u64,
    double_hand_outs: u64,
}

fn stamp(object: &mut Stamped, me: usize, tally: &mut Tally) {
    if object.owner.swap(me, Ordering::Relaxed) != FREE {
        tally.double_hand_outs += 1;
    }
    object.uses += 1;
}

fn unstamp(object: &Stamped, me: usize, tally: &mut Tally) {
    if object.owner.swap(FREE, Ordering::Relaxed) != me {
        tally.double_hand_outs += 1;
    }
}

fn worker<G: DerefMut<Target = Stamped>>(
    me: usize,
    budget: u64,
    acquire: impl Fn() -> Option<G>,
) -> Tally {
    let mut tally = Tally::default();
    let mut round: u64 = 0;
    while tally.operations < budget {
        round += 1;
        let Some(mut first) = acquire() else {
            tally.missed += 1;
            tally.operations += 1;
            continue;
        };
        tally.acquired += 1;
        stamp(&mut first, me, &mut tally);
        // Every fourth round holds a second object and gives the two back in
        // varying order.
        let second = if round % 4 == 0 { acquire() } else { None };
        tally.operations += 1;
        if let Some(mut second) = second {
            tally.acquired += 1;
            tally.operations += 1;
            stamp(&mut second, me, &mut tally);
            unstamp(&second, me, &mut tally);
            if round % 8 == 0 {
                unstamp(&first, me, &mut tally);
                drop(first);
                drop(second);
            } else {
                drop(second);
                unstamp(&first, me, &mut tally);
                drop(first);
            }
            tally.operations += 2;
        } else {
            if round % 4 == 0 {
                tally.missed += 1;
                tally.operations += 1;
            }
            unstamp(&first, me, &mut tally);
            drop(first);
            tally.operations += 1;
        }
    }
    tally
}

/// Runs `worker` on every core (at least two) until `total` operations are
/// done, asserts that no object ever had two owners, and returns the summed
/// tally. `acquire` receives the worker's number (1-based).
fn hammer<G: DerefMut<Target = Stamped>>(
    total: u64,
    acquire: impl Fn(usize) -> Option<G> + Sync,
) -> Tally {
    let threads = thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(2);
    let budget = total.div_ceil(threads as u64);
    let acquire = &acquire;
    let tallies: Vec<Tally> = thread::scope(|s| {
        let handles: Vec<_> = (1..=threads)
            .map(|me| s.spawn(move || worker(me, budget, || acquire(me))))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("worker panicked"))
            .collect()
    });
    let sum = tallies.iter().fold(Tally::default(), |sum, t| Tally {
        operations: sum.operations + t.operations,
        acquired: sum.acquired + t.acquired,
        missed: sum.missed + t.missed,
        double_hand_outs: sum.double_hand_outs + t.double_hand_outs,
    });
    assert!(sum.operations >= total, "ran {} operations", sum.operations);
    assert_eq!(
        sum.double_hand_outs, 0,
        "objects were handed to two owners at once"
    );
    sum
}

#[test]
fn no_double_hand_outs_and_nothing_lost_under_contention() {
    let Tally {
        acquired, missed, ..
    } = hammer(TOTAL_OPERATIONS, |_| POOL.try_acquire());

    let stats = POOL.stats();
    assert_eq!(stats.acquires, acquired);
    assert_eq!(stats.releases, acquired);
    assert_eq!(stats.misses, missed);
    assert_eq!(stats.in_use, 0);
    assert_eq!(stats.high_water, CAPACITY);

    // Every object is back exactly once, and together they saw every use.
    let held: Vec<_> = (0..CAPACITY)
        .map(|_| POOL.try_acquire().expect("an object was lost"))
        .collect();
    assert!(
        POOL.try_acquire().is_none(),
        "the pool handed out more objects than it owns"
    );
    let mut slots: Vec<usize> = held.iter().map(|g| g.slot()).collect();
    slots.sort_unstable();
    slots.dedup();
    assert_eq!(slots.len(), CAPACITY);
    assert!(held.iter().all(|g| g.owner.load(Ordering::Relaxed) == FREE));
    assert_eq!(held.iter().map(|g| g.uses).sum::<u64>(), acquired);
}

#[test]
fn sharded_pool_no_double_hand_outs_and_nothing_lost_while_stealing() {
    // Shard 0 owns two objects and shard 1 one: a thread on shard 1 that
    // holds two objects has stolen one, and threads on shard 0 find theirs
    // taken by it.
    let Tally {
        acquired, missed, ..
    } = hammer(SHARDED_OPERATIONS, |me| SHARDED.try_acquire_hinted(me));

    let stats = SHARDED.stats();
    assert_eq!(stats.acquires, acquired);
    assert_eq!(stats.releases, acquired);
    assert_eq!(stats.misses, missed);
    assert_eq!(stats.in_use, 0);

    // Every object is back in its home shard exactly once.
    let held: Vec<_> = (0..SHARDED_CAPACITY)
        .map(|_| SHARDED.try_acquire().expect("an object was lost"))
        .collect();
    assert!(
        SHARDED.try_acquire_hinted(1).is_none(),
        "the pool handed out more objects than it owns"
    );
    let mut slots: Vec<(usize, usize)> = held.iter().map(|g| (g.shard(), g.slot())).collect();
    slots.sort_unstable();
    assert_eq!(slots, [(0, 0), (0, 1), (1, 2)]);
    assert!(held.iter().all(|g| g.owner.load(Ordering::Relaxed) == FREE));
    assert_eq!(held.iter().map(|g| g.uses).sum::<u64>(), acquired);
}
