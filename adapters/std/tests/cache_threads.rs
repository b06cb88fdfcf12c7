//! The sharded cache shared between threads: no value ever appears under a
//! key it was not stored under, and the bounds hold.

use std::sync::Arc;
use std::thread;

use mechops_std::cache::SyncCache;

#[test]
fn concurrent_readers_and_writers_see_only_their_own_values() {
    let cache = Arc::new(
        SyncCache::builder()
            .max_entries(500)
            .shards(8)
            .build()
            .unwrap(),
    );
    let workers: Vec<_> = (0..4u64)
        .map(|t| {
            let cache = Arc::clone(&cache);
            thread::spawn(move || {
                for i in 0..5_000u64 {
                    let key = (i * 7 + t) % 2_000;
                    // The value encodes its key, whoever wrote it.
                    cache.insert(key, key * 10 + t % 2).unwrap();
                    let probe = (i * 13) % 2_000;
                    if let Some(v) = cache.get(&probe) {
                        assert_eq!(v / 10, probe, "value stored under the wrong key");
                    }
                    assert!(cache.len() <= 500);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let s = cache.stats();
    assert_eq!(s.inserts + s.updates, 20_000);
    assert!(cache.len() <= 500);
}
