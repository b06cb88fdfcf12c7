//! pool benchmarks: mechops against its peers in the same run.
//!
//! Every contender does the same work per iteration: take one `u64` object
//! from a pool, write to it through `black_box`, give it back. The baseline is
//! two uncontended compare-and-swap operations on one `AtomicU64`, the floor
//! for any lock-free acquire plus release.
//!
//! The single-threaded group runs `BATCH` cycles per measured iteration; the
//! contended group runs two threads doing the same loop against one shared
//! pool, and the time reported is per acquire+release per thread.
//!
//! `mechops_sharded` is `ShardedPool` with two shards; every acquire passes
//! the calling thread's hint from `mechops_std::pool::thread_shard_hint`, as
//! a user would, so the thread-local read is part of the measured work.
#![allow(missing_docs)] // criterion's macros generate undocumented items

use core::hint::black_box;
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;
use std::sync::Barrier;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mechops_core::pool::ShardedPool;
use mechops_std::pool::thread_shard_hint;

/// Objects each pool holds (the peers that grow start with this many).
const OBJECTS: usize = 64;

/// Acquire+release cycles per measured iteration in the single-threaded
/// group, so that the harness's per-iteration overhead does not dilute the
/// comparison (criterion prints the per-cycle rate as throughput).
const BATCH: u64 = 1024;

/// Shards of the sharded pool: one per contending thread.
const SHARDS: usize = 2;

fn single_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("pool_acquire_release");
    group.throughput(Throughput::Elements(BATCH));

    let word = AtomicU64::new(0);
    group.bench_function("baseline_two_cas", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                let taken = word.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed);
                black_box(taken).ok();
                let given = word.compare_exchange(1, 0, Ordering::Release, Ordering::Relaxed);
                black_box(given).ok();
            }
        });
    });

    let ours: mechops_core::pool::Pool<u64, OBJECTS> = mechops_core::pool::Pool::new([0; OBJECTS]);
    group.bench_function("mechops", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                let mut object = ours.try_acquire().unwrap();
                *object = black_box(*object + 1);
            }
        });
    });

    let sharded: ShardedPool<u64, OBJECTS, SHARDS> = ShardedPool::new([0; OBJECTS]);
    group.bench_function("mechops_sharded", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                let mut object = sharded.try_acquire_hinted(thread_shard_hint()).unwrap();
                *object = black_box(*object + 1);
            }
        });
    });

    let linear = lockfree_object_pool::LinearObjectPool::<u64>::new(|| 0, |_| {});
    warm(|| drop(linear.pull()));
    group.bench_function("lockfree_linear", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                let mut object = linear.pull();
                *object = black_box(*object + 1);
            }
        });
    });

    let spin = lockfree_object_pool::SpinLockObjectPool::<u64>::new(|| 0, |_| {});
    warm(|| drop(spin.pull()));
    group.bench_function("lockfree_spinlock", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                let mut object = spin.pull();
                *object = black_box(*object + 1);
            }
        });
    });

    let object_pool = object_pool::Pool::<u64>::new(OBJECTS, || 0);
    group.bench_function("object_pool", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                let mut object = object_pool.try_pull().unwrap();
                *object = black_box(*object + 1);
            }
        });
    });

    let slab = sharded_slab::Pool::<Option<u64>>::new();
    group.bench_function("sharded_slab", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                let mut object = slab.create().unwrap();
                *object = Some(black_box(object.unwrap_or(0) + 1));
                let key = object.key();
                drop(object);
                slab.clear(key);
            }
        });
    });

    group.finish();
}

/// Lets a growing pool allocate its first object outside the measurement.
fn warm(f: impl Fn()) {
    for _ in 0..OBJECTS {
        f();
    }
}

/// Runs `op` `iters` times on each of two threads at once and returns the
/// wall time, so that the reported figure is per operation per thread.
fn two_threads(iters: u64, op: &(impl Fn() + Sync)) -> Duration {
    let start_line = Barrier::new(2);
    std::thread::scope(|s| {
        let worker = s.spawn(|| {
            start_line.wait();
            for _ in 0..iters {
                op();
            }
        });
        start_line.wait();
        let start = Instant::now();
        for _ in 0..iters {
            op();
        }
        worker.join().unwrap();
        start.elapsed()
    })
}

fn contended(c: &mut Criterion) {
    let mut group = c.benchmark_group("pool_acquire_release_2_threads");

    let word = AtomicU64::new(0);
    group.bench_function("baseline_two_cas", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, &|| {
                // Uncontended per thread would not be a baseline here: both
                // threads hammer the same word, as they do a pool's head.
                let v = word.load(Ordering::Relaxed);
                black_box(word.compare_exchange(v, v + 1, Ordering::Acquire, Ordering::Relaxed))
                    .ok();
                let v = word.load(Ordering::Relaxed);
                black_box(word.compare_exchange(v, v + 1, Ordering::Release, Ordering::Relaxed))
                    .ok();
            })
        });
    });

    let ours: mechops_core::pool::Pool<u64, OBJECTS> = mechops_core::pool::Pool::new([0; OBJECTS]);
    group.bench_function("mechops", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, &|| {
                let mut object = ours.try_acquire().unwrap();
                *object = black_box(*object + 1);
            })
        });
    });

    let sharded: ShardedPool<u64, OBJECTS, SHARDS> = ShardedPool::new([0; OBJECTS]);
    group.bench_function("mechops_sharded", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, &|| {
                let mut object = sharded.try_acquire_hinted(thread_shard_hint()).unwrap();
                *object = black_box(*object + 1);
            })
        });
    });

    let linear = lockfree_object_pool::LinearObjectPool::<u64>::new(|| 0, |_| {});
    warm(|| drop(linear.pull()));
    group.bench_function("lockfree_linear", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, &|| {
                let mut object = linear.pull();
                *object = black_box(*object + 1);
            })
        });
    });

    let spin = lockfree_object_pool::SpinLockObjectPool::<u64>::new(|| 0, |_| {});
    warm(|| drop(spin.pull()));
    group.bench_function("lockfree_spinlock", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, &|| {
                let mut object = spin.pull();
                *object = black_box(*object + 1);
            })
        });
    });

    let object_pool = object_pool::Pool::<u64>::new(OBJECTS, || 0);
    group.bench_function("object_pool", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, &|| {
                let mut object = object_pool.try_pull().unwrap();
                *object = black_box(*object + 1);
            })
        });
    });

    let slab = sharded_slab::Pool::<Option<u64>>::new();
    group.bench_function("sharded_slab", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, &|| {
                let mut object = slab.create().unwrap();
                *object = Some(black_box(object.unwrap_or(0) + 1));
                let key = object.key();
                drop(object);
                slab.clear(key);
            })
        });
    });

    group.finish();
}

criterion_group!(group, single_thread, contended);
criterion_main!(group);
