//! The growable cache through its public API: weights in bytes, expiry on
//! an injected clock, the listener, and the policy on a skewed workload.

use core::time::Duration;

use mechops_core::time::{Instant, ManualClock};
use std::sync::{Arc, Mutex};

use mechops_alloc::cache::{Cache, EvictionCause};

#[test]
fn byte_weighted_cache_of_documents() {
    let evicted = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&evicted);
    let mut cache = Cache::builder()
        .max_weight(1024, |k: &String, v: &Vec<u8>| (k.len() + v.len()) as u64)
        .eviction_listener(move |k, v, cause| sink.lock().unwrap().push((k, v.len(), cause)))
        .build()
        .unwrap();
    for i in 0..40 {
        cache.insert(format!("doc-{i:02}"), vec![0u8; 100]).unwrap();
        assert!(cache.weight() <= 1024);
    }
    // Each entry weighs 106: nine fit.
    assert_eq!(cache.len(), 9);
    let evicted = evicted.lock().unwrap();
    assert_eq!(evicted.len(), 31);
    assert!(
        evicted
            .iter()
            .all(|(_, len, c)| *len == 100 && *c == EvictionCause::Capacity)
    );
}

#[test]
fn ttl_and_tti_together() {
    let now = ManualClock::new(Instant::ZERO);
    let mut cache = Cache::builder()
        .max_entries(100)
        .time_to_live(Duration::from_secs(60))
        .time_to_idle(Duration::from_secs(10))
        .clock(&now)
        .build()
        .unwrap();
    cache.insert("hot", 1).unwrap();
    cache.insert("cold", 2).unwrap();
    // Reading "hot" every 5 s keeps it past its idle time, but not past its
    // time to live.
    for t in (5..60).step_by(5) {
        now.set(Instant::from_secs(t));
        assert_eq!(cache.get("hot"), Some(&1), "at {t}s");
    }
    assert_eq!(cache.get("cold"), None, "idle for 55 s");
    now.set(Instant::from_secs(60));
    assert_eq!(cache.get("hot"), None, "time to live is over");
    let s = cache.stats();
    assert_eq!(s.expirations, 2);
}

#[test]
fn skewed_workload_keeps_the_popular_keys() {
    // 20 popular keys read constantly among a stream of one-time keys.
    let mut cache = Cache::with_max_entries(100);
    let mut popular_hits = 0;
    for round in 0..2000u32 {
        let popular = round % 20;
        if cache.get(&popular).is_some() {
            popular_hits += 1;
        } else {
            cache.insert(popular, ()).unwrap();
        }
        cache.insert(1_000_000 + round, ()).unwrap();
    }
    assert!(
        popular_hits > 1900,
        "popular keys kept: {popular_hits} hits"
    );
}
