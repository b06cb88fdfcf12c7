//! The tool execution service over HTTP: JSON routes on axum, a bearer
//! token, a request body limit, and a graceful shutdown.
//!
//! # Routes
//!
//! | route | answer |
//! | --- | --- |
//! | `GET /healthz` | `{"status":"ok"}`, never behind the token |
//! | `GET /scripts` | `{"scripts":[...]}`, each script's public fields |
//! | `GET /scripts/{id}` | one script |
//! | `POST /scripts/{id}/run` `{"arguments"}` | the outcome, once the script is over |
//! | `POST /jobs` `{"script_id","arguments","priority","delay_ms"}` | `202` `{"id"}` |
//! | `GET /jobs/{id}` | the status, as `mechops jobs status --json` |
//! | `GET /jobs/{id}/events` | server-sent events until the job is over |
//! | `DELETE /jobs/{id}` | cancels: `{"id","state"}` |
//! | `GET /stats` | cache, queue and execution statistics |
//! | `GET /metrics` | the same and the connection pools', Prometheus text |
//!
//! Errors are `{"error","detail"}`: `error` a short code
//! ([`ServiceError::code`], or `unauthorized`, `payload_too_large`,
//! `bad_request`), `detail` a sentence. Status codes: 400 bad body or
//! invalid arguments, 401 missing or wrong token, 404 unknown script or
//! job, 409 a job whose state refuses the request, 413 a body over the
//! limit, 500 a failure of the service.
//!
//! # Events
//!
//! `GET /jobs/{id}/events` sends `event: state` with `{"state"}` first,
//! then `event: progress` with `{"percent","message"}` and `event: state`
//! as they happen, and last `event: done` with the job's status (see
//! [`service::events`](crate::service::events) for the order). A
//! comment line every 15 seconds keeps idle connections open.
//!
//! # Security
//!
//! With a token ([`HttpConfig::token`]) every route but `/healthz` needs
//! `Authorization: Bearer TOKEN`, compared in constant time (the BLAKE3
//! hashes of both are compared, so neither the content nor the length of
//! the token leaks through timing). Without a token, [`bind`] refuses
//! every address that is not loopback.
//!
//! # Shutdown
//!
//! [`serve`] stops accepting connections when its shutdown token is
//! cancelled, lets the requests in flight finish (event streams end at
//! once), then shuts the service's worker down gracefully: running jobs
//! get the worker's grace period to finish, after which they are released
//! to the queue for the next start.

use core::convert::Infallible;
use core::net::SocketAddr;
use core::time::Duration;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::service::error::ErrorKind;
use crate::service::events::JobEvent;
use crate::service::{ServiceError, ToolService};

/// The default request body limit: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;

/// The default address: loopback, port 7878.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7878";

/// The HTTP layer's settings.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// The bearer token every route but `/healthz` requires; `None` allows
    /// loopback addresses only.
    pub token: Option<String>,
    /// The largest request body accepted, in bytes.
    pub body_limit: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            token: None,
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }
}

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// No token and an address that is not loopback.
    #[error(
        "refusing to listen on {0} without a token: set MECHOPS_TOKEN or --token-file, \
         or listen on a loopback address such as 127.0.0.1:7878"
    )]
    NoToken(SocketAddr),
    /// The token is empty.
    #[error("the token is empty")]
    EmptyToken,
    /// Binding or serving failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The failure.
        source: std::io::Error,
    },
}

/// Checks the token rule for `addr`, then binds it.
///
/// # Errors
/// [`ServeError::NoToken`] for an address that is not loopback without a
/// token, [`ServeError::EmptyToken`], or the bind failed.
pub async fn bind(addr: SocketAddr, config: &HttpConfig) -> Result<TcpListener, ServeError> {
    match config.token.as_deref() {
        Some("") => return Err(ServeError::EmptyToken),
        None if !addr.ip().is_loopback() => return Err(ServeError::NoToken(addr)),
        _ => {}
    }
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Io {
            context: format!("listening on {addr}"),
            source,
        })
}

#[derive(Clone)]
struct AppState {
    service: Arc<ToolService>,
    token: Option<Arc<blake3::Hash>>,
    shutdown: CancellationToken,
}

/// The routes of the [module docs](self) over `service`. Event streams end
/// when `shutdown` is cancelled.
pub fn router(
    service: Arc<ToolService>,
    config: &HttpConfig,
    shutdown: CancellationToken,
) -> Router {
    let state = AppState {
        service,
        token: config
            .token
            .as_deref()
            .map(|t| Arc::new(blake3::hash(t.as_bytes()))),
        shutdown,
    };
    let protected = Router::new()
        .route("/scripts", get(list_scripts))
        .route("/scripts/{id}", get(get_script))
        .route("/scripts/{id}/run", axum::routing::post(run_script))
        .route("/jobs", axum::routing::post(submit_job))
        .route("/jobs/{id}", get(job_status).delete(cancel_job))
        .route("/jobs/{id}/events", get(job_events))
        .route("/stats", get(stats))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(state.clone(), authorize));
    Router::new()
        .route("/healthz", get(healthz))
        .merge(protected)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(config.body_limit))
        .with_state(state)
}

/// Serves `service` on `listener` until `shutdown` is cancelled, then
/// drains the requests in flight and shuts the service down (see the
/// [module docs](self#shutdown)).
///
/// Cancellation: dropping the future closes the listener and every
/// connection at once and leaves the service running; cancel `shutdown`
/// and await the future for a clean stop.
///
/// # Errors
/// Accepting connections failed.
pub async fn serve(
    listener: TcpListener,
    service: Arc<ToolService>,
    config: &HttpConfig,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let app = router(Arc::clone(&service), config, shutdown.clone());
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .map_err(|source| ServeError::Io {
            context: "serving HTTP".into(),
            source,
        });
    service.shutdown().await;
    served
}

/// An error answer: `{"error","detail"}` with a status.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = axum::Json(json!({"error": self.code, "detail": self.detail}));
        (self.status, body).into_response()
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let status = match e.kind() {
            ErrorKind::BadInput => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::warn!(error = %e, "request failed");
        }
        Self::new(status, e.code(), e.to_string())
    }
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        let status = r.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "payload_too_large"
        } else {
            "bad_request"
        };
        Self::new(status, code, r.body_text())
    }
}

type ApiResult<T> = Result<T, ApiError>;

async fn authorize(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    if let Some(expected) = &state.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        // `blake3::Hash`'s equality is constant-time.
        let ok = given.is_some_and(|g| blake3::hash(g.trim().as_bytes()) == **expected);
        if !ok {
            let detail = if given.is_some() {
                "the bearer token is wrong"
            } else {
                "this route needs Authorization: Bearer TOKEN"
            };
            let mut r =
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", detail).into_response();
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return r;
        }
    }
    next.run(request).await
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

async fn healthz() -> axum::Json<Value> {
    axum::Json(json!({"status": "ok"}))
}

async fn list_scripts(State(s): State<AppState>) -> ApiResult<axum::Json<Value>> {
    Ok(axum::Json(s.service.scripts_json()?))
}

/// A script's JSON text as a response body, shared with the cached
/// script: no copy, no serialization per request.
struct JsonText(Arc<str>);

impl AsRef<[u8]> for JsonText {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

async fn get_script(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<impl axum::response::IntoResponse> {
    let json = s.service.script_json(&id).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Bytes::from_owner(JsonText(json)),
    ))
}

/// Parses a JSON object body; an empty body is `{}`.
fn object_body(body: Result<Bytes, BytesRejection>) -> ApiResult<Map<String, Value>> {
    let body = body?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the body must be a JSON object",
        )),
        Err(e) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("the body is not JSON: {e}"),
        )),
    }
}

fn arguments(body: &mut Map<String, Value>) -> ApiResult<Map<String, Value>> {
    match body.remove("arguments") {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m),
        Some(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "\"arguments\" must be a JSON object",
        )),
    }
}

fn only_keys(body: &Map<String, Value>, known: &[&str]) -> ApiResult<()> {
    match body.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("unknown field {k:?} (known: {})", known.join(", ")),
        )),
        None => Ok(()),
    }
}

async fn run_script(
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<axum::Json<Value>> {
    let mut body = object_body(body)?;
    only_keys(&body, &["arguments"])?;
    let args = arguments(&mut body)?;
    let outcome = s.service.execute(&id, &args).await?;
    Ok(axum::Json(
        serde_json::to_value(&outcome).unwrap_or(Value::Null),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitBody {
    script_id: String,
    #[serde(default)]
    arguments: Option<Map<String, Value>>,
    #[serde(default)]
    priority: Option<String>,
    #[serde(default)]
    delay_ms: Option<u64>,
}

async fn submit_job(
    State(s): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    let body = object_body(body)?;
    let body: SubmitBody = serde_json::from_value(Value::Object(body)).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!(
                "POST /jobs wants {{\"script_id\",\"arguments\",\"priority\",\"delay_ms\"}}: {e}"
            ),
        )
    })?;
    let priority = match body.priority.as_deref() {
        None => mechops_alloc::job::JobPriority::Normal,
        Some(p) => p
            .parse()
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", format!("{e}")))?,
    };
    let id = s
        .service
        .execute_async(
            &body.script_id,
            &body.arguments.unwrap_or_default(),
            priority,
            body.delay_ms.map(Duration::from_millis),
        )
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({"id": id.to_string()})),
    ))
}

async fn job_status(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    Ok(axum::Json(s.service.job_status(&id).await?))
}

async fn cancel_job(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    let state = s.service.cancel(&id).await?;
    Ok(axum::Json(json!({"id": id, "state": state.as_str()})))
}

fn sse_event(e: JobEvent) -> Event {
    match e {
        JobEvent::Progress { percent, message } => Event::default()
            .event("progress")
            .data(json!({"percent": percent, "message": message}).to_string()),
        JobEvent::State(state) => Event::default()
            .event("state")
            .data(json!({"state": state.as_str()}).to_string()),
        JobEvent::Done(status) => Event::default().event("done").data(status.to_string()),
    }
}

async fn job_events(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let rx = s.service.events(&id, s.shutdown.child_token()).await?;
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let e = rx.recv().await?;
        Some((Ok::<_, Infallible>(sse_event(e)), rx))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

async fn stats(State(s): State<AppState>) -> ApiResult<axum::Json<Value>> {
    Ok(axum::Json(s.service.stats_json().await?))
}

async fn metrics(State(s): State<AppState>) -> ApiResult<Response> {
    let text = s.service.metrics_text().await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}
