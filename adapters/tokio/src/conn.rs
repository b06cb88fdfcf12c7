//! Async connection pools: [`ConnectionPool`], a thin driver of the sans-IO
//! [`PoolCore`](mechops_alloc::conn::PoolCore) over a [`Manager`] that
//! connects, checks, resets and closes.
//!
//! Named "connection pool" so it is not confused with the object pools of
//! `mechops-core` and `mechops-alloc`.
//!
//! # How it runs
//!
//! Every decision (which endpoint, when to open, check, ping, reap or fail
//! a waiter, what a breaker does) is the core's. The pool keeps the core
//! behind a `std::sync::Mutex` held only for one bookkeeping call and the
//! draining of [`poll_action`](mechops_alloc::conn::PoolCore::poll_action)
//! that follows it; the I/O runs outside the lock:
//!
//! - idle connection objects live in a slab indexed by
//!   [`ConnId::index`](mechops_alloc::conn::ConnId::index); a checked-out
//!   one lives in the caller's [`Pooled`] guard;
//! - the shelf: while no caller waits and the pool is not closing, a
//!   released connection goes on a lock-free stack
//!   ([`Shelf`](mechops_core::pool::shelf::Shelf)) instead of through the
//!   lock, and `acquire` takes it from there, so an acquire and release
//!   that find a connection ready touch neither the lock nor the core. The
//!   core counts a shelved connection as checked out. A connection comes
//!   off the shelf as it is only if the core would hand it out without a
//!   check: not expired, not due for a checkout check, not from before a
//!   `drain` or `resize` (judged on the coarse clock, like an acquire
//!   served from the core's idle list); otherwise it goes back to the core,
//!   which decides. The first waiter to queue seals the shelf under the
//!   lock and moves what is on it into the core, which hands it over; a
//!   release that finds the shelf sealed goes through the core, so waiters
//!   keep their order and never wait while a connection sits shelved (the
//!   seal and every put are compare-and-swaps on one word: a put lands
//!   before the seal, and is moved, or fails after it). `close` seals it
//!   for good. Acquires served from the shelf are counted in per-thread
//!   counters that `metrics` and `wait_histogram` add into the core (as
//!   zero waits), after moving the shelf into the core, so the gauges and
//!   counters they report are exact. The timer task moves the shelf back
//!   into the core at least every quarter of the shortest idle timeout,
//!   keepalive or lifetime (between 10 ms and 1 s) while connections are
//!   out, so those fire at most that period late for a shelved connection.
//!   A connection given back at the moment a `drain` or `resize` runs can
//!   land on the shelf with its old generation; it is closed when the next
//!   acquire finds it or at that pass, whichever comes first, where before
//!   the shelf it was closed at once.
//!   With leak detection on there is no shelf: every checkout then needs
//!   its time and caller recorded by the core;
//! - a waiter gets its connection (or its failure) through a oneshot
//!   channel; an acquire served at once touches no channel and allocates
//!   nothing. A waiter also wakes at its own deadline and drives the core,
//!   which fails the expired waiters through their channels, so a timeout
//!   does not wait for the timer task to be scheduled;
//! - connects, closes, pings and resets run on spawned tasks; health
//!   checks before a checkout run inside the caller's acquire future;
//! - the clock: deadlines (acquire timeouts, the timer task) and measured
//!   waits read tokio's clock; an acquire served at once from the idle
//!   list and a release that hands its connection to no waiter only stamp
//!   times (idle since, last known alive, the expiry and check decisions),
//!   and read the operating system's coarse monotonic clock
//!   (`mechops_std::clock::CoarseClock`), at most one kernel tick
//!   (1 to 4 ms) behind and several times cheaper. A pool built while
//!   tokio's time is paused reads tokio's clock everywhere, so tests that
//!   advance time see exact decisions;
//! - one background task per pool sleeps until the core's
//!   [`poll_timeout`](mechops_alloc::conn::PoolCore::poll_timeout) and
//!   drives its timers (acquire timeouts, `min_connections`, idle timeout,
//!   lifetime, keepalive, leak reports, breaker reopening). It holds only a
//!   weak reference: dropping every handle and guard ends it.
//!
//! # Contract
//!
//! - [`ConnectionPool::acquire`] resolves within `acquire_timeout` with a
//!   connection or a [`PoolError`] saying why: the pool was exhausted with
//!   so many waiters, or no endpoint was reachable, with the last connect
//!   error. A checkout health check is cut off at the acquire's deadline
//!   (and by the connect timeout); the connection it was checking is then
//!   closed, its state being unknown.
//! - Waiters are served first come, first served.
//! - Dropping an acquire future at any `.await` leaks nothing: its queue
//!   place is given up, a connection already handed to it goes back to the
//!   pool, and one being checked for it is closed (its state is unknown).
//!   A connect started for it keeps running and serves the next waiter.
//! - A [`Pooled`] guard gives its connection back on drop. A connection
//!   marked broken ([`Pooled::mark_broken`]) or that the manager finds
//!   broken ([`Manager::is_broken`], e.g. dropped with a request in flight)
//!   is closed and replaced.
//! - Open connections, connects in flight and connections still closing
//!   together never exceed `max_connections`, so the server never sees more.
//! - [`ConnectionPool::resize`] and [`ConnectionPool::drain`] act at run
//!   time; [`ConnectionPool::close`] waits for checked-out connections up
//!   to a deadline.
//! - A checkout held longer than the leak threshold is reported once
//!   through `tracing` with the location of the `acquire` call; the
//!   connection stays with its holder.
//!
//! Managers and helpers: [`line`](mod@line) (line protocols over TCP or rustls TLS),
//! [`line_server`] (a line server with faults to play, for tests and
//! soaks), [`noop`] (connections that are numbers, for benchmarks).
//!
//! The pool spawns onto the runtime it was built in (it keeps a
//! [`tokio::runtime::Handle`]), so guards may be dropped anywhere.
//!
//! Managers for databases: [`redis::RedisManager`] and
//! [`postgres::PostgresManager`].

pub mod line;
pub mod line_server;
mod manager;
mod metrics;
pub mod noop;
mod pool;
pub mod postgres;
pub mod redis;
mod registry;

pub use manager::Manager;
pub use metrics::{ConnectionPoolMetrics, render_prometheus};
pub use pool::{ConnectionPool, ConnectionPoolConfig, PoolError, Pooled};
pub use registry::{AnyPool, PoolRegistry, RegistryError, registry};

pub use mechops_alloc::conn::{
    AcquireFailure, Balance, BreakerConfig, BreakerState, CloseReason, ConfigError,
    EndpointMetrics, FailureKind, PoolConfig, PoolMetrics, Remaining,
};
