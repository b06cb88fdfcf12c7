//! An async object pool: [`AsyncObjectPool`] drives the sans-IO
//! [`PoolStore`] of `mechops-alloc` on tokio, with an async and fallible
//! create function, an optional reset (sync or async) on return, first
//! come first served waiters and an acquire timeout.
//!
//! The store decides (which idle object goes out, when to create, when the
//! maximum is reached, which idle objects leave after the idle timeout);
//! this module creates, waits, resets and drops. It is an object pool for
//! any `T`; the connection pools with endpoints, health checks and breakers
//! are `mechops_tokio::conn`.
//!
//! # Order
//!
//! Waiters are served first come, first served: an object handed back (or a
//! slot freed by a discard, a detach or a failed create) goes to the waiter
//! that has waited longest, never to an [`AsyncObjectPool::acquire`] that
//! starts later. An acquire queues behind existing waiters even when it
//! could have created an object. A waiter handed a free slot rather than an
//! object creates the object itself.
//!
//! # Cancellation
//!
//! [`AsyncObjectPool::acquire`] has two `.await`s, and dropping its future
//! at either (under `tokio::time::timeout`, in a `select!`, or by aborting
//! the task) leaks nothing:
//!
//! - **waiting in the queue**: the waiter is removed from the queue. If an
//!   object or a free slot had already been handed to it (the hand-over
//!   happens under the pool's lock, and the waiter had not run since), it
//!   goes to the next waiter, or, if none is left, the object goes idle and
//!   the slot is freed;
//! - **creating**: the create future is dropped and its slot is reported
//!   failed (counted in `create_failures`), then handed to the next waiter.
//!   Once the create future has finished, the object is registered with the
//!   store before any other `.await`, so a created object is never lost.
//!
//! [`Pooled::release`] and [`AsyncObjectPool::maintain`] say the same of
//! their own `.await`s.
//!
//! # Invariants
//!
//! - live objects (idle, handed out, being created) never exceed
//!   `max_size`: the store counts a slot from the permit to the object's
//!   return, discard or eviction, and this module drops a broken object
//!   before it reports the slot free;
//! - every create permit is reported exactly once, through a guard that
//!   reports it failed if its future is dropped;
//! - when a waiter is queued, no object is idle and no slot is free: every
//!   change that could hand one out serves the queue under the same lock;
//! - objects leave the pool (evicted, discarded, or whose reset panicked)
//!   and are dropped outside the pool's lock, so a `Drop` that takes time
//!   or touches the pool cannot stall or deadlock it; objects are never
//!   reset under the lock either.
//!
//! ```
//! use core::time::Duration;
//! use mechops_tokio::object_pool::{AcquireError, AsyncObjectPool};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let pool = AsyncObjectPool::builder(1, || async { Ok::<_, std::io::Error>(Vec::<u8>::new()) })
//!     .reset(|buf: &mut Vec<u8>| buf.clear())
//!     .acquire_timeout(Duration::from_millis(50))
//!     .build()
//!     .unwrap();
//! let mut buf = pool.acquire().await.unwrap();
//! buf.extend_from_slice(b"work");
//! // The only object is out: a second acquire times out and says why.
//! let err = pool.acquire().await.unwrap_err();
//! assert!(matches!(err, AcquireError::Exhausted { in_use: 1, waiters: 1, .. }));
//! drop(buf);
//! assert!(pool.acquire().await.unwrap().is_empty());
//! # }
//! ```

use core::fmt;
use core::future::Future;
use core::ops::{Deref, DerefMut};
use core::pin::Pin;
use core::time::Duration;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use mechops_alloc::pool::{
    Checkout, ConfigError, CreatePermit, Growth, PoolConfig, PoolStats, PoolStore,
};
use mechops_core::time::{Instant, MonotonicClock};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

use crate::clock::TokioClock;

type BoxFuture<R> = Pin<Box<dyn Future<Output = R> + Send + 'static>>;
type CreateHook<T, E> = dyn Fn() -> BoxFuture<Result<T, E>> + Send + Sync;

enum ResetHook<T> {
    Sync(Box<dyn Fn(&mut T) + Send + Sync>),
    Async(Box<dyn Fn(T) -> BoxFuture<Option<T>> + Send + Sync>),
}

/// Why [`AsyncObjectPool::acquire`] gave no object.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AcquireError<E> {
    /// The acquire timeout passed while waiting in the queue: every slot
    /// stayed taken.
    #[error(
        "no object within {timeout:?}: the pool is exhausted \
         ({in_use} of {max_size} in use, {waiters} waiting)"
    )]
    Exhausted {
        /// The acquire timeout.
        timeout: Duration,
        /// Objects handed out when the timeout passed.
        in_use: u64,
        /// The pool's maximum size.
        max_size: usize,
        /// Acquires waiting when the timeout passed, this one included.
        waiters: usize,
    },
    /// The acquire timeout passed while this acquire was creating an
    /// object; the creation was abandoned and its slot freed.
    #[error("no object within {timeout:?}: creating one had not finished")]
    CreateTimedOut {
        /// The acquire timeout.
        timeout: Duration,
    },
    /// The create function failed; its slot was freed.
    #[error("creating a pooled object failed: {0}")]
    Create(E),
}

/// What one [`AsyncObjectPool::maintain`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Maintenance {
    /// Idle objects evicted and dropped.
    pub evicted: usize,
    /// Objects created for stock (initial size, growth batch, minimum).
    pub created: usize,
    /// Stock creations that failed.
    pub create_failed: usize,
}

/// What a waiter is handed: an object, or a free slot to create one in.
enum Grant<T> {
    Object(T),
    Create(CreatePermit),
}

struct Waiter<T> {
    id: u64,
    tx: oneshot::Sender<Grant<T>>,
}

struct State<T> {
    store: PoolStore<T>,
    waiters: VecDeque<Waiter<T>>,
    next_waiter: u64,
}

impl<T> State<T> {
    /// Whether a checkout would answer `Exhausted` (asked without calling
    /// it, which would count an exhaustion in the statistics).
    fn exhausted(&self) -> bool {
        self.store.idle() == 0 && self.store.live() >= self.store.config().max_size
    }

    /// Serves the queue while objects or slots are free.
    fn dispatch(&mut self) {
        while !self.waiters.is_empty() && !self.exhausted() {
            let grant = match self.store.checkout() {
                Checkout::Idle(obj) => Grant::Object(obj),
                Checkout::Create(permit) => Grant::Create(permit),
                Checkout::Exhausted => return,
            };
            self.hand_over(grant);
        }
    }

    /// Gives `grant` to the oldest waiter still listening, or back to the
    /// store when none is.
    fn hand_over(&mut self, mut grant: Grant<T>) {
        while let Some(waiter) = self.waiters.pop_front() {
            match waiter.tx.send(grant) {
                Ok(()) => return,
                Err(back) => grant = back,
            }
        }
        match grant {
            Grant::Object(obj) => self.store.handle_returned(obj),
            Grant::Create(permit) => {
                // Issued by this store, so never foreign.
                let _ = self.store.handle_create_failed(permit);
            }
        }
    }
}

/// Where an acquire stands after its first look at the pool.
enum Entry<T> {
    Ready(T),
    Create(CreatePermit),
    Queued(u64, oneshot::Receiver<Grant<T>>),
}

/// What the guards need: the state and the reset hook, not the create
/// function (so guards are not generic over its error).
struct Core<T> {
    state: Mutex<State<T>>,
    reset: Option<ResetHook<T>>,
    /// Wakes the maintenance task: stock is wanted, or the pool is gone.
    maintenance: Notify,
}

impl<T> Core<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // The state is left consistent between statements, and no user code
        // runs under the lock: a poisoned lock holds nothing half-done.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks out at once if no one waits, or joins the queue.
    fn enter(&self) -> Entry<T> {
        let mut state = self.lock();
        if state.waiters.is_empty() {
            match state.store.checkout() {
                Checkout::Idle(obj) => return Entry::Ready(obj),
                Checkout::Create(permit) => return Entry::Create(permit),
                Checkout::Exhausted => {}
            }
        }
        let (tx, rx) = oneshot::channel();
        let id = state.next_waiter;
        state.next_waiter += 1;
        state.waiters.push_back(Waiter { id, tx });
        Entry::Queued(id, rx)
    }

    /// The error of a waiter whose timeout passed, while it is still queued.
    fn exhausted_error<E>(&self, timeout: Duration) -> AcquireError<E> {
        let state = self.lock();
        AcquireError::Exhausted {
            timeout,
            in_use: state.store.stats().in_use,
            max_size: state.store.config().max_size,
            waiters: state.waiters.len(),
        }
    }

    /// Takes back a checked-out object, already reset.
    fn give_back(&self, obj: T) {
        let mut state = self.lock();
        state.store.handle_returned(obj);
        state.dispatch();
    }

    /// Frees the slot of a checked-out object already dropped.
    fn discarded(&self) {
        let mut state = self.lock();
        state.store.handle_discarded();
        state.dispatch();
        drop(state);
        // The store may want the minimum refilled.
        self.maintenance.notify_one();
    }

    /// Reports a permit failed and serves the queue with its slot.
    fn create_failed(&self, permit: CreatePermit) {
        let mut state = self.lock();
        let _ = state.store.handle_create_failed(permit);
        state.dispatch();
    }
}

struct Inner<T, E> {
    core: Arc<Core<T>>,
    create: Box<CreateHook<T, E>>,
    clock: TokioClock,
    acquire_timeout: Option<Duration>,
}

impl<T, E> Drop for Inner<T, E> {
    fn drop(&mut self) {
        // The maintenance task sees the pool gone on its next wake-up.
        self.core.maintenance.notify_one();
    }
}

/// An async pool of `T`, created by a fallible async function; cloning
/// gives another handle to the same pool.
///
/// See the [module docs](self) for the order, the cancellation contract and
/// the invariants.
pub struct AsyncObjectPool<T, E> {
    inner: Arc<Inner<T, E>>,
}

impl<T, E> Clone for AsyncObjectPool<T, E> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T, E> fmt::Debug for AsyncObjectPool<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.core.lock();
        f.debug_struct("AsyncObjectPool")
            .field("stats", &state.store.stats())
            .field("opening", &state.store.opening())
            .field("waiters", &state.waiters.len())
            .finish_non_exhaustive()
    }
}

/// Builds an [`AsyncObjectPool`].
pub struct AsyncObjectPoolBuilder<T, E> {
    config: PoolConfig,
    create: Box<CreateHook<T, E>>,
    reset: Option<ResetHook<T>>,
    acquire_timeout: Option<Duration>,
    clock: Option<TokioClock>,
}

impl<T, E> fmt::Debug for AsyncObjectPoolBuilder<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncObjectPoolBuilder")
            .field("config", &self.config)
            .field("acquire_timeout", &self.acquire_timeout)
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static, E> AsyncObjectPoolBuilder<T, E> {
    /// Replaces the whole pool configuration.
    #[must_use]
    pub fn config(mut self, config: PoolConfig) -> Self {
        self.config = config;
        self
    }

    /// Objects created up front, by the first
    /// [`maintain`](AsyncObjectPool::maintain).
    #[must_use]
    pub fn initial_size(mut self, n: usize) -> Self {
        self.config.initial_size = n;
        self
    }

    /// Eviction keeps at least this many live objects, and maintenance
    /// refills to it after discards.
    #[must_use]
    pub fn min_size(mut self, n: usize) -> Self {
        self.config.min_size = n;
        self
    }

    /// The growth strategy on a miss: the acquire creates one object, and
    /// maintenance creates the rest of the batch as idle stock.
    #[must_use]
    pub fn growth(mut self, growth: Growth) -> Self {
        self.config.growth = growth;
        self
    }

    /// Idle objects not needed for this long are evicted by maintenance.
    #[must_use]
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.config.idle_timeout = Some(timeout);
        self
    }

    /// How long an acquire may wait and create before it gives up with an
    /// [`AcquireError`] saying why; without one, an acquire waits as long
    /// as it takes.
    #[must_use]
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = Some(timeout);
        self
    }

    /// Runs on every object handed back, outside the pool's lock, before it
    /// can be handed out again. If it panics, the object is dropped and its
    /// slot freed.
    #[must_use]
    pub fn reset(mut self, reset: impl Fn(&mut T) + Send + Sync + 'static) -> Self {
        self.reset = Some(ResetHook::Sync(Box::new(reset)));
        self
    }

    /// An async reset: it gets the object handed back and answers it, ready
    /// for reuse, or `None` to discard it. A guard dropped inside a tokio
    /// runtime spawns the reset on it; one dropped outside any runtime
    /// discards its object. [`Pooled::release`] runs it in place.
    #[must_use]
    pub fn reset_async<F, Fut>(mut self, reset: F) -> Self
    where
        F: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<T>> + Send + 'static,
    {
        self.reset = Some(ResetHook::Async(Box::new(move |obj| Box::pin(reset(obj)))));
        self
    }

    /// The clock of timeouts and maintenance; by default a
    /// [`TokioClock::new`] made at [`build`](Self::build).
    #[must_use]
    pub fn clock(mut self, clock: TokioClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Validates the configuration and builds the pool. Nothing is created
    /// yet: initial objects come with the first
    /// [`maintain`](AsyncObjectPool::maintain) (or the maintenance task).
    pub fn build(self) -> Result<AsyncObjectPool<T, E>, ConfigError> {
        let store = PoolStore::new(self.config, None)?;
        Ok(AsyncObjectPool {
            inner: Arc::new(Inner {
                core: Arc::new(Core {
                    state: Mutex::new(State {
                        store,
                        waiters: VecDeque::new(),
                        next_waiter: 0,
                    }),
                    reset: self.reset,
                    maintenance: Notify::new(),
                }),
                create: self.create,
                clock: self.clock.unwrap_or_default(),
                acquire_timeout: self.acquire_timeout,
            }),
        })
    }
}

/// Removes its waiter from the queue unless disarmed; a grant already sent
/// to it goes to the next waiter.
struct WaitGuard<'a, T> {
    core: &'a Core<T>,
    id: u64,
    rx: oneshot::Receiver<Grant<T>>,
    armed: bool,
}

impl<T> Drop for WaitGuard<'_, T> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut state = self.core.lock();
        if let Some(at) = state.waiters.iter().position(|w| w.id == self.id) {
            state.waiters.remove(at);
        } else if let Ok(grant) = self.rx.try_recv() {
            // Sent under the lock, which we hold: if the waiter is gone
            // from the queue, its grant has arrived.
            state.hand_over(grant);
        }
    }
}

/// Reports its permit failed unless disarmed.
struct PermitGuard<'a, T> {
    core: &'a Core<T>,
    permit: Option<CreatePermit>,
}

impl<T> Drop for PermitGuard<'_, T> {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            self.core.create_failed(permit);
        }
    }
}

/// Frees the slot of an object whose reset did not finish (panicked or was
/// dropped), unless disarmed.
struct DiscardOnDrop<T> {
    core: Option<Arc<Core<T>>>,
}

impl<T> DiscardOnDrop<T> {
    fn give_back(mut self, obj: T) {
        if let Some(core) = self.core.take() {
            core.give_back(obj);
        }
    }
}

impl<T> Drop for DiscardOnDrop<T> {
    fn drop(&mut self) {
        if let Some(core) = self.core.take() {
            core.discarded();
        }
    }
}

impl<T: Send + 'static, E> AsyncObjectPool<T, E> {
    /// Starts a builder for a pool of at most `max_size` objects made by
    /// `create`, with the rest of [`PoolConfig::new`]'s defaults.
    pub fn builder<F, Fut>(max_size: usize, create: F) -> AsyncObjectPoolBuilder<T, E>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        AsyncObjectPoolBuilder {
            config: PoolConfig::new(max_size),
            create: Box::new(move || Box::pin(create())),
            reset: None,
            acquire_timeout: None,
            clock: None,
        }
    }

    /// Hands out an object: an idle one, a new one from the create
    /// function, or the next one handed back, in first come, first served
    /// order, within the acquire timeout.
    ///
    /// Cancellation: see the [module docs](self#cancellation); dropping this
    /// future at any point leaks no object and no slot.
    pub async fn acquire(&self) -> Result<Pooled<T>, AcquireError<E>> {
        let inner = &*self.inner;
        let core = &*inner.core;
        let deadline = inner
            .acquire_timeout
            .map(|timeout| (timeout, inner.clock.now() + timeout));
        loop {
            let permit = match core.enter() {
                Entry::Ready(obj) => return Ok(Pooled::new(obj, &inner.core)),
                Entry::Create(permit) => permit,
                Entry::Queued(id, rx) => {
                    let mut wait = WaitGuard {
                        core,
                        id,
                        rx,
                        armed: true,
                    };
                    // Await 1: waiting in the queue. Dropped here, the guard
                    // removes the waiter or passes on its grant.
                    let received = match deadline {
                        Some((timeout, at)) => {
                            match inner.clock.timeout_at(at, &mut wait.rx).await {
                                Ok(received) => received,
                                Err(_) => return Err(core.exhausted_error(timeout)),
                            }
                        }
                        None => (&mut wait.rx).await,
                    };
                    wait.armed = false;
                    match received {
                        Ok(Grant::Object(obj)) => return Ok(Pooled::new(obj, &inner.core)),
                        Ok(Grant::Create(permit)) => permit,
                        // The sender is only dropped after a send, so a
                        // closed channel cannot be seen; queue again.
                        Err(_) => continue,
                    }
                }
            };
            // A miss may have asked for the rest of a growth batch.
            core.maintenance.notify_one();
            if let Some(obj) = self.create_in(permit, deadline).await? {
                return Ok(Pooled::new(obj, &inner.core));
            }
        }
    }

    /// Creates the object of a checkout permit; `None` if the store took
    /// it as idle stock instead (then the caller checks out again).
    async fn create_in(
        &self,
        permit: CreatePermit,
        deadline: Option<(Duration, Instant)>,
    ) -> Result<Option<T>, AcquireError<E>> {
        let inner = &*self.inner;
        let mut guard = PermitGuard {
            core: &inner.core,
            permit: Some(permit),
        };
        // Await 2: creating. Dropped here, the guard reports the permit
        // failed and serves the next waiter with the slot.
        let created = match deadline {
            Some((timeout, at)) => match inner.clock.timeout_at(at, (inner.create)()).await {
                Ok(created) => created,
                Err(_) => return Err(AcquireError::CreateTimedOut { timeout }),
            },
            None => (inner.create)().await,
        };
        // From here to the return there is no `.await`: the object is
        // registered before the future can be dropped.
        let obj = created.map_err(AcquireError::Create)?;
        let Some(permit) = guard.permit.take() else {
            return Ok(None);
        };
        let mut state = inner.core.lock();
        match state.store.handle_created(permit, obj) {
            Ok(Some(obj)) => Ok(Some(obj)),
            Ok(None) | Err(_) => {
                state.dispatch();
                Ok(None)
            }
        }
    }

    /// Runs maintenance now: drops the idle objects due for eviction at the
    /// clock's now (outside the lock), then creates the objects the store
    /// wants as idle stock (initial size, the rest of growth batches, the
    /// minimum after discards), handing them to waiters first.
    ///
    /// Cancellation: dropped while creating, the permit in progress is
    /// reported failed; evicted objects are already dropped, and created
    /// ones already in the pool.
    pub async fn maintain(&self) -> Maintenance {
        let inner = &*self.inner;
        let core = &*inner.core;
        let mut done = Maintenance::default();
        let now = inner.clock.now();
        loop {
            let evicted = core.lock().store.poll_evicted(now);
            match evicted {
                Some(obj) => {
                    drop(obj);
                    done.evicted += 1;
                }
                None => break,
            }
        }
        loop {
            let permit = core.lock().store.poll_create();
            let Some(permit) = permit else { break };
            let mut guard = PermitGuard {
                core,
                permit: Some(permit),
            };
            match (inner.create)().await {
                Ok(obj) => {
                    if let Some(permit) = guard.permit.take() {
                        let mut state = core.lock();
                        let handed = state.store.handle_created(permit, obj);
                        state.dispatch();
                        drop(state);
                        // A stock permit never hands its object out; drop
                        // anything handed back outside the lock.
                        drop(handed);
                    }
                    done.created += 1;
                }
                Err(_) => {
                    drop(guard);
                    done.create_failed += 1;
                }
            }
        }
        done
    }

    /// When [`maintain`](Self::maintain) next has eviction work, on the
    /// pool's clock: `None` without an idle timeout.
    pub fn next_maintenance(&self) -> Option<Instant> {
        self.inner.core.lock().store.poll_timeout()
    }

    /// Spawns the maintenance loop on the current tokio runtime: maintain,
    /// then sleep until [`next_maintenance`](Self::next_maintenance) or
    /// until stock is wanted (after a miss or a discard). The task holds no
    /// handle to the pool while it sleeps and ends once every handle is
    /// dropped; aborting it leaks nothing (see [`maintain`](Self::maintain)).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, as `tokio::spawn` does.
    pub fn spawn_maintenance(&self) -> JoinHandle<()>
    where
        E: 'static,
    {
        let weak: Weak<Inner<T, E>> = Arc::downgrade(&self.inner);
        let core = Arc::clone(&self.inner.core);
        let clock = self.inner.clock;
        tokio::spawn(async move {
            loop {
                let Some(inner) = weak.upgrade() else { return };
                let pool = Self { inner };
                pool.maintain().await;
                let next = pool.next_maintenance();
                drop(pool);
                match next {
                    Some(at) => {
                        tokio::select! {
                            () = clock.sleep_until(at) => {}
                            () = core.maintenance.notified() => {}
                        }
                    }
                    None => core.maintenance.notified().await,
                }
            }
        })
    }

    /// A snapshot of the store's statistics.
    pub fn stats(&self) -> PoolStats {
        self.inner.core.lock().store.stats()
    }

    /// Acquires waiting in the queue now.
    pub fn waiters(&self) -> usize {
        self.inner.core.lock().waiters.len()
    }

    /// Objects being created now (acquires and maintenance).
    pub fn opening(&self) -> usize {
        self.inner.core.lock().store.opening()
    }

    /// The validated configuration.
    pub fn config(&self) -> PoolConfig {
        *self.inner.core.lock().store.config()
    }
}

/// An object checked out of an [`AsyncObjectPool`]; dropping it hands the
/// object back (reset first).
pub struct Pooled<T: Send + 'static> {
    obj: Option<T>,
    core: Arc<Core<T>>,
}

impl<T: Send + 'static> Pooled<T> {
    fn new(obj: T, core: &Arc<Core<T>>) -> Self {
        Self {
            obj: Some(obj),
            core: Arc::clone(core),
        }
    }

    /// Drops the object as broken: its slot frees, and the next waiter (or
    /// maintenance, to keep the minimum) creates a replacement.
    pub fn discard(mut self) {
        drop(self.obj.take());
        self.core.discarded();
    }

    /// Keeps the object for good: its slot frees for the next waiter.
    pub fn detach(mut self) -> T {
        let obj = self.obj.take();
        let mut state = self.core.lock();
        state.store.handle_detached();
        state.dispatch();
        drop(state);
        // `obj` is always `Some` until `discard`, `detach`, `release` or
        // `drop` take it, and each consumes the guard.
        obj.unwrap_or_else(|| unreachable!("a live guard holds its object"))
    }

    /// Hands the object back after running the reset in place (the async
    /// one included) rather than on a spawned task.
    ///
    /// Cancellation: dropped while an async reset runs, the object (owned
    /// by the reset future) is dropped and its slot freed.
    pub async fn release(mut self) {
        let Some(obj) = self.obj.take() else { return };
        reset_and_return(Arc::clone(&self.core), obj).await;
    }
}

/// Resets `obj` with the pool's hook and hands it back, or frees its slot
/// if the reset panics, discards it or is dropped.
async fn reset_and_return<T>(core: Arc<Core<T>>, obj: T) {
    let slot = DiscardOnDrop {
        core: Some(Arc::clone(&core)),
    };
    // Declared after `slot`, so a panicking reset drops the object before
    // the slot is reported free.
    let mut obj = obj;
    match &core.reset {
        None => slot.give_back(obj),
        Some(ResetHook::Sync(reset)) => {
            reset(&mut obj);
            slot.give_back(obj);
        }
        Some(ResetHook::Async(reset)) => {
            if let Some(obj) = reset(obj).await {
                slot.give_back(obj);
            }
        }
    }
}

impl<T: Send + 'static> Deref for Pooled<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // See `detach`: only consuming methods take the object.
        self.obj
            .as_ref()
            .unwrap_or_else(|| unreachable!("a live guard holds its object"))
    }
}

impl<T: Send + 'static> DerefMut for Pooled<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.obj
            .as_mut()
            .unwrap_or_else(|| unreachable!("a live guard holds its object"))
    }
}

impl<T: fmt::Debug + Send + 'static> fmt::Debug for Pooled<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Pooled").field(&self.obj).finish()
    }
}

impl<T: Send + 'static> Drop for Pooled<T> {
    fn drop(&mut self) {
        let Some(obj) = self.obj.take() else {
            return;
        };
        match &self.core.reset {
            None => self.core.give_back(obj),
            Some(ResetHook::Sync(reset)) => {
                let slot = DiscardOnDrop {
                    core: Some(Arc::clone(&self.core)),
                };
                // After `slot`: on a panic the object drops first.
                let mut obj = obj;
                reset(&mut obj);
                slot.give_back(obj);
            }
            Some(ResetHook::Async(_)) => match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    // Outside any lock, on its own task: a slow reset
                    // delays no one but the next waiter.
                    drop(runtime.spawn(reset_and_return(Arc::clone(&self.core), obj)));
                }
                Err(_) => {
                    drop(obj);
                    self.core.discarded();
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use core::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Counts the live objects of a test and the most ever alive at once.
    #[derive(Debug, Default)]
    struct Census {
        live: AtomicUsize,
        peak: AtomicUsize,
        made: AtomicUsize,
        /// The pool whose lock drops are checked against, once watched.
        probe: Mutex<Option<Weak<Core<Obj>>>>,
        /// Objects dropped while that lock was held.
        dropped_locked: AtomicUsize,
    }

    impl Census {
        /// Checks from now on that no object is dropped under `pool`'s lock.
        fn watch(&self, pool: &AsyncObjectPool<Obj, Refused>) {
            *self.probe.lock().unwrap() = Some(Arc::downgrade(&pool.inner.core));
        }
    }

    /// A pooled object that reports its life to a census.
    #[derive(Debug)]
    struct Obj {
        serial: usize,
        dirty: bool,
        census: Arc<Census>,
    }

    impl Obj {
        fn new(census: &Arc<Census>) -> Self {
            let live = census.live.fetch_add(1, Ordering::SeqCst) + 1;
            census.peak.fetch_max(live, Ordering::SeqCst);
            Self {
                serial: census.made.fetch_add(1, Ordering::SeqCst),
                dirty: false,
                census: Arc::clone(census),
            }
        }
    }

    impl Drop for Obj {
        fn drop(&mut self) {
            self.census.live.fetch_sub(1, Ordering::SeqCst);
            let core = self
                .census
                .probe
                .lock()
                .unwrap()
                .as_ref()
                .and_then(Weak::upgrade);
            // Tests run on one thread: the lock is busy only if this very
            // drop happens under it.
            if let Some(core) = core
                && let Err(std::sync::TryLockError::WouldBlock) = core.state.try_lock()
            {
                self.census.dropped_locked.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    #[derive(Debug, PartialEq, Eq)]
    struct Refused;

    impl fmt::Display for Refused {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("refused")
        }
    }

    /// A pool whose create takes `delay` of tokio time (none if zero).
    fn pool(max: usize, delay: Duration) -> (AsyncObjectPoolBuilder<Obj, Refused>, Arc<Census>) {
        let census = Arc::new(Census::default());
        let c = Arc::clone(&census);
        let builder = AsyncObjectPool::builder(max, move || {
            let c = Arc::clone(&c);
            async move {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                Ok(Obj::new(&c))
            }
        })
        .reset(|o: &mut Obj| o.dirty = false);
        (builder, census)
    }

    /// The identities of the statistics, nothing in flight, and the live
    /// objects the census counts are the pool's.
    fn assert_settled(pool: &AsyncObjectPool<Obj, Refused>, census: &Census) {
        let st = pool.stats();
        assert_eq!(st.in_use, 0, "{st:?}");
        assert_eq!((pool.opening(), pool.waiters()), (0, 0), "{st:?}");
        assert_eq!(
            st.created,
            st.idle + st.shrunk + st.detached + st.discarded,
            "{st:?}"
        );
        assert_eq!(st.acquired, st.hits + st.misses, "{st:?}");
        assert_eq!(census.live.load(Ordering::SeqCst) as u64, st.idle, "{st:?}");
        assert!(census.peak.load(Ordering::SeqCst) <= pool.config().max_size);
        assert_eq!(census.dropped_locked.load(Ordering::SeqCst), 0);
    }

    /// Awaits `fut`, failing the test if it would hang (an hour of paused
    /// time passes at once when every task is idle).
    async fn within<F: Future>(fut: F) -> F::Output {
        tokio::time::timeout(Duration::from_secs(3600), fut)
            .await
            .expect("the pool stalled: a waiter was never served")
    }

    /// Starts an acquire on its own task and lets it reach the queue (or
    /// its create); the task answers the serial of what it got.
    async fn spawn_acquire(
        pool: &AsyncObjectPool<Obj, Refused>,
    ) -> JoinHandle<Result<usize, AcquireError<Refused>>> {
        let pool = pool.clone();
        let task = tokio::spawn(async move { pool.acquire().await.map(|o| o.serial) });
        settle().await;
        task
    }

    /// Lets every ready task run (paused time does not move).
    async fn settle() {
        for _ in 0..8 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn reuses_and_resets_returned_objects() {
        let (b, census) = pool(2, Duration::ZERO);
        let pool = b.build().unwrap();
        let mut a = pool.acquire().await.unwrap();
        a.dirty = true;
        let serial = a.serial;
        drop(a);
        let again = pool.acquire().await.unwrap();
        assert_eq!((again.serial, again.dirty), (serial, false));
        drop(again);
        let st = pool.stats();
        assert_eq!((st.created, st.hits, st.misses, st.idle), (1, 1, 1, 1));
        assert_settled(&pool, &census);
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_are_served_first_come_first_served() {
        let (b, census) = pool(1, Duration::ZERO);
        let pool = b.build().unwrap();
        let held = pool.acquire().await.unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for n in 0..3 {
            let (pool, tx) = (pool.clone(), tx.clone());
            tokio::spawn(async move {
                let obj = pool.acquire().await.unwrap();
                tx.send(n).unwrap();
                // Hold it long enough for a latecomer to try to jump ahead.
                tokio::time::sleep(Duration::from_millis(10)).await;
                drop(obj);
            });
            settle().await;
        }
        assert_eq!(pool.waiters(), 3);
        drop(held);
        // A latecomer queues behind the three even though an object was
        // just handed back.
        let late = within(pool.acquire()).await.unwrap();
        drop(late);
        drop(tx);
        let mut order = Vec::new();
        while let Some(n) = rx.recv().await {
            order.push(n);
        }
        assert_eq!(order, [0, 1, 2]);
        assert_eq!(pool.stats().created, 1);
        assert_settled(&pool, &census);
    }

    #[tokio::test(start_paused = true)]
    async fn timeout_while_exhausted_says_why_and_leaves_the_queue() {
        let (b, census) = pool(2, Duration::ZERO);
        let pool = b.acquire_timeout(Duration::from_secs(1)).build().unwrap();
        let a = pool.acquire().await.unwrap();
        let c = pool.acquire().await.unwrap();
        let err = pool.acquire().await.unwrap_err();
        assert!(
            matches!(
                err,
                AcquireError::Exhausted {
                    in_use: 2,
                    max_size: 2,
                    waiters: 1,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "no object within 1s: the pool is exhausted (2 of 2 in use, 1 waiting)"
        );
        assert_eq!(pool.waiters(), 0);
        drop((a, c));
        assert_settled(&pool, &census);
    }

    #[tokio::test(start_paused = true)]
    async fn a_create_error_is_returned_and_frees_its_slot() {
        let fail = Arc::new(AtomicUsize::new(1));
        let f = Arc::clone(&fail);
        let census = Arc::new(Census::default());
        let c = Arc::clone(&census);
        let pool = AsyncObjectPool::builder(1, move || {
            let (f, c) = (Arc::clone(&f), Arc::clone(&c));
            async move {
                if f.fetch_sub(1, Ordering::SeqCst) > 0 {
                    Err(Refused)
                } else {
                    Ok(Obj::new(&c))
                }
            }
        })
        .build()
        .unwrap();
        let err = pool.acquire().await.unwrap_err();
        assert!(matches!(err, AcquireError::Create(Refused)));
        assert_eq!(err.to_string(), "creating a pooled object failed: refused");
        assert_eq!((pool.opening(), pool.stats().create_failures), (0, 1));
        drop(pool.acquire().await.unwrap());
        assert_settled(&pool, &census);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_create_times_out_and_frees_its_slot() {
        let (b, census) = pool(1, Duration::from_secs(10));
        let pool = b.acquire_timeout(Duration::from_secs(1)).build().unwrap();
        let err = pool.acquire().await.unwrap_err();
        assert!(
            matches!(err, AcquireError::CreateTimedOut { .. }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "no object within 1s: creating one had not finished"
        );
        assert_eq!((pool.opening(), pool.stats().create_failures), (0, 1));
        assert_eq!(census.made.load(Ordering::SeqCst), 0);
        assert_settled(&pool, &census);
    }

    #[tokio::test(start_paused = true)]
    async fn aborted_while_queued_the_waiter_is_removed() {
        let (b, census) = pool(1, Duration::ZERO);
        let pool = b.build().unwrap();
        let held = pool.acquire().await.unwrap();
        let task = spawn_acquire(&pool).await;
        assert_eq!(pool.waiters(), 1);
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        assert_eq!(pool.waiters(), 0);
        // Also through a timeout around the whole acquire.
        let r = tokio::time::timeout(Duration::from_secs(1), pool.acquire()).await;
        assert!(r.is_err());
        assert_eq!(pool.waiters(), 0);
        drop(held);
        assert_eq!(pool.stats().idle, 1, "the object went idle, not to a ghost");
        assert_settled(&pool, &census);
    }

    #[tokio::test(start_paused = true)]
    async fn an_object_handed_to_an_aborted_waiter_goes_to_the_next() {
        let (b, census) = pool(1, Duration::ZERO);
        let pool = b.build().unwrap();
        let held = pool.acquire().await.unwrap();
        let serial = held.serial;
        let first = spawn_acquire(&pool).await;
        let second = spawn_acquire(&pool).await;
        assert_eq!(pool.waiters(), 2);
        // The object goes to `first` under the lock; `first` is aborted
        // before it runs to take it.
        drop(held);
        assert_eq!(pool.waiters(), 1);
        first.abort();
        assert!(first.await.unwrap_err().is_cancelled());
        assert_eq!(within(second).await.unwrap().unwrap(), serial);
        assert_eq!(pool.stats().created, 1);
        assert_settled(&pool, &census);
    }

    #[tokio::test(start_paused = true)]
    async fn an_object_handed_to_the_last_aborted_waiter_goes_idle() {
        let (b, census) = pool(1, Duration::ZERO);
        let pool = b.build().unwrap();
        let held = pool.acquire().await.unwrap();
        let waiter = spawn_acquire(&pool).await;
        drop(held);
        waiter.abort();
        assert!(waiter.await.unwrap_err().is_cancelled());
        assert_eq!(pool.stats().idle, 1);
        assert_settled(&pool, &census);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slot_handed_to_an_aborted_waiter_goes_to_the_next() {
        let (b, census) = pool(1, Duration::ZERO);
        let pool = b.build().unwrap();
        let held = pool.acquire().await.unwrap();
        let first = spawn_acquire(&pool).await;
        let second = spawn_acquire(&pool).await;
        // A discard frees the slot: `first` is handed a permit, then
        // aborted before it can create.
        held.discard();
        first.abort();
        assert!(first.await.unwrap_err().is_cancelled());
        let serial = within(second).await.unwrap().unwrap();
        assert_eq!(serial, 1, "the second object made");
        let st = pool.stats();
        assert_eq!((st.created, st.discarded, st.create_failures), (2, 1, 0));
        assert_settled(&pool, &census);
    }

    #[tokio::test(start_paused = true)]
    async fn aborted_while_creating_the_slot_goes_to_the_next_waiter() {
        let (b, census) = pool(1, Duration::from_secs(10));
        let pool = b.build().unwrap();
        let creating = spawn_acquire(&pool).await;
        assert_eq!(pool.opening(), 1);
        let waiting = spawn_acquire(&pool).await;
        assert_eq!(pool.waiters(), 1);
        tokio::time::advance(Duration::from_secs(5)).await;
        creating.abort();
        assert!(creating.await.unwrap_err().is_cancelled());
        // The waiter got the slot and creates in it.
        assert_eq!(pool.waiters(), 0);
        assert_eq!(within(waiting).await.unwrap().unwrap(), 0);
        let st = pool.stats();
        assert_eq!((st.created, st.create_failures), (1, 1));
        assert_settled(&pool, &census);
    }

    #[tokio::test(start_paused = true)]
    async fn a_timeout_around_a_create_frees_its_slot() {
        let (b, census) = pool(1, Duration::from_secs(10));
        let pool = b.build().unwrap();
        let r = tokio::time::timeout(Duration::from_secs(3), pool.acquire()).await;
        assert!(r.is_err());
        assert_eq!((pool.opening(), pool.stats().create_failures), (0, 1));
        assert_eq!(census.made.load(Ordering::SeqCst), 0);
        assert_settled(&pool, &census);
    }

    #[tokio::test(start_paused = true)]
    async fn detach_and_discard_free_their_slots() {
        let (b, census) = pool(1, Duration::ZERO);
        let pool = b.build().unwrap();
        let kept = pool.acquire().await.unwrap().detach();
        assert_eq!(pool.stats().in_use, 0, "the slot is free");
        // Kept for good, it no longer counts against the maximum; dropped
        // here so the census's peak stays the pool's.
        drop(kept);
        pool.acquire().await.unwrap().discard();
        assert_eq!(census.live.load(Ordering::SeqCst), 0);
        let st = pool.stats();
        assert_eq!((st.created, st.detached, st.discarded), (2, 1, 1));
        assert_settled(&pool, &census);
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_reset_drops_the_object_and_frees_its_slot() {
        let (b, census) = pool(1, Duration::ZERO);
        let pool = b
            .reset(|_: &mut Obj| panic!("reset failed"))
            .build()
            .unwrap();
        let obj = pool.acquire().await.unwrap();
        let r = std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| drop(obj)));
        assert!(r.is_err());
        assert_eq!(pool.stats().discarded, 1);
        assert_settled(&pool, &census);
    }

    #[tokio::test(start_paused = true)]
    async fn async_reset_runs_before_reuse_and_can_discard() {
        let (b, census) = pool(1, Duration::ZERO);
        let pool = b
            .reset_async(|mut o: Obj| async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if o.serial == 0 {
                    o.dirty = false;
                    Some(o)
                } else {
                    None
                }
            })
            .build()
            .unwrap();
        let mut a = pool.acquire().await.unwrap();
        a.dirty = true;
        drop(a);
        // The reset runs on its own task; the next acquire waits for it.
        assert_eq!(pool.stats().in_use, 1);
        let again = pool.acquire().await.unwrap();
        assert_eq!((again.serial, again.dirty), (0, false));
        again.discard();
        // Object 1 is refused by the reset: dropped, slot freed.
        pool.acquire().await.unwrap().release().await;
        assert_eq!(pool.stats().discarded, 2);
        assert_settled(&pool, &census);
    }

    #[tokio::test(start_paused = true)]
    async fn release_dropped_mid_reset_frees_the_slot() {
        let (b, census) = pool(1, Duration::ZERO);
        let pool = b
            .reset_async(|o: Obj| async move {
                tokio::time::sleep(Duration::from_secs(10)).await;
                Some(o)
            })
            .build()
            .unwrap();
        let obj = pool.acquire().await.unwrap();
        let r = tokio::time::timeout(Duration::from_secs(1), obj.release()).await;
        assert!(r.is_err());
        assert_eq!(pool.stats().discarded, 1);
        assert_settled(&pool, &census);
    }

    #[test]
    fn async_reset_outside_a_runtime_discards() {
        let (b, census) = pool(1, Duration::ZERO);
        let pool = b
            .reset_async(|o: Obj| async move { Some(o) })
            .build()
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let obj = rt.block_on(pool.acquire()).unwrap();
        drop(obj);
        assert_eq!(pool.stats().discarded, 1);
        assert_settled(&pool, &census);
    }

    #[tokio::test(start_paused = true)]
    async fn maintenance_creates_stock_and_evicts_outside_the_lock() {
        let (b, census) = pool(8, Duration::ZERO);
        let pool = b
            .initial_size(4)
            .min_size(1)
            .idle_timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        census.watch(&pool);
        let task = pool.spawn_maintenance();
        settle().await;
        assert_eq!(pool.stats().idle, 4);
        assert_eq!(
            pool.next_maintenance(),
            Some(Instant::from_secs(10)),
            "the interval started at the first maintenance"
        );
        // The first interval began before the stock was made, so its
        // low-water mark is zero: nothing leaves.
        tokio::time::advance(Duration::from_secs(10)).await;
        settle().await;
        assert_eq!(pool.stats().idle, 4);
        assert_eq!(pool.next_maintenance(), Some(Instant::from_secs(20)));
        // Idle through the whole second interval: all but the minimum go.
        tokio::time::advance(Duration::from_secs(10)).await;
        settle().await;
        let st = pool.stats();
        assert_eq!((st.idle, st.shrunk), (1, 3), "down to the minimum");
        assert_eq!(census.live.load(Ordering::SeqCst), 1);
        // A discard below the minimum wakes maintenance to refill it.
        pool.acquire().await.unwrap().discard();
        settle().await;
        assert_eq!(pool.stats().idle, 1);
        assert_settled(&pool, &census);
        drop(pool);
        settle().await;
        assert!(task.is_finished(), "the task ends with the pool");
    }

    #[tokio::test(start_paused = true)]
    async fn on_demand_maintenance_reports_its_work() {
        let (b, census) = pool(4, Duration::ZERO);
        let pool = b
            .initial_size(2)
            .growth(Growth::Step(3))
            .idle_timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        census.watch(&pool);
        let done = pool.maintain().await;
        assert_eq!((done.created, done.evicted), (2, 0));
        let held: Vec<_> = [pool.acquire().await.unwrap(), pool.acquire().await.unwrap()]
            .into_iter()
            .collect();
        // A miss creates one and asks for the rest of its batch (two more,
        // capped by the maximum to one).
        let third = pool.acquire().await.unwrap();
        assert_eq!(pool.maintain().await.created, 1);
        drop((held, third));
        // The first interval saw the pool empty; the second, all four idle.
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(pool.maintain().await.evicted, 0);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(pool.maintain().await.evicted, 4);
        assert_eq!(census.live.load(Ordering::SeqCst), 0);
        assert_settled(&pool, &census);
    }

    /// SplitMix64: a seeded stand-in for randomness, enough to vary a test.
    fn mix(n: u64) -> u64 {
        let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A pool of `max` whose creates take 0-3 ms and fail one time in eight.
    fn flaky_pool(max: usize) -> (AsyncObjectPoolBuilder<Obj, Refused>, Arc<Census>) {
        let census = Arc::new(Census::default());
        let c = Arc::clone(&census);
        let draws = Arc::new(AtomicUsize::new(0));
        let builder = AsyncObjectPool::builder(max, move || {
            let c = Arc::clone(&c);
            let r = mix(draws.fetch_add(1, Ordering::SeqCst) as u64);
            async move {
                tokio::time::sleep(Duration::from_millis(r % 4)).await;
                if (r >> 8) % 8 == 0 {
                    Err(Refused)
                } else {
                    Ok(Obj::new(&c))
                }
            }
        })
        .reset(|o: &mut Obj| o.dirty = false);
        (builder, census)
    }

    /// One client: acquires with or without its own timeout, holds, and
    /// gives back, discards or detaches at random.
    async fn client(pool: AsyncObjectPool<Obj, Refused>, seed: u64, rounds: u64) {
        for round in 0..rounds {
            let r = mix(seed.wrapping_mul(1_000_003).wrapping_add(round));
            let acquired = if r % 3 == 0 {
                match tokio::time::timeout(Duration::from_millis(r % 5), pool.acquire()).await {
                    Ok(got) => got,
                    Err(_) => continue,
                }
            } else {
                pool.acquire().await
            };
            let Ok(mut obj) = acquired else { continue };
            assert!(!obj.dirty, "handed out without its reset");
            obj.dirty = true;
            tokio::time::sleep(Duration::from_millis((r >> 8) % 3)).await;
            match (r >> 16) % 16 {
                0 => obj.discard(),
                1 => drop(obj.detach()),
                2 => obj.release().await,
                _ => drop(obj),
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn stress_random_cancellation_leaks_no_slot() {
        const MAX: usize = 5;
        let (b, census) = flaky_pool(MAX);
        let pool = b
            .min_size(1)
            .idle_timeout(Duration::from_millis(7))
            .acquire_timeout(Duration::from_millis(6))
            .build()
            .unwrap();
        census.watch(&pool);
        let maintenance = pool.spawn_maintenance();
        let mut tasks: Vec<_> = (0..200u64)
            .map(|seed| tokio::spawn(client(pool.clone(), seed, 40)))
            .collect();
        // Abort a task every millisecond or so, wherever it stands.
        let mut aborted = 0;
        for step in 0..400u64 {
            tokio::time::sleep(Duration::from_micros(300 + mix(step) % 1_000)).await;
            let victim = (mix(step ^ 0xABCD) % tasks.len() as u64) as usize;
            if !tasks[victim].is_finished() {
                tasks[victim].abort();
                aborted += 1;
            }
            // Replace it so the pool stays under pressure.
            if step % 2 == 0 {
                tasks[victim] = tokio::spawn(client(pool.clone(), 1_000 + step, 20));
            }
        }
        for task in tasks {
            let _ = within(task).await;
        }
        // A quiet spell: maintenance evicts down to the minimum.
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(pool.stats().idle, 1, "{:?}", pool.stats());
        maintenance.abort();
        let _ = maintenance.await;
        assert!(aborted > 50, "the test aborted tasks ({aborted})");
        let st = pool.stats();
        assert!(st.acquired > 1_000, "{st:?}");
        assert!(st.create_failures > 0 && st.discarded > 0, "{st:?}");
        assert!(st.shrunk > 0 && st.detached > 0, "{st:?}");
        assert_settled(&pool, &census);
        assert!(st.live() <= MAX as u64);
    }

    #[test]
    fn stress_on_threads_never_exceeds_the_maximum() {
        const MAX: usize = 3;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_time()
            .build()
            .unwrap();
        let (b, census) = flaky_pool(MAX);
        let pool = b.build().unwrap();
        rt.block_on(async {
            let tasks: Vec<_> = (0..64u64)
                .map(|seed| {
                    let pool = pool.clone();
                    tokio::spawn(async move {
                        for round in 0..50u64 {
                            let r = mix(seed * 977 + round);
                            let got = tokio::time::timeout(
                                Duration::from_micros(r % 2_000),
                                pool.acquire(),
                            )
                            .await;
                            if let Ok(Ok(obj)) = got {
                                tokio::task::yield_now().await;
                                if r % 8 == 0 {
                                    obj.discard();
                                }
                            }
                        }
                    })
                })
                .collect();
            for (n, task) in tasks.iter().enumerate() {
                if n % 5 == 0 {
                    task.abort();
                }
            }
            for task in tasks {
                let _ = task.await;
            }
        });
        assert_settled(&pool, &census);
        assert!(census.peak.load(Ordering::SeqCst) <= MAX);
        assert!(pool.stats().acquired > 0);
    }
}
