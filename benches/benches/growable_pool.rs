//! growable_pool benchmarks: mechops against its peers in the same run.
//!
//! Every pool holds `Vec<u8>` buffers of capacity 64, cleared when they come
//! back; one operation is an acquire followed by a release. object-pool has
//! no reset hook, so its loop clears the buffer itself.
#![allow(missing_docs)] // criterion's macros generate undocumented items

use core::hint::black_box;
use core::time::Duration;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use mechops_alloc::pool::{GrowablePool, HighFrequencyPool, PoolBuilder};
use mechops_std::pool::SharedPool;

fn buffer() -> Vec<u8> {
    Vec::with_capacity(64)
}

fn clear(v: &mut Vec<u8>) {
    v.clear();
}

fn single_thread(c: &mut Criterion) {
    let mut g = c.benchmark_group("growable_pool/acquire_release");

    let mut hf = HighFrequencyPool::new(1024, 16, buffer, clear);
    g.bench_function("mechops_high_frequency", |b| {
        b.iter(|| {
            if let Some(slot) = hf.take() {
                black_box(hf.get_mut(&slot));
                let _ = black_box(hf.put(slot));
            }
        })
    });

    let mut hf_guard = HighFrequencyPool::new(1024, 16, buffer, clear);
    g.bench_function("mechops_high_frequency_guard", |b| {
        b.iter(|| {
            let v = hf_guard.acquire();
            black_box(v.as_deref());
        })
    });

    let pool = GrowablePool::builder(1024, buffer)
        .initial_size(16)
        .reset(clear)
        .build()
        .expect("valid config");
    g.bench_function("mechops_pool", |b| {
        b.iter(|| {
            let v = pool.acquire();
            black_box(v.as_deref());
        })
    });

    let shared = SharedPool::new(PoolBuilder::new(1024, buffer).initial_size(16).reset(clear))
        .expect("valid config");
    g.bench_function("mechops_shared_pool", |b| {
        b.iter(|| {
            let v = shared.acquire();
            black_box(v.as_deref());
        })
    });

    let mut local = shared.local_cache(16, clear);
    g.bench_function("mechops_shared_local_cache", |b| {
        b.iter(|| {
            let mut v = local.take().unwrap_or_default();
            black_box(&mut v);
            local.put(v);
        })
    });

    let linear = lockfree_object_pool::LinearObjectPool::new(buffer, clear);
    g.bench_function("lockfree_object_pool_linear", |b| {
        b.iter(|| {
            let v = linear.pull();
            black_box(&*v);
        })
    });

    let spin = lockfree_object_pool::SpinLockObjectPool::new(buffer, clear);
    g.bench_function("lockfree_object_pool_spin_lock", |b| {
        b.iter(|| {
            let v = spin.pull();
            black_box(&*v);
        })
    });

    let op = object_pool::Pool::new(16, buffer);
    g.bench_function("object_pool", |b| {
        b.iter(|| {
            let mut v = op.pull(buffer);
            v.clear();
            black_box(&*v);
        })
    });
    g.finish();
}

/// Two threads hammering one shared pool: ours against lockfree-object-pool's
/// linear pool. Each sample times `iters` operations on this thread while a
/// second thread runs the same loop.
fn two_threads(c: &mut Criterion) {
    let mut g = c.benchmark_group("growable_pool/acquire_release_2_threads");

    let shared = SharedPool::new(PoolBuilder::new(1024, buffer).initial_size(16).reset(clear))
        .expect("valid config");
    g.bench_function("mechops_shared_pool", |b| {
        b.iter_custom(|iters| {
            contended(iters, &shared, |p| {
                let v = p.acquire();
                black_box(v.as_deref());
            })
        })
    });

    g.bench_function("mechops_shared_local_cache", |b| {
        b.iter_custom(|iters| {
            contended(iters, &shared, |p| {
                thread_local_cache(p, |local| {
                    let mut v = local.take().unwrap_or_default();
                    black_box(&mut v);
                    local.put(v);
                })
            })
        })
    });

    let linear = Arc::new(lockfree_object_pool::LinearObjectPool::new(buffer, clear));
    g.bench_function("lockfree_object_pool_linear", |b| {
        b.iter_custom(|iters| {
            contended(iters, &linear, |p| {
                let v = p.pull();
                black_box(&*v);
            })
        })
    });
    g.finish();
}

type Local = mechops_std::pool::LocalCache<Vec<u8>, fn(&mut Vec<u8>)>;

thread_local! {
    static LOCAL: core::cell::RefCell<Option<Local>> = const { core::cell::RefCell::new(None) };
}

fn thread_local_cache(pool: &SharedPool<Vec<u8>>, f: impl FnOnce(&mut Local)) {
    LOCAL.with(|slot| {
        let mut slot = slot.borrow_mut();
        let local = slot.get_or_insert_with(|| pool.local_cache(16, clear as fn(&mut Vec<u8>)));
        f(local);
    });
}

fn contended<P: Sync>(iters: u64, pool: &P, op: impl Fn(&P) + Sync) -> Duration {
    std::thread::scope(|s| {
        let other = s.spawn(|| {
            for _ in 0..iters {
                op(pool);
            }
        });
        let start = std::time::Instant::now();
        for _ in 0..iters {
            op(pool);
        }
        let elapsed = start.elapsed();
        other.join().expect("benchmark thread");
        elapsed
    })
}

criterion_group!(group, single_thread, two_threads);
criterion_main!(group);
