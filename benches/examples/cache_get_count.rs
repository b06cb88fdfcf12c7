//! A small driver for counting instructions of a cache hit with callgrind,
//! which, unlike a timing, does not move with the load of a shared machine:
//!
//! ```text
//! cargo build --release -p mechops-benches --example cache_get_count
//! valgrind --tool=callgrind --callgrind-out-file=cg.out \
//!     target/release/examples/cache_get_count mechops_sync
//! callgrind_annotate cg.out | head
//! ```
//!
//! The argument picks the cache (`mechops_sync`, `quick_cache_sync`,
//! `mechops_unsync`, `quick_cache_unsync`); each does the same 1,000,000
//! lookup hits on the keys of `benches/cache.rs`; a second argument sets
//! another number of lookups. Subtract a run with `0` lookups (the setup)
//! and divide to get instructions per lookup.

use core::hint::black_box;

use mechops_alloc::cache::Cache;
use mechops_std::cache::SyncCache;

const RESIDENT: u64 = 10_000;
const LOOKUPS: usize = 4096;
const ROUNDS: usize = 1_000_000;

fn keys() -> Vec<u64> {
    // The SplitMix64 of benches/cache.rs, seed 42.
    let mut s = 42u64;
    (0..LOOKUPS)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) % RESIDENT
        })
        .collect()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_default();
    let rounds: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(ROUNDS);
    let keys = keys();
    let cap = 2 * RESIDENT as usize;
    let mut hits = 0usize;
    match which.as_str() {
        "mechops_sync" => {
            let c = SyncCache::builder()
                .max_entries(cap)
                .build()
                .expect("valid");
            (0..RESIDENT).for_each(|k| drop(c.insert(k, k)));
            for i in 0..rounds {
                hits += usize::from(black_box(c.get(&keys[i % LOOKUPS])).is_some());
            }
        }
        "quick_cache_sync" => {
            let c = quick_cache::sync::Cache::new(cap);
            (0..RESIDENT).for_each(|k| c.insert(k, k));
            for i in 0..rounds {
                hits += usize::from(black_box(c.get(&keys[i % LOOKUPS])).is_some());
            }
        }
        "mechops_unsync" => {
            let mut c = Cache::with_max_entries(cap);
            (0..RESIDENT).for_each(|k| drop(c.insert(k, k)));
            for i in 0..rounds {
                hits += usize::from(black_box(c.get(&keys[i % LOOKUPS]).copied()).is_some());
            }
        }
        "quick_cache_unsync" => {
            let mut c = quick_cache::unsync::Cache::new(cap);
            (0..RESIDENT).for_each(|k| c.insert(k, k));
            for i in 0..rounds {
                hits += usize::from(black_box(c.get(&keys[i % LOOKUPS]).copied()).is_some());
            }
        }
        _ => {}
    }
    println!("{hits}");
}
