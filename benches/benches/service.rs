//! The tool execution service over HTTP: requests per second for
//! `GET /scripts/{id}` and `POST /jobs` (SQLite store, `synchronous=FULL`,
//! no worker, so only the submission is measured), with a client keeping
//! `CONCURRENCY` requests in flight over keep-alive connections, in the same
//! process.
//!
//! The peer is the floor a service on the same stack cannot go below: a bare
//! axum route answering the same bytes (for the lookup), and a bare axum
//! route submitting the same job straight to the same kind of queue (for the
//! submission), both behind the same client. The ratio says what the service
//! adds: the token check, the registry cache, argument validation, error
//! handling.
//!
//! `cargo bench -p mechops-benches --bench service`

use core::net::SocketAddr;
use core::time::Duration;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mechops_alloc::job::JobSpec;
use mechops_tokio::http::{self, HttpConfig};
use mechops_tokio::jobs::open::StoreUrl;
use mechops_tokio::jobs::runtime::Queue;
use mechops_tokio::jobs::sqlite::{SqliteStore, Synchronous};
use mechops_tokio::jobs::store::StoreConfig;
use mechops_tokio::service::{ServiceConfig, ToolService};
use tokio_util::sync::CancellationToken;

/// Requests per measured batch.
const REQUESTS: u64 = 2_000;
/// Requests in flight at once.
const CONCURRENCY: usize = 16;
const TOKEN: &str = "bench-token";

const REGISTRY: &str = r#"{"version":1,"scripts":[
 {"id":"echo","name":"Echo","description":"Prints its text","tags":["bench"],"kind":"command",
  "command":["sh","-c","printf '%s\n' \"$1\"","sh","{text}"],"timeout_ms":5000,
  "arguments":{"text":{"type":"string","required":true,"description":"what to print"}}}
],"pools":{}}"#;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "mechops-bench-service-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn listen(app: Router) -> (SocketAddr, CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(s.cancelled_owned())
            .await
            .unwrap();
    });
    (addr, stop)
}

/// Sends `n` requests, `CONCURRENCY` at a time; every answer must have
/// `status`.
async fn load(
    client: &reqwest::Client,
    n: u64,
    status: u16,
    make: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync + 'static,
) -> Duration {
    let make = Arc::new(make);
    let per = n / CONCURRENCY as u64;
    let start = std::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (client, make) = (client.clone(), Arc::clone(&make));
        tasks.spawn(async move {
            for _ in 0..per {
                let r = make(&client).send().await.unwrap();
                assert_eq!(r.status().as_u16(), status);
                core::hint::black_box(r.bytes().await.unwrap());
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let rt = rt();
    let d = dir("svc");
    std::fs::write(d.join("registry.json"), REGISTRY).unwrap();
    let (svc_addr, svc_stop, bare_addr, bare_stop, script_json) = rt.block_on(async {
        let mut config = ServiceConfig::from_env(d.join("registry.json")).unwrap();
        config.store = StoreUrl::Sqlite {
            path: d.join("jobs.db"),
            sync: Synchronous::Full,
        };
        config.workspace = d.join("workspace");
        config.worker = None;
        let service = ToolService::start(config).await.unwrap();
        let script_json = service.script_json("echo").await.unwrap().to_string();
        let http_config = HttpConfig {
            token: Some(TOKEN.into()),
            ..HttpConfig::default()
        };
        let (svc_addr, svc_stop) = listen(http::router(
            Arc::clone(&service),
            &http_config,
            CancellationToken::new(),
        ))
        .await;
        // The peer: the same answer bytes, and a submission straight to a
        // queue on its own SQLite file with the same settings.
        let (store, _) = (
            Arc::new(
                SqliteStore::open(
                    &d.join("bare.db"),
                    Synchronous::Full,
                    StoreConfig::default(),
                )
                .unwrap(),
            ),
            (),
        );
        let queue = Queue::new(store, mechops_tokio::jobs::runtime::JobClock::System);
        let body = script_json.clone();
        let bare = Router::new()
            .route(
                "/scripts/{id}",
                get(move || {
                    let body = body.clone();
                    async move { ([("content-type", "application/json")], body) }
                }),
            )
            .route(
                "/jobs",
                post(move |body: axum::body::Bytes| {
                    let queue = queue.clone();
                    async move {
                        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                        let spec = JobSpec::new("script", v.to_string());
                        let id = queue.submit(spec).await.unwrap();
                        (
                            axum::http::StatusCode::ACCEPTED,
                            serde_json::json!({"id": id.to_string()}).to_string(),
                        )
                    }
                }),
            );
        let (bare_addr, bare_stop) = listen(bare).await;
        (svc_addr, svc_stop, bare_addr, bare_stop, script_json)
    });
    core::hint::black_box(script_json);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();

    let targets = [("mechops_service", svc_addr), ("bare_axum", bare_addr)];
    group(
        c,
        &rt,
        &client,
        "service_get_script",
        &targets,
        200,
        |addr| {
            let url = format!("http://{addr}/scripts/echo");
            Box::new(move |c| c.get(&url).bearer_auth(TOKEN))
        },
    );
    let body = r#"{"script_id":"echo","arguments":{"text":"hello"}}"#;
    group(c, &rt, &client, "service_post_job", &targets, 202, |addr| {
        let url = format!("http://{addr}/jobs");
        Box::new(move |c| c.post(&url).bearer_auth(TOKEN).body(body))
    });
    svc_stop.cancel();
    bare_stop.cancel();
    // The stores' files go with the folder; nothing reads them after the run.
    if let Err(e) = std::fs::remove_dir_all(&d) {
        eprintln!("could not remove {}: {e}", d.display());
    }
}

type MakeRequest = Box<dyn Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync>;

/// One criterion group: `REQUESTS` requests per iteration against each
/// target, every answer `status`.
fn group(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    name: &str,
    targets: &[(&str, SocketAddr)],
    status: u16,
    request: impl Fn(SocketAddr) -> MakeRequest,
) {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(REQUESTS));
    g.sample_size(10);
    for &(who, addr) in targets {
        let make: Arc<MakeRequest> = Arc::new(request(addr));
        g.bench_function(BenchmarkId::new(who, REQUESTS), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let make = Arc::clone(&make);
                        total += load(client, REQUESTS, status, move |c| make(c)).await;
                    }
                    total
                })
            });
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
