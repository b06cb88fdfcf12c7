//! The HTTP runner against a small HTTP/1.1 server of the test's own on a
//! free loopback port: retries of idempotent requests only, connection
//! reuse, the body bound, timeouts and malformed requests.

use core::net::SocketAddr;
use core::sync::atomic::{AtomicUsize, Ordering};
use core::time::Duration;
use std::sync::{Arc, Mutex};

use mechops_core::backoff::{Backoff, Jitter};
use mechops_tokio::exec::{ExecError, HttpClient, HttpRequest, Stopped};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// One request as the server saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<String>,
    body: String,
}

/// The server's answer: a status and a body, or no answer at all.
type Answer = Option<(u16, String)>;

struct Server {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    /// Serves with `answer`, given each request and how many requests to
    /// the same path came before it.
    async fn start(answer: impl Fn(&Seen, usize) -> Answer + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let answer = Arc::new(answer);
        let (s, c) = (Arc::clone(&seen), Arc::clone(&connections));
        let task = tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                c.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(connection(stream, Arc::clone(&s), Arc::clone(&answer)));
            }
        });
        Self {
            addr,
            seen,
            connections,
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn connection(
    mut stream: TcpStream,
    seen: Arc<Mutex<Vec<Seen>>>,
    answer: Arc<impl Fn(&Seen, usize) -> Answer + Send + Sync>,
) {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap().split(' ');
        let (method, path) = (
            first.next().unwrap().to_owned(),
            first.next().unwrap().to_owned(),
        );
        let headers: Vec<String> = lines.filter(|l| !l.is_empty()).map(str::to_owned).collect();
        let length: usize = headers
            .iter()
            .find_map(|h| {
                h.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .unwrap_or(0);
        while buf.len() < head_end + length {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = String::from_utf8(buf[head_end..head_end + length].to_vec()).unwrap();
        buf.drain(..head_end + length);
        let request = Seen {
            method,
            path,
            headers,
            body,
        };
        let before = {
            let mut seen = seen.lock().unwrap();
            let before = seen.iter().filter(|s| s.path == request.path).count();
            seen.push(request.clone());
            before
        };
        let Some((status, body)) = answer(&request, before) else {
            tokio::time::sleep(Duration::from_secs(300)).await;
            return;
        };
        let response = format!(
            "HTTP/1.1 {status} X\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn client() -> HttpClient {
    let fast = Backoff::new(Duration::from_millis(5), Duration::from_millis(20), 3)
        .unwrap()
        .with_jitter(Jitter::None);
    HttpClient::new().unwrap().with_backoff(fast)
}

/// 503 for the first request to a path, 200 afterwards.
fn flaky(_: &Seen, before: usize) -> Answer {
    Some(if before == 0 {
        (503, "busy".into())
    } else {
        (200, "fine".into())
    })
}

#[tokio::test]
async fn get_is_retried_after_a_503_on_the_same_connection() {
    let server = Server::start(flaky).await;
    let out = client()
        .run(
            &HttpRequest::new("GET", server.url("/status")),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert!(out.ok, "{out:?}");
    assert_eq!((out.status, out.body.as_deref()), (Some(200), Some("fine")));
    assert_eq!((out.exit_code, out.error.as_deref()), (None, None));
    assert_eq!(server.seen().len(), 2);
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
    let v = serde_json::to_value(&out).unwrap();
    assert_eq!(
        (v["status"].as_u64(), v["body"].as_str()),
        (Some(200), Some("fine"))
    );
}

#[tokio::test]
async fn post_is_not_retried() {
    let server = Server::start(flaky).await;
    let mut req = HttpRequest::new("POST", server.url("/jobs"));
    req.body = Some("{\"n\":1}".into());
    req.headers = vec![
        ("content-type".into(), "application/json".into()),
        ("x-token".into(), "abc".into()),
    ];
    let out = client().run(&req, &CancellationToken::new()).await.unwrap();
    assert!(!out.ok);
    assert_eq!((out.status, out.body.as_deref()), (Some(503), Some("busy")));
    assert!(out.error.unwrap().contains("503"));
    let seen = server.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        (seen[0].method.as_str(), seen[0].body.as_str()),
        ("POST", "{\"n\":1}")
    );
    assert!(
        seen[0]
            .headers
            .iter()
            .any(|h| h.eq_ignore_ascii_case("x-token: abc"))
    );
}

#[tokio::test]
async fn retries_give_up_after_the_policy_and_report_the_last_status() {
    let server = Server::start(|_, _| Some((500, "down".into()))).await;
    let out = client()
        .run(
            &HttpRequest::new("DELETE", server.url("/x")),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert!(!out.ok);
    assert_eq!(out.status, Some(500));
    // One attempt and three retries.
    assert_eq!(server.seen().len(), 4);
}

#[tokio::test]
async fn calls_share_the_pooled_connections() {
    let server = Server::start(|s, _| Some((200, s.path.clone()))).await;
    let client = client();
    for i in 0..5 {
        let out = client
            .clone()
            .run(
                &HttpRequest::new("GET", server.url(&format!("/{i}"))),
                &CancellationToken::new(),
            )
            .await
            .unwrap();
        assert_eq!(out.body, Some(format!("/{i}")));
    }
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_body_is_kept_up_to_its_bound() {
    let server = Server::start(|_, _| Some((200, "x".repeat(100_000)))).await;
    let mut req = HttpRequest::new("GET", server.url("/big"));
    req.body_limit = 10;
    let out = client().run(&req, &CancellationToken::new()).await.unwrap();
    assert!(out.ok);
    assert_eq!(
        (out.body_truncated, out.stdout_truncated),
        (Some(true), false)
    );
    assert_eq!(out.body.as_deref(), Some("xxxxxxxxxx"));
    let v = serde_json::to_value(&out).unwrap();
    assert_eq!(
        (&v["body_truncated"], &v["stdout_truncated"]),
        (&true.into(), &false.into())
    );
    req.body_limit = 100_000;
    let whole = client().run(&req, &CancellationToken::new()).await.unwrap();
    assert_eq!(whole.body_truncated, Some(false));
    assert_eq!(whole.body.map(|b| b.len()), Some(100_000));
}

#[tokio::test]
async fn a_silent_server_times_out_and_cancel_stops_a_call() {
    let server = Server::start(|_, _| None).await;
    let mut req = HttpRequest::new("GET", server.url("/slow"));
    req.timeout = Some(Duration::from_millis(300));
    let out = client().run(&req, &CancellationToken::new()).await.unwrap();
    assert!(!out.ok);
    assert_eq!((out.status, out.stopped), (None, Some(Stopped::TimedOut)));
    assert!(out.error.unwrap().contains("timed out after 300 ms"));

    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        trigger.cancel();
    });
    let out = client()
        .run(&HttpRequest::new("GET", server.url("/slow")), &cancel)
        .await
        .unwrap();
    assert_eq!(out.stopped, Some(Stopped::Cancelled));
}

#[tokio::test]
async fn refused_connections_are_retried_then_reported() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let out = client()
        .run(
            &HttpRequest::new("GET", format!("http://{addr}/")),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert!(!out.ok);
    assert_eq!(out.status, None);
    let error = out.error.unwrap();
    assert!(error.contains(&addr.to_string()), "{error}");
}

#[tokio::test]
async fn malformed_requests_are_refused_naming_the_part() {
    let client = client();
    let cancel = CancellationToken::new();
    let cases = [
        (HttpRequest::new("G ET", "http://127.0.0.1/"), "method"),
        (HttpRequest::new("GET", "not a url"), "not a url"),
        (HttpRequest::new("GET", "ftp://127.0.0.1/"), "ftp://"),
        (
            HttpRequest {
                headers: vec![("bad header".into(), "v".into())],
                ..HttpRequest::new("GET", "http://127.0.0.1/")
            },
            "bad header",
        ),
        (
            HttpRequest {
                headers: vec![("x-ok".into(), "line\nbreak".into())],
                ..HttpRequest::new("GET", "http://127.0.0.1/")
            },
            "x-ok",
        ),
    ];
    for (req, part) in cases {
        let err = client.run(&req, &cancel).await.unwrap_err();
        assert!(matches!(err, ExecError::InvalidRequest(_)), "{err}");
        assert!(err.to_string().contains(part), "{err} should name {part}");
    }
}
