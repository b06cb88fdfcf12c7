//! Unit tests of the cache's policy, bounds, expiry and listener.

use alloc::rc::Rc;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cell::Cell;
use core::time::Duration;

use std::sync::Mutex;

use mechops_core::time::{Instant, MonotonicClock};

use super::*;

/// A clock in whole seconds that the test sets through the shared cell.
#[derive(Clone)]
struct SecondsClock(Rc<Cell<u64>>);

impl MonotonicClock for SecondsClock {
    fn now(&self) -> Instant {
        Instant::from_secs(self.0.get())
    }
}

fn manual_clock() -> (Rc<Cell<u64>>, SecondsClock) {
    let t = Rc::new(Cell::new(0u64));
    (Rc::clone(&t), SecondsClock(t))
}

type Log = Arc<Mutex<Vec<(u32, EvictionCause)>>>;

fn logging_builder() -> (Log, CacheBuilder<u32, u32>) {
    let log: Log = Arc::default();
    let sink = Arc::clone(&log);
    let b = Cache::builder()
        .eviction_listener(move |k, _v, cause| sink.lock().unwrap().push((k, cause)));
    (log, b)
}

#[test]
fn get_after_insert_and_replace() {
    let mut c = Cache::with_max_entries(4);
    assert_eq!(c.insert(1, "a"), Ok(None));
    assert_eq!(c.get(&1), Some(&"a"));
    assert_eq!(c.insert(1, "b"), Ok(Some("a")));
    assert_eq!(c.get(&1), Some(&"b"));
    assert_eq!(c.get(&2), None);
    let s = c.stats();
    assert_eq!((s.hits, s.misses, s.inserts, s.updates), (2, 1, 1, 1));
    assert!((s.hit_rate() - 2.0 / 3.0).abs() < 1e-9);
}

#[test]
fn borrowed_lookups() {
    let mut c: Cache<String, u8> = Cache::with_max_entries(2);
    c.insert(String::from("k"), 1).unwrap();
    assert_eq!(c.get("k"), Some(&1));
    assert_eq!(c.remove("k"), Some(1));
    assert!(c.is_empty());
}

#[test]
fn count_bound_holds_and_evictions_reach_the_listener() {
    let (log, b) = logging_builder();
    let mut c = b.max_entries(8).build().unwrap();
    for k in 0..100 {
        c.insert(k, k).unwrap();
        assert!(c.len() <= 8);
    }
    assert_eq!(c.len(), 8);
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 92);
    assert!(
        log.iter()
            .all(|&(_, cause)| cause == EvictionCause::Capacity)
    );
    assert_eq!(c.stats().evictions, 92);
}

#[test]
fn weight_bound_holds_and_oversized_is_handed_back() {
    let mut c = Cache::builder()
        .max_weight(100, |_k: &u32, v: &Vec<u8>| v.len() as u64)
        .build()
        .unwrap();
    for k in 0..50 {
        c.insert(k, alloc::vec![0u8; 30]).unwrap();
        assert!(c.weight() <= 100);
    }
    assert_eq!(c.weight(), 90);
    let err = c.insert(999, alloc::vec![0u8; 101]).unwrap_err();
    assert_eq!((err.key, err.weight, err.max_weight), (999, 101, 100));
    assert!(alloc::format!("{err}").contains("101"));
    assert_eq!(c.stats().rejections, 1);
    // A refused update removes the stale value it would have replaced.
    c.insert(7, alloc::vec![1u8; 10]).unwrap();
    let err = c.insert(7, alloc::vec![0u8; 101]).unwrap_err();
    assert_eq!(err.previous, Some(alloc::vec![1u8; 10]));
    assert!(c.peek(&7).is_none());
}

#[test]
fn replacing_updates_the_weight() {
    let mut c = Cache::builder()
        .max_weight(100, |_k: &u8, v: &u64| *v)
        .build()
        .unwrap();
    c.insert(1, 10).unwrap();
    c.insert(2, 10).unwrap();
    assert_eq!(c.weight(), 20);
    c.insert(1, 50).unwrap();
    assert_eq!(c.weight(), 60);
    c.insert(2, 60).unwrap();
    assert!(c.weight() <= 100);
}

#[test]
fn frequently_read_keys_survive_a_scan() {
    let mut c = Cache::with_max_entries(100);
    for k in 0..50u32 {
        c.insert(k, ()).unwrap();
    }
    for _ in 0..2 {
        for k in 0..50u32 {
            assert!(c.get(&k).is_some());
        }
    }
    // A one-pass scan of many new keys.
    for k in 1000..3000u32 {
        c.insert(k, ()).unwrap();
    }
    let survivors = (0..50u32).filter(|k| c.peek(k).is_some()).count();
    assert_eq!(survivors, 50, "hot keys were flushed by a scan");
}

#[test]
fn ghost_readmits_into_main() {
    let mut c = Cache::with_max_entries(20);
    for k in 0..20u32 {
        c.insert(k, ()).unwrap();
    }
    for k in 0..20u32 {
        c.get(&k);
    }
    // 500 passes through the small queue unread and leaves.
    for k in 500..503u32 {
        c.insert(k, ()).unwrap();
    }
    assert!(c.peek(&500).is_none());
    // Back soon: the ghost sends it to the main queue, where a wave of
    // one-time keys passing through the small queue does not reach it.
    c.insert(500, ()).unwrap();
    for k in 600..610u32 {
        c.insert(k, ()).unwrap();
    }
    assert!(c.peek(&500).is_some());
    // A key never seen before gets no such protection.
    c.insert(700, ()).unwrap();
    for k in 800..810u32 {
        c.insert(k, ()).unwrap();
    }
    assert!(c.peek(&700).is_none());
}

#[test]
fn time_to_live_expires_on_get() {
    let (t, clock) = manual_clock();
    let (log, b) = logging_builder();
    let mut c = b
        .max_entries(10)
        .time_to_live(Duration::from_secs(10))
        .clock(clock)
        .build()
        .unwrap();
    c.insert(1, 1).unwrap();
    t.set(9);
    assert_eq!(c.get(&1), Some(&1));
    t.set(10);
    assert_eq!(c.peek(&1), None);
    assert_eq!(c.get(&1), None);
    assert_eq!(*log.lock().unwrap(), [(1, EvictionCause::Expired)]);
    assert_eq!(c.stats().expirations, 1);
    assert!(c.is_empty());
}

#[test]
fn time_to_idle_is_refreshed_by_reads() {
    let (t, clock) = manual_clock();
    let mut c = Cache::builder()
        .max_entries(10)
        .time_to_idle(Duration::from_secs(5))
        .clock(clock)
        .build()
        .unwrap();
    c.insert(1, 1).unwrap();
    for now in [4, 8, 12] {
        t.set(now);
        assert_eq!(c.get(&1), Some(&1), "read at {now}");
    }
    t.set(17);
    assert_eq!(c.get(&1), None);
}

#[test]
fn purge_and_replace_of_expired() {
    let (t, clock) = manual_clock();
    let (log, b) = logging_builder();
    let mut c = b
        .max_entries(10)
        .time_to_live(Duration::from_secs(1))
        .clock(clock)
        .build()
        .unwrap();
    for k in 0..5 {
        c.insert(k, k).unwrap();
    }
    t.set(1);
    // Inserting over an expired entry reports the old one as expired.
    assert_eq!(c.insert(0, 9), Ok(None));
    assert_eq!(c.purge_expired(), 4);
    assert_eq!(c.len(), 1);
    assert_eq!(log.lock().unwrap().len(), 5);
    assert_eq!(c.remove(&0), Some(9));
}

#[test]
fn build_errors() {
    assert_eq!(
        Cache::<u8, u8>::builder().build().unwrap_err(),
        BuildError::Unbounded
    );
    assert_eq!(
        Cache::<u8, u8>::builder()
            .max_entries(0)
            .build()
            .unwrap_err(),
        BuildError::ZeroCapacity
    );
    assert_eq!(
        Cache::<u8, u8>::builder()
            .max_entries(4)
            .time_to_live(Duration::from_secs(1))
            .build()
            .unwrap_err(),
        BuildError::ExpiryWithoutClock
    );
    let (_, clock) = manual_clock();
    assert_eq!(
        Cache::<u8, u8>::builder()
            .max_entries(4)
            .time_to_idle(Duration::ZERO)
            .clock(clock)
            .build()
            .unwrap_err(),
        BuildError::ZeroExpiry
    );
}

#[test]
fn out_of_range_entry_bounds() {
    assert_eq!(
        Cache::<u8, u8>::builder()
            .max_entries(usize::MAX)
            .build()
            .unwrap_err(),
        BuildError::TooManyEntries {
            requested: usize::MAX,
            limit: u32::MAX as usize - 1
        }
    );
    // The convenience constructor clamps instead.
    assert_eq!(
        Cache::<u8, u8>::with_max_entries(usize::MAX).max_entries(),
        u32::MAX as usize - 1
    );
    assert_eq!(Cache::<u8, u8>::with_max_entries(0).max_entries(), 1);
}

#[test]
fn clear_and_reuse_slots() {
    let mut c = Cache::with_max_entries(3);
    for k in 0..3u8 {
        c.insert(k, k).unwrap();
    }
    c.remove(&1);
    c.insert(7, 7).unwrap();
    assert_eq!(c.get(&7), Some(&7));
    let mut seen = Vec::new();
    c.for_each(|k, _| seen.push(*k));
    seen.sort_unstable();
    assert_eq!(seen, [0, 2, 7]);
    c.clear();
    assert!(c.is_empty());
    assert_eq!(c.weight(), 0);
    c.insert(1, 1).unwrap();
    assert_eq!(c.get(&1), Some(&1));
}

#[test]
fn collected_evictions_wait_to_be_drained() {
    let (t, clock) = manual_clock();
    let mut c = Cache::builder()
        .max_entries(2)
        .time_to_live(Duration::from_secs(10))
        .clock(clock)
        .collect_evictions()
        .build()
        .unwrap();
    for k in 0..3u32 {
        c.insert(k, k * 10).unwrap();
    }
    assert!(c.has_evicted());
    assert_eq!(c.poll_evicted(), Some((0, 0, EvictionCause::Capacity)));
    assert_eq!(c.poll_evicted(), None);
    t.set(10);
    assert_eq!(c.purge_expired(), 2);
    let drained: Vec<_> = c.drain_evicted().collect();
    assert_eq!(
        drained,
        [
            (1, 10, EvictionCause::Expired),
            (2, 20, EvictionCause::Expired)
        ]
    );
    assert!(!c.has_evicted());
}

#[test]
fn weights_near_the_maximum_do_not_overflow() {
    let mut c = Cache::builder()
        .max_weight(u64::MAX, |_: &u8, w: &u64| *w)
        .build()
        .unwrap();
    c.insert(1, 1u64 << 63).unwrap();
    c.insert(2, 1u64 << 63).unwrap();
    // 2^64 is over the bound by one: one entry went.
    assert_eq!(c.len(), 1);
    assert_eq!(c.weight(), 1u64 << 63);
    c.insert(3, u64::MAX).unwrap();
    assert_eq!((c.len(), c.weight()), (1, u64::MAX));
    // Replacing a value re-weighs it without wrapping either.
    c.insert(3, u64::MAX - 1).unwrap();
    assert_eq!(c.weight(), u64::MAX - 1);
}
