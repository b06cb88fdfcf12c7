//! Sans-IO bookkeeping for connection pools: slot accounting, endpoint
//! choice with a circuit breaker per endpoint, lifetimes, leak reports and
//! metrics, driven by `now`.
//!
//! [`PoolCore`] decides; a runtime (the tokio connection pool) connects,
//! checks, pings and closes. The core never sees a socket: it hands out
//! [`ConnId`]s, and the runtime keeps the connection objects in a slab
//! indexed by [`ConnId::index`] while they are idle, and inside its
//! checkout guard while they are in use.
//!
//! # Why the core is not generic over the connection type
//!
//! A checked-out connection lives in the caller's guard, not in the pool,
//! so a core that owned connections would have to hand them out and take
//! them back anyway; and a health check or ping runs on the runtime's side
//! with the object in hand. Keeping only ids here means the state machine
//! is tested without fake connection objects, costs no generic code per
//! connection type, and moves no connection across its API.
//!
//! # Order
//!
//! Waiters are served first come, first served: a connection is handed to
//! the waiter that has waited longest ([`WaiterId`]s grow with arrival), and
//! [`PoolCore::acquire`] queues behind existing waiters even when an idle
//! connection exists. Idle connections are handed out most recently used
//! first (so surplus ones age out under the idle timeout) and reaped least
//! recently used first. The endpoint for a new connection is chosen by the
//! [`Balance`] strategy among the endpoints whose breaker admits a connect.
//!
//! # Calling order
//!
//! 1. Build with [`PoolCore::new`].
//! 2. Feed inputs as they happen, each with the current `now`:
//!    [`acquire`](PoolCore::acquire), [`release`](PoolCore::release)
//!    (or [`release_idle`](PoolCore::release_idle) for a connection the
//!    runtime kept idle itself, lending it to callers without the core,
//!    with [`count_served_at_once`](PoolCore::count_served_at_once) for
//!    those acquires),
//!    [`cancel_waiter`](PoolCore::cancel_waiter) (when an acquire is given
//!    up before it completed), [`handle_opened`](PoolCore::handle_opened) /
//!    [`handle_open_failed`](PoolCore::handle_open_failed) for each
//!    [`OpenPermit`], [`handle_checked`](PoolCore::handle_checked),
//!    [`handle_pinged`](PoolCore::handle_pinged),
//!    [`handle_closed`](PoolCore::handle_closed), and the controls
//!    [`resize`](PoolCore::resize), [`drain`](PoolCore::drain) and
//!    [`close`](PoolCore::close).
//! 3. After every input, call [`poll_action`](PoolCore::poll_action) until
//!    it returns `None`, carrying out each [`Action`].
//! 4. Sleep until [`poll_timeout`](PoolCore::poll_timeout) (if `Some`) or
//!    the next input, and go to 2.
//!
//! Every [`OpenPermit`] must end in exactly one `handle_opened` or
//! `handle_open_failed` (with [`FailureKind::Cancelled`] when the connect was
//! abandoned); every connection put in [`ConnState::Closing`] must end in
//! one `handle_closed` once the runtime has dropped it.
//!
//! # Cancellation
//!
//! What a runtime does when an acquire is given up (its future dropped, or
//! its own timeout fired) at each point:
//!
//! - after [`Acquire::Ready`]: nothing; the caller holds the connection and
//!   gives it back with `release`.
//! - while waiting after [`Acquire::Wait`], or after an [`Action::Hand`] it
//!   never took: [`PoolCore::cancel_waiter`] answers [`Cancel::Dequeued`] or
//!   [`Cancel::Returned`] (the connection goes back to the slab and, on the
//!   next `poll_action`, to the next waiter).
//! - during a check ([`Acquire::Check`], [`Action::Check`]): `cancel_waiter`
//!   answers [`Cancel::Close`]; the half-checked connection is closed.
//! - a connect started for it ([`Acquire::Wait`] with a permit) is not the
//!   caller's: it keeps running and its connection serves the next waiter.
//!   If the runtime abandons it anyway, it reports
//!   [`FailureKind::Cancelled`], which frees the slot and leaves the
//!   breaker alone.
//!
//! # Invariants
//!
//! - Connections counted against `max_connections` are the open ones in
//!   every state (idle, in use, checking, pinging and closing, since a
//!   closing one still exists at the server until `handle_closed`) plus the
//!   connects in flight. No permit is issued that would take that count
//!   above `max_connections`; after a shrink the count only falls until it
//!   is below the new maximum.
//! - Every waiter ends exactly once: handed a connection, failed, or
//!   cancelled. A cancelled waiter that had already been handed a
//!   connection gives it back, so cancelling leaks no slot.
//! - No connection is handed out at or after its expiry, which is
//!   `opened + max_lifetime - jitter` with the jitter uniform in
//!   `0..=lifetime_jitter`.
//! - Breaker transitions are only closed to open, open to half-open,
//!   half-open to closed and half-open to open (see [`Breaker`]).
//! - A held checkout is reported as a leak at most once; the core never
//!   takes a connection back from its holder.
//! - Costs: `acquire` and `release` of an idle connection are O(1) (plus
//!   O(log idle) to keep the idle list ordered); `poll_action` is O(1) when
//!   nothing is due and O(endpoints) when it asks for a connect; timed work
//!   (expiry, idle timeout, keepalive, leaks) costs one pass over the
//!   connections when its earliest deadline arrives; `cancel_waiter` of a
//!   queued waiter is O(waiters). The timer may fire early, never late: an
//!   early pass finds nothing and sets it to the true next deadline.
//! - A waiter's deadline is `now + acquire_timeout` at its `acquire`, so
//!   deadlines follow arrival order and only the first waiter is watched.
//!
//! ```
//! use core::time::Duration;
//! use mechops_alloc::conn::{Acquire, Action, Disposition, PoolConfig, PoolCore};
//! use mechops_core::time::Instant;
//!
//! let config = PoolConfig { max_connections: 2, ..PoolConfig::default() };
//! let mut pool = PoolCore::new(config, 1, 7).unwrap();
//! let now = Instant::ZERO;
//!
//! // Nothing is open yet: the caller waits and a connect is asked for.
//! let Acquire::Wait { waiter, open: Some(permit) } = pool.acquire(now).unwrap() else {
//!     unreachable!()
//! };
//! assert_eq!(permit.endpoint().index(), 0);
//! // ... the runtime connects to endpoint 0 ...
//! let conn = pool.handle_opened(permit, now).unwrap();
//! assert_eq!(pool.poll_action(now), Some(Action::Hand { waiter, conn }));
//! assert_eq!(pool.poll_action(now), None);
//!
//! // Released, it is idle, and the next acquire gets it at once.
//! let later = now + Duration::from_millis(5);
//! assert_eq!(pool.release(conn, false, later), Ok(Disposition::Kept));
//! assert_eq!(pool.acquire(later), Ok(Acquire::Ready(conn)));
//! assert_eq!(pool.metrics().in_use, 1);
//! ```

mod breaker;
mod metrics;
mod pool_core;
#[cfg(test)]
mod tests;

use core::fmt;
use core::time::Duration;

use mechops_core::backoff::Backoff;

pub use breaker::{Breaker, BreakerState};
pub use metrics::{EndpointMetrics, PoolMetrics};
pub use pool_core::PoolCore;

/// One connection in a [`PoolCore`]: a slab index and a generation, so an
/// id kept after its connection closed is refused rather than confused with
/// the connection that reuses the slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    index: u32,
    generation: u32,
}

impl ConnId {
    /// The slab index: the runtime may keep this connection's object at
    /// this index of its own slab. Indices are reused after a close.
    pub const fn index(self) -> usize {
        self.index as usize
    }

    /// How many connections held this index before this one.
    pub const fn generation(self) -> u32 {
        self.generation
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connection {}.{}", self.index, self.generation)
    }
}

/// One caller waiting for a connection. Ids grow with arrival order and are
/// never reused by a pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WaiterId(u64);

impl WaiterId {
    /// The arrival number (0 for the first waiter of a pool).
    pub const fn get(self) -> u64 {
        self.0
    }
}

/// One endpoint of a pool, by its position in priority order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointId(u32);

impl EndpointId {
    /// The position given at construction (0 is the highest priority).
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// Permission to open one connection to one endpoint. It holds a slot
/// against `max_connections` until it is given back through exactly one of
/// [`PoolCore::handle_opened`] or [`PoolCore::handle_open_failed`]; it is
/// neither `Clone` nor `Copy` so it cannot be given back twice.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a permit holds a connection slot until handle_opened or handle_open_failed"]
pub struct OpenPermit {
    id: u64,
    endpoint: EndpointId,
}

impl OpenPermit {
    /// The endpoint to connect to.
    pub const fn endpoint(&self) -> EndpointId {
        self.endpoint
    }

    /// The permit's number, unique within its pool (for logs).
    pub const fn id(&self) -> u64 {
        self.id
    }
}

/// How new connections are spread over the endpoints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Balance {
    /// Each new connection goes to the next available endpoint in turn.
    #[default]
    RoundRobin,
    /// To the available endpoint with the fewest connections (open or
    /// opening); ties go to the earlier endpoint.
    LeastConnections,
    /// To the first available endpoint in priority order; later endpoints
    /// are used only while earlier ones are refused by their breaker.
    Failover,
}

/// When an endpoint's breaker opens and how long it stays open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failed connects that open a closed breaker (at least 1).
    pub failure_threshold: u32,
    /// The open duration: attempt 0 after the breaker first opens, one more
    /// for each failed half-open trial. Past `max_attempts` the cap is used,
    /// so a dead endpoint keeps being retried and recovers without a
    /// restart.
    pub backoff: Backoff,
}

impl Default for BreakerConfig {
    /// One failure opens the breaker; open for 100 ms doubling to 30 s,
    /// with full jitter.
    fn default() -> Self {
        Self {
            failure_threshold: 1,
            backoff: match Backoff::new(Duration::from_millis(100), Duration::from_secs(30), 32) {
                Ok(backoff) => backoff,
                Err(_) => unreachable!(),
            },
        }
    }
}

/// The settings of a [`PoolCore`]. `None` turns a timer off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Connections kept open (idle or in use, counting connects in flight):
    /// the pool opens more when below, and the idle timeout never takes it
    /// below.
    pub min_connections: usize,
    /// The most connections, open or opening, at any time (at least 1).
    pub max_connections: usize,
    /// How long an acquire may wait before it fails with a reason.
    pub acquire_timeout: Duration,
    /// An idle connection above `min_connections` is closed after this long
    /// unused.
    pub idle_timeout: Option<Duration>,
    /// A connection is closed this long after it opened, less the jitter;
    /// one in use is closed when released.
    pub max_lifetime: Option<Duration>,
    /// Up to this much is taken off each connection's lifetime, uniformly at
    /// random, so that connections opened together do not expire together.
    /// At most `max_lifetime`.
    pub lifetime_jitter: Duration,
    /// An idle connection not known alive for this long is pinged.
    pub keepalive: Option<Duration>,
    /// A connection not known alive for this long is checked before it is
    /// handed out.
    pub check_after_idle: Option<Duration>,
    /// A checkout held this long is reported once as a possible leak.
    pub leak_threshold: Option<Duration>,
    /// How new connections are spread over the endpoints.
    pub balance: Balance,
    /// The per-endpoint circuit breaker.
    pub breaker: BreakerConfig,
}

impl Default for PoolConfig {
    /// 0 to 10 connections, 30 s acquire timeout, 10 min idle timeout,
    /// 30 min lifetime less up to 1 min of jitter, check after 500 ms idle,
    /// no keepalive, no leak detection, round robin.
    fn default() -> Self {
        Self {
            min_connections: 0,
            max_connections: 10,
            acquire_timeout: Duration::from_secs(30),
            idle_timeout: Some(Duration::from_secs(600)),
            max_lifetime: Some(Duration::from_secs(1800)),
            lifetime_jitter: Duration::from_secs(60),
            keepalive: None,
            check_after_idle: Some(Duration::from_millis(500)),
            leak_threshold: None,
            balance: Balance::RoundRobin,
            breaker: BreakerConfig::default(),
        }
    }
}

impl PoolConfig {
    /// Checks the settings against each other.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_sizes(self.min_connections, self.max_connections)?;
        if self.max_lifetime.is_some_and(|l| self.lifetime_jitter > l) {
            return Err(ConfigError::JitterAboveLifetime);
        }
        if self.max_lifetime.is_none() && !self.lifetime_jitter.is_zero() {
            return Err(ConfigError::JitterWithoutLifetime);
        }
        if self.breaker.failure_threshold == 0 {
            return Err(ConfigError::ZeroFailureThreshold);
        }
        Ok(())
    }
}

fn check_sizes(min: usize, max: usize) -> Result<(), ConfigError> {
    if max == 0 {
        return Err(ConfigError::ZeroMax);
    }
    if u32::try_from(max).is_err() {
        return Err(ConfigError::MaxTooLarge);
    }
    if min > max {
        return Err(ConfigError::MinAboveMax { min, max });
    }
    Ok(())
}

/// Settings that cannot build a pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `max_connections` was 0.
    ZeroMax,
    /// `max_connections` was above 2^32 - 1.
    MaxTooLarge,
    /// `min_connections` was above `max_connections`.
    MinAboveMax {
        /// The minimum asked for.
        min: usize,
        /// The maximum asked for.
        max: usize,
    },
    /// `lifetime_jitter` was longer than `max_lifetime`.
    JitterAboveLifetime,
    /// `lifetime_jitter` was set without a `max_lifetime`.
    JitterWithoutLifetime,
    /// The breaker's failure threshold was 0.
    ZeroFailureThreshold,
    /// A pool needs at least one endpoint.
    NoEndpoints,
    /// More than 2^32 - 1 endpoints.
    TooManyEndpoints,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroMax => f.write_str("connection pool max_connections must be at least 1"),
            Self::MaxTooLarge => f.write_str("connection pool max_connections is above 2^32-1"),
            Self::MinAboveMax { min, max } => write!(
                f,
                "connection pool min_connections ({min}) is above max_connections ({max})"
            ),
            Self::JitterAboveLifetime => {
                f.write_str("connection pool lifetime_jitter is longer than max_lifetime")
            }
            Self::JitterWithoutLifetime => {
                f.write_str("connection pool lifetime_jitter is set without a max_lifetime")
            }
            Self::ZeroFailureThreshold => {
                f.write_str("connection pool breaker failure_threshold must be at least 1")
            }
            Self::NoEndpoints => f.write_str("connection pool needs at least one endpoint"),
            Self::TooManyEndpoints => f.write_str("connection pool has more than 2^32-1 endpoints"),
        }
    }
}

impl core::error::Error for ConfigError {}

/// Why a connect failed, as far as the pool needs to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// The endpoint refused the connection.
    Refused,
    /// The connect (or handshake) took too long.
    TimedOut,
    /// No route, name not resolved, network down.
    Unreachable,
    /// The TLS handshake failed.
    Tls,
    /// The server rejected the credentials.
    Auth,
    /// The server spoke something unexpected.
    Protocol,
    /// Any other failure.
    Other,
    /// The runtime gave the connect up (shutdown, task aborted). Not held
    /// against the endpoint's breaker.
    Cancelled,
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Refused => "connection refused",
            Self::TimedOut => "connect timed out",
            Self::Unreachable => "endpoint unreachable",
            Self::Tls => "TLS handshake failed",
            Self::Auth => "authentication failed",
            Self::Protocol => "protocol error",
            Self::Other => "connect failed",
            Self::Cancelled => "connect cancelled",
        })
    }
}

/// Why the pool closes a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// Idle longer than the idle timeout, above `min_connections`.
    IdleTimeout,
    /// Past its (jittered) maximum lifetime.
    Expired,
    /// Above `max_connections` after a shrink.
    Shrunk,
    /// Opened before [`PoolCore::drain`].
    Drained,
    /// Released as broken, or failed a check or ping.
    Broken,
    /// A check was interrupted by a cancelled acquire: its state is unknown.
    Interrupted,
    /// The pool is closing.
    PoolClosed,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::IdleTimeout => "idle timeout",
            Self::Expired => "maximum lifetime reached",
            Self::Shrunk => "pool shrunk",
            Self::Drained => "pool drained",
            Self::Broken => "connection broken",
            Self::Interrupted => "check interrupted",
            Self::PoolClosed => "pool closed",
        })
    }
}

/// Why an acquire failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AcquireFailure {
    /// The acquire timeout passed while every connection was busy.
    Exhausted {
        /// Waiters queued when this one failed, itself included.
        waiters: usize,
        /// Connections in use (or being checked) at the time.
        in_use: usize,
    },
    /// The acquire timeout passed while the pool had room but no endpoint
    /// could be connected to.
    Unreachable {
        /// The last connect failure seen, if any.
        last_error: Option<FailureKind>,
    },
    /// The pool is closing.
    Closed,
}

impl fmt::Display for AcquireFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exhausted { waiters, in_use } => write!(
                f,
                "acquire timed out: pool exhausted ({in_use} in use, {waiters} waiting)"
            ),
            Self::Unreachable {
                last_error: Some(e),
            } => write!(f, "acquire timed out: no endpoint reachable ({e})"),
            Self::Unreachable { last_error: None } => {
                f.write_str("acquire timed out: no endpoint reachable")
            }
            Self::Closed => f.write_str("connection pool is closed"),
        }
    }
}

impl core::error::Error for AcquireFailure {}

/// A call the pool cannot accept: a stale id, an input in the wrong state,
/// or an acquire after close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnError {
    /// The pool is closing; no more acquires.
    Closed,
    /// No such connection (never issued, or closed since).
    UnknownConn(ConnId),
    /// The connection is not in the state the call needs.
    WrongState {
        /// The connection.
        conn: ConnId,
        /// Its state.
        state: ConnState,
        /// The state the call needs.
        expected: ConnState,
    },
    /// The permit was not issued by this pool.
    UnknownPermit(u64),
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed => f.write_str("connection pool is closed"),
            Self::UnknownConn(c) => write!(f, "{c} is not in this pool"),
            Self::WrongState {
                conn,
                state,
                expected,
            } => write!(f, "{conn} is {state}, expected {expected}"),
            Self::UnknownPermit(id) => write!(f, "open permit {id} was not issued by this pool"),
        }
    }
}

impl core::error::Error for ConnError {}

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnState {
    /// In the pool, ready to hand out.
    Idle,
    /// Checked out by a caller.
    InUse,
    /// Being health-checked before it is handed to a waiter.
    Checking,
    /// Being pinged by the keepalive.
    Pinging,
    /// Given up by the pool; the runtime closes it and calls
    /// [`PoolCore::handle_closed`].
    Closing,
}

impl fmt::Display for ConnState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Idle => "idle",
            Self::InUse => "in use",
            Self::Checking => "being checked",
            Self::Pinging => "being pinged",
            Self::Closing => "closing",
        })
    }
}

/// The answer to [`PoolCore::acquire`].
#[derive(Debug, PartialEq, Eq)]
pub enum Acquire {
    /// This connection is checked out to the caller.
    Ready(ConnId),
    /// This connection is reserved for the caller once a health check
    /// passes: run it, then call [`PoolCore::handle_checked`]. If the caller
    /// gives up meanwhile, call [`PoolCore::cancel_waiter`].
    Check {
        /// The caller, for `cancel_waiter`.
        waiter: WaiterId,
        /// The connection to check.
        conn: ConnId,
    },
    /// The caller is queued: a later [`Action::Hand`], [`Action::Check`] or
    /// [`Action::Fail`] names it. If it gives up first, call
    /// [`PoolCore::cancel_waiter`].
    Wait {
        /// The caller's place in the queue.
        waiter: WaiterId,
        /// A connect to start now, if the pool has room; its connection goes
        /// to the first waiter, not necessarily this one, so run it apart
        /// from the caller (a cancelled caller must not abandon it).
        open: Option<OpenPermit>,
    },
}

/// The answer to [`PoolCore::handle_checked`].
#[derive(Debug, PartialEq, Eq)]
pub enum Checked {
    /// The check passed: the connection is checked out to the waiter.
    Ready(ConnId),
    /// The check failed: the checked connection is closing (close it and
    /// call [`PoolCore::handle_closed`]), and the waiter goes on, ahead of
    /// later arrivals, as this says.
    Replaced(Acquire),
}

/// What became of a connection given back by [`PoolCore::release`] or
/// [`PoolCore::handle_pinged`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// It is idle in the pool (the runtime puts the object back in its slab).
    Kept,
    /// It is closing: close it and call [`PoolCore::handle_closed`].
    Close(CloseReason),
}

/// The answer to [`PoolCore::cancel_waiter`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cancel {
    /// The waiter was still queued; it is gone.
    Dequeued,
    /// A connection had been handed to the waiter; it is back in the pool
    /// (the runtime puts the object back in its slab).
    Returned(ConnId),
    /// The connection handed to the waiter, or being checked for it, is
    /// closing: close it and call [`PoolCore::handle_closed`].
    Close(ConnId),
    /// The waiter is unknown: already served to completion, failed, or
    /// cancelled. Nothing changed.
    Unknown,
}

/// What was left when [`PoolCore::close`] finished or its deadline passed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Remaining {
    /// Connections still checked out (in use, checking or pinging).
    pub in_use: usize,
    /// Connects still in flight.
    pub opening: usize,
    /// Connections closing but not yet reported closed.
    pub closing: usize,
}

impl Remaining {
    /// Nothing is left.
    pub const fn is_empty(&self) -> bool {
        self.in_use == 0 && self.opening == 0 && self.closing == 0
    }
}

/// Something the runtime must do, from [`PoolCore::poll_action`].
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Connect to the permit's endpoint, then call
    /// [`PoolCore::handle_opened`] or [`PoolCore::handle_open_failed`].
    Open(OpenPermit),
    /// Give this idle connection to this waiter: it is checked out to it.
    Hand {
        /// The waiter.
        waiter: WaiterId,
        /// The connection (take it from the slab).
        conn: ConnId,
    },
    /// Health-check this idle connection for this waiter, then call
    /// [`PoolCore::handle_checked`].
    Check {
        /// The waiter.
        waiter: WaiterId,
        /// The connection (take it from the slab).
        conn: ConnId,
    },
    /// Fail this waiter's acquire.
    Fail {
        /// The waiter.
        waiter: WaiterId,
        /// Why.
        reason: AcquireFailure,
    },
    /// Close this idle connection (take it from the slab), then call
    /// [`PoolCore::handle_closed`].
    Close {
        /// The connection.
        conn: ConnId,
        /// Why.
        reason: CloseReason,
    },
    /// Ping this idle connection (take it from the slab), then call
    /// [`PoolCore::handle_pinged`].
    Ping(ConnId),
    /// This checkout has been held longer than the leak threshold (reported
    /// once per checkout; the connection stays with its holder).
    Leak {
        /// The connection.
        conn: ConnId,
        /// The checkout's number, unique within the pool.
        checkout: u64,
        /// How long it has been held.
        held: Duration,
    },
    /// [`PoolCore::close`] is over: everything was given back, or the
    /// deadline passed with this left. Reported once.
    Closed(Remaining),
}
