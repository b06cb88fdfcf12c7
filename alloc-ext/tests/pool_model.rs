//! The pool store against a simple model under random operation sequences,
//! driven as an async caller would: permits stay outstanding across other
//! operations, creations fail, objects come back broken, and a fake clock
//! drives eviction.

use core::time::Duration;
use std::collections::BTreeSet;

use mechops_alloc::pool::{Checkout, CreatePermit, Growth, PoolBuilder, PoolStats};
use mechops_core::time::{Instant, ManualClock, MonotonicClock};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Checkout,
    PollCreate,
    Created(usize),
    Failed(usize),
    Return(usize),
    Discard(usize),
    Detach(usize),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Checkout),
        2 => Just(Op::PollCreate),
        3 => any::<usize>().prop_map(Op::Created),
        1 => any::<usize>().prop_map(Op::Failed),
        3 => any::<usize>().prop_map(Op::Return),
        1 => any::<usize>().prop_map(Op::Discard),
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

fn check_identities(s: &PoolStats, max: usize, opening: usize) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        s.created,
        s.in_use + s.idle + s.shrunk + s.detached + s.discarded
    );
    prop_assert_eq!(s.acquired, s.hits + s.misses);
    prop_assert!(s.live() + opening as u64 <= max as u64);
    prop_assert!(s.high_water >= s.in_use);
    Ok(())
}

/// An object: its serial number and whether it is dirty (used, not reset).
type Obj = (u64, bool);

proptest! {
    // Under miri, PROPTEST_CASES (read by the default config) bounds the run.
    #![proptest_config(if cfg!(miri) { ProptestConfig::default() } else { ProptestConfig::with_cases(256) })]

    #[test]
    fn store_matches_the_model(
        max in 1usize..12,
        min_frac in 0usize..=100,
        init_frac in 0usize..=100,
        growth in growth(),
        timeout in proptest::option::of(1u64..6),
        ops in proptest::collection::vec(op(), 1..150),
    ) {
        let min = max * min_frac / 100;
        let initial = max * init_frac / 100;
        let mut builder = PoolBuilder::new(max, || (0u64, false))
            .min_size(min)
            .initial_size(initial)
            .growth(growth)
            .reset(|o: &mut Obj| o.1 = false);
        if let Some(t) = timeout {
            builder = builder.idle_timeout(Duration::from_secs(t));
        }
        let mut pool = builder.build_store().unwrap();
        let clock = ManualClock::new(Instant::ZERO);
        let mut serial = 0u64;
        // The model: which objects are idle, held, or being created.
        let mut idle: BTreeSet<u64> = BTreeSet::new();
        let mut held: Vec<Obj> = Vec::new();
        let mut permits: Vec<CreatePermit> = Vec::new();
        let mut interval_start: Option<Instant> = None;
        for op in ops {
            match op {
                Op::Checkout => {
                    let live = idle.len() + held.len() + permits.len();
                    match pool.checkout() {
                        Checkout::Idle(mut o) => {
                            prop_assert!(!o.1, "object handed out without reset");
                            prop_assert!(idle.remove(&o.0), "not idle: {}", o.0);
                            o.1 = true;
                            held.push(o);
                        }
                        Checkout::Create(p) => {
                            prop_assert!(idle.is_empty());
                            prop_assert!(live < max);
                            prop_assert!(p.is_checkout());
                            permits.push(p);
                        }
                        Checkout::Exhausted => {
                            prop_assert!(idle.is_empty());
                            prop_assert_eq!(live, max);
                        }
                    }
                }
                Op::PollCreate => {
                    if let Some(p) = pool.poll_create() {
                        prop_assert!(!p.is_checkout());
                        permits.push(p);
                    }
                }
                Op::Created(i) if !permits.is_empty() => {
                    let p = permits.swap_remove(i % permits.len());
                    let checkout = p.is_checkout();
                    serial += 1;
                    match pool.handle_created(p, (serial, false)).unwrap() {
                        Some(mut o) => {
                            prop_assert!(checkout);
                            o.1 = true;
                            held.push(o);
                        }
                        None => {
                            prop_assert!(!checkout);
                            idle.insert(serial);
                        }
                    }
                }
                Op::Failed(i) if !permits.is_empty() => {
                    let p = permits.swap_remove(i % permits.len());
                    pool.handle_create_failed(p).unwrap();
                }
                Op::Return(i) if !held.is_empty() => {
                    let o = held.swap_remove(i % held.len());
                    idle.insert(o.0);
                    pool.handle_returned(o);
                }
                Op::Discard(i) if !held.is_empty() => {
                    held.swap_remove(i % held.len());
                    pool.handle_discarded();
                }
                Op::Detach(i) if !held.is_empty() => {
                    held.swap_remove(i % held.len());
                    pool.handle_detached();
                }
                Op::Advance(dt) => {
                    clock.advance(Duration::from_secs(dt));
                    let now = clock.now();
                    let due = pool.poll_timeout();
                    let mut evicted = 0;
                    while let Some(o) = pool.poll_evicted(now) {
                        prop_assert!(idle.remove(&o.0), "evicted a non-idle object");
                        evicted += 1;
                    }
                    match (timeout, interval_start) {
                        (None, _) => prop_assert_eq!(due, None),
                        (Some(_), None) => {
                            prop_assert_eq!(evicted, 0, "first call starts the interval");
                            interval_start = Some(now);
                        }
                        (Some(t), Some(start)) => {
                            prop_assert_eq!(due, Some(start + Duration::from_secs(t)));
                            if now < start + Duration::from_secs(t) {
                                prop_assert_eq!(evicted, 0, "evicted before the deadline");
                            } else {
                                interval_start = Some(now);
                            }
                        }
                    }
                    if evicted > 0 {
                        prop_assert!(idle.len() + held.len() + permits.len() >= min);
                    }
                }
                Op::Created(_) | Op::Failed(_) | Op::Return(_) | Op::Discard(_)
                | Op::Detach(_) => {}
            }
            let s = pool.stats();
            prop_assert_eq!(s.in_use, held.len() as u64);
            prop_assert_eq!(s.idle, idle.len() as u64);
            prop_assert_eq!(pool.opening(), permits.len());
            check_identities(&s, max, permits.len())?;
        }
        // Every permit reported back leaves nothing opening.
        for p in permits.drain(..) {
            pool.handle_create_failed(p).unwrap();
        }
        prop_assert_eq!(pool.opening(), 0);
    }
}
