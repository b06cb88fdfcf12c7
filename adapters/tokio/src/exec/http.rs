//! The HTTP runner: one request on a pooled `reqwest` client, retried with
//! the core's [`Backoff`] when that is safe. See the [module docs](super).

use core::time::Duration;
use std::sync::Arc;

use mechops_core::backoff::{Backoff, Jitter, Retry};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::command::DEFAULT_OUTPUT_LIMIT;
use super::outcome::{ExecError, Outcome, Stopped, millis};
use super::output::Capture;

/// How long connecting to a server may take, whatever the request's own
/// timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One HTTP request to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRequest {
    /// The method (`GET`, `POST`, ...), as sent.
    pub method: String,
    /// An `http://` or `https://` URL.
    pub url: String,
    /// Header names and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body, if any.
    pub body: Option<String>,
    /// How long the whole call may take, retries and their waits
    /// included; `None` for no limit.
    pub timeout: Option<Duration>,
    /// The most bytes of the response body kept.
    pub body_limit: usize,
}

impl HttpRequest {
    /// `method` on `url`, no headers, no body, no timeout, the default
    /// body bound (1 MiB).
    pub fn new(method: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            url: url.into(),
            headers: Vec::new(),
            body: None,
            timeout: None,
            body_limit: DEFAULT_OUTPUT_LIMIT,
        }
    }
}

/// A pooled HTTP client shared by every call: connections are kept alive
/// and reused (HTTP/1.1), TLS is rustls with the Mozilla roots
/// (`webpki-roots`, no OpenSSL). Cloning is cheap and shares the pool.
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: reqwest::Client,
    retry: Backoff,
}

/// The default retry policy: up to 3 retries, from 100 ms doubling to at
/// most 2 s, with full jitter.
pub const DEFAULT_HTTP_BACKOFF: Backoff =
    match Backoff::new(Duration::from_millis(100), Duration::from_secs(2), 3) {
        Ok(b) => b.with_jitter(Jitter::Full),
        Err(_) => panic!("the default HTTP backoff is valid"),
    };

impl HttpClient {
    /// A client with the [`DEFAULT_HTTP_BACKOFF`].
    ///
    /// # Errors
    ///
    /// [`ExecError::HttpClient`] when the TLS configuration or the client
    /// cannot be built.
    pub fn new() -> Result<Self, ExecError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ExecError::HttpClient(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| ExecError::HttpClient(error_chain(&e)))?;
        Ok(Self {
            client,
            retry: DEFAULT_HTTP_BACKOFF,
        })
    }

    /// The same client (same pool) retrying with `retry` instead.
    #[must_use]
    pub fn with_backoff(mut self, retry: Backoff) -> Self {
        self.retry = retry;
        self
    }

    /// Sends `request` and returns its [`Outcome`]: `ok` for a 2xx status,
    /// with `status` and `body` (up to the bound; `body_truncated` says
    /// whether the body was cut). A connection error and a 5xx status are
    /// retried with the client's backoff when the method is idempotent
    /// (`GET`, `HEAD`, `PUT`, `DELETE`, `OPTIONS`), within the timeout;
    /// any other method is sent once. A request that got no answer (no
    /// connection, timeout, `cancel`) gives an outcome with `ok: false`, no
    /// `status` and the reason in `error`.
    ///
    /// # Errors
    ///
    /// [`ExecError::InvalidRequest`] naming the method, URL or header that
    /// cannot be sent.
    ///
    /// # Cancellation
    ///
    /// Dropping the future drops the request in flight; its connection is
    /// closed rather than returned to the pool.
    pub async fn run(
        &self,
        request: &HttpRequest,
        cancel: &CancellationToken,
    ) -> Result<Outcome, ExecError> {
        let started = Instant::now();
        let (method, url, headers) = check(request)?;
        let idempotent = matches!(
            method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
        );
        let deadline = request.timeout.map(|t| started + t);
        let mut retry = Retry::new();
        loop {
            let mut builder = self
                .client
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(body) = &request.body {
                builder = builder.body(body.clone());
            }
            if let Some(deadline) = deadline {
                builder = builder.timeout(deadline.saturating_duration_since(Instant::now()));
            }
            let attempt = tokio::select! {
                a = send(builder, request.body_limit) => a,
                () = cancel.cancelled() => {
                    return Ok(no_answer(started, request, "was cancelled".into(), Some(Stopped::Cancelled)));
                }
            };
            let retryable = match &attempt {
                Ok((status, ..)) => status.is_server_error(),
                Err(e) => e.is_connect(),
            };
            if idempotent && retryable {
                let delay = retry.next_delay(&self.retry, getrandom::u64().unwrap_or(0));
                let within = |d: Duration| deadline.is_none_or(|at| Instant::now() + d < at);
                if let Some(delay) = delay.filter(|&d| within(d)) {
                    match &attempt {
                        Ok((status, ..)) => tracing::debug!(%url, %status, ?delay, "retrying"),
                        Err(e) => tracing::debug!(%url, error = %e, ?delay, "retrying"),
                    }
                    tokio::select! {
                        () = tokio::time::sleep(delay) => continue,
                        () = cancel.cancelled() => {
                            return Ok(no_answer(started, request, "was cancelled".into(), Some(Stopped::Cancelled)));
                        }
                    }
                }
            }
            return Ok(match attempt {
                Ok((status, body)) => answered(started, request, status, body),
                Err(e) if e.is_timeout() => no_answer(
                    started,
                    request,
                    format!(
                        "timed out after {} ms",
                        request.timeout.map_or(0, |t| t.as_millis())
                    ),
                    Some(Stopped::TimedOut),
                ),
                Err(e) => no_answer(
                    started,
                    request,
                    format!("failed: {}", error_chain(&e)),
                    None,
                ),
            });
        }
    }
}

/// The request's parts, checked.
fn check(request: &HttpRequest) -> Result<(Method, Url, HeaderMap), ExecError> {
    let bad = |m: String| ExecError::InvalidRequest(m);
    let method = Method::from_bytes(request.method.as_bytes())
        .map_err(|_| bad(format!("invalid HTTP method {:?}", request.method)))?;
    let url =
        Url::parse(&request.url).map_err(|e| bad(format!("invalid URL {:?}: {e}", request.url)))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!(
            "URL {:?} is not http:// or https://",
            request.url
        )));
    }
    let mut headers = HeaderMap::with_capacity(request.headers.len());
    for (name, value) in &request.headers {
        let n = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| bad(format!("invalid header name {name:?}")))?;
        let v = HeaderValue::from_str(value)
            .map_err(|_| bad(format!("invalid value of header {name:?}")))?;
        headers.append(n, v);
    }
    Ok((method, url, headers))
}

/// Sends one attempt and reads the body up to `limit`. Reading stops at
/// the bound: the rest is not fetched, and that connection is closed
/// rather than reused.
async fn send(
    builder: reqwest::RequestBuilder,
    limit: usize,
) -> Result<(StatusCode, Capture), reqwest::Error> {
    let mut response = builder.send().await?;
    let status = response.status();
    let mut body = Capture::new(limit);
    while let Some(chunk) = response.chunk().await? {
        body.push(&chunk);
        if body.is_truncated() {
            break;
        }
    }
    Ok((status, body))
}

fn answered(started: Instant, request: &HttpRequest, status: StatusCode, body: Capture) -> Outcome {
    let (body, truncated) = body.finish();
    let ok = status.is_success();
    Outcome {
        ok,
        duration_ms: millis(started),
        error: (!ok).then(|| format!("{} {} answered {status}", request.method, request.url)),
        status: Some(status.as_u16()),
        body: Some(body),
        body_truncated: Some(truncated),
        ..Outcome::default()
    }
}

fn no_answer(
    started: Instant,
    request: &HttpRequest,
    what: String,
    stopped: Option<Stopped>,
) -> Outcome {
    Outcome {
        duration_ms: millis(started),
        error: Some(format!("{} {} {what}", request.method, request.url)),
        stopped,
        ..Outcome::default()
    }
}

/// An error with its causes, `: `-separated (reqwest shows only the top
/// one).
fn error_chain(error: &dyn core::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
