//! The [`Manager`] trait: how a [`ConnectionPool`](super::ConnectionPool)
//! makes, checks, resets and closes one kind of connection.
//!
//! A manager holds no pool state; the pool calls it from its own tasks and
//! from callers' acquire futures, so every method may run concurrently with
//! every other on different connections. Each async method may be dropped
//! at any `.await` (a cancelled acquire, a pool shutting down): the pool
//! then treats the connection as being in an unknown state and closes it.

use core::fmt;
use core::future::Future;

use mechops_alloc::conn::FailureKind;

/// Makes and looks after the connections of one pool.
///
/// Implementations are expected to keep [`Manager::is_broken`] cheap (it
/// runs on every release) and to put the real work in [`Manager::check`].
pub trait Manager: Send + Sync + 'static {
    /// Where a connection can be made: an address, a URL, a configuration.
    /// A pool has one or more, in priority order.
    type Endpoint: fmt::Display + Send + Sync + 'static;
    /// The connection handed to callers.
    type Connection: Send + 'static;
    /// What `connect`, `check` and `reset` fail with.
    type Error: core::error::Error + Send + Sync + 'static;

    /// Opens a connection to `endpoint`. The pool bounds it with its
    /// connect timeout.
    fn connect(
        &self,
        endpoint: &Self::Endpoint,
    ) -> impl Future<Output = Result<Self::Connection, Self::Error>> + Send;

    /// A health check (a round trip to the server), run before handing out
    /// a connection idle longer than the check threshold, and by the
    /// keepalive. An error closes the connection.
    fn check(
        &self,
        conn: &mut Self::Connection,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Whether `conn` needs [`Manager::reset`] before it goes back to the
    /// pool (it changed session state). Called on every release, so keep
    /// it cheap; the default, `false`, skips the reset.
    fn needs_reset(&self, conn: &Self::Connection) -> bool {
        let _ = conn;
        false
    }

    /// Clears session state before the connection serves another caller;
    /// run on release when [`Manager::needs_reset`] says so. An error
    /// closes the connection.
    fn reset(
        &self,
        conn: &mut Self::Connection,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let _ = conn;
        async { Ok(()) }
    }

    /// Whether `conn` is known to be unusable without a round trip (a read
    /// or write failed, a request was abandoned half way). Called on every
    /// release; a broken connection is closed and replaced.
    fn is_broken(&self, conn: &Self::Connection) -> bool;

    /// Closes `conn` (a polite goodbye to the server, if the protocol has
    /// one). The default drops it.
    fn close(&self, conn: Self::Connection) -> impl Future<Output = ()> + Send {
        async move { drop(conn) }
    }

    /// What kind of failure a connect error is, for the endpoint's breaker
    /// and the pool's timeout message. The default is
    /// [`FailureKind::Other`].
    fn classify(&self, error: &Self::Error) -> FailureKind {
        let _ = error;
        FailureKind::Other
    }
}
