//! The pool against a reference model on one thread: a LIFO stack of free
//! slot indices and a running maximum of objects out. Checks which slot each
//! acquire gets, that objects keep what their holders wrote, and every
//! statistic.

use mechops_core::pool::{Pool, PoolGuard};
use proptest::prelude::*;

const CAPACITY: usize = 6;

#[derive(Clone, Debug)]
enum Op {
    Acquire,
    /// Releases the held object at this position (modulo the number held).
    Release(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![(0usize..8).prop_map(Op::Release), Just(Op::Acquire)]
}

proptest! {
    // Under miri, PROPTEST_CASES (read by the default config) bounds the run.
    #![proptest_config(if cfg!(miri) { ProptestConfig::default() } else { ProptestConfig::with_cases(300) })]

    #[test]
    fn matches_a_lifo_free_stack(ops in prop::collection::vec(op(), 0..120)) {
        let pool: Pool<u32, CAPACITY> = Pool::new([0; CAPACITY]);
        let mut held: Vec<PoolGuard<'_, u32, CAPACITY>> = Vec::new();
        // The model: free slots with the next one to hand out last.
        let mut free: Vec<usize> = (0..CAPACITY).rev().collect();
        let mut writes = [0u32; CAPACITY];
        let (mut acquires, mut releases, mut misses, mut high_water) = (0u64, 0u64, 0u64, 0usize);
        for (step, op) in ops.iter().enumerate() {
            match *op {
                Op::Acquire => match (pool.try_acquire(), free.pop()) {
                    (Some(mut guard), Some(slot)) => {
                        prop_assert_eq!(guard.slot(), slot);
                        prop_assert_eq!(*guard, writes[slot], "object lost what its last holder wrote");
                        *guard = step as u32;
                        writes[slot] = step as u32;
                        held.push(guard);
                        acquires += 1;
                        high_water = high_water.max(held.len());
                    }
                    (None, None) => misses += 1,
                    (got, expected) => prop_assert!(false, "pool gave {:?}, model {:?}", got.map(|g| g.slot()), expected),
                },
                Op::Release(i) if !held.is_empty() => {
                    let guard = held.remove(i % held.len());
                    free.push(guard.slot());
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
            prop_assert_eq!(stats.high_water, high_water);
        }
    }
}
