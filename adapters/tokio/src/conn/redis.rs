//! A [`Manager`] for Redis with the `redis` crate: one multiplexed
//! connection per pooled connection, checked with `PING`, and reset with
//! `RESET` only when the caller changed session state.
//!
//! # Session state
//!
//! Redis keeps per-connection state: the selected database, the client
//! name, tracking, `MULTI`, `WATCH`, subscriptions, the authenticated user
//! and the protocol version. A [`RedisConnection`] sends every command
//! through [`ConnectionLike`], notes the ones that change that state
//! ([`changes_session`]) and asks the pool for a reset only then, so a
//! pool used for plain reads and writes pays no round trip on release.
//! The reset sends `RESET` (Redis 6.2 or later) and restores what the URL
//! asked for: `AUTH` with its credentials, `HELLO 3` for RESP3, and
//! `SELECT` of its database.
//!
//! # Broken connections
//!
//! A multiplexed connection matches replies to requests in order, so a
//! request abandoned half way (its future dropped) leaves it usable. It is
//! broken when a command fails with an error after which the `redis` crate
//! itself would reconnect (an I/O error, the server gone); the pool then
//! closes and replaces it.

use core::fmt;
use core::time::Duration;

use mechops_alloc::conn::FailureKind;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{
    AsyncConnectionConfig, Client, Cmd, ErrorKind, Pipeline, ProtocolVersion, RedisError,
    RedisFuture, Value,
};

use super::Manager;
use super::postgres::without_password;

/// Why a Redis URL was refused.
#[derive(Debug, thiserror::Error)]
pub enum RedisUrlError {
    /// Only `redis://` is supported (no TLS, no unix sockets).
    #[error("unsupported Redis URL scheme in {url:?}: expected redis://HOST:PORT[/DB]")]
    Scheme {
        /// The URL as given, password removed.
        url: String,
    },
    /// The `redis` crate could not parse it.
    #[error("invalid Redis URL {url:?}: {source}")]
    Invalid {
        /// The URL as given, password removed.
        url: String,
        /// The parser's reason.
        source: RedisError,
    },
}

/// One Redis server: `redis://[[USER]:PASSWORD@]HOST:PORT[/DB]`.
#[derive(Clone)]
pub struct RedisEndpoint {
    client: Client,
    shown: String,
}

impl RedisEndpoint {
    /// Parses `url`; its database, credentials and `?protocol=resp3` are
    /// honoured.
    ///
    /// # Errors
    ///
    /// [`RedisUrlError`] when the scheme is not `redis://` or the URL does
    /// not parse.
    pub fn parse(url: &str) -> Result<Self, RedisUrlError> {
        let shown = without_password(url);
        if !url.starts_with("redis://") {
            return Err(RedisUrlError::Scheme { url: shown });
        }
        let client = Client::open(url).map_err(|source| RedisUrlError::Invalid {
            url: shown.clone(),
            source,
        })?;
        let info = client.get_connection_info();
        let shown = match info.redis_settings().db() {
            0 => format!("redis://{}", info.addr()),
            db => format!("redis://{}/{db}", info.addr()),
        };
        Ok(Self { client, shown })
    }
}

impl fmt::Display for RedisEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for RedisEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RedisEndpoint").field(&self.shown).finish()
    }
}

/// What a [`RedisManager`] fails with.
#[derive(Debug, thiserror::Error)]
pub enum RedisManagerError {
    /// The connect or a command failed.
    #[error(transparent)]
    Redis(#[from] RedisError),
    /// `PING` answered something other than `PONG`.
    #[error("PING answered {reply:?}, expected \"PONG\"")]
    UnexpectedPong {
        /// The reply.
        reply: String,
    },
}

/// Makes and looks after Redis connections.
#[derive(Clone, Debug, Default)]
pub struct RedisManager {
    response_timeout: Option<Duration>,
}

impl RedisManager {
    /// A manager whose commands wait for their reply as long as it takes
    /// (the pool's own timeouts still bound connects and checks).
    #[must_use]
    pub const fn new() -> Self {
        Self {
            response_timeout: None,
        }
    }

    /// Fails a command whose reply has not come within `timeout`.
    #[must_use]
    pub const fn with_response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = Some(timeout);
        self
    }
}

/// A pooled Redis connection. Send commands through it with the `redis`
/// crate's [`AsyncCommands`](redis::AsyncCommands), `cmd(..).query_async`
/// or pipelines.
pub struct RedisConnection {
    inner: MultiplexedConnection,
    client: Client,
    dirty: bool,
    broken: bool,
}

impl RedisConnection {
    /// Whether a command sent through this connection changed its session
    /// state since the last reset.
    #[must_use]
    pub const fn session_changed(&self) -> bool {
        self.dirty
    }

    /// Whether a command failed in a way that leaves the connection
    /// unusable.
    #[must_use]
    pub const fn is_broken(&self) -> bool {
        self.broken
    }

    fn note<T>(&mut self, result: &Result<T, RedisError>) {
        if let Err(e) = result
            && e.is_unrecoverable_error()
        {
            self.broken = true;
        }
    }
}

impl fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConnection")
            .field("db", &self.inner.get_db())
            .field("session_changed", &self.dirty)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

/// Whether `cmd` changes per-connection state that the next user of the
/// connection must not inherit. Unknown or empty commands count as not
/// changing it; `CLIENT` counts whatever its subcommand, which costs a
/// needless reset after `CLIENT ID` but never misses `CLIENT SETNAME`.
#[must_use]
pub fn changes_session(cmd: &Cmd) -> bool {
    const STATEFUL: [&[u8]; 14] = [
        b"SELECT",
        b"CLIENT",
        b"MULTI",
        b"WATCH",
        b"SUBSCRIBE",
        b"PSUBSCRIBE",
        b"SSUBSCRIBE",
        b"AUTH",
        b"HELLO",
        b"READONLY",
        b"READWRITE",
        b"ASKING",
        b"MONITOR",
        b"RESET",
    ];
    match cmd.args_iter().next() {
        Some(redis::Arg::Simple(name)) => STATEFUL.iter().any(|s| s.eq_ignore_ascii_case(name)),
        _ => false,
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        // Noted before sending: a request abandoned half way may still
        // have reached the server.
        self.dirty |= changes_session(cmd);
        Box::pin(async move {
            let result = self.inner.req_packed_command(cmd).await;
            self.note(&result);
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        self.dirty |= cmd.cmd_iter().any(changes_session);
        Box::pin(async move {
            let result = self.inner.req_packed_commands(cmd, offset, count).await;
            self.note(&result);
            result
        })
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}

impl Manager for RedisManager {
    type Endpoint = RedisEndpoint;
    type Connection = RedisConnection;
    type Error = RedisManagerError;

    async fn connect(&self, endpoint: &RedisEndpoint) -> Result<RedisConnection, Self::Error> {
        let config = AsyncConnectionConfig::new().set_response_timeout(self.response_timeout);
        let inner = endpoint
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        Ok(RedisConnection {
            inner,
            client: endpoint.client.clone(),
            dirty: false,
            broken: false,
        })
    }

    async fn check(&self, conn: &mut RedisConnection) -> Result<(), Self::Error> {
        let reply = redis::cmd("PING").query_async::<String>(conn).await?;
        if reply == "PONG" {
            Ok(())
        } else {
            Err(RedisManagerError::UnexpectedPong { reply })
        }
    }

    fn needs_reset(&self, conn: &RedisConnection) -> bool {
        conn.dirty
    }

    async fn reset(&self, conn: &mut RedisConnection) -> Result<(), Self::Error> {
        let settings = conn.client.get_connection_info().redis_settings();
        let mut pipe = redis::pipe();
        pipe.cmd("RESET").ignore();
        if let Some(password) = settings.password() {
            let auth = pipe.cmd("AUTH");
            if let Some(user) = settings.username() {
                auth.arg(user);
            }
            auth.arg(password).ignore();
        }
        if settings.protocol() == ProtocolVersion::RESP3 {
            pipe.cmd("HELLO").arg(3).ignore();
        }
        if settings.db() != 0 {
            pipe.cmd("SELECT").arg(settings.db()).ignore();
        }
        // Straight to the inner connection: these commands restore the
        // state the URL asked for, they do not dirty it.
        let result = pipe.exec_async(&mut conn.inner).await;
        conn.note(&result);
        result?;
        conn.dirty = false;
        Ok(())
    }

    fn is_broken(&self, conn: &RedisConnection) -> bool {
        conn.broken
    }

    fn classify(&self, error: &RedisManagerError) -> FailureKind {
        let RedisManagerError::Redis(e) = error else {
            return FailureKind::Protocol;
        };
        if e.is_connection_refusal() {
            FailureKind::Refused
        } else if e.is_timeout() {
            FailureKind::TimedOut
        } else {
            match e.kind() {
                ErrorKind::AuthenticationFailed => FailureKind::Auth,
                ErrorKind::Io => FailureKind::Unreachable,
                ErrorKind::Parse | ErrorKind::UnexpectedReturnType => FailureKind::Protocol,
                _ => FailureKind::Other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_shown_without_passwords() {
        let e = RedisEndpoint::parse("redis://127.0.0.1:6379/2").unwrap();
        assert_eq!(e.to_string(), "redis://127.0.0.1:6379/2");
        let e = RedisEndpoint::parse("redis://:secret@localhost:7000").unwrap();
        assert_eq!(e.to_string(), "redis://localhost:7000");
        assert!(!format!("{e:?}").contains("secret"));

        let err = RedisEndpoint::parse("rediss://u:secret@h:1").unwrap_err();
        assert!(matches!(err, RedisUrlError::Scheme { .. }), "{err}");
        assert!(!err.to_string().contains("secret"), "{err}");
        assert!(err.to_string().contains("u:***@h:1"), "{err}");

        let err = RedisEndpoint::parse("redis://h:notaport").unwrap_err();
        assert!(matches!(err, RedisUrlError::Invalid { .. }), "{err}");
        assert!(RedisEndpoint::parse("tcp://h:1").is_err());
    }

    #[test]
    fn session_changing_commands_are_recognised() {
        assert!(changes_session(redis::cmd("select").arg(1)));
        assert!(changes_session(
            redis::cmd("CLIENT").arg("SETNAME").arg("x")
        ));
        assert!(changes_session(&redis::cmd("MULTI")));
        assert!(!changes_session(redis::cmd("GET").arg("k")));
        assert!(!changes_session(redis::cmd("SET").arg("select").arg(1)));
        assert!(!changes_session(&Cmd::new()));
    }
}
