//! A [`Manager`] for PostgreSQL with `tokio-postgres`, with optional TLS
//! over rustls (`tokio-postgres-rustls`; no OpenSSL).
//!
//! A [`PostgresConnection`] derefs to a [`tokio_postgres::Client`]; its
//! connection task runs on the runtime and ends when the client is
//! dropped. Health check: an empty simple query (one round trip, no
//! parse). Broken: [`Client::is_closed`], true once the connection task
//! has ended (server gone, socket error, backend terminated).
//!
//! # Reset on return
//!
//! `DISCARD ALL` would be the complete reset, but it also deallocates the
//! prepared statements the client keeps for its own type lookups, so a
//! later query involving a custom type (an enum, a domain) would fail. The
//! reset is therefore `DISCARD ALL` without `DEALLOCATE ALL`, the sequence
//! deadpool-postgres settled on: `CLOSE ALL`, `SET SESSION AUTHORIZATION
//! DEFAULT`, `RESET ALL`, `UNLISTEN *`, `pg_advisory_unlock_all()`,
//! `DISCARD TEMP`, `DISCARD SEQUENCES`, in one round trip. Statements a
//! caller prepared stay valid but belong to whoever prepares them next;
//! prepare them per checkout.
//!
//! The batch first fails if a transaction is still open (a raw `BEGIN`
//! without its `COMMIT`: `now()`, the transaction's start, differs from
//! the statement's start) or aborted, so the pool closes that connection
//! rather than hand someone else a transaction in progress. A
//! [`tokio_postgres::Transaction`] dropped unfinished rolls back by itself.

use core::fmt;
use core::ops::{Deref, DerefMut};
use core::str::FromStr;
use std::sync::Arc;

use mechops_alloc::conn::FailureKind;
use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::Manager;

/// The reset batch, see the module docs.
const RESET: &str = "DO $$BEGIN IF now() <> statement_timestamp() THEN \
    RAISE EXCEPTION 'a transaction is still open'; END IF; END$$; \
    CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; UNLISTEN *; \
    SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES";

/// Why a PostgreSQL URL was refused.
#[derive(Debug, thiserror::Error)]
pub enum PostgresUrlError {
    /// Only `postgres://` and `postgresql://` URLs are accepted.
    #[error("unsupported PostgreSQL URL {url:?}: expected postgres://USER@HOST:PORT/DATABASE")]
    Scheme {
        /// The URL as given, password removed.
        url: String,
    },
    /// `tokio-postgres` could not parse it.
    #[error("invalid PostgreSQL URL {url:?}: {source}")]
    Invalid {
        /// The URL as given, password removed.
        url: String,
        /// The parser's reason.
        source: tokio_postgres::Error,
    },
    /// No user name: the URL must say who connects.
    #[error("PostgreSQL URL {url:?} names no user: expected postgres://USER@HOST:PORT/DATABASE")]
    NoUser {
        /// The URL as given, password removed.
        url: String,
    },
}

/// One PostgreSQL server:
/// `postgres://USER[:PASSWORD]@HOST[:PORT][/DATABASE][?PARAMS]`, with the
/// parameters `tokio-postgres` understands (`sslmode`, `connect_timeout`,
/// `application_name`, ...).
#[derive(Clone)]
pub struct PostgresEndpoint {
    config: Config,
    shown: String,
}

impl PostgresEndpoint {
    /// Parses `url`.
    ///
    /// # Errors
    ///
    /// [`PostgresUrlError`] when it is not a `postgres://` URL, does not
    /// parse, or names no user.
    pub fn parse(url: &str) -> Result<Self, PostgresUrlError> {
        let hidden = without_password(url);
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(PostgresUrlError::Scheme { url: hidden });
        }
        let config = Config::from_str(url).map_err(|source| PostgresUrlError::Invalid {
            url: hidden.clone(),
            source,
        })?;
        let Some(user) = config.get_user() else {
            return Err(PostgresUrlError::NoUser { url: hidden });
        };
        let mut shown = format!("postgres://{user}@");
        let ports = config.get_ports();
        for (i, host) in config.get_hosts().iter().enumerate() {
            if i > 0 {
                shown.push(',');
            }
            match host {
                Host::Tcp(name) if name.contains(':') => shown.push_str(&format!("[{name}]")),
                Host::Tcp(name) => shown.push_str(name),
                Host::Unix(path) => shown.push_str(&path.display().to_string()),
            }
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            shown.push_str(&format!(":{port}"));
        }
        if let Some(db) = config.get_dbname() {
            shown.push('/');
            shown.push_str(db);
        }
        Ok(Self { config, shown })
    }

    /// The parsed configuration.
    #[must_use]
    pub const fn config(&self) -> &Config {
        &self.config
    }
}

impl fmt::Display for PostgresEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for PostgresEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PostgresEndpoint")
            .field(&self.shown)
            .finish()
    }
}

/// `url` with the password between `:` and `@` replaced by `***`, for
/// error messages.
pub(super) fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].find(':') {
            Some(colon) => format!("{scheme}://{}:***{}", &rest[..colon], &rest[at..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Whether connections use TLS.
#[derive(Clone)]
pub enum PostgresTls {
    /// Plain TCP (a URL asking `sslmode=require` then fails to connect).
    None,
    /// TLS with this rustls configuration (its roots, its client
    /// certificate, its crypto provider), as the URL's `sslmode` asks:
    /// `prefer` (the default) falls back to plain TCP when the server
    /// offers no TLS, `require` does not.
    Rustls(Arc<rustls::ClientConfig>),
}

impl fmt::Debug for PostgresTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Rustls(_) => f.write_str("Rustls(..)"),
        }
    }
}

/// Makes and looks after PostgreSQL connections.
#[derive(Clone)]
pub struct PostgresManager {
    tls: Option<MakeRustlsConnect>,
    reset: bool,
}

impl fmt::Debug for PostgresManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresManager")
            .field("tls", &self.tls.is_some())
            .field("reset", &self.reset)
            .finish()
    }
}

impl PostgresManager {
    /// A manager connecting with `tls`, resetting session state on every
    /// release.
    #[must_use]
    pub fn new(tls: PostgresTls) -> Self {
        let tls = match tls {
            PostgresTls::None => None,
            PostgresTls::Rustls(config) => {
                Some(MakeRustlsConnect::new(Arc::unwrap_or_clone(config)))
            }
        };
        Self { tls, reset: true }
    }

    /// Whether released connections are reset (default `true`). Turn it
    /// off only when no caller changes session state: it saves a round
    /// trip per release.
    #[must_use]
    pub const fn with_reset(mut self, reset: bool) -> Self {
        self.reset = reset;
        self
    }
}

/// A pooled PostgreSQL connection; derefs to its [`Client`].
pub struct PostgresConnection {
    client: Client,
}

impl PostgresConnection {
    /// The client.
    #[must_use]
    pub const fn client(&self) -> &Client {
        &self.client
    }
}

impl Deref for PostgresConnection {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl DerefMut for PostgresConnection {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

impl fmt::Debug for PostgresConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConnection")
            .field("closed", &self.client.is_closed())
            .finish_non_exhaustive()
    }
}

/// Runs a connection's I/O until its client is dropped or it fails.
fn drive<F>(connection: F, endpoint: &PostgresEndpoint)
where
    F: Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static,
{
    let shown = endpoint.shown.clone();
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(endpoint = %shown, %error, "PostgreSQL connection ended");
        }
    });
}

/// What a [`PostgresManager`] fails with: a `tokio-postgres` error shown
/// with its causes (`tokio-postgres` alone shows "db error" or "error
/// performing TLS handshake" and keeps the reason in its source chain).
#[derive(Debug)]
pub struct PostgresError(tokio_postgres::Error);

impl PostgresError {
    /// The `tokio-postgres` error.
    #[must_use]
    pub const fn get_ref(&self) -> &tokio_postgres::Error {
        &self.0
    }

    /// The `tokio-postgres` error, by value.
    #[must_use]
    pub fn into_inner(self) -> tokio_postgres::Error {
        self.0
    }
}

impl From<tokio_postgres::Error> for PostgresError {
    fn from(error: tokio_postgres::Error) -> Self {
        Self(error)
    }
}

impl fmt::Display for PostgresError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use core::error::Error as _;

        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

/// The causes are part of the message, so none is given as a source.
impl core::error::Error for PostgresError {}

impl Manager for PostgresManager {
    type Endpoint = PostgresEndpoint;
    type Connection = PostgresConnection;
    type Error = PostgresError;

    async fn connect(
        &self,
        endpoint: &PostgresEndpoint,
    ) -> Result<PostgresConnection, Self::Error> {
        let client = match &self.tls {
            None => {
                let (client, connection) = endpoint.config.connect(NoTls).await?;
                drive(connection, endpoint);
                client
            }
            Some(tls) => {
                let (client, connection) = endpoint.config.connect(tls.clone()).await?;
                drive(connection, endpoint);
                client
            }
        };
        Ok(PostgresConnection { client })
    }

    async fn check(&self, conn: &mut PostgresConnection) -> Result<(), Self::Error> {
        conn.client.simple_query("").await?;
        Ok(())
    }

    fn needs_reset(&self, _conn: &PostgresConnection) -> bool {
        self.reset
    }

    async fn reset(&self, conn: &mut PostgresConnection) -> Result<(), Self::Error> {
        conn.client.batch_execute(RESET).await?;
        Ok(())
    }

    fn is_broken(&self, conn: &PostgresConnection) -> bool {
        conn.client.is_closed()
    }

    fn classify(&self, error: &PostgresError) -> FailureKind {
        let error = &error.0;
        use core::error::Error as _;
        use tokio_postgres::error::SqlState;

        if let Some(db) = error.as_db_error() {
            let code = db.code();
            return if *code == SqlState::INVALID_PASSWORD
                || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
            {
                FailureKind::Auth
            } else {
                FailureKind::Other
            };
        }
        let mut source = error.source();
        while let Some(cause) = source {
            if let Some(io) = cause.downcast_ref::<std::io::Error>() {
                return match io.kind() {
                    std::io::ErrorKind::ConnectionRefused => FailureKind::Refused,
                    std::io::ErrorKind::TimedOut => FailureKind::TimedOut,
                    std::io::ErrorKind::InvalidData => FailureKind::Tls,
                    _ => FailureKind::Unreachable,
                };
            }
            if cause.downcast_ref::<rustls::Error>().is_some() {
                return FailureKind::Tls;
            }
            source = cause.source();
        }
        if error.to_string().contains("timeout") {
            FailureKind::TimedOut
        } else {
            FailureKind::Other
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_shown_without_passwords() {
        let e = PostgresEndpoint::parse("postgres://app@127.0.0.1:5433/orders").unwrap();
        assert_eq!(e.to_string(), "postgres://app@127.0.0.1:5433/orders");
        let e = PostgresEndpoint::parse("postgresql://app:secret@db.example/x?sslmode=require")
            .unwrap();
        assert_eq!(e.to_string(), "postgres://app@db.example:5432/x");
        assert!(!format!("{e:?}").contains("secret"));

        let err = PostgresEndpoint::parse("mysql://app:secret@h/x").unwrap_err();
        assert!(matches!(err, PostgresUrlError::Scheme { .. }), "{err}");
        assert!(err.to_string().contains("app:***@h/x"), "{err}");

        let err = PostgresEndpoint::parse("postgres://h:5432/x").unwrap_err();
        assert!(matches!(err, PostgresUrlError::NoUser { .. }), "{err}");

        let err = PostgresEndpoint::parse("postgres://app@h:notaport/x").unwrap_err();
        assert!(matches!(err, PostgresUrlError::Invalid { .. }), "{err}");
    }
}
