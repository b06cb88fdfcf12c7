//! Proof that the core's pool, LRU cache, priority queue and metrics never
//! touch the heap: a counting global allocator records every allocation made
//! by the measuring thread while the operations run.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::Cell;
use core::hint::black_box;
use std::alloc::System;

use mechops_core::lru::LruCache;
use mechops_core::metrics::{Counter, Histogram, LocalHistogram, Quantile};
use mechops_core::pool::{Pool, ShardedPool};
use mechops_core::queue::{Priority, PriorityQueue};

thread_local! {
    // `const` initialisers without drop glue: reading them never allocates.
    static MEASURING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

struct Counting;

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counting only touches thread-local cells.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn note_allocation() {
    let _ = MEASURING.try_with(|measuring| {
        if measuring.get() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns how many allocations this thread made meanwhile.
fn allocations_during(f: impl FnOnce()) -> u64 {
    ALLOCATIONS.with(|n| n.set(0));
    MEASURING.with(|m| m.set(true));
    f();
    MEASURING.with(|m| m.set(false));
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn the_counter_sees_allocations() {
    // Without this, a broken counter would make every other test pass.
    assert_eq!(allocations_during(|| drop(black_box(Box::new(7u64)))), 1);
    assert_eq!(allocations_during(|| drop(black_box(vec![1u8; 32]))), 1);
}

#[test]
fn pool_operations_never_allocate() {
    static POOL: Pool<[u8; 64], 4> = Pool::with_reset([[0; 64]; 4], |buf| buf.fill(0));
    let local: Pool<u64, 8> = Pool::new([0; 8]);
    let n = allocations_during(|| {
        for i in 0..1000u64 {
            let mut a = POOL.try_acquire().unwrap();
            a[0] = i as u8;
            let b = POOL.acquire();
            black_box((&a, &b));
            let mut c = local.try_acquire().unwrap();
            *c += i;
        }
        let all: [_; 4] = core::array::from_fn(|_| POOL.try_acquire().unwrap());
        assert!(POOL.try_acquire().is_none());
        drop(all);
        black_box(POOL.stats());
    });
    assert_eq!(n, 0, "the pool allocated");
}

#[test]
fn sharded_pool_operations_never_allocate() {
    static POOL: ShardedPool<[u8; 64], 4, 2> =
        ShardedPool::with_reset([[0; 64]; 4], |buf| buf.fill(0));
    let n = allocations_during(|| {
        for i in 0..1000usize {
            let mut a = POOL.try_acquire_hinted(i).unwrap();
            a[0] = i as u8;
            let b = POOL.acquire_hinted(i + 1);
            black_box((&a, &b));
        }
        // Empties both shards: the last two acquires steal, the next misses
        // after the two-pass check.
        let all: [_; 4] = core::array::from_fn(|_| POOL.try_acquire_hinted(1).unwrap());
        assert!(POOL.try_acquire().is_none());
        drop(all);
        black_box(POOL.stats());
    });
    assert_eq!(n, 0, "the sharded pool allocated");
}

#[test]
fn lru_operations_never_allocate() {
    let mut cache: Box<LruCache<u64, [u8; 16], 256>> = Box::new(LruCache::new());
    let n = allocations_during(|| {
        for i in 0..10_000u64 {
            black_box(cache.insert(i % 700, [i as u8; 16]));
            black_box(cache.get(&(i % 300)));
            black_box(cache.peek(&(i % 500)));
            if i % 7 == 0 {
                black_box(cache.remove(&(i % 200)));
            }
        }
        black_box(cache.iter().count());
        black_box(cache.pop_lru());
        black_box(cache.stats().hit_rate());
        cache.clear();
    });
    assert_eq!(n, 0, "the LRU cache allocated");
}

#[test]
fn queue_and_metrics_never_allocate() {
    let mut queue: Box<PriorityQueue<u64, 128, u64>> = Box::new(PriorityQueue::new());
    let histogram: Box<Histogram> = Box::new(Histogram::new());
    let mut local: Box<LocalHistogram> = Box::new(LocalHistogram::new());
    let counter = Counter::new();
    let n = allocations_during(|| {
        for i in 0..5000u64 {
            let _ = queue.push(i, Priority::new((i % 7) as u8));
            let _ = queue.push_delayed(i, Priority::HIGH, i + 10);
            black_box(queue.pop(i));
            black_box(queue.poll_timeout());
            histogram.record(i * 37);
            local.record(i * 11);
            counter.increment();
        }
        queue.retain(|v| v % 2 == 0);
        black_box(histogram.quantile(Quantile::P99));
        black_box(local.quantile(Quantile::P50));
    });
    assert_eq!(n, 0, "the queue or the metrics allocated");
}
