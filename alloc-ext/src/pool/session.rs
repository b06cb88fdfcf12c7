//! The session pool: session objects recycled through a growable pool, each
//! handed out reset, with a fresh v7 UUID and its creation time.
//!
//! Invariants:
//!
//! - every session handed out has a v7 id strictly greater than every id this
//!   pool handed out before (the v7 generator's guarantee), and a creation
//!   time read from the pool's clock at acquisition;
//! - a session never carries data from its previous use: it is cleared when
//!   it comes back, and its fields are set afresh when it goes out;
//! - the pool's size bounds and statistics are those of [`crate::pool`].
//!
//! The id generator's randomness and the clock are inputs, so tests fix them
//! and the std adapter supplies OS entropy and the system clock.

use alloc::collections::BTreeMap;
use alloc::string::String;
use core::fmt;

use mechops_core::time::{Instant, Timestamp, WallClock};
use mechops_core::uuid::{Uuid, V7Error, V7Generator};
use rand_core::Rng;

use super::{ConfigError, GrowablePool, PoolBuilder, PoolConfig, PoolStats, Pooled};

/// One session: who it is for, where it works, and free-form context data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    id: Uuid,
    kind: String,
    name: String,
    workspace: String,
    created_at: Timestamp,
    data: BTreeMap<String, String>,
}

impl Session {
    /// A blank session, as the pool creates them.
    pub fn empty() -> Self {
        Self {
            id: Uuid::NIL,
            kind: String::new(),
            name: String::new(),
            workspace: String::new(),
            created_at: Timestamp::UNIX_EPOCH,
            data: BTreeMap::new(),
        }
    }

    /// Makes the session blank again, keeping its string buffers.
    pub fn reset(&mut self) {
        self.id = Uuid::NIL;
        self.kind.clear();
        self.name.clear();
        self.workspace.clear();
        self.created_at = Timestamp::UNIX_EPOCH;
        self.data.clear();
    }

    /// Fills a blank session in; the pool calls this on acquisition.
    pub fn start(&mut self, id: Uuid, kind: &str, name: &str, workspace: &str, at: Timestamp) {
        self.id = id;
        self.kind.push_str(kind);
        self.name.push_str(name);
        self.workspace.push_str(workspace);
        self.created_at = at;
    }

    /// The session's v7 UUID.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// What kind of session this is (for example `"build"` or `"agent"`).
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The session's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The workspace the session works in.
    pub fn workspace(&self) -> &str {
        &self.workspace
    }

    /// When the session was handed out.
    pub fn created_at(&self) -> Timestamp {
        self.created_at
    }

    /// The session's context data.
    pub fn data(&self) -> &BTreeMap<String, String> {
        &self.data
    }

    /// The session's context data, for changes.
    pub fn data_mut(&mut self) -> &mut BTreeMap<String, String> {
        &mut self.data
    }
}

impl Default for Session {
    fn default() -> Self {
        Self::empty()
    }
}

/// Why no session was handed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionError {
    /// The pool is at its maximum size and every session is in use.
    Exhausted {
        /// The pool's maximum size.
        max: usize,
    },
    /// The v7 generator could not produce an id.
    Id(V7Error),
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exhausted { max } => write!(f, "all {max} sessions of the pool are in use"),
            Self::Id(e) => write!(f, "no session id: {e}"),
        }
    }
}

// The cause is part of the message, which no_std callers print with
// `Display` alone, so `source()` stays `None`: a printer of the cause
// chain then says it once.
impl core::error::Error for SessionError {}

/// Converts a timestamp to the Unix milliseconds a v7 id carries; instants
/// before 1970 map to 0, which the v7 generator's monotonicity absorbs.
pub fn v7_millis(at: Timestamp) -> u64 {
    u64::try_from(at.unix_millis()).unwrap_or(0)
}

/// A single-threaded pool of [`Session`]s; see the module docs.
pub struct SessionPool<R, C> {
    pool: GrowablePool<Session>,
    max_size: usize,
    ids: V7Generator<R>,
    clock: C,
}

impl<R, C> fmt::Debug for SessionPool<R, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionPool")
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

impl<R: Rng, C: WallClock> SessionPool<R, C> {
    /// A session pool sized by `config`, drawing id randomness from `rng` and
    /// creation times from `clock`.
    pub fn new(config: PoolConfig, rng: R, clock: C) -> Result<Self, ConfigError> {
        let pool = PoolBuilder::new(config.max_size, Session::empty)
            .with_config(config)
            .reset(Session::reset)
            .build()?;
        Ok(Self {
            pool,
            max_size: config.max_size,
            ids: V7Generator::new(rng),
            clock,
        })
    }

    /// Hands out a reset session with a fresh v7 id, created now.
    pub fn acquire_session(
        &mut self,
        kind: &str,
        name: &str,
        workspace: &str,
    ) -> Result<Pooled<Session>, SessionError> {
        let mut session = self
            .pool
            .acquire()
            .ok_or(SessionError::Exhausted { max: self.max_size })?;
        let at = self.clock.now();
        // On error the guard drops and the session goes back unused.
        let id = self.ids.generate(v7_millis(at)).map_err(SessionError::Id)?;
        session.start(id, kind, name, workspace, at);
        Ok(session)
    }

    /// Drops sessions idle for a whole idle-timeout interval; see
    /// [`crate::pool::PoolStore::poll_evicted`].
    pub fn maintain(&self, now: Instant) -> usize {
        self.pool.maintain(now)
    }

    /// The pool's statistics.
    pub fn stats(&self) -> PoolStats {
        self.pool.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mechops_core::time::FixedClock;
    use mechops_core::uuid::Version;
    use rand_core::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn pool(max: usize) -> SessionPool<Xoshiro256PlusPlus, FixedClock> {
        let at = Timestamp::from_unix_millis(1_700_000_000_123).unwrap();
        SessionPool::new(
            PoolConfig::new(max),
            Xoshiro256PlusPlus::seed_from_u64(7),
            FixedClock(at),
        )
        .unwrap()
    }

    #[test]
    fn sessions_carry_v7_ids_and_creation_time() {
        let mut p = pool(4);
        let a = p.acquire_session("build", "nightly", "/ws/a").unwrap();
        let b = p.acquire_session("agent", "helper", "/ws/b").unwrap();
        assert_eq!(a.id().version(), Version::V7);
        assert!(b.id() > a.id());
        assert_eq!(
            (a.kind(), a.name(), a.workspace()),
            ("build", "nightly", "/ws/a")
        );
        assert_eq!(a.created_at().unix_millis(), 1_700_000_000_123);
    }

    #[test]
    fn recycled_sessions_come_back_clean() {
        let mut p = pool(1);
        let first_id = {
            let mut s = p.acquire_session("k", "n", "w").unwrap();
            s.data_mut().insert("key".into(), "value".into());
            s.id()
        };
        let s = p.acquire_session("k2", "n2", "w2").unwrap();
        assert!(s.data().is_empty());
        assert_eq!((s.kind(), s.name(), s.workspace()), ("k2", "n2", "w2"));
        assert_ne!(s.id(), first_id);
        assert_eq!(p.stats().hits, 1);
    }

    #[test]
    fn exhaustion_is_an_error() {
        let mut p = pool(1);
        let _held = p.acquire_session("k", "n", "w").unwrap();
        let err = p.acquire_session("k", "n", "w").unwrap_err();
        assert_eq!(err, SessionError::Exhausted { max: 1 });
        assert!(alloc::format!("{err}").contains('1'));
    }
}
