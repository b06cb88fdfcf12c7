//! The growable cache against a reference model.
//!
//! The eviction policy chooses *which* entry goes, so the model learns about
//! evictions from the eviction listener; everything else is exact: after
//! every operation the cache holds exactly the model's entries, within both
//! bounds, and expiry follows the model's clock to the nanosecond.

use core::cell::Cell;
use core::time::Duration;

use mechops_core::time::{Instant, MonotonicClock};

/// The cache's clock, reading the model's time in nanoseconds.
struct ModelClock(Rc<Cell<u64>>);

impl MonotonicClock for ModelClock {
    fn now(&self) -> Instant {
        Instant::from_nanos(self.0.get())
    }
}
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use mechops_alloc::cache::{Cache, EvictionCause};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Insert(u8, u64),
    Get(u8),
    Peek(u8),
    Remove(u8),
    Advance(u64),
    Purge,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..16, 1u64..12).prop_map(|(k, w)| Op::Insert(k, w)),
        4 => (0u8..16).prop_map(Op::Get),
        1 => (0u8..16).prop_map(Op::Peek),
        1 => (0u8..16).prop_map(Op::Remove),
        2 => (0u64..6).prop_map(Op::Advance),
        1 => Just(Op::Purge),
    ]
}

#[derive(Clone, Copy, Debug)]
struct ModelEntry {
    value: (u64, u64),
    weight: u64,
    inserted: u64,
    accessed: u64,
}

struct Model {
    entries: HashMap<u8, ModelEntry>,
    ttl: Option<u64>,
    tti: Option<u64>,
}

impl Model {
    fn expired(&self, e: &ModelEntry, now: u64) -> bool {
        self.ttl.is_some_and(|t| now >= e.inserted + t)
            || self.tti.is_some_and(|t| now - e.accessed >= t)
    }

    fn live(&self, k: u8, now: u64) -> Option<ModelEntry> {
        self.entries
            .get(&k)
            .copied()
            .filter(|e| !self.expired(e, now))
    }
}

type Log = Arc<Mutex<Vec<(u8, (u64, u64), EvictionCause)>>>;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn cache_matches_model(
        max_entries in 1usize..10,
        max_weight in 5u64..40,
        ttl in proptest::option::of(1u64..10),
        tti in proptest::option::of(1u64..10),
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        let now = Rc::new(Cell::new(0u64));
        let clock = ModelClock(Rc::clone(&now));
        let log: Log = Arc::default();
        let sink = Arc::clone(&log);
        let mut builder = Cache::builder()
            .max_entries(max_entries)
            .max_weight(max_weight, |_k: &u8, v: &(u64, u64)| v.1)
            .eviction_listener(move |k, v, cause| sink.lock().unwrap().push((k, v, cause)));
        if let Some(t) = ttl {
            builder = builder.time_to_live(Duration::from_nanos(t));
        }
        if let Some(t) = tti {
            builder = builder.time_to_idle(Duration::from_nanos(t));
        }
        let mut cache = builder
            .clock(clock)
            .build()
            .unwrap();
        let mut model = Model { entries: HashMap::new(), ttl, tti };
        let mut gets = 0u64;

        for (serial, op) in ops.into_iter().enumerate() {
            let t = now.get();
            match op {
                Op::Insert(k, w) => {
                    let value = (serial as u64, w);
                    let result = cache.insert(k, value);
                    if w > max_weight {
                        let err = result.unwrap_err();
                        prop_assert_eq!((err.key, err.value), (k, value));
                        // The old value is removed, not left to be served.
                        let previous = model.live(k, t).map(|e| e.value);
                        prop_assert_eq!(err.previous, previous);
                        if previous.is_some() {
                            model.entries.remove(&k);
                        }
                    } else {
                        let prev = model.live(k, t).map(|e| e.value);
                        prop_assert_eq!(result.unwrap(), prev);
                        // An expired previous entry goes through the listener
                        // first, before the new entry is stored.
                        if prev.is_none() {
                            if let Some(old) = model.entries.remove(&k) {
                                let mut l = log.lock().unwrap();
                                prop_assert!(!l.is_empty());
                                prop_assert_eq!(l.remove(0), (k, old.value, EvictionCause::Expired));
                            }
                        }
                        model.entries.insert(k, ModelEntry { value, weight: w, inserted: t, accessed: t });
                    }
                }
                Op::Get(k) => {
                    gets += 1;
                    let expected = model.live(k, t);
                    prop_assert_eq!(cache.get(&k).copied(), expected.map(|e| e.value));
                    if let Some(e) = model.entries.get_mut(&k) {
                        if expected.is_some() {
                            e.accessed = t;
                        }
                    }
                }
                Op::Peek(k) => {
                    prop_assert_eq!(cache.peek(&k).copied(), model.live(k, t).map(|e| e.value));
                }
                Op::Remove(k) => {
                    let expected = model.live(k, t).map(|e| e.value);
                    prop_assert_eq!(cache.remove(&k), expected);
                    if expected.is_some() {
                        model.entries.remove(&k);
                    }
                }
                Op::Advance(dt) => now.set(t + dt),
                Op::Purge => {
                    let expired = model.entries.values().filter(|e| model.expired(e, t)).count();
                    prop_assert_eq!(cache.purge_expired(), expired);
                }
            }
            // Apply what the listener saw, checking each cause.
            let t = now.get();
            for (k, v, cause) in log.lock().unwrap().drain(..) {
                let e = model.entries.remove(&k);
                prop_assert!(e.is_some(), "listener reported absent key {}", k);
                let e = e.unwrap();
                prop_assert_eq!(e.value, v);
                prop_assert_eq!(cause == EvictionCause::Expired, model.expired(&e, t));
            }
            prop_assert!(cache.len() <= max_entries);
            prop_assert!(cache.weight() <= max_weight);
            prop_assert_eq!(cache.len(), model.entries.len());
            prop_assert_eq!(cache.weight(), model.entries.values().map(|e| e.weight).sum::<u64>());
        }
        let s = cache.stats();
        prop_assert_eq!(s.hits + s.misses, gets);
    }
}
