//! The session pool with a fixed clock and a seeded generator.

use mechops_alloc::pool::{PoolConfig, SessionError, SessionPool};
use mechops_core::time::{FixedClock, Timestamp};
use mechops_core::uuid::{Variant, Version};
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

fn pool(max: usize) -> SessionPool<Xoshiro256PlusPlus, FixedClock> {
    let at = Timestamp::from_unix_secs(1_750_000_000).unwrap();
    SessionPool::new(
        PoolConfig::new(max),
        Xoshiro256PlusPlus::seed_from_u64(1),
        FixedClock(at),
    )
    .unwrap()
}

#[test]
fn every_session_has_a_fresh_increasing_v7_id() {
    let mut p = pool(2);
    let mut last = None;
    for i in 0..50 {
        let s = p
            .acquire_session("job", &format!("run-{i}"), "/srv/ws")
            .unwrap();
        assert_eq!(s.id().version(), Version::V7);
        assert_eq!(s.id().variant(), Variant::Rfc9562);
        assert_eq!(s.id().unix_millis(), Some(1_750_000_000_000));
        assert_eq!(s.created_at().unix_secs(), 1_750_000_000);
        assert_eq!(s.name(), format!("run-{i}"));
        if let Some(prev) = last {
            assert!(s.id() > prev, "ids strictly increase under a frozen clock");
        }
        last = Some(s.id());
    }
    let st = p.stats();
    assert_eq!(st.created, 1, "one session object reused throughout");
    assert_eq!(st.hits, 49);
}

#[test]
fn exhaustion_and_its_message() {
    let mut p = pool(1);
    let held = p.acquire_session("a", "b", "c").unwrap();
    let err = p.acquire_session("a", "b", "c").unwrap_err();
    assert_eq!(err, SessionError::Exhausted { max: 1 });
    assert_eq!(err.to_string(), "all 1 sessions of the pool are in use");
    drop(held);
    assert!(p.acquire_session("a", "b", "c").is_ok());
}
