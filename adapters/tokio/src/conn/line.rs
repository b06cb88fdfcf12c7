//! A [`Manager`] for line protocols over TCP or TLS (rustls): a request is
//! one line, its reply is one line, as in `execute("GET key")`.
//!
//! Invariants:
//!
//! - every [`LineConnection::execute`] is bounded by the request timeout;
//!   a timeout, an I/O error, an end of stream or a reply longer than
//!   [`MAX_LINE`] marks the connection broken, and the pool closes it;
//! - a request dropped half way (its future cancelled between the write
//!   and the reply) leaves the connection marked in flight, which
//!   [`Manager::is_broken`] reports, so a late reply can never be read as
//!   the answer to the next request;
//! - the health check is `PING`, answered by `PONG`;
//! - closing shuts the write side and waits (within the request timeout)
//!   for the server's end of stream, so a closed connection no longer
//!   counts at the server when its pool slot is reused.
//!
//! TLS uses rustls with the ring provider: trust comes from a CA file (PEM)
//! or the bundled Mozilla roots (`webpki-roots`); the server name is the
//! endpoint's host unless set; a client certificate is optional.

use core::fmt;
use core::str::FromStr;
use core::time::Duration;
use std::io;
use std::path::Path;
use std::sync::Arc;

use mechops_alloc::conn::FailureKind;
use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::Manager;

/// The longest reply line accepted, newline included.
pub const MAX_LINE: usize = 64 * 1024;

/// How to reach a line server: `tcp://HOST:PORT` or `tls://HOST:PORT`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LineEndpoint {
    /// Over TLS.
    pub tls: bool,
    /// The host name or address.
    pub host: String,
    /// The port.
    pub port: u16,
}

impl fmt::Display for LineEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "tls" } else { "tcp" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

impl FromStr for LineEndpoint {
    type Err = LineError;

    fn from_str(url: &str) -> Result<Self, LineError> {
        let bad = |why: &str| LineError::BadEndpoint(format!("{url:?}: {why}"));
        let (tls, rest) = if let Some(rest) = url.strip_prefix("tcp://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("tls://") {
            (true, rest)
        } else {
            return Err(bad("expected tcp://HOST:PORT or tls://HOST:PORT"));
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| bad("unclosed '[' in the host"))?;
            let port = after
                .strip_prefix(':')
                .ok_or_else(|| bad("missing :PORT"))?;
            (host, port)
        } else {
            rest.rsplit_once(':').ok_or_else(|| bad("missing :PORT"))?
        };
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        let port = port
            .parse::<u16>()
            .map_err(|_| bad("the port is not a number from 0 to 65535"))?;
        Ok(Self {
            tls,
            host: host.to_owned(),
            port,
        })
    }
}

/// What a line connection or its setup failed with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LineError {
    /// The endpoint URL is malformed.
    #[error("bad endpoint {0}")]
    BadEndpoint(String),
    /// Connecting, reading or writing failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The request (or the TLS handshake) took longer than allowed.
    #[error("request timed out after {0:?}")]
    Timeout(Duration),
    /// The server closed the connection.
    #[error("connection closed by the server")]
    Closed,
    /// The reply was longer than [`MAX_LINE`].
    #[error("reply longer than {MAX_LINE} bytes")]
    LineTooLong,
    /// The request itself holds a newline, which would make two requests.
    #[error("request holds a line break")]
    NewlineInRequest,
    /// A `tls://` endpoint on a manager made without TLS settings.
    #[error("{0} needs TLS settings (a CA file or the platform roots)")]
    NoTls(String),
    /// The TLS settings or the handshake failed.
    #[error("TLS: {0}")]
    Tls(String),
    /// The health check got something else than `PONG`.
    #[error("unexpected reply {0:?}")]
    UnexpectedReply(String),
    /// The connection was broken by an earlier failure.
    #[error("connection is broken by an earlier failure")]
    Broken,
}

/// TLS settings of a [`LineManager`].
#[derive(Clone)]
pub struct LineTls {
    config: Arc<ClientConfig>,
    server_name: Option<String>,
}

impl fmt::Debug for LineTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineTls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl LineTls {
    /// Trust the CA certificates in the PEM file `ca` (or, with `None`, the
    /// bundled Mozilla roots); present the client certificate chain and key
    /// of `client` (PEM files) when given; check the server against
    /// `server_name` (or, with `None`, each endpoint's host).
    pub fn new(
        ca: Option<&Path>,
        client: Option<(&Path, &Path)>,
        server_name: Option<String>,
    ) -> Result<Self, LineError> {
        let mut roots = rustls::RootCertStore::empty();
        match ca {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|e| LineError::Tls(format!("{}: {e}", path.display())))?;
                for cert in certs {
                    let cert =
                        cert.map_err(|e| LineError::Tls(format!("{}: {e}", path.display())))?;
                    roots
                        .add(cert)
                        .map_err(|e| LineError::Tls(format!("{}: {e}", path.display())))?;
                }
                if roots.is_empty() {
                    return Err(LineError::Tls(format!(
                        "{}: no certificate found",
                        path.display()
                    )));
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| LineError::Tls(e.to_string()))?
            .with_root_certificates(roots);
        let config = match client {
            Some((chain, key)) => {
                let certs = CertificateDer::pem_file_iter(chain)
                    .and_then(|c| c.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| LineError::Tls(format!("{}: {e}", chain.display())))?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| LineError::Tls(format!("{}: {e}", key.display())))?;
                builder
                    .with_client_auth_cert(certs, key)
                    .map_err(|e| LineError::Tls(e.to_string()))?
            }
            None => builder.with_no_client_auth(),
        };
        Ok(Self {
            config: Arc::new(config),
            server_name,
        })
    }
}

/// Makes line connections over TCP, or TLS for `tls://` endpoints.
#[derive(Clone, Debug)]
pub struct LineManager {
    request_timeout: Duration,
    tls: Option<LineTls>,
}

impl LineManager {
    /// A manager whose requests time out after `request_timeout`, with TLS
    /// settings for `tls://` endpoints when given.
    pub fn new(request_timeout: Duration, tls: Option<LineTls>) -> Self {
        Self {
            request_timeout,
            tls,
        }
    }

    /// The request timeout.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// One connection to a line server.
pub struct LineConnection {
    stream: BufReader<Box<dyn Io>>,
    request_timeout: Duration,
    reply: Vec<u8>,
    in_flight: bool,
    broken: bool,
}

impl fmt::Debug for LineConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineConnection")
            .field("in_flight", &self.in_flight)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl LineConnection {
    /// Sends `line` (a newline is added) and returns the reply line without
    /// its line ending, within the request timeout.
    ///
    /// Cancellation: dropping the future after the write started leaves
    /// the connection in flight, hence broken; the pool closes it.
    pub async fn execute(&mut self, line: &str) -> Result<String, LineError> {
        if line.contains('\n') || line.contains('\r') {
            return Err(LineError::NewlineInRequest);
        }
        if self.broken || self.in_flight {
            return Err(LineError::Broken);
        }
        self.in_flight = true;
        let timeout = self.request_timeout;
        let result = match tokio::time::timeout(timeout, self.round_trip(line)).await {
            Ok(result) => result,
            Err(_) => Err(LineError::Timeout(timeout)),
        };
        self.in_flight = false;
        if result.is_err() {
            self.broken = true;
        }
        result
    }

    async fn round_trip(&mut self, line: &str) -> Result<String, LineError> {
        let stream = self.stream.get_mut();
        stream.write_all(line.as_bytes()).await?;
        stream.write_all(b"\n").await?;
        stream.flush().await?;
        self.reply.clear();
        let n = (&mut self.stream)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut self.reply)
            .await?;
        if n == 0 {
            return Err(LineError::Closed);
        }
        if self.reply.last() != Some(&b'\n') {
            return Err(if n >= MAX_LINE {
                LineError::LineTooLong
            } else {
                LineError::Closed
            });
        }
        self.reply.pop();
        if self.reply.last() == Some(&b'\r') {
            self.reply.pop();
        }
        Ok(String::from_utf8_lossy(&self.reply).into_owned())
    }

    /// Whether a failure or an abandoned request made it unusable.
    pub fn is_broken(&self) -> bool {
        self.broken || self.in_flight
    }
}

impl Manager for LineManager {
    type Endpoint = LineEndpoint;
    type Connection = LineConnection;
    type Error = LineError;

    async fn connect(&self, endpoint: &LineEndpoint) -> Result<LineConnection, LineError> {
        let tcp = TcpStream::connect((endpoint.host.as_str(), endpoint.port)).await?;
        tcp.set_nodelay(true)?;
        let stream: Box<dyn Io> = if endpoint.tls {
            let tls = self
                .tls
                .as_ref()
                .ok_or_else(|| LineError::NoTls(endpoint.to_string()))?;
            let name = tls.server_name.as_deref().unwrap_or(&endpoint.host);
            let name = ServerName::try_from(name.to_owned())
                .map_err(|e| LineError::Tls(format!("server name {name:?}: {e}")))?;
            let connector = TlsConnector::from(Arc::clone(&tls.config));
            let stream = connector
                .connect(name, tcp)
                .await
                .map_err(|e| LineError::Tls(e.to_string()))?;
            Box::new(stream)
        } else {
            Box::new(tcp)
        };
        Ok(LineConnection {
            stream: BufReader::new(stream),
            request_timeout: self.request_timeout,
            reply: Vec::new(),
            in_flight: false,
            broken: false,
        })
    }

    async fn check(&self, conn: &mut LineConnection) -> Result<(), LineError> {
        let reply = conn.execute("PING").await?;
        if reply == "PONG" {
            Ok(())
        } else {
            Err(LineError::UnexpectedReply(reply))
        }
    }

    fn is_broken(&self, conn: &LineConnection) -> bool {
        conn.is_broken()
    }

    async fn close(&self, mut conn: LineConnection) {
        // Shut the write side and wait for the server's end of stream, so
        // the slot is freed only once the server has let the connection go
        // (the pool's maximum holds as counted at the server). Bounded, so
        // a dead or black-holed peer cannot hold the slot.
        let _ = tokio::time::timeout(self.request_timeout, async {
            conn.stream.get_mut().shutdown().await?;
            let mut sink = [0u8; 512];
            while conn.stream.read(&mut sink).await? > 0 {}
            Ok::<(), io::Error>(())
        })
        .await;
    }

    fn classify(&self, error: &LineError) -> FailureKind {
        match error {
            LineError::Io(e) => match e.kind() {
                io::ErrorKind::ConnectionRefused => FailureKind::Refused,
                io::ErrorKind::TimedOut => FailureKind::TimedOut,
                io::ErrorKind::HostUnreachable
                | io::ErrorKind::NetworkUnreachable
                | io::ErrorKind::NotFound
                | io::ErrorKind::AddrNotAvailable => FailureKind::Unreachable,
                _ => FailureKind::Other,
            },
            LineError::Tls(_) | LineError::NoTls(_) => FailureKind::Tls,
            LineError::Timeout(_) => FailureKind::TimedOut,
            LineError::Closed | LineError::UnexpectedReply(_) | LineError::LineTooLong => {
                FailureKind::Protocol
            }
            _ => FailureKind::Other,
        }
    }
}
