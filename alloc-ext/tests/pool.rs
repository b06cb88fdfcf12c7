//! The growable pools through their public API: configuration in the shape
//! of `createPool({initialSize, maxPoolSize, createObject, resetObject})`,
//! growth, shrinking on an injected time, and the high-frequency pool.

use core::sync::atomic::{AtomicUsize, Ordering};
use core::time::Duration;
use std::sync::Arc;

use mechops_alloc::pool::{ConfigError, GrowablePool, Growth, HighFrequencyPool};
use mechops_core::time::Instant;

#[derive(Debug, Default)]
struct Conn {
    id: usize,
    buf: Vec<u8>,
    uses: u32,
}

#[test]
fn create_pool_shape() {
    let made = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&made);
    let pool = GrowablePool::builder(4, move || Conn {
        id: counter.fetch_add(1, Ordering::Relaxed),
        ..Conn::default()
    })
    .initial_size(2)
    .reset(|c: &mut Conn| {
        c.buf.clear();
        c.uses += 1;
    })
    .build()
    .unwrap();
    assert_eq!(made.load(Ordering::Relaxed), 2);

    let held: Vec<_> = (0..4).map(|_| pool.acquire().unwrap()).collect();
    assert_eq!(made.load(Ordering::Relaxed), 4);
    assert!(pool.acquire().is_none(), "never grows past the maximum");
    let mut ids: Vec<_> = held.iter().map(|c| c.id).collect();
    ids.sort_unstable();
    assert_eq!(ids, [0, 1, 2, 3]);
    drop(held);

    let c = pool.acquire().unwrap();
    assert_eq!(c.uses, 1, "reset ran once on release");
    let s = pool.stats();
    assert_eq!(
        (s.created, s.acquired, s.released, s.exhausted),
        (4, 5, 4, 1)
    );
    assert_eq!(s.high_water, 4);
}

#[test]
fn step_growth_and_shrink_to_minimum() {
    let pool = GrowablePool::builder(16, Vec::<u8>::new)
        .min_size(2)
        .growth(Growth::Step(4))
        .idle_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    assert_eq!(pool.stats().live(), 2);
    let held: Vec<_> = (0..3).map(|_| pool.acquire().unwrap()).collect();
    assert_eq!(
        pool.stats().live(),
        6,
        "the third acquisition grew by a step of 4"
    );
    drop(held);
    pool.maintain(Instant::from_secs(0));
    assert_eq!(pool.maintain(Instant::from_secs(29)), 0);
    assert_eq!(pool.maintain(Instant::from_secs(30)), 4);
    assert_eq!(pool.stats().live(), 2);
}

#[test]
fn bad_configuration_is_an_error() {
    let err = GrowablePool::builder(2, || 0u8)
        .min_size(3)
        .build()
        .unwrap_err();
    assert_eq!(err, ConfigError::MinimumAboveMaximum { min: 3, max: 2 });
    assert_eq!(
        err.to_string(),
        "pool minimum size 3 is above its maximum size 2"
    );
}

#[test]
fn high_frequency_pool_round_trip() {
    let mut pool = HighFrequencyPool::new(8, 8, || [0u8; 32], |b: &mut [u8; 32]| b.fill(0));
    for round in 0..100u8 {
        let slot = pool.take().unwrap();
        assert_eq!(pool.get(&slot), Some(&[0u8; 32]));
        pool.get_mut(&slot).unwrap()[0] = round;
        pool.put(slot).unwrap();
    }
    let s = pool.stats();
    assert_eq!(
        (s.acquired, s.released, s.misses, s.in_use),
        (100, 100, 0, 0)
    );
}
