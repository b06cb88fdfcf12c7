//! The thread-safe session pool: sessions from a [`SharedPool`], ids from a
//! v7 generator behind a mutex, creation times from a clock.
//!
//! The defaults are the system wall clock (a session's creation time is a
//! calendar instant) and a xoshiro generator seeded from OS entropy; the v7
//! generator keeps ids strictly increasing even if the wall clock steps back.

use std::sync::{Mutex, PoisonError};

use mechops_alloc::pool::{
    ConfigError, PoolBuilder, PoolConfig, PoolStats, Session, SessionError, v7_millis,
};
use mechops_core::time::WallClock;
use mechops_core::uuid::V7Generator;
use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use super::{SharedPool, SharedPooled};
use crate::clock::SystemClock;

/// Why a session pool could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionPoolError {
    /// The pool configuration was inconsistent (the cause is the source).
    #[error("invalid session pool configuration")]
    Config(#[from] ConfigError),
    /// The operating system gave no entropy to seed the id generator.
    #[error("no OS entropy to seed session ids: {0}")]
    Entropy(getrandom::Error),
}

/// A session pool shared between threads; see the module docs.
pub struct SharedSessionPool<R = Xoshiro256PlusPlus, C = SystemClock> {
    pool: SharedPool<Session>,
    max_size: usize,
    ids: Mutex<V7Generator<R>>,
    clock: C,
}

impl<R, C> core::fmt::Debug for SharedSessionPool<R, C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SharedSessionPool")
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

impl SharedSessionPool {
    /// A session pool sized by `config`, with the system clock and an
    /// OS-seeded id generator.
    pub fn new(config: PoolConfig) -> Result<Self, SessionPoolError> {
        let mut seed = <Xoshiro256PlusPlus as SeedableRng>::Seed::default();
        getrandom::fill(seed.as_mut()).map_err(SessionPoolError::Entropy)?;
        Ok(Self::with_sources(
            config,
            Xoshiro256PlusPlus::from_seed(seed),
            SystemClock::new(),
        )?)
    }
}

impl<R: Rng, C: WallClock> SharedSessionPool<R, C> {
    /// A session pool with the given id randomness and clock.
    pub fn with_sources(config: PoolConfig, rng: R, clock: C) -> Result<Self, ConfigError> {
        let pool = SharedPool::new(
            PoolBuilder::new(config.max_size, Session::empty)
                .with_config(config)
                .reset(Session::reset),
        )?;
        Ok(Self {
            pool,
            max_size: config.max_size,
            ids: Mutex::new(V7Generator::new(rng)),
            clock,
        })
    }

    /// Hands out a reset session with a fresh v7 id, created now.
    pub fn acquire_session(
        &self,
        kind: &str,
        name: &str,
        workspace: &str,
    ) -> Result<SharedPooled<'_, Session>, SessionError> {
        let mut session = self
            .pool
            .acquire()
            .ok_or(SessionError::Exhausted { max: self.max_size })?;
        let at = self.clock.now();
        let id = self
            .ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .generate(v7_millis(at))
            .map_err(SessionError::Id)?;
        session.start(id, kind, name, workspace, at);
        Ok(session)
    }

    /// Drops sessions idle for a whole idle-timeout interval.
    pub fn maintain(&self) -> usize {
        self.pool.maintain()
    }

    /// The pool's statistics.
    pub fn stats(&self) -> PoolStats {
        self.pool.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mechops_core::uuid::Version;
    use std::collections::HashSet;
    use std::sync::Arc;

    #[test]
    fn concurrent_sessions_get_distinct_increasing_ids() {
        let pool = Arc::new(SharedSessionPool::new(PoolConfig::new(8)).unwrap());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let pool = Arc::clone(&pool);
                std::thread::spawn(move || {
                    let mut ids = Vec::new();
                    for i in 0..200 {
                        let s = pool
                            .acquire_session("worker", &format!("t{t}-{i}"), "/ws")
                            .unwrap();
                        assert_eq!(s.id().version(), Version::V7);
                        assert_eq!(s.name(), format!("t{t}-{i}"));
                        assert!(s.data().is_empty());
                        ids.push(s.id());
                    }
                    ids
                })
            })
            .collect();
        let mut all = HashSet::new();
        for t in threads {
            let ids = t.join().unwrap();
            assert!(
                ids.windows(2).all(|w| w[0] < w[1]),
                "ids per thread increase"
            );
            all.extend(ids);
        }
        assert_eq!(all.len(), 800);
        assert!(pool.stats().created <= 8);
    }

    #[test]
    fn exhausted_pool_says_so() {
        let pool = SharedSessionPool::new(PoolConfig::new(1)).unwrap();
        let _s = pool.acquire_session("k", "n", "w").unwrap();
        assert_eq!(
            pool.acquire_session("k", "n", "w").unwrap_err(),
            SessionError::Exhausted { max: 1 }
        );
    }
}
