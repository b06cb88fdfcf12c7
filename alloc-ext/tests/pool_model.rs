//! The growable pool's invariants under random operation sequences.

use core::time::Duration;

use mechops_alloc::pool::{Growth, PoolBuilder, PoolStats};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Take,
    Put(usize),
    Detach(usize),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Take),
        3 => any::<usize>().prop_map(Op::Put),
        1 => any::<usize>().prop_map(Op::Detach),
        2 => (0u64..8).prop_map(Op::Advance),
    ]
}

fn growth() -> impl Strategy<Value = Growth> {
    prop_oneof![
        Just(Growth::OnDemand),
        (1usize..5).prop_map(Growth::Step),
        Just(Growth::Double),
    ]
}

fn check_identities(s: &PoolStats, max: usize) -> Result<(), TestCaseError> {
    prop_assert_eq!(s.created, s.in_use + s.idle + s.shrunk + s.detached);
    prop_assert_eq!(s.acquired, s.hits + s.misses);
    prop_assert!(s.live() <= max as u64);
    prop_assert!(s.high_water >= s.in_use);
    Ok(())
}

proptest! {
    // Under miri, PROPTEST_CASES (read by the default config) bounds the run.
    #![proptest_config(if cfg!(miri) { ProptestConfig::default() } else { ProptestConfig::with_cases(256) })]

    #[test]
    fn pool_invariants(
        max in 1usize..12,
        min_frac in 0usize..=100,
        init_frac in 0usize..=100,
        growth in growth(),
        timeout in proptest::option::of(1u64..6),
        ops in proptest::collection::vec(op(), 1..150),
    ) {
        let min = max * min_frac / 100;
        let initial = max * init_frac / 100;
        let mut serial = 0u64;
        let mut builder = PoolBuilder::new(max, move || { serial += 1; (serial, false) })
            .min_size(min)
            .initial_size(initial)
            .growth(growth)
            .reset(|o: &mut (u64, bool)| o.1 = false);
        if let Some(t) = timeout {
            builder = builder.idle_timeout(Duration::from_secs(t));
        }
        let mut pool = builder.build_store().unwrap();
        prop_assert_eq!(pool.live(), initial.max(min));
        let mut held: Vec<(u64, bool)> = Vec::new();
        let mut now = 0u64;
        pool.maintain(Duration::from_secs(now));
        for op in ops {
            match op {
                Op::Take => {
                    let before = pool.stats();
                    match pool.take() {
                        Some(mut o) => {
                            prop_assert!(!o.1, "object handed out without reset");
                            prop_assert!(!held.iter().any(|h| h.0 == o.0), "double hand-out");
                            o.1 = true;
                            held.push(o);
                        }
                        None => {
                            prop_assert_eq!(before.idle, 0);
                            prop_assert_eq!(before.live(), max as u64);
                        }
                    }
                }
                Op::Put(i) if !held.is_empty() => {
                    let o = held.swap_remove(i % held.len());
                    pool.put(o);
                }
                Op::Detach(i) if !held.is_empty() => {
                    held.swap_remove(i % held.len());
                    pool.detach();
                }
                Op::Advance(dt) => {
                    now += dt;
                    let live_before = pool.live();
                    let dropped = pool.maintain(Duration::from_secs(now));
                    prop_assert_eq!(pool.live(), live_before - dropped);
                    if dropped > 0 {
                        prop_assert!(pool.live() >= min);
                    }
                }
                Op::Put(_) | Op::Detach(_) => {}
            }
            let s = pool.stats();
            prop_assert_eq!(s.in_use, held.len() as u64);
            check_identities(&s, max)?;
        }
    }
}
