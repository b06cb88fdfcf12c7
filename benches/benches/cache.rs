//! cache benchmarks: mechops against its peers in the same run.
//!
//! - get-hit: every cache holds the same 10 000 `u64 -> u64` entries (with
//!   room for twice as many, so nothing is evicted) and looks up the same
//!   pseudo-random sequence of resident keys. Unsync caches return a
//!   reference, thread-safe ones a clone of the value.
//! - hit ratio: the same Zipf trace (s = 1.0 over 100 000 keys, 1 000 000
//!   accesses) replayed into each cache bounded to 10 000 entries, inserting
//!   on every miss. Printed once per run, before the timings.
#![allow(missing_docs)] // criterion's macros generate undocumented items

use core::hint::black_box;
use core::time::Duration;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use mechops_alloc::cache::Cache;
use mechops_std::cache::SyncCache;

const RESIDENT: u64 = 10_000;
const LOOKUPS: usize = 4096;
const ZIPF_KEYS: usize = 100_000;
const ZIPF_ACCESSES: usize = 1_000_000;
const ZIPF_CAPACITY: usize = 10_000;

/// SplitMix64: a tiny deterministic generator for reproducible inputs.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A Zipf(s) trace over `n` keys by inverse-CDF sampling; key `i` has
/// probability proportional to `1 / (i + 1)^s`.
fn zipf_trace(n: usize, s: f64, len: usize, seed: u64) -> Vec<u64> {
    let mut cdf = Vec::with_capacity(n);
    let mut total = 0.0;
    for i in 0..n {
        total += 1.0 / ((i + 1) as f64).powf(s);
        cdf.push(total);
    }
    let mut rng = SplitMix(seed);
    (0..len)
        .map(|_| {
            let u = rng.unit() * total;
            cdf.partition_point(|&c| c < u).min(n - 1) as u64
        })
        .collect()
}

fn lookup_keys() -> Vec<u64> {
    let mut rng = SplitMix(42);
    (0..LOOKUPS).map(|_| rng.next() % RESIDENT).collect()
}

fn hit_ratio(trace: &[u64], mut access: impl FnMut(u64) -> bool) -> f64 {
    let hits = trace.iter().filter(|&&k| access(k)).count();
    hits as f64 / trace.len() as f64
}

fn print_hit_ratios() {
    let trace = zipf_trace(ZIPF_KEYS, 1.0, ZIPF_ACCESSES, 7);
    let mut ours = Cache::with_max_entries(ZIPF_CAPACITY);
    let r_ours = hit_ratio(&trace, |k| {
        ours.get(&k).is_some() || {
            let _ = ours.insert(k, k);
            false
        }
    });
    let mut qc = quick_cache::unsync::Cache::new(ZIPF_CAPACITY);
    let r_qc = hit_ratio(&trace, |k| {
        qc.get(&k).is_some() || {
            qc.insert(k, k);
            false
        }
    });
    let ours_sync = SyncCache::builder()
        .max_entries(ZIPF_CAPACITY)
        .build()
        .expect("valid");
    let r_ours_sync = hit_ratio(&trace, |k| {
        ours_sync.get(&k).is_some() || {
            let _ = ours_sync.insert(k, k);
            false
        }
    });
    let qc_sync = quick_cache::sync::Cache::new(ZIPF_CAPACITY);
    let r_qc_sync = hit_ratio(&trace, |k| {
        qc_sync.get(&k).is_some() || {
            qc_sync.insert(k, k);
            false
        }
    });
    let moka = moka::sync::Cache::new(ZIPF_CAPACITY as u64);
    let r_moka = hit_ratio(&trace, |k| {
        moka.get(&k).is_some() || {
            moka.insert(k, k);
            false
        }
    });
    println!(
        "zipf hit ratio (s=1.0, {ZIPF_KEYS} keys, capacity {ZIPF_CAPACITY}, {ZIPF_ACCESSES} accesses): \
         mechops {r_ours:.4} | quick_cache unsync {r_qc:.4} | mechops sync {r_ours_sync:.4} | \
         quick_cache sync {r_qc_sync:.4} | moka sync {r_moka:.4}"
    );
}

fn get_hit(c: &mut Criterion) {
    print_hit_ratios();
    let keys = lookup_keys();
    let mut g = c.benchmark_group("cache/get_hit");

    let mut ours = Cache::with_max_entries(2 * RESIDENT as usize);
    let mut qc = quick_cache::unsync::Cache::new(2 * RESIDENT as usize);
    let ours_sync = SyncCache::builder()
        .max_entries(2 * RESIDENT as usize)
        .build()
        .expect("valid");
    let qc_sync = quick_cache::sync::Cache::new(2 * RESIDENT as usize);
    let moka = moka::sync::Cache::new(2 * RESIDENT);
    for k in 0..RESIDENT {
        let _ = ours.insert(k, k);
        qc.insert(k, k);
        let _ = ours_sync.insert(k, k);
        qc_sync.insert(k, k);
        moka.insert(k, k);
    }
    moka.run_pending_tasks();
    for k in &keys {
        assert!(ours.get(k).is_some() && qc.get(k).is_some());
        assert!(ours_sync.get(k).is_some() && qc_sync.get(k).is_some());
        assert!(moka.get(k).is_some());
    }

    let mut i = 0usize;
    g.bench_function("mechops_unsync", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            black_box(ours.get(black_box(&keys[i % LOOKUPS])).copied())
        })
    });
    g.bench_function("quick_cache_unsync", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            black_box(qc.get(black_box(&keys[i % LOOKUPS])).copied())
        })
    });
    g.bench_function("mechops_sync", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            black_box(ours_sync.get(black_box(&keys[i % LOOKUPS])))
        })
    });
    g.bench_function("quick_cache_sync", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            black_box(qc_sync.get(black_box(&keys[i % LOOKUPS])))
        })
    });
    g.bench_function("moka_sync", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            black_box(moka.get(black_box(&keys[i % LOOKUPS])))
        })
    });
    g.finish();

    // Two threads reading the same shared cache: this thread's loop is timed
    // while a second thread runs the same loop from another offset.
    let mut g = c.benchmark_group("cache/get_hit_2_threads");
    g.bench_function("mechops_sync", |b| {
        b.iter_custom(|iters| two_threads(iters, &keys, |k| black_box(ours_sync.get(k)).is_some()))
    });
    g.bench_function("quick_cache_sync", |b| {
        b.iter_custom(|iters| two_threads(iters, &keys, |k| black_box(qc_sync.get(k)).is_some()))
    });
    g.finish();
}

fn two_threads(iters: u64, keys: &[u64], get: impl Fn(&u64) -> bool + Sync) -> Duration {
    std::thread::scope(|s| {
        let other = s.spawn(|| {
            for i in 0..iters as usize {
                get(black_box(&keys[(i + LOOKUPS / 2) % LOOKUPS]));
            }
        });
        let start = Instant::now();
        for i in 0..iters as usize {
            get(black_box(&keys[i % LOOKUPS]));
        }
        let elapsed = start.elapsed();
        other.join().expect("benchmark thread");
        elapsed
    })
}

criterion_group!(group, get_hit);
criterion_main!(group);
