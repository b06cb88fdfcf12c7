//! [`NoopManager`]: a manager whose connections are plain numbers, for
//! measuring the pool itself (benchmarks) and for tests of code built on a
//! pool where no server matters.
//!
//! Connecting never fails and never waits; checks pass; nothing is ever
//! broken, so every cost measured through it is the pool's own.

use core::convert::Infallible;

use super::Manager;

/// Makes connections that are consecutive numbers (per manager, from 0).
#[derive(Debug, Default)]
pub struct NoopManager {
    next: core::sync::atomic::AtomicU64,
}

impl NoopManager {
    /// A manager whose first connection is 0.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Manager for NoopManager {
    type Endpoint = &'static str;
    type Connection = u64;
    type Error = Infallible;

    async fn connect(&self, _endpoint: &&'static str) -> Result<u64, Infallible> {
        Ok(self
            .next
            .fetch_add(1, core::sync::atomic::Ordering::Relaxed))
    }

    async fn check(&self, _conn: &mut u64) -> Result<(), Infallible> {
        Ok(())
    }

    fn is_broken(&self, _conn: &u64) -> bool {
        false
    }
}
