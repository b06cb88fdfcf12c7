//! Snapshots of a connection pool's gauges and counters.
//!
//! Gauges (`size`, `idle`, ...) are the state at the moment of the
//! snapshot; counters (`created`, `closed`, ...) only grow over the pool's
//! life. The acquire wait histogram is read separately through
//! [`PoolCore::wait_histogram`](super::PoolCore::wait_histogram), since it is
//! large and usually merged into a shared one.
//!
//! Waiters and acquire timeouts are counted per pool only: a waiter is not
//! bound to an endpoint (any connection serves it). Per endpoint, failed
//! and timed-out connects play that part.

use alloc::vec::Vec;

use super::{BreakerState, FailureKind};

/// The gauges and counters of one endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndpointMetrics {
    /// Open connections in every state, closing ones included.
    pub size: usize,
    /// Idle connections.
    pub idle: usize,
    /// Connections in use, being checked or pinged.
    pub in_use: usize,
    /// Connects in flight.
    pub opening: usize,
    /// Connections closing.
    pub closing: usize,
    /// Connections opened.
    pub created: u64,
    /// Connections the pool gave up, for any reason.
    pub closed: u64,
    /// Of those, the broken ones.
    pub broken: u64,
    /// Failed connects (cancelled ones not counted).
    pub open_failures: u64,
    /// Of those, the ones that timed out.
    pub connect_timeouts: u64,
    /// The last connect failure.
    pub last_error: Option<FailureKind>,
    /// The circuit breaker's state.
    pub breaker: BreakerState,
}

/// The gauges and counters of a pool, with one entry per endpoint, from
/// [`PoolCore::metrics`](super::PoolCore::metrics).
///
/// Gauges (`size`, `idle`, ...) are the state at the snapshot; counters
/// (`created`, `closed`, ...) only grow. Waiters and acquire timeouts are
/// per pool only, since a waiter is not bound to an endpoint; per endpoint,
/// failed and timed-out connects play that part. The acquire wait histogram
/// is [`PoolCore::wait_histogram`](super::PoolCore::wait_histogram).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolMetrics {
    /// Open connections in every state, closing ones included.
    pub size: usize,
    /// Idle connections.
    pub idle: usize,
    /// Connections checked out to callers.
    pub in_use: usize,
    /// Connections being health-checked for a waiter.
    pub checking: usize,
    /// Connections being pinged by the keepalive.
    pub pinging: usize,
    /// Connects in flight.
    pub opening: usize,
    /// Connections closing.
    pub closing: usize,
    /// Callers waiting.
    pub waiters: usize,
    /// The current `min_connections`.
    pub min_connections: usize,
    /// The current `max_connections`.
    pub max_connections: usize,
    /// Acquires served (immediately or after a wait).
    pub acquired: u64,
    /// Acquires failed by their timeout.
    pub timeouts: u64,
    /// Connections opened.
    pub created: u64,
    /// Connections the pool gave up, for any reason.
    pub closed: u64,
    /// Of those, the broken ones.
    pub broken: u64,
    /// Failed connects (cancelled ones not counted).
    pub open_failures: u64,
    /// Checkouts reported as leaks.
    pub leaks: u64,
    /// Per endpoint, in priority order.
    pub endpoints: Vec<EndpointMetrics>,
}
