//! The connection pool state machine. See the [parent module](super) for
//! the order, calling order and invariants.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::time::Duration;

use hashbrown::HashMap;
use mechops_core::metrics::LocalHistogram;
use mechops_core::time::Instant;

use super::{
    Acquire, AcquireFailure, Action, Balance, Breaker, BreakerState, Cancel, Checked, CloseReason,
    ConfigError, ConnError, ConnId, ConnState, Disposition, EndpointId, EndpointMetrics,
    FailureKind, OpenPermit, PoolConfig, PoolMetrics, Remaining, WaiterId, check_sizes,
};

/// Connections per state, for the pool and for each endpoint.
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    idle: usize,
    in_use: usize,
    checking: usize,
    pinging: usize,
    closing: usize,
    opening: usize,
}

impl Counts {
    fn slot(&mut self, state: ConnState) -> &mut usize {
        match state {
            ConnState::Idle => &mut self.idle,
            ConnState::InUse => &mut self.in_use,
            ConnState::Checking => &mut self.checking,
            ConnState::Pinging => &mut self.pinging,
            ConnState::Closing => &mut self.closing,
        }
    }

    /// Open and not closing.
    const fn live(&self) -> usize {
        self.idle + self.in_use + self.checking + self.pinging
    }

    /// Everything counted against `max_connections`.
    const fn counted(&self) -> usize {
        self.live() + self.closing + self.opening
    }
}

struct Slot {
    generation: u32,
    state: Option<ConnState>,
    endpoint: u32,
    /// The pool's drain generation when the connect started.
    epoch: u64,
    expires_at: Instant,
    idle_since: Instant,
    last_alive: Instant,
    checkout_at: Instant,
    checkout: u64,
    leak_reported: bool,
    /// The waiter the connection was handed to (until released).
    holder: Option<WaiterId>,
    /// The holder's acquire start and deadline, kept while checking so a
    /// failed check can queue it again with its own deadline.
    wait_started: Instant,
    wait_deadline: Instant,
}

#[derive(Clone, Copy)]
struct Waiter {
    id: WaiterId,
    started: Instant,
    deadline: Instant,
}

struct Opening {
    endpoint: u32,
    trial: bool,
    epoch: u64,
}

struct EndpointBook {
    breaker: Breaker,
    counts: Counts,
    created: u64,
    closed: u64,
    broken: u64,
    open_failures: u64,
    connect_timeouts: u64,
    last_error: Option<FailureKind>,
}

struct Shutdown {
    deadline: Instant,
    reported: bool,
}

/// The bookkeeping of one connection pool. See the [module docs](super).
pub struct PoolCore {
    config: PoolConfig,
    now: Instant,
    rng: u64,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Idle slot indices, oldest `idle_since` first.
    idle: VecDeque<u32>,
    /// Queued waiters, sorted by id (which is arrival order).
    waiters: VecDeque<Waiter>,
    /// Waiters handed a connection not yet released, to their slot.
    served: HashMap<WaiterId, u32>,
    opening: HashMap<u64, Opening>,
    next_permit: u64,
    next_waiter: u64,
    next_checkout: u64,
    close_queue: VecDeque<(ConnId, CloseReason)>,
    endpoints: Vec<EndpointBook>,
    cursor: usize,
    counts: Counts,
    epoch: u64,
    shutdown: Option<Shutdown>,
    /// No timed work (expiry, idle timeout, keepalive, leak) is due before
    /// this; it may be early, never late.
    timer: Instant,
    last_error: Option<FailureKind>,
    last_open_failed: bool,
    acquired: u64,
    timeouts: u64,
    created: u64,
    closed: u64,
    broken: u64,
    open_failures: u64,
    leaks: u64,
    waits: Box<LocalHistogram>,
}

impl core::fmt::Debug for PoolCore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PoolCore")
            .field("config", &self.config)
            .field("counts", &self.counts)
            .field("waiters", &self.waiters.len())
            .finish_non_exhaustive()
    }
}

impl PoolCore {
    /// A pool over `endpoints` endpoints (in priority order), with no
    /// connection open yet. `seed` drives the lifetime and breaker jitter.
    ///
    /// Call [`PoolCore::poll_action`] right away to get the connects for
    /// `min_connections`.
    pub fn new(config: PoolConfig, endpoints: usize, seed: u64) -> Result<Self, ConfigError> {
        config.validate()?;
        if endpoints == 0 {
            return Err(ConfigError::NoEndpoints);
        }
        if u32::try_from(endpoints).is_err() {
            return Err(ConfigError::TooManyEndpoints);
        }
        let endpoints = (0..endpoints)
            .map(|_| EndpointBook {
                breaker: Breaker::new(),
                counts: Counts::default(),
                created: 0,
                closed: 0,
                broken: 0,
                open_failures: 0,
                connect_timeouts: 0,
                last_error: None,
            })
            .collect();
        Ok(Self {
            config,
            now: Instant::ZERO,
            rng: seed,
            slots: Vec::new(),
            free: Vec::new(),
            idle: VecDeque::new(),
            waiters: VecDeque::new(),
            served: HashMap::new(),
            opening: HashMap::new(),
            next_permit: 0,
            next_waiter: 0,
            next_checkout: 0,
            close_queue: VecDeque::new(),
            endpoints,
            cursor: 0,
            counts: Counts::default(),
            epoch: 0,
            shutdown: None,
            timer: Instant::MAX,
            last_error: None,
            last_open_failed: false,
            acquired: 0,
            timeouts: 0,
            created: 0,
            closed: 0,
            broken: 0,
            open_failures: 0,
            leaks: 0,
            waits: Box::new(LocalHistogram::new()),
        })
    }

    /// [`PoolCore::new`] with the seed drawn from `rng`.
    pub fn with_rng<R: rand_core::Rng + ?Sized>(
        config: PoolConfig,
        endpoints: usize,
        rng: &mut R,
    ) -> Result<Self, ConfigError> {
        Self::new(config, endpoints, rng.next_u64())
    }

    /// The current settings.
    pub const fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// The number of endpoints.
    pub fn endpoint_count(&self) -> usize {
        self.endpoints.len()
    }

    /// The state of a connection, or `None` for an unknown or closed id.
    pub fn state(&self, conn: ConnId) -> Option<ConnState> {
        let slot = self.slots.get(conn.index())?;
        if slot.generation != conn.generation {
            return None;
        }
        slot.state
    }

    /// The endpoint a connection belongs to.
    pub fn endpoint_of(&self, conn: ConnId) -> Option<EndpointId> {
        self.state(conn)?;
        Some(EndpointId(self.slots[conn.index()].endpoint))
    }

    /// When a connection expires (its jittered maximum lifetime), or
    /// `None` for an unknown id or when lifetimes are off.
    pub fn expires_at(&self, conn: ConnId) -> Option<Instant> {
        self.state(conn)?;
        self.config.max_lifetime?;
        Some(self.slots[conn.index()].expires_at)
    }

    /// The number of a connection's current checkout (the one a
    /// [`Action::Leak`] names), or `None` unless it is in use.
    pub fn checkout_of(&self, conn: ConnId) -> Option<u64> {
        (self.state(conn)? == ConnState::InUse).then(|| self.slots[conn.index()].checkout)
    }

    /// The breaker state of an endpoint, or `None` for an unknown one.
    pub fn breaker(&self, endpoint: EndpointId) -> Option<BreakerState> {
        Some(self.endpoints.get(endpoint.index())?.breaker.state())
    }

    /// Waiters queued.
    pub fn waiters(&self) -> usize {
        self.waiters.len()
    }

    /// Whether an [`acquire`](Self::acquire) now would be served from the
    /// idle list rather than queued: no waiter ahead, an idle connection,
    /// not closing. (An idle connection found expired on the way still
    /// queues the caller.) A runtime may then feed a coarser `now`, since
    /// no deadline or measured wait starts from it.
    pub fn has_ready_idle(&self) -> bool {
        self.waiters.is_empty() && !self.idle.is_empty() && self.shutdown.is_none()
    }

    /// Whether [`PoolCore::close`] was called.
    pub const fn is_closing(&self) -> bool {
        self.shutdown.is_some()
    }

    /// How long served acquires waited, in nanoseconds (0 for those served
    /// at once), since the pool started or since
    /// [`PoolCore::clear_wait_histogram`]. To report through a shared
    /// `mechops_core::metrics::Histogram`, merge this into it and clear it.
    pub fn wait_histogram(&self) -> &LocalHistogram {
        &self.waits
    }

    /// Empties the acquire wait histogram (after merging it elsewhere).
    pub fn clear_wait_histogram(&mut self) {
        self.waits.clear();
    }

    /// A snapshot of the gauges and counters.
    pub fn metrics(&self) -> PoolMetrics {
        let c = &self.counts;
        PoolMetrics {
            size: c.live() + c.closing,
            idle: c.idle,
            in_use: c.in_use,
            checking: c.checking,
            pinging: c.pinging,
            opening: c.opening,
            closing: c.closing,
            waiters: self.waiters.len(),
            min_connections: self.config.min_connections,
            max_connections: self.config.max_connections,
            acquired: self.acquired,
            timeouts: self.timeouts,
            created: self.created,
            closed: self.closed,
            broken: self.broken,
            open_failures: self.open_failures,
            leaks: self.leaks,
            endpoints: self
                .endpoints
                .iter()
                .map(|e| EndpointMetrics {
                    size: e.counts.live() + e.counts.closing,
                    idle: e.counts.idle,
                    in_use: e.counts.in_use + e.counts.checking + e.counts.pinging,
                    opening: e.counts.opening,
                    closing: e.counts.closing,
                    created: e.created,
                    closed: e.closed,
                    broken: e.broken,
                    open_failures: e.open_failures,
                    connect_timeouts: e.connect_timeouts,
                    last_error: e.last_error,
                    breaker: e.breaker.state(),
                })
                .collect(),
        }
    }

    // ----- inputs -------------------------------------------------------

    /// A caller wants a connection at `now`. See [`Acquire`] for what to do
    /// with each answer. Fails only when the pool is closing.
    pub fn acquire(&mut self, now: Instant) -> Result<Acquire, ConnError> {
        let now = self.tick(now);
        if self.shutdown.is_some() {
            return Err(ConnError::Closed);
        }
        let deadline = now.saturating_add(self.config.acquire_timeout);
        Ok(self.acquire_for(None, now, deadline, now))
    }

    /// Gives back a checked-out connection; `broken` when the caller saw it
    /// fail or dropped it with work in flight. The runtime should have reset
    /// its session state before calling this with `broken == false`.
    pub fn release(
        &mut self,
        conn: ConnId,
        broken: bool,
        now: Instant,
    ) -> Result<Disposition, ConnError> {
        let now = self.tick(now);
        let index = self.checked_out(conn)?;
        Ok(self.put_back(index, broken, now, Some(now), now))
    }

    /// Gives back a checked-out connection that the runtime kept idle on its
    /// own side since `idle_since`, last known alive at `last_alive`: a
    /// runtime may lend connections to callers without the core while no
    /// waiter needs them, and returns them here when one does (or to let the
    /// core reap them). Like a [`release`](Self::release) of a healthy
    /// connection, except that the connection keeps those stamps (clamped to
    /// `now`) for its idle timeout, keepalive and checkout check, and takes
    /// its place in the idle list by `idle_since`.
    pub fn release_idle(
        &mut self,
        conn: ConnId,
        idle_since: Instant,
        last_alive: Instant,
        now: Instant,
    ) -> Result<Disposition, ConnError> {
        let now = self.tick(now);
        let index = self.checked_out(conn)?;
        Ok(self.put_back(
            index,
            false,
            idle_since.min(now),
            Some(last_alive.min(now)),
            now,
        ))
    }

    /// Counts `n` acquires that the runtime served at once from connections
    /// it kept itself (see [`release_idle`](Self::release_idle)): acquired,
    /// with a zero wait in the histogram.
    pub fn count_served_at_once(&mut self, n: u64) {
        if n == 0 {
            return;
        }
        self.acquired += n;
        self.waits.record_n(0, n);
    }

    /// The caller behind `waiter` gave up (its acquire was dropped or timed
    /// out on the runtime's side). Call it once, only for an acquire that
    /// did not complete; calling it again is harmless ([`Cancel::Unknown`]).
    pub fn cancel_waiter(&mut self, waiter: WaiterId, now: Instant) -> Cancel {
        let now = self.tick(now);
        if let Ok(pos) = self.waiters.binary_search_by_key(&waiter, |w| w.id) {
            self.waiters.remove(pos);
            return Cancel::Dequeued;
        }
        let Some(index) = self.served.remove(&waiter) else {
            return Cancel::Unknown;
        };
        self.slots[index as usize].holder = None;
        let id = self.id_of(index);
        match self.slots[index as usize].state {
            Some(ConnState::InUse) => match self.put_back(index, false, now, None, now) {
                Disposition::Kept => Cancel::Returned(id),
                Disposition::Close(_) => Cancel::Close(id),
            },
            _ => {
                // Checking: the check was cut off half way, so the
                // connection's protocol state is unknown.
                self.close_slot(index, CloseReason::Interrupted);
                Cancel::Close(id)
            }
        }
    }

    /// The result of the health check asked for by [`Acquire::Check`] or
    /// [`Action::Check`].
    pub fn handle_checked(
        &mut self,
        conn: ConnId,
        healthy: bool,
        now: Instant,
    ) -> Result<Checked, ConnError> {
        let now = self.tick(now);
        let index = self.index_in(conn, ConnState::Checking)?;
        let slot = &mut self.slots[index as usize];
        let (started, deadline) = (slot.wait_started, slot.wait_deadline);
        let Some(waiter) = slot.holder else {
            // Unreachable by construction: a checking connection always has
            // a holder. Treat it as an interrupted check rather than panic.
            self.close_slot(index, CloseReason::Interrupted);
            return Ok(Checked::Replaced(
                self.acquire_for(None, started, deadline, now),
            ));
        };
        if healthy && self.disposal(index, now).is_none() {
            self.slots[index as usize].last_alive = now;
            self.checkout(index, Some(waiter), started, now);
            return Ok(Checked::Ready(conn));
        }
        self.served.remove(&waiter);
        self.slots[index as usize].holder = None;
        let reason = if healthy {
            self.disposal(index, now).unwrap_or(CloseReason::Broken)
        } else {
            CloseReason::Broken
        };
        self.close_slot(index, reason);
        Ok(Checked::Replaced(self.acquire_for(
            Some(waiter),
            started,
            deadline,
            now,
        )))
    }

    /// The result of the ping asked for by [`Action::Ping`].
    pub fn handle_pinged(
        &mut self,
        conn: ConnId,
        healthy: bool,
        now: Instant,
    ) -> Result<Disposition, ConnError> {
        let now = self.tick(now);
        let index = self.index_in(conn, ConnState::Pinging)?;
        let reason = if healthy {
            self.disposal(index, now)
        } else {
            Some(CloseReason::Broken)
        };
        if let Some(reason) = reason {
            self.close_slot(index, reason);
            return Ok(Disposition::Close(reason));
        }
        self.slots[index as usize].last_alive = now;
        self.set_state(index, Some(ConnState::Idle));
        self.arm_idle(index);
        Ok(Disposition::Kept)
    }

    /// A connect succeeded: the new connection is idle under the returned
    /// id (store the object at [`ConnId::index`] of the slab), and the next
    /// [`PoolCore::poll_action`] hands it to the first waiter, or closes it
    /// if the pool was drained or closed meanwhile.
    pub fn handle_opened(&mut self, permit: OpenPermit, now: Instant) -> Result<ConnId, ConnError> {
        let now = self.tick(now);
        let opening = self.take_permit(&permit)?;
        let e = opening.endpoint as usize;
        self.endpoints[e].breaker.on_success(opening.trial);
        self.endpoints[e].created += 1;
        self.created += 1;
        self.last_open_failed = false;

        let jitter = self.config.lifetime_jitter.as_nanos() as u64;
        let cut = if jitter == 0 {
            0
        } else {
            let r = self.random();
            ((u128::from(r) * (u128::from(jitter) + 1)) >> 64) as u64
        };
        let expires_at = match self.config.max_lifetime {
            Some(lifetime) => now
                .saturating_add(lifetime)
                .saturating_sub(Duration::from_nanos(cut)),
            None => Instant::MAX,
        };
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                // `max_connections` fits in u32 (checked), and there are
                // never more slots than connections counted against it.
                let index = self.slots.len() as u32;
                self.slots.push(Slot {
                    generation: 0,
                    state: None,
                    endpoint: 0,
                    epoch: 0,
                    expires_at: Instant::MAX,
                    idle_since: now,
                    last_alive: now,
                    checkout_at: now,
                    checkout: 0,
                    leak_reported: false,
                    holder: None,
                    wait_started: now,
                    wait_deadline: now,
                });
                index
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.endpoint = opening.endpoint;
        slot.epoch = opening.epoch;
        slot.expires_at = expires_at;
        slot.idle_since = now;
        slot.last_alive = now;
        slot.holder = None;
        slot.leak_reported = false;
        self.set_state(index, Some(ConnState::Idle));
        // More connections can make an idle timeout actionable that was
        // not: look at the timers again.
        self.timer = now;
        let id = self.id_of(index);
        let reason = if self.shutdown.is_some() {
            Some(CloseReason::PoolClosed)
        } else if opening.epoch < self.epoch {
            Some(CloseReason::Drained)
        } else if self.counts.live() > self.config.max_connections {
            Some(CloseReason::Shrunk)
        } else {
            None
        };
        if let Some(reason) = reason {
            self.close_slot(index, reason);
            self.close_queue.push_back((id, reason));
        }
        Ok(id)
    }

    /// A connect failed (or was abandoned: [`FailureKind::Cancelled`]).
    pub fn handle_open_failed(
        &mut self,
        permit: OpenPermit,
        now: Instant,
        kind: FailureKind,
    ) -> Result<(), ConnError> {
        let now = self.tick(now);
        let opening = self.take_permit(&permit)?;
        let e = opening.endpoint as usize;
        if kind == FailureKind::Cancelled {
            self.endpoints[e].breaker.on_cancel(opening.trial);
            return Ok(());
        }
        let random = self.random();
        let book = &mut self.endpoints[e];
        book.breaker
            .on_failure(opening.trial, now, &self.config.breaker, random);
        book.open_failures += 1;
        book.connect_timeouts += u64::from(kind == FailureKind::TimedOut);
        book.last_error = Some(kind);
        self.open_failures += 1;
        self.last_error = Some(kind);
        self.last_open_failed = true;
        Ok(())
    }

    /// The runtime has dropped a closing connection; its slot is free.
    pub fn handle_closed(&mut self, conn: ConnId) -> Result<(), ConnError> {
        let index = self.index_in(conn, ConnState::Closing)?;
        self.set_state(index, None);
        let slot = &mut self.slots[index as usize];
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(index);
        Ok(())
    }

    /// Changes `min_connections` and `max_connections` at run time. Growing
    /// lets waiting callers get new connections; shrinking closes idle
    /// connections above the new maximum and in-use ones as they come back.
    pub fn resize(&mut self, min: usize, max: usize) -> Result<(), ConfigError> {
        check_sizes(min, max)?;
        self.config.min_connections = min;
        self.config.max_connections = max;
        self.timer = Instant::ZERO;
        Ok(())
    }

    /// Retires every connection open now (for new credentials or a changed
    /// address): idle ones are closed at once, in-use ones when released,
    /// connects in flight when they complete. New connections replace them
    /// as needed.
    pub fn drain(&mut self, now: Instant) {
        self.tick(now);
        self.epoch += 1;
        self.close_all_idle(CloseReason::Drained);
    }

    /// Starts closing the pool: acquires fail from now on, waiters fail with
    /// [`AcquireFailure::Closed`], idle connections close at once and in-use
    /// ones when released. [`Action::Closed`] reports when everything is
    /// back or `deadline` passed, whichever is first.
    pub fn close(&mut self, now: Instant, deadline: Instant) {
        self.tick(now);
        if self.shutdown.is_none() {
            self.shutdown = Some(Shutdown {
                deadline,
                reported: false,
            });
        }
        self.close_all_idle(CloseReason::PoolClosed);
    }

    /// What is still out during a close (everything, if not closing).
    pub fn remaining(&self) -> Remaining {
        Remaining {
            in_use: self.counts.in_use + self.counts.checking + self.counts.pinging,
            opening: self.counts.opening,
            closing: self.counts.closing,
        }
    }

    // ----- outputs ------------------------------------------------------

    /// The next thing the runtime must do, or `None` when nothing is due
    /// at `now`. Call it until `None` after every input.
    pub fn poll_action(&mut self, now: Instant) -> Option<Action> {
        let now = self.tick(now);
        if let Some((conn, reason)) = self.close_queue.pop_front() {
            return Some(Action::Close { conn, reason });
        }
        if self.shutdown.is_some() {
            return self.poll_shutdown(now);
        }
        if let Some(front) = self.waiters.front()
            && front.deadline <= now
        {
            let reason = self.failure_reason(now);
            let waiter = front.id;
            self.waiters.pop_front();
            self.timeouts += 1;
            return Some(Action::Fail { waiter, reason });
        }
        if !self.waiters.is_empty()
            && let Some(action) = self.hand_idle(now)
        {
            return Some(action);
        }
        if self.counts.live() > self.config.max_connections
            && let Some(&index) = self.idle.front()
        {
            return Some(self.close_idle(index, CloseReason::Shrunk));
        }
        if now >= self.timer
            && let Some(action) = self.scan(now)
        {
            return Some(action);
        }
        if self.wants_open() {
            return self.try_open(now).map(Action::Open);
        }
        None
    }

    /// When to call [`PoolCore::poll_action`] again if no input comes first:
    /// the earliest waiter deadline, timer, breaker reopening (while a
    /// connect is wanted) or close deadline. Ask after draining
    /// `poll_action`.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if let Some(shutdown) = &self.shutdown {
            return (!shutdown.reported).then_some(shutdown.deadline);
        }
        let mut next = self.timer;
        if let Some(front) = self.waiters.front() {
            next = next.min(front.deadline);
        }
        if self.wants_open() && self.counts.counted() < self.config.max_connections {
            for e in &self.endpoints {
                if let Some(at) = e.breaker.reopens_at()
                    && at > self.now
                {
                    next = next.min(at);
                }
            }
        }
        (next != Instant::MAX).then_some(next)
    }

    // ----- internals ----------------------------------------------------

    /// Ends a permit: its slot no longer counts as opening.
    fn take_permit(&mut self, permit: &OpenPermit) -> Result<Opening, ConnError> {
        let opening = self
            .opening
            .remove(&permit.id)
            .ok_or(ConnError::UnknownPermit(permit.id))?;
        self.counts.opening -= 1;
        self.endpoints[opening.endpoint as usize].counts.opening -= 1;
        Ok(opening)
    }

    fn tick(&mut self, now: Instant) -> Instant {
        self.now = self.now.max(now);
        self.now
    }

    /// splitmix64: the jitter needs spread, not secrecy.
    fn random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn id_of(&self, index: u32) -> ConnId {
        ConnId {
            index,
            generation: self.slots[index as usize].generation,
        }
    }

    fn index_in(&self, conn: ConnId, expected: ConnState) -> Result<u32, ConnError> {
        let state = self.state(conn).ok_or(ConnError::UnknownConn(conn))?;
        if state != expected {
            return Err(ConnError::WrongState {
                conn,
                state,
                expected,
            });
        }
        Ok(conn.index)
    }

    /// The one place a slot changes state: counts and the idle list follow.
    fn set_state(&mut self, index: u32, new: Option<ConnState>) {
        let slot = &mut self.slots[index as usize];
        let old = core::mem::replace(&mut slot.state, new);
        let (endpoint, idle_since) = (slot.endpoint as usize, slot.idle_since);
        if let Some(old) = old {
            *self.counts.slot(old) -= 1;
            *self.endpoints[endpoint].counts.slot(old) -= 1;
            if old == ConnState::Idle {
                self.unlink_idle(index);
            }
        }
        if let Some(new) = new {
            *self.counts.slot(new) += 1;
            *self.endpoints[endpoint].counts.slot(new) += 1;
            if new == ConnState::Idle {
                // Usually the newest; a pinged connection goes back to its
                // place by idle time.
                let slots = &self.slots;
                if self
                    .idle
                    .back()
                    .is_none_or(|&i| slots[i as usize].idle_since <= idle_since)
                {
                    self.idle.push_back(index);
                } else {
                    let at = self
                        .idle
                        .partition_point(|&i| slots[i as usize].idle_since <= idle_since);
                    self.idle.insert(at, index);
                }
            }
        }
    }

    fn unlink_idle(&mut self, index: u32) {
        if self.idle.back() == Some(&index) {
            self.idle.pop_back();
        } else if self.idle.front() == Some(&index) {
            self.idle.pop_front();
        } else if let Some(pos) = self.idle.iter().position(|&i| i == index) {
            self.idle.remove(pos);
        }
    }

    fn close_slot(&mut self, index: u32, reason: CloseReason) {
        self.set_state(index, Some(ConnState::Closing));
        let book = &mut self.endpoints[self.slots[index as usize].endpoint as usize];
        book.closed += 1;
        self.closed += 1;
        if reason == CloseReason::Broken {
            book.broken += 1;
            self.broken += 1;
        }
    }

    fn close_idle(&mut self, index: u32, reason: CloseReason) -> Action {
        self.close_slot(index, reason);
        Action::Close {
            conn: self.id_of(index),
            reason,
        }
    }

    fn close_all_idle(&mut self, reason: CloseReason) {
        while let Some(&index) = self.idle.front() {
            self.close_slot(index, reason);
            let id = self.id_of(index);
            self.close_queue.push_back((id, reason));
        }
    }

    /// Why a connection that is not idle should not go back to idle now.
    fn disposal(&self, index: u32, now: Instant) -> Option<CloseReason> {
        let slot = &self.slots[index as usize];
        if self.shutdown.is_some() {
            Some(CloseReason::PoolClosed)
        } else if slot.epoch < self.epoch {
            Some(CloseReason::Drained)
        } else if now >= slot.expires_at {
            Some(CloseReason::Expired)
        } else if self.counts.live() > self.config.max_connections {
            Some(CloseReason::Shrunk)
        } else {
            None
        }
    }

    /// The slot of a checked-out connection coming back, no longer held by
    /// the waiter it was handed to.
    fn checked_out(&mut self, conn: ConnId) -> Result<u32, ConnError> {
        let index = self.index_in(conn, ConnState::InUse)?;
        if let Some(waiter) = self.slots[index as usize].holder.take() {
            self.served.remove(&waiter);
        }
        Ok(index)
    }

    /// A checked-out connection comes back, idle since `idle_since`
    /// (released, or its waiter gave up before using it: then `last_alive`
    /// is `None`, as it is not proven alive).
    fn put_back(
        &mut self,
        index: u32,
        broken: bool,
        idle_since: Instant,
        last_alive: Option<Instant>,
        now: Instant,
    ) -> Disposition {
        let reason = if broken {
            Some(CloseReason::Broken)
        } else {
            self.disposal(index, now)
        };
        if let Some(reason) = reason {
            self.close_slot(index, reason);
            return Disposition::Close(reason);
        }
        let slot = &mut self.slots[index as usize];
        slot.idle_since = idle_since;
        if let Some(alive) = last_alive {
            slot.last_alive = alive;
        }
        self.set_state(index, Some(ConnState::Idle));
        self.arm_idle(index);
        Disposition::Kept
    }

    fn arm(&mut self, at: Instant) {
        self.timer = self.timer.min(at);
    }

    fn arm_idle(&mut self, index: u32) {
        let slot = &self.slots[index as usize];
        let mut at = slot.expires_at;
        if let Some(t) = self.config.idle_timeout {
            at = at.min(slot.idle_since.saturating_add(t));
        }
        if let Some(k) = self.config.keepalive {
            at = at.min(slot.last_alive.saturating_add(k));
        }
        self.arm(at);
    }

    fn checkout(&mut self, index: u32, holder: Option<WaiterId>, started: Instant, now: Instant) {
        let checkout = self.next_checkout;
        self.next_checkout += 1;
        let slot = &mut self.slots[index as usize];
        slot.checkout_at = now;
        slot.checkout = checkout;
        slot.leak_reported = false;
        slot.holder = holder;
        if let Some(waiter) = holder {
            self.served.insert(waiter, index);
        }
        self.set_state(index, Some(ConnState::InUse));
        self.acquired += 1;
        self.waits
            .record(now.saturating_duration_since(started).as_nanos() as u64);
        if let Some(t) = self.config.leak_threshold {
            self.arm(now.saturating_add(t));
        }
    }

    fn needs_check(&self, index: u32, now: Instant) -> bool {
        self.config.check_after_idle.is_some_and(|after| {
            now.saturating_duration_since(self.slots[index as usize].last_alive) >= after
        })
    }

    /// Takes the most recently used idle connection that may be handed out,
    /// closing expired ones on the way (they go to the close queue).
    fn take_idle(&mut self, now: Instant) -> Option<u32> {
        while let Some(&index) = self.idle.back() {
            match self.disposal(index, now) {
                None => return Some(index),
                Some(reason) => {
                    self.close_slot(index, reason);
                    let id = self.id_of(index);
                    self.close_queue.push_back((id, reason));
                }
            }
        }
        None
    }

    /// Serves a caller: the new acquirer (`waiter` is `None`, an id is
    /// given only if it must wait or check) or a waiter whose connection
    /// failed its check.
    fn acquire_for(
        &mut self,
        waiter: Option<WaiterId>,
        started: Instant,
        deadline: Instant,
        now: Instant,
    ) -> Acquire {
        // A waiter whose check failed at or after its deadline is not given
        // another connection to check: it is queued, and the next
        // `poll_action` fails it with the reason.
        if self.waiters.is_empty()
            && self.shutdown.is_none()
            && (waiter.is_none() || deadline > now)
            && let Some(index) = self.take_idle(now)
        {
            if self.needs_check(index, now) {
                let waiter = waiter.unwrap_or_else(|| self.new_waiter());
                self.start_check(index, waiter, started, deadline);
                return Acquire::Check {
                    waiter,
                    conn: self.id_of(index),
                };
            }
            self.checkout(index, None, started, now);
            return Acquire::Ready(self.id_of(index));
        }
        let id = waiter.unwrap_or_else(|| self.new_waiter());
        let at = self.waiters.partition_point(|w| w.id < id);
        self.waiters.insert(
            at,
            Waiter {
                id,
                started,
                deadline,
            },
        );
        let open = if self.shutdown.is_none()
            && self.waiters.len() > self.counts.opening + self.counts.idle
        {
            self.try_open(now)
        } else {
            None
        };
        Acquire::Wait { waiter: id, open }
    }

    fn new_waiter(&mut self) -> WaiterId {
        let id = WaiterId(self.next_waiter);
        self.next_waiter += 1;
        id
    }

    fn start_check(&mut self, index: u32, waiter: WaiterId, started: Instant, deadline: Instant) {
        let slot = &mut self.slots[index as usize];
        slot.holder = Some(waiter);
        slot.wait_started = started;
        slot.wait_deadline = deadline;
        self.served.insert(waiter, index);
        self.set_state(index, Some(ConnState::Checking));
    }

    /// Hands an idle connection to the first waiter.
    fn hand_idle(&mut self, now: Instant) -> Option<Action> {
        let index = match self.take_idle(now) {
            Some(index) => index,
            None => {
                let (conn, reason) = self.close_queue.pop_front()?;
                return Some(Action::Close { conn, reason });
            }
        };
        let waiter = self.waiters.pop_front()?;
        let conn = self.id_of(index);
        if self.needs_check(index, now) {
            self.start_check(index, waiter.id, waiter.started, waiter.deadline);
            return Some(Action::Check {
                waiter: waiter.id,
                conn,
            });
        }
        self.checkout(index, Some(waiter.id), waiter.started, now);
        Some(Action::Hand {
            waiter: waiter.id,
            conn,
        })
    }

    /// One pass over the connections for timed work; re-arms the timer
    /// when nothing is due.
    fn scan(&mut self, now: Instant) -> Option<Action> {
        let mut next = Instant::MAX;
        let above_min = self.counts.live() > self.config.min_connections;
        for &index in &self.idle {
            let slot = &self.slots[index as usize];
            if now >= slot.expires_at {
                return Some(self.close_idle(index, CloseReason::Expired));
            }
            next = next.min(slot.expires_at);
            if let Some(t) = self.config.idle_timeout
                && above_min
            {
                let at = slot.idle_since.saturating_add(t);
                if now >= at {
                    return Some(self.close_idle(index, CloseReason::IdleTimeout));
                }
                next = next.min(at);
            }
            if let Some(k) = self.config.keepalive {
                let at = slot.last_alive.saturating_add(k);
                if now >= at {
                    self.set_state(index, Some(ConnState::Pinging));
                    return Some(Action::Ping(self.id_of(index)));
                }
                next = next.min(at);
            }
        }
        if let Some(threshold) = self.config.leak_threshold {
            for (index, slot) in self.slots.iter_mut().enumerate() {
                if slot.state != Some(ConnState::InUse) || slot.leak_reported {
                    continue;
                }
                let at = slot.checkout_at.saturating_add(threshold);
                if now >= at {
                    slot.leak_reported = true;
                    self.leaks += 1;
                    return Some(Action::Leak {
                        conn: ConnId {
                            index: index as u32,
                            generation: slot.generation,
                        },
                        checkout: slot.checkout,
                        held: now.saturating_duration_since(slot.checkout_at),
                    });
                }
                next = next.min(at);
            }
        }
        self.timer = next;
        None
    }

    fn wants_open(&self) -> bool {
        let c = &self.counts;
        self.waiters.len() > c.opening + c.idle
            || c.live() + c.opening < self.config.min_connections
    }

    /// A permit for the endpoint the strategy picks, if the pool has room
    /// and some breaker admits a connect.
    fn try_open(&mut self, now: Instant) -> Option<OpenPermit> {
        if self.counts.counted() >= self.config.max_connections {
            return None;
        }
        let n = self.endpoints.len();
        let chosen = match self.config.balance {
            Balance::RoundRobin => (0..n)
                .map(|k| (self.cursor + k) % n)
                .find(|&e| self.endpoints[e].breaker.admits(now)),
            Balance::Failover => (0..n).find(|&e| self.endpoints[e].breaker.admits(now)),
            Balance::LeastConnections => {
                let mut best: Option<(usize, usize)> = None;
                for e in 0..n {
                    if !self.endpoints[e].breaker.admits(now) {
                        continue;
                    }
                    let c = &self.endpoints[e].counts;
                    let load = c.live() + c.closing + c.opening;
                    if best.is_none_or(|(_, l)| load < l) {
                        best = Some((e, load));
                    }
                }
                best.map(|(e, _)| e)
            }
        }?;
        self.cursor = (chosen + 1) % n;
        let book = &mut self.endpoints[chosen];
        let trial = book.breaker.on_attempt();
        book.counts.opening += 1;
        self.counts.opening += 1;
        let id = self.next_permit;
        self.next_permit += 1;
        self.opening.insert(
            id,
            Opening {
                endpoint: chosen as u32,
                trial,
                epoch: self.epoch,
            },
        );
        Some(OpenPermit {
            id,
            endpoint: EndpointId(chosen as u32),
        })
    }

    fn failure_reason(&self, now: Instant) -> AcquireFailure {
        let room = self.counts.counted() < self.config.max_connections;
        let none_admits = !self.endpoints.iter().any(|e| e.breaker.would_admit(now));
        if room && (self.last_open_failed || none_admits) {
            AcquireFailure::Unreachable {
                last_error: self.last_error,
            }
        } else {
            AcquireFailure::Exhausted {
                waiters: self.waiters.len(),
                in_use: self.counts.in_use + self.counts.checking,
            }
        }
    }

    fn poll_shutdown(&mut self, now: Instant) -> Option<Action> {
        if let Some(waiter) = self.waiters.pop_front() {
            return Some(Action::Fail {
                waiter: waiter.id,
                reason: AcquireFailure::Closed,
            });
        }
        let remaining = self.remaining();
        let shutdown = self.shutdown.as_mut()?;
        if !shutdown.reported && (remaining.is_empty() || now >= shutdown.deadline) {
            shutdown.reported = true;
            return Some(Action::Closed(remaining));
        }
        None
    }
}
