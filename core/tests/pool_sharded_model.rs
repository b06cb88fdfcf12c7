//! The sharded pool against a reference model on one thread: one LIFO stack
//! of free slot indices per shard, a search that starts at the hinted shard
//! and goes on in order, releases that go to the slot's home shard, and
//! per-shard peaks of objects out. Checks which slot each acquire gets, that
//! objects keep what their holders wrote, and every statistic.

use mechops_core::pool::{ShardedPool, ShardedPoolGuard};
use proptest::prelude::*;

const CAPACITY: usize = 7;
const SHARDS: usize = 3;
/// Slots per shard: 3, 3 and 1.
const BLOCK: usize = CAPACITY.div_ceil(SHARDS);

#[derive(Clone, Debug)]
enum Op {
    /// Acquires with this hint.
    Acquire(usize),
    /// Releases the held object at this position (modulo the number held).
    Release(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0usize..8).prop_map(Op::Release),
        (0usize..16).prop_map(Op::Acquire)
    ]
}

proptest! {
    // Under miri, PROPTEST_CASES (read by the default config) bounds the run.
    #![proptest_config(if cfg!(miri) { ProptestConfig::default() } else { ProptestConfig::with_cases(300) })]

    #[test]
    fn matches_per_shard_lifo_stacks(ops in prop::collection::vec(op(), 0..120)) {
        let pool: ShardedPool<u32, CAPACITY, SHARDS> = ShardedPool::new([0; CAPACITY]);
        let mut held: Vec<ShardedPoolGuard<'_, u32, CAPACITY, SHARDS>> = Vec::new();
        // The model: each shard's free slots, the next to hand out last.
        let mut free: Vec<Vec<usize>> = (0..SHARDS)
            .map(|s| (s * BLOCK..((s + 1) * BLOCK).min(CAPACITY)).rev().collect())
            .collect();
        let mut out = [0usize; SHARDS];
        let mut peak = [0usize; SHARDS];
        let mut writes = [0u32; CAPACITY];
        let (mut acquires, mut releases, mut misses) = (0u64, 0u64, 0u64);
        for (step, op) in ops.iter().enumerate() {
            match *op {
                Op::Acquire(hint) => {
                    let expected = (0..SHARDS)
                        .map(|k| (hint + k) % SHARDS)
                        .find_map(|shard| free[shard].pop());
                    match (pool.try_acquire_hinted(hint), expected) {
                        (Some(mut guard), Some(slot)) => {
                            prop_assert_eq!(guard.slot(), slot);
                            prop_assert_eq!(guard.shard(), slot / BLOCK);
                            prop_assert_eq!(*guard, writes[slot], "object lost what its last holder wrote");
                            *guard = step as u32;
                            writes[slot] = step as u32;
                            let home = slot / BLOCK;
                            out[home] += 1;
                            peak[home] = peak[home].max(out[home]);
                            held.push(guard);
                            acquires += 1;
                        }
                        (None, None) => misses += 1,
                        (got, expected) => prop_assert!(false, "pool gave {:?}, model {:?}", got.map(|g| g.slot()), expected),
                    }
                }
                Op::Release(i) if !held.is_empty() => {
                    let guard = held.remove(i % held.len());
                    let home = guard.slot() / BLOCK;
                    free[home].push(guard.slot());
                    out[home] -= 1;
                    drop(guard);
                    releases += 1;
                }
                Op::Release(_) => {}
            }
            let stats = pool.stats();
            prop_assert_eq!(stats.acquires, acquires);
            prop_assert_eq!(stats.releases, releases);
            prop_assert_eq!(stats.misses, misses);
            prop_assert_eq!(stats.in_use, held.len());
            prop_assert_eq!(stats.available(), CAPACITY - held.len());
            prop_assert_eq!(stats.high_water, peak.iter().sum::<usize>());
        }
    }
}
