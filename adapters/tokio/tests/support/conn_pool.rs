//! Helpers for connection pool tests against real servers.

#![allow(dead_code, unreachable_pub)]

use core::time::Duration;

use mechops_core::backoff::Backoff;
use mechops_tokio::conn::{ConnectionPool, ConnectionPoolConfig, Manager};

/// `min` to `max` connections with no idle timeout or lifetime (so no
/// connection closes unless the test makes it), a 10 s acquire timeout,
/// a 5 s connect timeout and a breaker backing off from 20 ms to 500 ms.
pub fn config(min: usize, max: usize) -> ConnectionPoolConfig {
    let mut config = ConnectionPoolConfig::sized(min, max);
    config.pool.idle_timeout = None;
    config.pool.max_lifetime = None;
    config.pool.lifetime_jitter = Duration::ZERO;
    config.pool.acquire_timeout = Duration::from_secs(10);
    config.pool.breaker.backoff =
        Backoff::new(Duration::from_millis(20), Duration::from_millis(500), 32)
            .expect("a valid backoff");
    config.connect_timeout = Duration::from_secs(5);
    config
}

/// Waits (up to 5 s) until the pool has closed `n` connections in all.
pub async fn closed_at_least<M: Manager>(pool: &ConnectionPool<M>, n: u64) {
    for _ in 0..500 {
        if pool.metrics().closed >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the pool closed fewer than {n}: {:?}", pool.metrics());
}

/// Runs `op` until it succeeds, up to 100 tries 50 ms apart; whether it
/// did.
pub async fn eventually<T, E>(mut op: impl AsyncFnMut() -> Result<T, E>) -> bool {
    for _ in 0..100 {
        if op().await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
