//! The frame cache against a reference model: a plain recency-ordered list.

mod common;

use common::Seeded;

use mechops_alloc::serialize::{
    CompressionPolicy, Format, FrameCache, FrameCacheStats, Options, Postcard, compress,
    deserialize, serialize, serialize_batch,
};
use proptest::prelude::*;
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// Entries oldest first: (payload, weight).
#[derive(Default)]
struct Model {
    entries: Vec<(Vec<u8>, usize)>,
    stats: FrameCacheStats,
}

impl Model {
    fn access(&mut self, payload: Vec<u8>, weight: usize, max_entries: usize, max_bytes: usize) {
        if let Some(i) = self.entries.iter().position(|(p, _)| *p == payload) {
            let entry = self.entries.remove(i);
            self.entries.push(entry);
            self.stats.hits += 1;
            return;
        }
        self.stats.misses += 1;
        if weight > max_bytes || max_entries == 0 {
            return;
        }
        while self.entries.len() >= max_entries || self.bytes() + weight > max_bytes {
            self.entries.remove(0);
            self.stats.evictions += 1;
        }
        self.entries.push((payload, weight));
    }

    fn bytes(&self) -> usize {
        self.entries.iter().map(|(_, w)| w).sum()
    }
}

/// One of a few distinct values, so that repeats happen.
fn value(choice: u8) -> Vec<u8> {
    let len = usize::from(choice) * 37 % 300;
    (0..len)
        .map(|i| if choice % 2 == 0 { b'a' } else { (i * 7) as u8 })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn cache_matches_the_model(
        choices in prop::collection::vec(0u8..12, 1..80),
        max_entries in 0usize..6,
        max_bytes in 0usize..1500,
    ) {
        let options = Options::new(Format::Postcard).compression(CompressionPolicy::Always);
        let mut cache = FrameCache::new(max_entries, max_bytes);
        let mut model = Model::default();
        let mut rng = Seeded(Xoshiro256PlusPlus::seed_from_u64(3));
        for choice in choices {
            let v = value(choice);
            let payload = postcard::to_allocvec(&v).unwrap();
            let packed = compress(&payload, CompressionPolicy::Always, options.level).unwrap();
            let weight = payload.len() + packed.as_ref().map_or(0, Vec::len);
            model.access(payload, weight, max_entries, max_bytes);
            let framed = serialize_batch::<Postcard, _, _>([&v], &options, &mut rng, Some(&mut cache))
                .unwrap()
                .remove(0);
            // A cached frame is byte-for-byte the uncached one.
            prop_assert_eq!(&framed, &serialize(&v, &options).unwrap());
            prop_assert_eq!(deserialize::<Vec<u8>>(&framed.data, &options).unwrap(), v);
            prop_assert_eq!(cache.stats(), model.stats);
            prop_assert_eq!(cache.len(), model.entries.len());
            prop_assert_eq!(cache.bytes(), model.bytes());
            prop_assert!(cache.len() <= max_entries && cache.bytes() <= max_bytes);
        }
    }
}
