//! A small line server for tests, soaks and examples of the line protocol
//! of [`LineManager`](super::line::LineManager): `PING` → `PONG`,
//! `SET key value` → `OK`, `GET key` → the value or `NIL`, `ECHO text` →
//! `text`, anything else → `ERR unknown command`.
//!
//! It counts the connections it holds open (and the most at once), so
//! tests can check a pool's limit where it matters, at the server; and it
//! plays faults: [`LineServer::kill`] drops the listener and every
//! connection (new connects are refused), [`LineServer::restart`] listens
//! again on the same address, and [`LineServer::set_black_hole`] keeps
//! reading requests but answers none.
//!
//! Invariants: a request line is at most [`MAX_LINE`]
//! bytes (a longer one closes the connection); the store is shared by all
//! connections and survives a kill.

use core::net::SocketAddr;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};

use rustls::ServerConfig;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use super::line::MAX_LINE;

#[derive(Default)]
struct Inner {
    open: AtomicUsize,
    max_open: AtomicUsize,
    accepted: AtomicUsize,
    requests: AtomicUsize,
    black_hole: AtomicBool,
    store: Mutex<HashMap<String, String>>,
}

/// A running line server. Dropping it stops it.
pub struct LineServer {
    addr: SocketAddr,
    tls: Option<TlsAcceptor>,
    inner: Arc<Inner>,
    task: Option<JoinHandle<()>>,
}

impl LineServer {
    /// Listens on `addr` (port 0 picks a free one), over TLS when `tls` is
    /// given.
    pub async fn bind(addr: SocketAddr, tls: Option<Arc<ServerConfig>>) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let mut server = Self {
            addr: listener.local_addr()?,
            tls: tls.map(TlsAcceptor::from),
            inner: Arc::new(Inner::default()),
            task: None,
        };
        server.serve(listener);
        Ok(server)
    }

    /// Listens on a free port of 127.0.0.1 over plain TCP.
    pub async fn local() -> io::Result<Self> {
        Self::bind(SocketAddr::from(([127, 0, 0, 1], 0)), None).await
    }

    fn serve(&mut self, listener: TcpListener) {
        let inner = Arc::clone(&self.inner);
        let tls = self.tls.clone();
        self.task = Some(tokio::spawn(async move {
            // Owning the connections here means aborting this task cuts
            // them all.
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let _ = stream.set_nodelay(true);
                        let inner = Arc::clone(&inner);
                        let tls = tls.clone();
                        connections.spawn(async move {
                            let count = OpenCount::new(&inner);
                            match tls {
                                Some(acceptor) => {
                                    if let Ok(stream) = acceptor.accept(stream).await {
                                        let _ = session(stream, &inner, count).await;
                                    }
                                }
                                None => {
                                    let _ = session(stream, &inner, count).await;
                                }
                            }
                        });
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        }));
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `tcp://ADDR` or `tls://ADDR`.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "tls" } else { "tcp" };
        format!("{scheme}://{}", self.addr)
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.inner.open.load(Ordering::SeqCst)
    }

    /// The most connections open at once.
    pub fn max_open(&self) -> usize {
        self.inner.max_open.load(Ordering::SeqCst)
    }

    /// Connections accepted in all.
    pub fn accepted(&self) -> usize {
        self.inner.accepted.load(Ordering::SeqCst)
    }

    /// Requests read in all.
    pub fn requests(&self) -> usize {
        self.inner.requests.load(Ordering::SeqCst)
    }

    /// Stops answering (while still accepting and reading) or starts again.
    pub fn set_black_hole(&self, on: bool) {
        self.inner.black_hole.store(on, Ordering::SeqCst);
    }

    /// Stops listening and cuts every connection: connects are refused
    /// until [`LineServer::restart`].
    pub async fn kill(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Listens again on the same address.
    pub async fn restart(&mut self) -> io::Result<()> {
        self.kill().await;
        let listener = TcpListener::bind(self.addr).await?;
        self.serve(listener);
        Ok(())
    }
}

impl Drop for LineServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Counts a connection open from its accept until just before its socket
/// closes, so a peer that saw the close never sees it still counted.
struct OpenCount(Arc<Inner>);

impl OpenCount {
    fn new(inner: &Arc<Inner>) -> Self {
        let open = inner.open.fetch_add(1, Ordering::SeqCst) + 1;
        inner.max_open.fetch_max(open, Ordering::SeqCst);
        inner.accepted.fetch_add(1, Ordering::SeqCst);
        Self(Arc::clone(inner))
    }
}

impl Drop for OpenCount {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    inner: &Inner,
    count: OpenCount,
) -> io::Result<()> {
    let mut stream = BufReader::new(stream);
    // Declared after the stream, so dropped before it.
    let _count = count;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut stream)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 || line.last() != Some(&b'\n') {
            return Ok(());
        }
        inner.requests.fetch_add(1, Ordering::SeqCst);
        if inner.black_hole.load(Ordering::SeqCst) {
            continue;
        }
        let text = String::from_utf8_lossy(&line);
        let reply = answer(text.trim_end_matches(['\r', '\n']), inner);
        let out = stream.get_mut();
        out.write_all(reply.as_bytes()).await?;
        out.write_all(b"\n").await?;
        out.flush().await?;
    }
}

fn answer(request: &str, inner: &Inner) -> String {
    let mut parts = request.splitn(3, ' ');
    let command = parts.next().unwrap_or("");
    let store = || inner.store.lock().unwrap_or_else(|e| e.into_inner());
    match (
        command.to_ascii_uppercase().as_str(),
        parts.next(),
        parts.next(),
    ) {
        ("PING", None, None) => "PONG".to_owned(),
        ("ECHO", text, rest) => match (text, rest) {
            (Some(t), Some(r)) => format!("{t} {r}"),
            (Some(t), None) => t.to_owned(),
            _ => String::new(),
        },
        ("GET", Some(key), None) => store()
            .get(key)
            .cloned()
            .unwrap_or_else(|| "NIL".to_owned()),
        ("SET", Some(key), Some(value)) => {
            store().insert(key.to_owned(), value.to_owned());
            "OK".to_owned()
        }
        _ => "ERR unknown command".to_owned(),
    }
}
