//! The std cache's shard lock under more threads than cores: the yielding
//! spin lock it uses against `std::sync::Mutex` and `parking_lot::Mutex`,
//! each guarding the same `mechops_alloc` cache shards and doing the same
//! lookups.
//!
//! - `8_threads`: eight threads share two shards (so every lock is
//!   contended) on however many cores the machine has; the time is the wall
//!   time of all threads divided by the total number of lookups.
//! - `8_threads_preempted_holder`: the same, but every 32nd lookup gives up
//!   the processor while holding the lock (`yield_now` inside the critical
//!   section), as a holder preempted by the scheduler would: waiters then
//!   either burn their time slices or get out of the way.

use core::hint::black_box;
use core::time::Duration;
use std::sync::Mutex;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use mechops_alloc::cache::Cache;
use spin::mutex::SpinMutex;
use spin::relax::Yield;

const THREADS: usize = 8;
const SHARDS: usize = 2;
const KEYS: u64 = 1024;

/// A lock around one shard.
trait ShardLock: Sync + Send {
    fn new(cache: Cache<u64, u64>) -> Self;
    fn with<R>(&self, f: impl FnOnce(&mut Cache<u64, u64>) -> R) -> R;
}

impl ShardLock for SpinMutex<Cache<u64, u64>, Yield> {
    fn new(cache: Cache<u64, u64>) -> Self {
        Self::new(cache)
    }
    fn with<R>(&self, f: impl FnOnce(&mut Cache<u64, u64>) -> R) -> R {
        f(&mut self.lock())
    }
}

impl ShardLock for Mutex<Cache<u64, u64>> {
    fn new(cache: Cache<u64, u64>) -> Self {
        Self::new(cache)
    }
    fn with<R>(&self, f: impl FnOnce(&mut Cache<u64, u64>) -> R) -> R {
        f(&mut self
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

impl ShardLock for parking_lot::Mutex<Cache<u64, u64>> {
    fn new(cache: Cache<u64, u64>) -> Self {
        Self::new(cache)
    }
    fn with<R>(&self, f: impl FnOnce(&mut Cache<u64, u64>) -> R) -> R {
        f(&mut self.lock())
    }
}

fn shards<L: ShardLock>() -> Vec<L> {
    (0..SHARDS)
        .map(|_| {
            let mut c = Cache::with_max_entries(2 * KEYS as usize);
            for k in 0..KEYS {
                let _ = c.insert(k, k);
            }
            L::new(c)
        })
        .collect()
}

/// `iters` lookups split over the threads; every `yield_every`-th lookup of
/// a thread yields while holding the lock (0: never).
fn run<L: ShardLock>(shards: &[L], iters: u64, yield_every: u64) -> Duration {
    let per_thread = iters.div_ceil(THREADS as u64);
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..THREADS as u64 {
            s.spawn(move || {
                let mut k = t.wrapping_mul(0x9E37_79B9);
                for i in 0..per_thread {
                    k = k.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    let key = (k >> 33) % KEYS;
                    let shard = &shards[(key as usize) % SHARDS];
                    let hold = yield_every != 0 && i % yield_every == 0;
                    shard.with(|c| {
                        black_box(c.get(&key).copied());
                        if hold {
                            std::thread::yield_now();
                        }
                    });
                }
            });
        }
    });
    start.elapsed()
}

fn bench_locks(c: &mut Criterion, name: &str, yield_every: u64) {
    let spin = shards::<SpinMutex<Cache<u64, u64>, Yield>>();
    let std = shards::<Mutex<Cache<u64, u64>>>();
    let pl = shards::<parking_lot::Mutex<Cache<u64, u64>>>();
    let mut g = c.benchmark_group(name);
    g.bench_function("spin_yield", |b| {
        b.iter_custom(|iters| run(&spin, iters, yield_every))
    });
    g.bench_function("std_mutex", |b| {
        b.iter_custom(|iters| run(&std, iters, yield_every))
    });
    g.bench_function("parking_lot", |b| {
        b.iter_custom(|iters| run(&pl, iters, yield_every))
    });
    g.finish();
}

fn shard_lock(c: &mut Criterion) {
    bench_locks(c, "shard_lock/8_threads", 0);
    bench_locks(c, "shard_lock/8_threads_preempted_holder", 32);
}

criterion_group!(group, shard_lock);
criterion_main!(group);
