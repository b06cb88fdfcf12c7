//! lru benchmarks: mechops against its peers in the same run.
//!
//! Both caches hold 1024 `u64 -> u64` entries and hash with foldhash (the
//! `lru` crate's default through hashbrown, and ours), so the comparison is
//! of the cache structures, not the hashers.
//!
//! - `lru_get_hit`: look up keys that are all present, in a fixed
//!   pseudo-random sequence (not the insertion order, which would always hit
//!   the least recently used entry), so every lookup is a hit that moves an
//!   entry to the front.
//! - `lru_insert_evict`: insert keys never seen before into a full cache, so
//!   every insert evicts the least recently used entry and hands it back.
#![allow(missing_docs)] // criterion's macros generate undocumented items

use core::hint::black_box;
use core::num::NonZeroUsize;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mechops_core::lru::LruCache;

const CAPACITY: usize = 1024;

/// Inserts per measured iteration. Each iteration runs a batch, so that the
/// harness's per-iteration overhead does not dilute the comparison; the time
/// per operation is the iteration time divided by the batch (criterion
/// prints it as throughput).
const BATCH: usize = 1024;

/// A fixed permutation of the keys `0..CAPACITY` (an LCG with full period).
fn shuffled_keys() -> Vec<u64> {
    let mut x: u64 = 1;
    let mut keys: Vec<u64> = (0..CAPACITY as u64).collect();
    for i in (1..keys.len()).rev() {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let j = ((x >> 33) % (i as u64 + 1)) as usize;
        keys.swap(i, j);
    }
    keys
}

/// The sequence of lookups, all run in each measured iteration: 4096 keys
/// drawn from `keys`.
const LOOKUPS: usize = 4096;

fn lookups(keys: &[u64]) -> Vec<u64> {
    let mut x: u64 = 7;
    (0..LOOKUPS)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            keys[((x >> 33) % keys.len() as u64) as usize]
        })
        .collect()
}

fn get_hit(c: &mut Criterion) {
    let keys = shuffled_keys();
    let lookups = lookups(&keys);

    // Both caches are built, filled and walked once before either is
    // measured, so that neither pays for first-touch page faults or runs
    // while the other's memory is still being allocated.
    let mut ours: Box<LruCache<u64, u64, CAPACITY>> = Box::new(LruCache::new());
    let mut peer = lru::LruCache::<u64, u64>::new(NonZeroUsize::new(CAPACITY).unwrap());
    for &k in &keys {
        ours.insert(k, k);
        peer.put(k, k);
    }
    for key in &lookups {
        black_box(ours.get(key));
        black_box(peer.get(key));
    }

    let mut group = c.benchmark_group("lru_get_hit");
    group.throughput(Throughput::Elements(LOOKUPS as u64));
    group.bench_function("mechops", |b| {
        b.iter(|| {
            let mut found = 0u64;
            for key in black_box(&lookups) {
                found += ours.get(key).copied().unwrap_or(0);
            }
            black_box(found)
        });
    });
    group.bench_function("lru", |b| {
        b.iter(|| {
            let mut found = 0u64;
            for key in black_box(&lookups) {
                found += peer.get(key).copied().unwrap_or(0);
            }
            black_box(found)
        });
    });
    group.finish();
}

fn insert_evict(c: &mut Criterion) {
    // As for get-hit: both caches are built and full before either is
    // measured.
    let mut ours: Box<LruCache<u64, u64, CAPACITY>> = Box::new(LruCache::new());
    let mut peer = lru::LruCache::<u64, u64>::new(NonZeroUsize::new(CAPACITY).unwrap());
    for k in 0..CAPACITY as u64 {
        ours.insert(k, k);
        peer.put(k, k);
    }

    let mut group = c.benchmark_group("lru_insert_evict");
    group.throughput(Throughput::Elements(BATCH as u64));
    let mut next = CAPACITY as u64;
    group.bench_function("mechops", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                next += 1;
                black_box(ours.insert(black_box(next), next));
            }
        });
    });
    let mut next = CAPACITY as u64;
    group.bench_function("lru", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                next += 1;
                black_box(peer.push(black_box(next), next));
            }
        });
    });
    group.finish();
}

criterion_group!(group, get_hit, insert_evict);
criterion_main!(group);
