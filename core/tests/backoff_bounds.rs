//! Property tests of the backoff policy: no delay above the cap, every
//! jitter within its range, the un-jittered delay never decreasing, and
//! `None` exactly once the attempts run out.

use core::time::Duration;

use mechops_core::backoff::{Backoff, Jitter, Retry};
use proptest::prelude::*;

fn policy() -> impl Strategy<Value = Backoff> {
    (
        0u64..1_000_000_000,
        0u64..100_000_000_000,
        0u32..64,
        1u32..10,
    )
        .prop_map(|(base, extra, attempts, multiplier)| {
            Backoff::new(
                Duration::from_nanos(base),
                Duration::from_nanos(base + extra),
                attempts,
            )
            .unwrap()
            .with_multiplier(multiplier)
            .unwrap()
        })
}

fn jitter() -> impl Strategy<Value = Jitter> {
    prop::sample::select(vec![
        Jitter::None,
        Jitter::Full,
        Jitter::Equal,
        Jitter::Decorrelated,
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn delays_stay_in_their_ranges(policy in policy(), jitter in jitter(), attempt in 0u32..80, previous in prop::option::of(0u64..200_000_000_000), random in any::<u64>()) {
        let policy = policy.with_jitter(jitter);
        let previous = previous.map(Duration::from_nanos);
        let delay = policy.delay(attempt, previous, random);
        prop_assert_eq!(delay.is_none(), attempt >= policy.max_attempts());
        let Some(delay) = delay else { return Ok(()) };
        let ceiling = policy.ceiling(attempt).unwrap();
        prop_assert!(delay <= policy.cap());
        match jitter {
            Jitter::None => prop_assert_eq!(delay, ceiling),
            Jitter::Full => prop_assert!(delay <= ceiling),
            Jitter::Equal => prop_assert!(delay >= ceiling / 2 && delay <= ceiling),
            Jitter::Decorrelated => {
                let previous = previous.unwrap_or(policy.base()).clamp(policy.base(), policy.cap());
                prop_assert!(delay >= policy.base());
                prop_assert!(delay <= (previous * 3).min(policy.cap()));
            }
            _ => unreachable!("only the four jitters above are generated"),
        }
    }

    #[test]
    fn unjittered_delay_never_decreases(policy in policy()) {
        let policy = policy.with_jitter(Jitter::None);
        let mut last = Duration::ZERO;
        for attempt in 0..policy.max_attempts() {
            let delay = policy.delay(attempt, None, 0).unwrap();
            prop_assert!(delay >= last, "attempt {} went from {:?} to {:?}", attempt, last, delay);
            prop_assert!(delay >= policy.base().min(policy.cap()));
            last = delay;
        }
    }

    #[test]
    fn retry_gives_exactly_max_attempts_delays(policy in policy(), jitter in jitter(), randoms in prop::collection::vec(any::<u64>(), 64)) {
        let policy = policy.with_jitter(jitter);
        let mut retry = Retry::new();
        let mut given = 0;
        for &random in &randoms {
            match retry.next_delay(&policy, random) {
                Some(delay) => {
                    prop_assert!(delay <= policy.cap());
                    given += 1;
                }
                None => break,
            }
        }
        prop_assert_eq!(given, policy.max_attempts());
        prop_assert_eq!(retry.attempts(), policy.max_attempts());
    }
}
