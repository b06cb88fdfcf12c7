//! [`ConnectionPool`], its configuration, its guard and its errors. See the
//! [parent module](super) for how it runs and what it promises.

use core::fmt;
use core::ops::{Deref, DerefMut};
use core::panic::Location;
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use mechops_alloc::conn::{
    Acquire, AcquireFailure, Action, Cancel, Checked, ConfigError, ConnId, Disposition,
    FailureKind, OpenPermit, PoolConfig, PoolCore, PoolMetrics, Remaining, WaiterId,
};
use mechops_core::metrics::LocalHistogram;
use mechops_core::pool::shelf::{Shelf, ShelfPlace};
use mechops_core::time::{Instant, MonotonicClock};
use tokio::sync::{Notify, oneshot};

use super::Manager;
use super::metrics::breaker_name;
use crate::clock::TokioClock;
use mechops_std::clock::CoarseClock;
use mechops_std::pool::thread_shard_hint;

/// The settings of a [`ConnectionPool`]: the core's [`PoolConfig`]
/// (sizes, acquire timeout, idle timeout, lifetime, keepalive, check
/// threshold, leak threshold, balance, and the breaker whose backoff spaces
/// connect retries) and the connect timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionPoolConfig {
    /// The bookkeeping settings.
    pub pool: PoolConfig,
    /// How long one connect (with its handshake) may take before it counts
    /// as a [`FailureKind::TimedOut`] failure. Health checks, pings, resets
    /// and closes are bounded by it too: one that takes longer counts as
    /// failed (and a close as done).
    pub connect_timeout: Duration,
}

impl Default for ConnectionPoolConfig {
    /// [`PoolConfig::default`] (0 to 10 connections, 30 s acquire timeout)
    /// and a 10 s connect timeout.
    fn default() -> Self {
        Self {
            pool: PoolConfig::default(),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

impl ConnectionPoolConfig {
    /// The defaults with `min` to `max` connections.
    pub fn sized(min: usize, max: usize) -> Self {
        let mut config = Self::default();
        config.pool.min_connections = min;
        config.pool.max_connections = max;
        config
    }
}

/// Why [`ConnectionPool::acquire`] gave no connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// The acquire timeout passed: the reason says whether the pool was
    /// exhausted (with how many waiters) or no endpoint was reachable.
    #[error("{reason}{}", last_error.as_ref().map(|e| format!(": last error: {e}")).unwrap_or_default())]
    Timeout {
        /// The core's reason.
        reason: AcquireFailure,
        /// The last connect error's message, when no endpoint was reachable.
        last_error: Option<String>,
    },
    /// The pool is closing or closed.
    #[error("connection pool is closed")]
    Closed,
}

impl PoolError {
    /// Whether this is an acquire timeout (either reason).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }
}

/// What a waiter is sent.
enum Handoff<C> {
    Ready(ConnId, C),
    Check(ConnId, C),
    Fail(AcquireFailure),
}

/// An idle connection on the shelf: lent to callers without the lock (see
/// the [module docs](super)). The core counts it as checked out.
struct Shelved<C> {
    id: ConnId,
    conn: C,
    lease: Lease,
    /// Idle, and last known alive, since: it came back from a caller.
    since: Instant,
}

/// What a checked-out connection carries so that it can go on the shelf
/// and come off it again without asking the core.
#[derive(Clone, Copy, Debug)]
struct Lease {
    /// Its expiry (`Instant::MAX` without a lifetime).
    expires_at: Instant,
    /// The pool's generation when it left the core.
    generation: u64,
}

type ConnShelf<C> = Shelf<Shelved<C>, Box<[ShelfPlace<Shelved<C>>]>>;

/// Counters of acquires served from the shelf, one per thread number
/// (modulo), each on cache lines of its own: the fast path then writes no
/// line another thread writes. Added into the core under the lock.
const LENT_STRIPES: usize = 8;

/// Everything behind the lock.
struct State<C> {
    core: PoolCore,
    /// Idle (and otherwise pool-held) connection objects by slot index.
    slab: Vec<Option<C>>,
    /// Where each slot's current checkout was acquired.
    callers: Vec<Option<&'static Location<'static>>>,
    waiters: HashMap<WaiterId, oneshot::Sender<Handoff<C>>>,
    /// The last connect error's message.
    last_error: Option<String>,
    /// Set once the core reported [`Action::Closed`].
    closed: Option<Remaining>,
    /// The deadline the timer task sleeps until (`None`: no deadline).
    timer_at: Option<Instant>,
}

pub(super) struct Shared<M: Manager> {
    name: String,
    manager: M,
    endpoints: Vec<M::Endpoint>,
    config: ConnectionPoolConfig,
    clock: TokioClock,
    /// The clock of stamps (see [`Shared::stamp`]), on `clock`'s origin;
    /// `None` when the pool was built under paused tokio time, whose
    /// virtual now the operating system's coarse clock does not follow:
    /// then stamps read `clock` too.
    coarse: Option<CoarseClock>,
    runtime: tokio::runtime::Handle,
    state: OwnLines<Mutex<State<M::Connection>>>,
    /// Wakes the timer task when the core's deadline moved earlier.
    timer: Arc<Notify>,
    /// Wakes callers of `close`.
    closed: Notify,
    /// Idle connections lent without the lock; `None` with leak detection
    /// on, which needs every checkout's time and caller in the core.
    shelf: Option<OwnLines<ConnShelf<M::Connection>>>,
    /// Bumped under the lock by `drain` and `resize`: a shelved connection
    /// of an older generation goes through the core before it is lent.
    generation: AtomicU64,
    /// Acquires served from the shelf, not yet counted by the core.
    lent: [OwnLines<AtomicU64>; LENT_STRIPES],
    /// How often the timer task puts shelved connections back in the core,
    /// so that its idle timeout, keepalive and lifetime see them; `None`
    /// when none of them is set.
    shelf_period: Option<Duration>,
}

/// Keeps the lock and the bookkeeping on cache lines of their own (two:
/// x86 fetches lines in pairs). Every acquire and release writes them from
/// whichever thread runs it; the reference counts of the `Arc` and the
/// read-mostly settings then do not move between cores with them.
#[repr(align(128))]
#[derive(Default)]
struct OwnLines<T>(T);

/// Bounds of the period at which the timer task puts shelved connections
/// back in the core: a quarter of the shortest idle timeout, keepalive or
/// lifetime, within these.
const SHELF_PERIOD_MIN: Duration = Duration::from_millis(10);
const SHELF_PERIOD_MAX: Duration = Duration::from_secs(1);

/// A pool of connections made by `M`, over one or more endpoints. Cheap to
/// clone (a reference count); every clone is the same pool.
pub struct ConnectionPool<M: Manager> {
    shared: Arc<Shared<M>>,
}

impl<M: Manager> Clone for ConnectionPool<M> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<M: Manager> fmt::Debug for ConnectionPool<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionPool")
            .field("name", &self.shared.name)
            .field("endpoints", &self.shared.endpoints.len())
            .finish_non_exhaustive()
    }
}

impl<M: Manager> ConnectionPool<M> {
    /// A pool named `name` over `endpoints` (in priority order), started on
    /// the current tokio runtime: the background task begins opening
    /// `min_connections` at once.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (the pool must have one to spawn onto).
    pub fn new(
        name: impl Into<String>,
        manager: M,
        endpoints: Vec<M::Endpoint>,
        config: ConnectionPoolConfig,
    ) -> Result<Self, ConfigError> {
        if endpoints.is_empty() {
            return Err(ConfigError::NoEndpoints);
        }
        let seed = seed_from(&endpoints);
        let core = PoolCore::new(config.pool, endpoints.len(), seed)?;
        let clock = TokioClock::new();
        let coarse =
            (!tokio_time_paused()).then(|| CoarseClock::with_origin(clock.origin().into_std()));
        let shelf = config.pool.leak_threshold.is_none().then(|| {
            let places: Box<[ShelfPlace<Shelved<M::Connection>>]> =
                (0..config.pool.max_connections)
                    .map(|_| ShelfPlace::new())
                    .collect();
            OwnLines(Shelf::new(places))
        });
        let shelf_period = [
            config.pool.idle_timeout,
            config.pool.keepalive,
            config.pool.max_lifetime,
        ]
        .into_iter()
        .flatten()
        .min()
        .filter(|_| shelf.is_some())
        .map(|d| (d / 4).clamp(SHELF_PERIOD_MIN, SHELF_PERIOD_MAX));
        let shared = Arc::new(Shared {
            name: name.into(),
            manager,
            endpoints,
            config,
            clock,
            coarse,
            runtime: tokio::runtime::Handle::current(),
            state: OwnLines(Mutex::new(State {
                core,
                slab: Vec::new(),
                callers: Vec::new(),
                waiters: HashMap::new(),
                last_error: None,
                closed: None,
                timer_at: None,
            })),
            timer: Arc::new(Notify::new()),
            closed: Notify::new(),
            shelf,
            generation: AtomicU64::new(0),
            lent: Default::default(),
            shelf_period,
        });
        shared.runtime.spawn(timer_task(Arc::downgrade(&shared)));
        Ok(Self { shared })
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The manager.
    pub fn manager(&self) -> &M {
        &self.shared.manager
    }

    /// The endpoints, in priority order.
    pub fn endpoints(&self) -> &[M::Endpoint] {
        &self.shared.endpoints
    }

    /// The settings the pool was built with (sizes as built; see
    /// [`ConnectionPool::metrics`] for the current ones).
    pub fn config(&self) -> &ConnectionPoolConfig {
        &self.shared.config
    }

    /// Checks a connection out, waiting up to `acquire_timeout`.
    ///
    /// Cancellation: dropping the future at any point leaks nothing (see
    /// the [module docs](super)). The caller's location is kept for leak
    /// reports.
    #[track_caller]
    pub fn acquire(&self) -> impl Future<Output = Result<Pooled<M>, PoolError>> + Send + 'static {
        let caller = Location::caller();
        let shared = Arc::clone(&self.shared);
        async move { acquire(shared, caller).await }
    }

    /// A snapshot of the pool's gauges and counters.
    pub fn metrics(&self) -> PoolMetrics {
        let now = self.shared.now();
        let mut state = self.shared.lock();
        self.shared.unshelve_all(&mut state, now);
        state.core.metrics()
    }

    /// A copy of the acquire wait histogram (nanoseconds).
    pub fn wait_histogram(&self) -> LocalHistogram {
        let mut state = self.shared.lock();
        self.shared.count_lent(&mut state);
        state.core.wait_histogram().clone()
    }

    /// Changes the sizes at run time: growing serves waiters with new
    /// connections, shrinking closes idle ones above `max` and in-use ones
    /// as they come back.
    pub fn resize(&self, min: usize, max: usize) -> Result<(), ConfigError> {
        let now = self.shared.now();
        let mut state = self.shared.lock();
        state.core.resize(min, max)?;
        self.shared.next_generation(&mut state, now);
        self.shared.drive(&mut state, now);
        Ok(())
    }

    /// Retires every connection open now: idle ones close at once, in-use
    /// ones when given back; new ones replace them as needed.
    pub fn drain(&self) {
        let now = self.shared.now();
        let mut state = self.shared.lock();
        state.core.drain(now);
        self.shared.next_generation(&mut state, now);
        self.shared.drive(&mut state, now);
    }

    /// Closes the pool: acquires fail from now on, idle connections close
    /// at once, checked-out ones when given back. Resolves when everything
    /// is back and closed or `grace` has passed, with what was left.
    ///
    /// Cancellation: dropping the future leaves the pool closing; a later
    /// `close` waits for the same end.
    pub async fn close(&self, grace: Duration) -> Remaining {
        {
            let now = self.shared.now();
            let mut state = self.shared.lock();
            state.core.close(now, now.saturating_add(grace));
            self.shared.drive(&mut state, now);
        }
        loop {
            let notified = self.shared.closed.notified();
            if let Some(remaining) = self.shared.lock().closed {
                return remaining;
            }
            notified.await;
        }
    }

    /// Whether [`ConnectionPool::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().core.is_closing()
    }
}

/// Whether tokio's clock is paused (`tokio::time::pause`, or a runtime
/// started paused): two readings with real time between them are equal
/// only then. A clock too coarse to tell them apart reads as paused, which
/// costs speed, never correctness.
fn tokio_time_paused() -> bool {
    let first = tokio::time::Instant::now();
    let between = std::time::Instant::now();
    core::hint::black_box(between);
    tokio::time::Instant::now() == first
}

/// Seeds the lifetime jitter: different pools spread differently.
fn seed_from<E: fmt::Display>(endpoints: &[E]) -> u64 {
    use core::hash::{BuildHasher, Hash, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    for e in endpoints {
        e.to_string().hash(&mut hasher);
    }
    hasher.finish()
}

/// What an acquire future holds, so that dropping it at any `.await` gives
/// everything back.
struct Pending<M: Manager> {
    shared: Arc<Shared<M>>,
    /// The acquire's deadline, the one the core holds for its waiter.
    deadline: Instant,
    waiter: Option<WaiterId>,
    rx: Option<oneshot::Receiver<Handoff<M::Connection>>>,
    checking: Option<(ConnId, M::Connection)>,
}

impl<M: Manager> Drop for Pending<M> {
    fn drop(&mut self) {
        let Some(waiter) = self.waiter.take() else {
            return;
        };
        let shared = &self.shared;
        let now = shared.now();
        let mut state = shared.lock();
        state.waiters.remove(&waiter);
        let handed = self.rx.take().and_then(|mut rx| rx.try_recv().ok());
        let held = match handed {
            Some(Handoff::Ready(id, c) | Handoff::Check(id, c)) => Some((id, c)),
            _ => self.checking.take(),
        };
        match state.core.cancel_waiter(waiter, now) {
            Cancel::Dequeued | Cancel::Unknown => {
                if let Some((id, c)) = held {
                    // Unreachable by the core's contract (an unknown waiter
                    // holds nothing); close rather than lose track.
                    shared.spawn_close(id, c);
                }
            }
            Cancel::Returned(id) => match held {
                Some((_, c)) => put(&mut state.slab, id, c),
                None => tracing::error!(pool = %shared.name, %id, "returned connection missing"),
            },
            Cancel::Close(id) => match held {
                Some((_, c)) => shared.spawn_close(id, c),
                None => {
                    tracing::error!(pool = %shared.name, %id, "closing connection missing");
                    shared.report_closed(&mut state, id);
                }
            },
        }
        shared.drive(&mut state, now);
    }
}

/// The next step of an acquire, decided under the lock in the same
/// critical section as the core call that produced it, so that a hand-off
/// can never reach a waiter whose channel is not registered yet.
enum Step<C> {
    Got(ConnId, C, Lease),
    Check(WaiterId, ConnId, C),
    Wait(WaiterId, oneshot::Receiver<Handoff<C>>),
    Missing(ConnId),
}

/// Turns the core's answer into a [`Step`]: takes the connection out of
/// the slab, or registers the waiter's channel and starts its connect.
fn step<M: Manager>(
    shared: &Arc<Shared<M>>,
    state: &mut State<M::Connection>,
    answer: Acquire,
    caller: &'static Location<'static>,
) -> Step<M::Connection> {
    match answer {
        Acquire::Ready(id) => match take(&mut state.slab, id) {
            Some(conn) => {
                set_caller(&mut state.callers, id, caller);
                Step::Got(id, conn, shared.lease(state, id))
            }
            None => Step::Missing(id),
        },
        Acquire::Check { waiter, conn: id } => match take(&mut state.slab, id) {
            Some(conn) => Step::Check(waiter, id, conn),
            None => Step::Missing(id),
        },
        Acquire::Wait { waiter, open } => {
            let (tx, rx) = oneshot::channel();
            state.waiters.insert(waiter, tx);
            if let Some(permit) = open {
                shared.spawn_open(permit);
            }
            Step::Wait(waiter, rx)
        }
    }
}

async fn acquire<M: Manager>(
    shared: Arc<Shared<M>>,
    caller: &'static Location<'static>,
) -> Result<Pooled<M>, PoolError> {
    // The shelf first: an idle connection lent without the lock while no
    // one waits (a waiter seals the shelf).
    let shelved = shared.shelf.as_ref().and_then(|shelf| shelf.0.take());
    let unfit = match shelved {
        Some((_, entry)) if shared.fit_to_lend(&entry) => {
            shared.count_lend();
            let Shelved {
                id, conn, lease, ..
            } = entry;
            return Ok(Pooled::new(shared, id, conn, lease));
        }
        other => other.map(|(_, entry)| entry),
    };
    let (mut next, started) = {
        let coarse = shared.stamp();
        let mut state = shared.lock();
        // One found unfit (expired, due for a check, drained) goes back to
        // the core, which decides; so does one shelved since the look
        // above, so that this caller does not queue while it sits there.
        if let Some(entry) = unfit {
            shared.unshelve(&mut state, entry, coarse);
        }
        if let Some(shelf) = &shared.shelf
            && let Some((_, entry)) = shelf.0.take_sealed()
        {
            shared.unshelve(&mut state, entry, coarse);
        }
        // Served from the idle list, the acquire needs the time only for
        // stamps; queued, its deadline and measured wait need the precise
        // clock.
        let now = if state.core.has_ready_idle() {
            coarse
        } else {
            shared.now()
        };
        let Ok(answer) = state.core.acquire(now) else {
            return Err(PoolError::Closed);
        };
        let next = step(&shared, &mut state, answer, caller);
        shared.drive(&mut state, now);
        (next, now)
    };
    if let Step::Got(id, conn, lease) = next {
        return Ok(Pooled::new(shared, id, conn, lease));
    }
    let deadline = started.saturating_add(shared.config.pool.acquire_timeout);
    let mut pending = Pending {
        shared,
        deadline,
        waiter: None,
        rx: None,
        checking: None,
    };
    loop {
        match next {
            Step::Got(id, conn, lease) => {
                pending.waiter = None;
                return Ok(Pooled::new(Arc::clone(&pending.shared), id, conn, lease));
            }
            Step::Missing(id) => {
                pending.waiter = None;
                return Err(missing(&pending.shared, id));
            }
            Step::Check(waiter, id, conn) => {
                pending.waiter = Some(waiter);
                pending.checking = Some((id, conn));
                next = check(&mut pending, id, caller).await?;
            }
            Step::Wait(waiter, rx) => {
                pending.waiter = Some(waiter);
                pending.rx = Some(rx);
                let shared = Arc::clone(&pending.shared);
                let handoff = match pending.rx.as_mut() {
                    // The waiter wakes at its own deadline and lets the
                    // core fail what has expired, itself included, rather
                    // than wait for the timer task to be scheduled first:
                    // one task hop fewer between the deadline and the
                    // error.
                    Some(rx) => match shared.clock.timeout_at(pending.deadline, &mut *rx).await {
                        Ok(handoff) => handoff,
                        Err(_) => {
                            {
                                let now = shared.now();
                                let mut state = shared.lock();
                                shared.drive(&mut state, now);
                            }
                            rx.await
                        }
                    },
                    None => return Err(PoolError::Closed),
                };
                pending.rx = None;
                match handoff {
                    Ok(Handoff::Ready(id, conn)) => {
                        pending.waiter = None;
                        let lease = {
                            let mut state = pending.shared.lock();
                            set_caller(&mut state.callers, id, caller);
                            pending.shared.lease(&state, id)
                        };
                        return Ok(Pooled::new(Arc::clone(&pending.shared), id, conn, lease));
                    }
                    Ok(Handoff::Check(id, conn)) => {
                        pending.checking = Some((id, conn));
                        next = check(&mut pending, id, caller).await?;
                    }
                    Ok(Handoff::Fail(reason)) => {
                        pending.waiter = None;
                        return Err(pending.shared.failure(reason));
                    }
                    // The pool dropped the sender without an answer: only
                    // when the pool itself is gone.
                    Err(_) => {
                        pending.waiter = None;
                        return Err(PoolError::Closed);
                    }
                }
            }
        }
    }
}

/// Runs a checkout health check on `pending.checking` and reports it.
async fn check<M: Manager>(
    pending: &mut Pending<M>,
    id: ConnId,
    caller: &'static Location<'static>,
) -> Result<Step<M::Connection>, PoolError> {
    // The check ends by the acquire's deadline too: one cut short there
    // counts as failed (its connection's state is unknown, so it is
    // closed), and the core, finding the waiter's deadline passed, fails
    // the acquire with its reason, or serves it from another idle
    // connection at once.
    let healthy = match pending.checking.as_mut() {
        Some((_, conn)) => {
            let shared = &pending.shared;
            let left = pending
                .deadline
                .saturating_duration_since(shared.now())
                .min(shared.config.connect_timeout);
            bounded(left, shared.manager.check(conn)).await
        }
        None => false,
    };
    let shared = Arc::clone(&pending.shared);
    let now = shared.now();
    let mut state = shared.lock();
    let next = match state.core.handle_checked(id, healthy, now) {
        Ok(Checked::Ready(id)) => match pending.checking.take() {
            Some((_, conn)) => {
                set_caller(&mut state.callers, id, caller);
                Ok(Step::Got(id, conn, shared.lease(&state, id)))
            }
            None => Ok(Step::Missing(id)),
        },
        Ok(Checked::Replaced(answer)) => {
            if let Some((id, conn)) = pending.checking.take() {
                shared.spawn_close(id, conn);
            }
            Ok(step(&shared, &mut state, answer, caller))
        }
        Err(e) => {
            // Unreachable by the core's contract (only this future ends a
            // check it started); drop the connection rather than lose it.
            tracing::error!(pool = %shared.name, error = %e, "check result refused");
            pending.waiter = None;
            pending.checking = None;
            Err(PoolError::Closed)
        }
    };
    shared.drive(&mut state, now);
    next
}

/// Whether `f` succeeded within `limit`; a check, ping or reset that takes
/// longer counts as failed, so a stuck server cannot hold an acquire or a
/// slot for ever.
async fn bounded<E>(limit: Duration, f: impl Future<Output = Result<(), E>>) -> bool {
    matches!(tokio::time::timeout(limit, f).await, Ok(Ok(())))
}

fn take<C>(slab: &mut [Option<C>], id: ConnId) -> Option<C> {
    slab.get_mut(id.index()).and_then(Option::take)
}

fn put<C>(slab: &mut Vec<Option<C>>, id: ConnId, conn: C) {
    let index = id.index();
    if slab.len() <= index {
        slab.resize_with(index + 1, || None);
    }
    slab[index] = Some(conn);
}

fn set_caller(
    callers: &mut Vec<Option<&'static Location<'static>>>,
    id: ConnId,
    caller: &'static Location<'static>,
) {
    let index = id.index();
    if callers.len() <= index {
        callers.resize(index + 1, None);
    }
    callers[index] = Some(caller);
}

fn missing<M: Manager>(shared: &Shared<M>, id: ConnId) -> PoolError {
    tracing::error!(pool = %shared.name, %id, "connection object missing from the pool");
    PoolError::Closed
}

/// A checked-out connection. Dereferences to the manager's connection and
/// gives it back to the pool on drop: closed and replaced when broken
/// ([`Pooled::mark_broken`] or [`Manager::is_broken`]), reset first when
/// [`Manager::needs_reset`] says so.
pub struct Pooled<M: Manager> {
    shared: Arc<Shared<M>>,
    id: ConnId,
    conn: Option<M::Connection>,
    broken: bool,
    lease: Lease,
}

impl<M: Manager> Pooled<M> {
    fn new(shared: Arc<Shared<M>>, id: ConnId, conn: M::Connection, lease: Lease) -> Self {
        Self {
            shared,
            id,
            conn: Some(conn),
            broken: false,
            lease,
        }
    }

    /// Marks the connection unusable: it is closed instead of going back to
    /// the pool. For managers and callers that saw it fail, or that give it
    /// up with work in flight.
    pub fn mark_broken(&mut self) {
        self.broken = true;
    }

    /// Whether [`Pooled::mark_broken`] was called.
    pub fn is_marked_broken(&self) -> bool {
        self.broken
    }

    /// The connection's id in the pool.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// The index of the endpoint it is connected to.
    pub fn endpoint_index(&self) -> usize {
        self.shared
            .lock()
            .core
            .endpoint_of(self.id)
            .map_or(0, |e| e.index())
    }

    /// The endpoint it is connected to.
    pub fn endpoint(&self) -> &M::Endpoint {
        &self.shared.endpoints[self.endpoint_index()]
    }
}

impl<M: Manager> Deref for Pooled<M> {
    type Target = M::Connection;

    fn deref(&self) -> &M::Connection {
        match &self.conn {
            Some(conn) => conn,
            // `conn` is only taken in `drop`.
            None => unreachable!("a guard holds its connection until dropped"),
        }
    }
}

impl<M: Manager> DerefMut for Pooled<M> {
    fn deref_mut(&mut self) -> &mut M::Connection {
        match &mut self.conn {
            Some(conn) => conn,
            None => unreachable!("a guard holds its connection until dropped"),
        }
    }
}

impl<M: Manager> fmt::Debug for Pooled<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pooled")
            .field("pool", &self.shared.name)
            .field("id", &self.id)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl<M: Manager> Drop for Pooled<M> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        let shared = &self.shared;
        let broken = self.broken || shared.manager.is_broken(&conn);
        if broken {
            shared.release(self.id, conn, true);
            return;
        }
        if shared.manager.needs_reset(&conn) {
            shared.spawn_reset(self.id, conn);
            return;
        }
        if let Err(conn) = shared.shelve(self.id, conn, self.lease) {
            shared.release(self.id, conn, false);
        }
    }
}

impl<M: Manager> Shared<M> {
    fn lock(&self) -> MutexGuard<'_, State<M::Connection>> {
        // A panic while holding the lock (a manager's `Display`, say)
        // leaves the bookkeeping consistent: every core call completes
        // before anything else runs.
        self.state.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The precise clock: deadlines, measured waits, timers.
    fn now(&self) -> Instant {
        self.clock.now()
    }

    /// The clock for stamps on the hot path (idle since, last alive, the
    /// lifetime and check decisions of an acquire served at once): the
    /// operating system's coarse monotonic clock, at most one kernel tick
    /// (1 to 4 ms) behind [`Shared::now`], at a fraction of its cost. The
    /// core never lets time go backwards, so a coarse reading after a
    /// precise one reads as the precise one.
    fn stamp(&self) -> Instant {
        match &self.coarse {
            Some(coarse) => coarse.now(),
            None => self.clock.now(),
        }
    }

    fn failure(&self, reason: AcquireFailure) -> PoolError {
        match reason {
            AcquireFailure::Closed => PoolError::Closed,
            AcquireFailure::Unreachable { .. } => PoolError::Timeout {
                reason,
                last_error: self.lock().last_error.clone(),
            },
            _ => PoolError::Timeout {
                reason,
                last_error: None,
            },
        }
    }

    fn release(self: &Arc<Self>, id: ConnId, conn: M::Connection, broken: bool) {
        let coarse = self.stamp();
        let mut state = self.lock();
        // A release that hands the connection to a waiter ends a measured
        // wait: precise clock. Otherwise it only stamps the idle time.
        let now = if state.core.waiters() == 0 {
            coarse
        } else {
            self.now()
        };
        match state.core.release(id, broken, now) {
            Ok(Disposition::Kept) => put(&mut state.slab, id, conn),
            Ok(Disposition::Close(reason)) => {
                tracing::debug!(pool = %self.name, %id, %reason, "closing connection");
                self.spawn_close(id, conn);
            }
            Err(e) => {
                tracing::error!(pool = %self.name, error = %e, "release refused");
            }
        }
        self.drive(&mut state, now);
    }

    /// Carries out every action the core has due, then makes sure the timer
    /// task wakes by the core's next deadline. Called with the lock held
    /// after every input.
    fn drive(self: &Arc<Self>, state: &mut State<M::Connection>, now: Instant) {
        loop {
            self.run_actions(state, now);
            if !self.seal_if_needed(state, now) {
                break;
            }
        }
        if let Some(at) = self.next_wake(state, now) {
            if state.timer_at.is_none_or(|current| at < current) {
                state.timer_at = Some(at);
                self.timer.notify_one();
            }
        }
    }

    /// When the timer task must run next: the core's deadline, and, while
    /// connections are out of the core (with callers or on the shelf, which
    /// the core counts as in use), one shelf period after `from`, so that
    /// shelved ones come back for their idle timeout, keepalive and
    /// lifetime at most a period late.
    fn next_wake(&self, state: &State<M::Connection>, from: Instant) -> Option<Instant> {
        let at = state.core.poll_timeout();
        match self.shelf_period {
            Some(period) if self.shelf.is_some() && state.core.remaining().in_use > 0 => {
                let shelf_at = from.saturating_add(period);
                Some(at.map_or(shelf_at, |at| at.min(shelf_at)))
            }
            _ => at,
        }
    }

    /// Seals the shelf while the core has waiters or is closing, and moves
    /// what is on it into the core, which hands it to the waiters (or
    /// closes it); unseals it otherwise. Whether anything moved (then the
    /// core has actions to run). Called with the lock held, so the seal
    /// follows the core's queue: a waiter is never left queued while a
    /// connection sits on the shelf, since a put either lands before the
    /// seal (and is moved here) or fails after it (and its caller releases
    /// through the core).
    fn seal_if_needed(self: &Arc<Self>, state: &mut State<M::Connection>, now: Instant) -> bool {
        let Some(shelf) = &self.shelf else {
            return false;
        };
        let shelf = &shelf.0;
        if state.core.waiters() == 0 && !state.core.is_closing() {
            if shelf.is_sealed() {
                shelf.unseal();
            }
            return false;
        }
        shelf.seal();
        let mut moved = false;
        while let Some((_, entry)) = shelf.take_sealed() {
            self.unshelve(state, entry, now);
            moved = true;
        }
        moved
    }

    /// What a connection handed out by the core takes with it.
    fn lease(&self, state: &State<M::Connection>, id: ConnId) -> Lease {
        Lease {
            expires_at: state.core.expires_at(id).unwrap_or(Instant::MAX),
            generation: self.generation.load(Ordering::Relaxed),
        }
    }

    /// Whether a connection taken off the shelf may be lent as it is: the
    /// core would hand it out without a check (not expired, not drained or
    /// shrunk away, alive recently enough), judged on a coarse stamp like
    /// an acquire served from the core's idle list.
    fn fit_to_lend(&self, entry: &Shelved<M::Connection>) -> bool {
        let now = self.stamp();
        entry.lease.generation == self.generation.load(Ordering::Acquire)
            && now < entry.lease.expires_at
            && self
                .config
                .pool
                .check_after_idle
                .is_none_or(|after| now.saturating_duration_since(entry.since) < after)
    }

    /// Counts one acquire served from the shelf.
    fn count_lend(&self) {
        self.lent[thread_shard_hint() % LENT_STRIPES]
            .0
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Adds the acquires served from the shelf into the core's counts.
    fn count_lent(&self, state: &mut State<M::Connection>) {
        let n: u64 = self
            .lent
            .iter()
            .map(|stripe| stripe.0.swap(0, Ordering::Relaxed))
            .sum();
        state.core.count_served_at_once(n);
    }

    /// Puts a connection given back by its caller on the shelf, or hands
    /// it back when the core must decide: the shelf is sealed or off, the
    /// connection expired, or the pool was drained or resized since it
    /// left the core.
    fn shelve(&self, id: ConnId, conn: M::Connection, lease: Lease) -> Result<(), M::Connection> {
        let Some(shelf) = &self.shelf else {
            return Err(conn);
        };
        let now = self.stamp();
        if now >= lease.expires_at || lease.generation != self.generation.load(Ordering::Acquire) {
            return Err(conn);
        }
        shelf
            .0
            .put(
                id.index(),
                Shelved {
                    id,
                    conn,
                    lease,
                    since: now,
                },
            )
            .map_err(|entry| entry.conn)
    }

    /// Gives a shelved connection back to the core, with its stamps.
    fn unshelve(
        self: &Arc<Self>,
        state: &mut State<M::Connection>,
        entry: Shelved<M::Connection>,
        now: Instant,
    ) {
        let Shelved {
            id, conn, since, ..
        } = entry;
        match state.core.release_idle(id, since, since, now) {
            Ok(Disposition::Kept) => put(&mut state.slab, id, conn),
            Ok(Disposition::Close(reason)) => {
                tracing::debug!(pool = %self.name, %id, %reason, "closing connection");
                self.spawn_close(id, conn);
            }
            Err(e) => tracing::error!(pool = %self.name, error = %e, "shelved connection refused"),
        }
    }

    /// Moves everything on the shelf into the core and counts the acquires
    /// it served, so the core's gauges and counters are exact; then drives.
    fn unshelve_all(self: &Arc<Self>, state: &mut State<M::Connection>, now: Instant) {
        self.count_lent(state);
        if let Some(shelf) = &self.shelf {
            while let Some((_, entry)) = shelf.0.take_sealed() {
                self.unshelve(state, entry, now);
            }
        }
        self.drive(state, now);
    }

    /// A drain or resize: connections out now (on the shelf or with a
    /// caller) go through the core before they are lent again.
    fn next_generation(self: &Arc<Self>, state: &mut State<M::Connection>, now: Instant) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Some(shelf) = &self.shelf {
            while let Some((_, entry)) = shelf.0.take_sealed() {
                self.unshelve(state, entry, now);
            }
        }
    }

    /// Drains `poll_action`, carrying out each action.
    fn run_actions(self: &Arc<Self>, state: &mut State<M::Connection>, now: Instant) {
        while let Some(action) = state.core.poll_action(now) {
            match action {
                Action::Open(permit) => self.spawn_open(permit),
                Action::Hand { waiter, conn: id } => {
                    let conn = take(&mut state.slab, id);
                    self.send(state, waiter, id, conn, Handoff::Ready);
                }
                Action::Check { waiter, conn: id } => {
                    let conn = take(&mut state.slab, id);
                    self.send(state, waiter, id, conn, Handoff::Check);
                }
                Action::Fail { waiter, reason } => {
                    if let Some(tx) = state.waiters.remove(&waiter) {
                        // A receiver already gone cancels through the core
                        // itself, which finds the waiter unknown.
                        let _ = tx.send(Handoff::Fail(reason));
                    }
                }
                Action::Close { conn: id, reason } => {
                    tracing::debug!(pool = %self.name, %id, %reason, "closing connection");
                    match take(&mut state.slab, id) {
                        Some(conn) => self.spawn_close(id, conn),
                        None => self.report_closed(state, id),
                    }
                }
                Action::Ping(id) => match take(&mut state.slab, id) {
                    Some(conn) => self.spawn_ping(id, conn),
                    None => {
                        let _ = state.core.handle_pinged(id, false, now);
                    }
                },
                Action::Leak {
                    conn: id,
                    checkout,
                    held,
                } => {
                    let caller = state.callers.get(id.index()).copied().flatten();
                    tracing::warn!(
                        pool = %self.name,
                        %id,
                        checkout,
                        held_ms = held.as_millis() as u64,
                        acquired_at = %caller.map_or_else(|| "unknown".to_owned(), |l| l.to_string()),
                        "connection checked out longer than the leak threshold"
                    );
                }
                Action::Closed(remaining) => {
                    tracing::info!(
                        pool = %self.name,
                        in_use = remaining.in_use,
                        opening = remaining.opening,
                        closing = remaining.closing,
                        "connection pool closed"
                    );
                    state.closed = Some(remaining);
                    // Waiters still queued were failed by the core; wake
                    // `close` callers.
                    self.closed.notify_waiters();
                }
            }
        }
    }

    /// Sends a handed connection to its waiter; if the waiter is already
    /// gone, its cancellation (under this same lock, later) finds the
    /// connection in its channel.
    fn send(
        self: &Arc<Self>,
        state: &mut State<M::Connection>,
        waiter: WaiterId,
        id: ConnId,
        conn: Option<M::Connection>,
        wrap: fn(ConnId, M::Connection) -> Handoff<M::Connection>,
    ) {
        let Some(conn) = conn else {
            tracing::error!(pool = %self.name, %id, "handed connection missing");
            return;
        };
        match state.waiters.remove(&waiter) {
            Some(tx) => {
                if let Err(Handoff::Ready(_, conn) | Handoff::Check(_, conn)) =
                    tx.send(wrap(id, conn))
                {
                    // The receiver was dropped without cancelling, which
                    // only a panic inside the acquire future can do: give
                    // the connection back through the core.
                    let now = self.now();
                    match state.core.cancel_waiter(waiter, now) {
                        Cancel::Returned(id) => put(&mut state.slab, id, conn),
                        Cancel::Close(id) => self.spawn_close(id, conn),
                        Cancel::Dequeued | Cancel::Unknown => {}
                    }
                }
            }
            None => {
                tracing::error!(pool = %self.name, %id, "waiter missing for handed connection");
                put(&mut state.slab, id, conn);
            }
        }
    }

    fn report_closed(&self, state: &mut State<M::Connection>, id: ConnId) {
        if let Err(e) = state.core.handle_closed(id) {
            tracing::error!(pool = %self.name, error = %e, "close report refused");
        }
    }

    fn spawn_open(self: &Arc<Self>, permit: OpenPermit) {
        let shared = Arc::clone(self);
        self.runtime.spawn(async move {
            let mut permit = OpenGuard {
                shared,
                permit: Some(permit),
            };
            let shared = Arc::clone(&permit.shared);
            let Some(index) = permit.permit.as_ref().map(|p| p.endpoint().index()) else {
                return;
            };
            let endpoint = &shared.endpoints[index];
            let result = tokio::time::timeout(
                shared.config.connect_timeout,
                shared.manager.connect(endpoint),
            )
            .await;
            let Some(p) = permit.permit.take() else {
                return;
            };
            let now = shared.now();
            let mut state = shared.lock();
            match result {
                Ok(Ok(conn)) => match state.core.handle_opened(p, now) {
                    Ok(id) => {
                        tracing::debug!(pool = %shared.name, %endpoint, %id, "connection opened");
                        put(&mut state.slab, id, conn);
                    }
                    Err(e) => {
                        tracing::error!(pool = %shared.name, error = %e, "open report refused");
                        drop(conn);
                    }
                },
                Ok(Err(e)) => {
                    let kind = shared.manager.classify(&e);
                    let at = p.endpoint();
                    state.last_error = Some(format!("{endpoint}: {e}"));
                    let _ = state.core.handle_open_failed(p, now, kind);
                    let breaker = state.core.breaker(at).map_or("unknown", breaker_name);
                    tracing::warn!(pool = %shared.name, %endpoint, error = %e, breaker, "connect failed");
                }
                Err(_) => {
                    let at = p.endpoint();
                    state.last_error = Some(format!(
                        "{endpoint}: connect timed out after {:?}",
                        shared.config.connect_timeout
                    ));
                    let _ = state.core.handle_open_failed(p, now, FailureKind::TimedOut);
                    let breaker = state.core.breaker(at).map_or("unknown", breaker_name);
                    tracing::warn!(pool = %shared.name, %endpoint, breaker, "connect timed out");
                }
            }
            shared.drive(&mut state, now);
        });
    }

    fn spawn_close(self: &Arc<Self>, id: ConnId, conn: M::Connection) {
        let shared = Arc::clone(self);
        self.runtime.spawn(async move {
            // A close that never ends would hold its slot for ever.
            let _ = tokio::time::timeout(shared.config.connect_timeout, shared.manager.close(conn))
                .await;
            let now = shared.now();
            let mut state = shared.lock();
            shared.report_closed(&mut state, id);
            shared.drive(&mut state, now);
        });
    }

    fn spawn_ping(self: &Arc<Self>, id: ConnId, mut conn: M::Connection) {
        let shared = Arc::clone(self);
        self.runtime.spawn(async move {
            let healthy = bounded(
                shared.config.connect_timeout,
                shared.manager.check(&mut conn),
            )
            .await;
            let now = shared.now();
            let mut state = shared.lock();
            match state.core.handle_pinged(id, healthy, now) {
                Ok(Disposition::Kept) => put(&mut state.slab, id, conn),
                Ok(Disposition::Close(_)) => shared.spawn_close(id, conn),
                Err(e) => tracing::error!(pool = %shared.name, error = %e, "ping report refused"),
            }
            shared.drive(&mut state, now);
        });
    }

    fn spawn_reset(self: &Arc<Self>, id: ConnId, mut conn: M::Connection) {
        let shared = Arc::clone(self);
        self.runtime.spawn(async move {
            // If this task is dropped mid-reset (runtime shutdown), the
            // connection is dropped with it and its slot stays checked out
            // until the pool goes: there is no runtime left to close it on.
            let ok = bounded(
                shared.config.connect_timeout,
                shared.manager.reset(&mut conn),
            )
            .await;
            let broken = !ok || shared.manager.is_broken(&conn);
            shared.release(id, conn, broken);
        });
    }
}

/// Gives an abandoned connect's permit back as cancelled, so a task
/// dropped mid-connect (runtime shutdown) frees its slot.
struct OpenGuard<M: Manager> {
    shared: Arc<Shared<M>>,
    permit: Option<OpenPermit>,
}

impl<M: Manager> Drop for OpenGuard<M> {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            let now = self.shared.now();
            let mut state = self.shared.lock();
            let _ = state
                .core
                .handle_open_failed(permit, now, FailureKind::Cancelled);
            self.shared.drive(&mut state, now);
        }
    }
}

/// Sleeps until the core's next deadline (or an earlier one announced by
/// an input), then drives the core. Holds the pool only while driving, so
/// a pool whose handles and guards are all gone is dropped and the task
/// ends.
async fn timer_task<M: Manager>(weak: Weak<Shared<M>>) {
    let (timer, clock) = match weak.upgrade() {
        Some(shared) => (Arc::clone(&shared.timer), shared.clock),
        None => return,
    };
    // When the timer task last put the shelf back in the core.
    let mut unshelved_at = Instant::ZERO;
    loop {
        let notified = timer.notified();
        let at = {
            let Some(shared) = weak.upgrade() else {
                return;
            };
            let now = shared.now();
            let mut state = shared.lock();
            if let Some(period) = shared.shelf_period
                && now >= unshelved_at.saturating_add(period)
            {
                unshelved_at = now;
                shared.unshelve_all(&mut state, now);
            }
            shared.run_actions(&mut state, now);
            if state.closed.is_some() {
                return;
            }
            let at = shared.next_wake(&state, unshelved_at);
            state.timer_at = at;
            at
        };
        match at {
            Some(at) => {
                tokio::select! {
                    () = clock.sleep_until(at) => {}
                    () = notified => {}
                }
            }
            None => notified.await,
        }
    }
}
