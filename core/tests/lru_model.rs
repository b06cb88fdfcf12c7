//! The fixed LRU cache against a plain `Vec` reference model, under random
//! operation sequences, with a good hasher and with one that makes most keys
//! collide (so the hash chains get long).

use core::hash::{BuildHasher, Hasher};

use mechops_core::lru::{LruCache, LruStats};
use proptest::prelude::*;

/// The reference: entries from the most recently used to the least.
#[derive(Default)]
struct Model {
    entries: Vec<(u8, u32)>,
    capacity: usize,
    stats: LruStats,
}

impl Model {
    fn position(&self, key: u8) -> Option<usize> {
        self.entries.iter().position(|(k, _)| *k == key)
    }

    fn get(&mut self, key: u8) -> Option<u32> {
        match self.position(key) {
            Some(i) => {
                self.stats.hits += 1;
                let entry = self.entries.remove(i);
                self.entries.insert(0, entry);
                Some(entry.1)
            }
            None => {
                self.stats.misses += 1;
                None
            }
        }
    }

    fn insert(&mut self, key: u8, value: u32) -> Option<(u8, u32)> {
        if self.capacity == 0 {
            return Some((key, value));
        }
        if let Some(i) = self.position(key) {
            let old = self.entries.remove(i);
            self.entries.insert(0, (key, value));
            return Some(old);
        }
        let evicted = if self.entries.len() == self.capacity {
            self.stats.evictions += 1;
            self.entries.pop()
        } else {
            None
        };
        self.entries.insert(0, (key, value));
        evicted
    }

    fn remove(&mut self, key: u8) -> Option<u32> {
        self.position(key).map(|i| self.entries.remove(i).1)
    }
}

#[derive(Clone, Debug)]
enum Op {
    Insert(u8, u32),
    Get(u8),
    Peek(u8),
    Remove(u8),
    PopLru,
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0u8..24;
    prop_oneof![
        4 => (key.clone(), any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
        4 => key.clone().prop_map(Op::Get),
        1 => key.clone().prop_map(Op::Peek),
        2 => key.prop_map(Op::Remove),
        1 => Just(Op::PopLru),
    ]
}

/// Hashes every key to one of three values.
#[derive(Clone, Copy, Default)]
struct ThreeWay;

struct ThreeWayHasher(u64);

impl Hasher for ThreeWayHasher {
    fn finish(&self) -> u64 {
        (self.0 % 3).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.wrapping_add(u64::from(b));
        }
    }
}

impl BuildHasher for ThreeWay {
    type Hasher = ThreeWayHasher;
    fn build_hasher(&self) -> ThreeWayHasher {
        ThreeWayHasher(0)
    }
}

fn run<const N: usize, S: BuildHasher>(
    mut cache: LruCache<u8, u32, N, S>,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let mut model = Model {
        capacity: N,
        ..Model::default()
    };
    for op in ops {
        match *op {
            Op::Insert(k, v) => prop_assert_eq!(cache.insert(k, v), model.insert(k, v), "{:?}", op),
            Op::Get(k) => prop_assert_eq!(cache.get(&k).copied(), model.get(k), "{:?}", op),
            Op::Peek(k) => prop_assert_eq!(
                cache.peek(&k).copied(),
                model.position(k).map(|i| model.entries[i].1)
            ),
            Op::Remove(k) => prop_assert_eq!(cache.remove(&k), model.remove(k), "{:?}", op),
            Op::PopLru => prop_assert_eq!(cache.pop_lru(), model.entries.pop()),
        }
        let order: Vec<(u8, u32)> = cache.iter().map(|(k, v)| (*k, *v)).collect();
        prop_assert_eq!(&order, &model.entries);
        let reversed: Vec<(u8, u32)> = cache.iter().rev().map(|(k, v)| (*k, *v)).collect();
        prop_assert!(reversed.iter().eq(model.entries.iter().rev()));
        prop_assert_eq!(cache.len(), model.entries.len());
        prop_assert_eq!(cache.stats(), model.stats);
    }
    for key in 0u8..24 {
        prop_assert_eq!(cache.contains_key(&key), model.position(key).is_some());
    }
    Ok(())
}

proptest! {
    // Under miri, PROPTEST_CASES (read by the default config) bounds the run.
    #![proptest_config(if cfg!(miri) { ProptestConfig::default() } else { ProptestConfig::with_cases(300) })]

    #[test]
    fn matches_the_model_with_the_default_hasher(ops in prop::collection::vec(op(), 0..200)) {
        run::<8, _>(LruCache::new(), &ops)?;
        run::<1, _>(LruCache::new(), &ops)?;
    }

    #[test]
    fn matches_the_model_with_colliding_hashes(ops in prop::collection::vec(op(), 0..200)) {
        run::<5, _>(LruCache::with_hasher(ThreeWay), &ops)?;
    }

    #[test]
    fn matches_the_model_at_zero_capacity(ops in prop::collection::vec(op(), 0..50)) {
        run::<0, _>(LruCache::new(), &ops)?;
    }
}
