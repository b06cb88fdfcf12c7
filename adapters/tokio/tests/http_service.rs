//! The HTTP API end to end: a real server on a free loopback port, a real
//! client, the SQLite job store and a workspace under the target folder.
//! Scripts that must be caught mid-run wait for gate files the test
//! creates, so nothing here depends on speed.

use core::net::SocketAddr;
use core::time::Duration;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mechops_tokio::http::{self, HttpConfig, ServeError};
use mechops_tokio::jobs::open::StoreUrl;
use mechops_tokio::jobs::runtime::WorkerConfig;
use mechops_tokio::jobs::sqlite::Synchronous;
use mechops_tokio::service::{ServiceConfig, ToolService};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const REGISTRY: &str = r#"{
  "version": 1,
  "scripts": [
    {"id": "echo", "name": "Echo", "kind": "command",
     "command": ["sh", "-c", "printf '%s\n' \"$1\"", "sh", "{text}"],
     "timeout_ms": 10000,
     "arguments": {"text": {"type": "string", "required": true}}},
    {"id": "fail", "kind": "command", "command": ["sh", "-c", "echo oops >&2; exit 3"],
     "timeout_ms": 10000, "max_retries": 0, "arguments": {}},
    {"id": "gated", "kind": "command",
     "command": ["sh", "-c",
       "d=$1; touch \"$d/started\"; echo '::progress 10 waiting' >&2; while [ ! -e \"$d/gate1\" ]; do sleep 0.01; done; echo '::progress 60 halfway' >&2; while [ ! -e \"$d/gate2\" ]; do sleep 0.01; done; echo '::progress 100 done' >&2; echo finished",
       "sh", "{dir}"],
     "timeout_ms": 600000, "max_retries": 0,
     "arguments": {"dir": {"type": "string", "required": true}}}
  ],
  "pools": {}
}"#;

/// A plain client; rustls needs its crypto provider chosen even when
/// nothing here uses TLS.
fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

fn test_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("http-service-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("registry.json"), REGISTRY).unwrap();
    dir
}

fn config(dir: &Path) -> ServiceConfig {
    let mut c = ServiceConfig::from_env(dir.join("registry.json")).unwrap();
    c.store = StoreUrl::Sqlite {
        path: dir.join("jobs.db"),
        sync: Synchronous::Normal,
    };
    c.workspace = dir.join("workspace");
    let mut w = WorkerConfig::new(2);
    w.heartbeat = Duration::from_millis(200);
    w.grace = Duration::from_millis(300);
    c.worker = Some(w);
    c
}

struct Server {
    base: String,
    service: Arc<ToolService>,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), ServeError>>,
    client: reqwest::Client,
    token: Option<String>,
}

impl Server {
    async fn start(dir: &Path, http_config: HttpConfig) -> Self {
        let service = ToolService::start(config(dir)).await.unwrap();
        let listener = http::bind("127.0.0.1:0".parse().unwrap(), &http_config)
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn({
            let (service, shutdown, c) =
                (Arc::clone(&service), shutdown.clone(), http_config.clone());
            async move { http::serve(listener, service, &c, shutdown).await }
        });
        Self {
            base: format!("http://{addr}"),
            service,
            shutdown,
            task,
            client: client(),
            token: http_config.token,
        }
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.client.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = self.req(method, path);
        if let Some(b) = body {
            r = r
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }

    /// Polls the job until `done` says its status is what the test waits
    /// for; the bound only keeps a broken build from hanging.
    async fn wait_job(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..6000 {
            let (code, v) = self.get(&format!("/jobs/{id}")).await;
            assert_eq!(code, 200, "{v}");
            if done(&v) {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("job {id} never reached the awaited state");
    }
}

async fn wait_file(path: &Path) {
    for _ in 0..6000 {
        if path.exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{} never appeared", path.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_routes_and_sync_runs() {
    let dir = test_dir("scripts");
    let s = Server::start(&dir, HttpConfig::default()).await;

    let (code, v) = s.get("/healthz").await;
    assert_eq!((code, v), (200, json!({"status": "ok"})));

    let (code, v) = s.get("/scripts").await;
    assert_eq!(code, 200);
    let ids: Vec<&str> = v["scripts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["echo", "fail", "gated"]);

    let (code, v) = s.get("/scripts/echo").await;
    assert_eq!(code, 200);
    assert_eq!(v["id"], "echo");
    assert_eq!(v["arguments"]["text"]["type"], "string");
    // Served as JSON, the same text every time (kept with the cached
    // script, not serialized per request).
    let mut bodies = Vec::new();
    for _ in 0..2 {
        let resp = s
            .req(reqwest::Method::GET, "/scripts/echo")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.headers()["content-type"], "application/json");
        bodies.push(resp.text().await.unwrap());
    }
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(serde_json::from_str::<Value>(&bodies[0]).unwrap(), v);

    let (code, v) = s.get("/scripts/nope").await;
    assert_eq!(code, 404);
    assert_eq!(v["error"], "unknown_script");
    assert!(v["detail"].as_str().unwrap().contains("nope"));

    // Shell metacharacters reach the program as one plain argument.
    let text = "a; echo injected $(id) `id` -- --x";
    let (code, v) = s
        .post("/scripts/echo/run", json!({"arguments": {"text": text}}))
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["ok"], true);
    assert_eq!(v["exit_code"], 0);
    assert_eq!(v["stdout"], format!("{text}\n"));
    for key in [
        "stderr",
        "stdout_truncated",
        "stderr_truncated",
        "duration_ms",
        "progress",
        "error",
    ] {
        assert!(v.get(key).is_some(), "outcome lacks {key}: {v}");
    }

    let (code, v) = s.post("/scripts/fail/run", json!({})).await;
    assert_eq!(code, 200);
    assert_eq!(v["ok"], false);
    assert_eq!(v["exit_code"], 3);
    assert_eq!(v["stderr"], "oops\n");

    // Invalid arguments: nothing runs, 400 naming the argument.
    let (code, v) = s.post("/scripts/echo/run", json!({"arguments": {}})).await;
    assert_eq!(code, 400, "{v}");
    assert_eq!(v["error"], "invalid_arguments");
    assert!(v["detail"].as_str().unwrap().contains("text"), "{v}");
    let (code, v) = s
        .post("/scripts/echo/run", json!({"arguments": {"text": 5}}))
        .await;
    assert_eq!((code, &v["error"]), (400, &json!("invalid_arguments")));
    // A value over the kernel's per-argument limit is refused before the
    // spawn would fail with E2BIG.
    let huge = "h".repeat(mechops_std::registry::MAX_ARG_BYTES + 1);
    let (code, v) = s
        .post("/scripts/echo/run", json!({"arguments": {"text": huge}}))
        .await;
    assert_eq!(
        (code, &v["error"]),
        (400, &json!("invalid_arguments")),
        "{v}"
    );
    let detail = v["detail"].as_str().unwrap();
    assert!(
        detail.contains("argument \"text\": makes program argument 4 131072 bytes long"),
        "{detail}"
    );

    let (code, v) = s.post("/scripts/nope/run", json!({})).await;
    assert_eq!((code, &v["error"]), (404, &json!("unknown_script")));

    // A body that is not JSON, or not an object, or has unknown fields.
    let resp = s
        .req(reqwest::Method::POST, "/scripts/echo/run")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let (code, _) = s.post("/scripts/echo/run", json!([1])).await;
    assert_eq!(code, 400);
    let (code, v) = s.post("/scripts/echo/run", json!({"argumnets": {}})).await;
    assert_eq!(code, 400);
    assert!(v["detail"].as_str().unwrap().contains("argumnets"));

    let (code, v) = s.get("/no/such/route").await;
    assert_eq!((code, &v["error"]), (404, &json!("not_found")));

    // Statistics count the runs (the refused ones are not runs).
    let (code, v) = s.get("/stats").await;
    assert_eq!(code, 200);
    for key in ["hits", "misses", "evictions", "hit_rate", "memory_usage"] {
        assert!(v["cache"].get(key).is_some(), "cache lacks {key}: {v}");
    }
    for key in ["queue_size", "running", "completed", "failed"] {
        assert!(v["queue"].get(key).is_some(), "queue lacks {key}: {v}");
    }
    let echo = &v["executions"]["echo"];
    assert_eq!(echo["total_executions"], 1, "{v}");
    assert_eq!(echo["failures"], 0);
    assert_eq!(v["executions"]["fail"]["failures"], 1);
    for key in ["avg_execution_time_ms", "p50_ms", "p95_ms", "p99_ms"] {
        assert!(echo.get(key).is_some(), "executions lack {key}: {v}");
    }

    let resp = s
        .req(reqwest::Method::GET, "/metrics")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("mechops_executions_total{script=\"echo\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("mechops_queue_jobs{state=\"queued\"}"),
        "{text}"
    );

    // Each run's outcome is in the workspace.
    let runs: Vec<_> = std::fs::read_dir(dir.join("workspace/runs"))
        .unwrap()
        .collect();
    assert_eq!(runs.len(), 2);

    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_routes() {
    let dir = test_dir("jobs");
    let s = Server::start(&dir, HttpConfig::default()).await;

    let (code, v) = s
        .post(
            "/jobs",
            json!({"script_id": "echo", "arguments": {"text": "queued hello"}, "priority": "high", "delay_ms": 0}),
        )
        .await;
    assert_eq!(code, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    let st = s.wait_job(&id, |v| v["state"] == "completed").await;
    assert_eq!(st["id"], id.as_str());
    assert_eq!(st["handler"], "script");
    assert_eq!(st["priority"], "high");
    assert_eq!(st["attempts"], 1);
    assert_eq!(st["max_attempts"], 4, "max_retries defaults to 3");
    assert_eq!(st["result"]["stdout"], "queued hello\n");
    let run = std::fs::read(dir.join(format!("workspace/runs/{id}.json"))).unwrap();
    let run: Value = serde_json::from_slice(&run).unwrap();
    assert_eq!(run["stdout"], "queued hello\n");

    // A failing script dies after its retries (none here) with the error.
    let (code, v) = s.post("/jobs", json!({"script_id": "fail"})).await;
    assert_eq!(code, 202);
    let fid = v["id"].as_str().unwrap().to_owned();
    let st = s.wait_job(&fid, |v| v["state"] == "dead").await;
    assert_eq!(st["max_attempts"], 1);
    assert!(st["error"].as_str().unwrap().contains('3'), "{st}");

    // Refused before queueing.
    let (code, v) = s.post("/jobs", json!({"script_id": "echo"})).await;
    assert_eq!((code, &v["error"]), (400, &json!("invalid_arguments")));
    let (code, v) = s.post("/jobs", json!({"script_id": "nope"})).await;
    assert_eq!((code, &v["error"]), (404, &json!("unknown_script")));
    let (code, _) = s.post("/jobs", json!({"arguments": {}})).await;
    assert_eq!(code, 400);
    let (code, _) = s
        .post(
            "/jobs",
            json!({"script_id": "echo", "arguments": {"text": "x"}, "priority": "urgent"}),
        )
        .await;
    assert_eq!(code, 400);

    // A delayed job is cancelled before it runs.
    let (code, v) = s
        .post(
            "/jobs",
            json!({"script_id": "echo", "arguments": {"text": "later"}, "delay_ms": 3_600_000}),
        )
        .await;
    assert_eq!(code, 202);
    let did = v["id"].as_str().unwrap().to_owned();
    let (code, v) = s.get(&format!("/jobs/{did}")).await;
    assert_eq!((code, &v["state"]), (200, &json!("delayed")));
    let (code, v) = s
        .call(reqwest::Method::DELETE, &format!("/jobs/{did}"), None)
        .await;
    assert_eq!(code, 200, "{v}");
    let (_, v) = s.get(&format!("/jobs/{did}")).await;
    assert_eq!(v["state"], "cancelled");

    // A finished job cannot be cancelled; unknown and malformed IDs.
    let (code, v) = s
        .call(reqwest::Method::DELETE, &format!("/jobs/{id}"), None)
        .await;
    assert_eq!((code, &v["error"]), (409, &json!("conflict")));
    let unknown = "01890a5d-ac96-774b-bcce-b302099a8057";
    let (code, v) = s.get(&format!("/jobs/{unknown}")).await;
    assert_eq!((code, &v["error"]), (404, &json!("unknown_job")));
    let (code, v) = s
        .call(reqwest::Method::DELETE, &format!("/jobs/{unknown}"), None)
        .await;
    assert_eq!(code, 404, "{v}");
    let (code, v) = s.get("/jobs/not-a-uuid").await;
    assert_eq!((code, &v["error"]), (400, &json!("bad_request")));
    let resp = s
        .req(reqwest::Method::GET, &format!("/jobs/{unknown}/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);

    let (_, v) = s.get("/stats").await;
    assert!(v["queue"]["completed"].as_u64().unwrap() >= 1, "{v}");
    assert!(v["queue"]["failed"].as_u64().unwrap() >= 1, "{v}");

    s.stop().await;
}

/// Reads server-sent events until `done`; calls `seen` on each.
async fn read_events(
    resp: reqwest::Response,
    mut seen: impl FnMut(&str, &Value),
) -> Vec<(String, Value)> {
    let mut resp = resp;
    let mut buf = String::new();
    let mut events = Vec::new();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        buf.push_str(core::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut name = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = Some(n.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            if let Some(name) = name {
                let v: Value = serde_json::from_str(&data).unwrap();
                seen(&name, &v);
                let done = name == "done";
                events.push((name, v));
                if done {
                    return events;
                }
            }
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stream_progress_in_order_then_done() {
    let dir = test_dir("events");
    let s = Server::start(&dir, HttpConfig::default()).await;
    let gates = dir.join("gates");
    std::fs::create_dir_all(&gates).unwrap();
    let (code, v) = s
        .post(
            "/jobs",
            json!({"script_id": "gated", "arguments": {"dir": gates.to_str().unwrap()}}),
        )
        .await;
    assert_eq!(code, 202);
    let id = v["id"].as_str().unwrap().to_owned();
    let resp = s
        .req(reqwest::Method::GET, &format!("/jobs/{id}/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    // Each gate opens once the progress before it has arrived, so no
    // report can be merged into the next.
    let events = read_events(resp, |name, v| {
        if name == "progress" {
            let gate = match v["percent"].as_f64().unwrap() as u64 {
                10 => "gate1",
                60 => "gate2",
                _ => return,
            };
            std::fs::write(gates.join(gate), b"").unwrap();
        }
    })
    .await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"state"), "{events:?}");
    assert_eq!(&names[names.len() - 2..], ["state", "done"], "{events:?}");
    assert_eq!(events[names.len() - 2].1, json!({"state": "completed"}));
    let done = &events.last().unwrap().1;
    assert_eq!(done["id"], id.as_str());
    assert_eq!(done["state"], "completed");
    assert_eq!(done["result"]["stdout"], "finished\n");
    let progress: Vec<(u64, String)> = events
        .iter()
        .filter(|(n, _)| n == "progress")
        .map(|(_, v)| {
            (
                v["percent"].as_f64().unwrap() as u64,
                v["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        &progress[..2],
        [(10, "waiting".to_owned()), (60, "halfway".to_owned())]
    );
    assert!(
        progress.len() <= 3 && progress.windows(2).all(|w| w[0].0 < w[1].0),
        "{progress:?}"
    );
    // Progress comes while running, after the running state.
    let running = events
        .iter()
        .position(|(n, v)| n == "state" && v["state"] == "running")
        .unwrap();
    let first_progress = names.iter().position(|n| *n == "progress").unwrap();
    assert!(running < first_progress, "{events:?}");

    // A finished job's stream is its state and the end.
    let resp = s
        .req(reqwest::Method::GET, &format!("/jobs/{id}/events"))
        .send()
        .await
        .unwrap();
    let events = read_events(resp, |_, _| {}).await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["state", "done"]);

    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_a_job_run_by_another_worker_come_from_the_store() {
    let dir = test_dir("events-elsewhere");
    // This server runs no worker; a second service on the same SQLite file
    // (another process, as far as the first can tell) runs the job.
    let mut front = config(&dir);
    front.worker = None;
    let service = ToolService::start(front).await.unwrap();
    let listener = http::bind("127.0.0.1:0".parse().unwrap(), &HttpConfig::default())
        .await
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn({
        let (service, shutdown) = (Arc::clone(&service), shutdown.clone());
        async move { http::serve(listener, service, &HttpConfig::default(), shutdown).await }
    });
    let gates = dir.join("gates");
    std::fs::create_dir_all(&gates).unwrap();
    let c = client();
    let resp = c
        .post(format!("{base}/jobs"))
        .body(
            json!({"script_id": "gated", "arguments": {"dir": gates.to_str().unwrap()}})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let id = resp.json_body().await["id"].as_str().unwrap().to_owned();
    let events = c
        .get(format!("{base}/jobs/{id}/events"))
        .send()
        .await
        .unwrap();
    let worker = ToolService::start(config(&dir)).await.unwrap();
    // The script waits at its first gate until the run was seen.
    let reader = tokio::spawn(read_events(events, |_, _| {}));
    wait_file(&gates.join("started")).await;
    std::fs::write(gates.join("gate1"), b"").unwrap();
    std::fs::write(gates.join("gate2"), b"").unwrap();
    let events = reader.await.unwrap();
    let states: Vec<&str> = events
        .iter()
        .filter(|(n, _)| n == "state")
        .map(|(_, v)| v["state"].as_str().unwrap())
        .collect();
    assert_eq!(states.first(), Some(&"queued"), "{events:?}");
    assert_eq!(states.last(), Some(&"completed"), "{events:?}");
    let (last, done) = events.last().unwrap();
    assert_eq!(last, "done");
    assert_eq!(done["result"]["stdout"], "finished\n");
    let percents: Vec<f64> = events
        .iter()
        .filter(|(n, _)| n == "progress")
        .map(|(_, v)| v["percent"].as_f64().unwrap())
        .collect();
    assert!(percents.windows(2).all(|w| w[0] < w[1]), "{percents:?}");
    worker.shutdown().await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_guards_every_route_but_healthz() {
    let dir = test_dir("token");
    let token = "s3cret-token".to_owned();
    let s = Server::start(
        &dir,
        HttpConfig {
            token: Some(token.clone()),
            ..HttpConfig::default()
        },
    )
    .await;
    let bare = client();
    let routes = [
        (reqwest::Method::GET, "/scripts"),
        (reqwest::Method::GET, "/scripts/echo"),
        (reqwest::Method::POST, "/scripts/echo/run"),
        (reqwest::Method::POST, "/jobs"),
        (
            reqwest::Method::GET,
            "/jobs/01890a5d-ac96-774b-bcce-b302099a8057",
        ),
        (
            reqwest::Method::DELETE,
            "/jobs/01890a5d-ac96-774b-bcce-b302099a8057",
        ),
        (
            reqwest::Method::GET,
            "/jobs/01890a5d-ac96-774b-bcce-b302099a8057/events",
        ),
        (reqwest::Method::GET, "/stats"),
        (reqwest::Method::GET, "/metrics"),
    ];
    for (method, path) in routes {
        let url = format!("{}{path}", s.base);
        let none = bare.request(method.clone(), &url).send().await.unwrap();
        assert_eq!(
            none.status().as_u16(),
            401,
            "{method} {path} without a token"
        );
        let v: Value = none.json_body().await;
        assert_eq!(v["error"], "unauthorized");
        for wrong in ["s3cret-toke", "s3cret-token2", "", "S3CRET-TOKEN"] {
            let r = bare
                .request(method.clone(), &url)
                .bearer_auth(wrong)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 401, "{method} {path} with {wrong:?}");
        }
        let basic = bare
            .request(method.clone(), &url)
            .header("authorization", format!("Basic {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(basic.status().as_u16(), 401);
    }
    let open = bare
        .get(format!("{}/healthz", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(open.status().as_u16(), 200);
    // With the token, the routes answer.
    let (code, _) = s.get("/scripts").await;
    assert_eq!(code, 200);
    let (code, v) = s
        .post("/scripts/echo/run", json!({"arguments": {"text": "hi"}}))
        .await;
    assert_eq!((code, &v["stdout"]), (200, &json!("hi\n")));
    s.stop().await;
}

trait JsonBody {
    async fn json_body(self) -> Value;
}

impl JsonBody for reqwest::Response {
    async fn json_body(self) -> Value {
        serde_json::from_str(&self.text().await.unwrap()).unwrap()
    }
}

#[tokio::test]
async fn no_token_means_loopback_only() {
    let config = HttpConfig::default();
    for addr in ["0.0.0.0:0", "[::]:0", "192.0.2.1:7878"] {
        let addr: SocketAddr = addr.parse().unwrap();
        let err = http::bind(addr, &config).await.unwrap_err();
        assert!(matches!(err, ServeError::NoToken(a) if a == addr), "{err}");
        assert!(err.to_string().contains("MECHOPS_TOKEN"), "{err}");
    }
    let empty = HttpConfig {
        token: Some(String::new()),
        ..HttpConfig::default()
    };
    let err = http::bind("127.0.0.1:0".parse().unwrap(), &empty)
        .await
        .unwrap_err();
    assert!(matches!(err, ServeError::EmptyToken));
    // Loopback is fine without a token.
    let l = http::bind("127.0.0.1:0".parse().unwrap(), &config)
        .await
        .unwrap();
    assert!(l.local_addr().unwrap().ip().is_loopback());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_are_refused() {
    let dir = test_dir("limit");
    let s = Server::start(&dir, HttpConfig::default()).await;
    let text = "x".repeat(http::DEFAULT_BODY_LIMIT);
    let (code, v) = s
        .post("/scripts/echo/run", json!({"arguments": {"text": text}}))
        .await;
    assert_eq!(code, 413, "{v}");
    assert_eq!(v["error"], "payload_too_large");
    let (code, v) = s
        .post(
            "/jobs",
            json!({"script_id": "echo", "arguments": {"text": text}}),
        )
        .await;
    assert_eq!((code, &v["error"]), (413, &json!("payload_too_large")));
    // Nothing was queued.
    let (_, v) = s.get("/stats").await;
    assert_eq!(v["queue"]["queue_size"], 0);
    // A body of exactly the limit is accepted (white space pads it: one
    // argv element cannot hold a megabyte).
    let mut body = json!({"arguments": {"text": "fits"}}).to_string();
    body.push_str(&" ".repeat(http::DEFAULT_BODY_LIMIT - body.len()));
    let resp = s
        .req(reqwest::Method::POST, "/scripts/echo/run")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.json_body().await["stdout"], "fits\n");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_requests_and_releases_running_jobs() {
    let dir = test_dir("shutdown");
    let s = Server::start(&dir, HttpConfig::default()).await;
    // A job caught mid-run: the worker's grace period ends before its gate
    // opens, so it is released to the queue, not lost.
    let job_gates = dir.join("job");
    std::fs::create_dir_all(&job_gates).unwrap();
    let (code, v) = s
        .post(
            "/jobs",
            json!({"script_id": "gated", "arguments": {"dir": job_gates.to_str().unwrap()}}),
        )
        .await;
    assert_eq!(code, 202);
    let id = v["id"].as_str().unwrap().to_owned();
    wait_file(&job_gates.join("started")).await;

    // A request in flight when the shutdown starts still gets its answer.
    let req_gates = dir.join("req");
    std::fs::create_dir_all(&req_gates).unwrap();
    let in_flight = tokio::spawn(
        s.req(reqwest::Method::POST, "/scripts/gated/run")
            .body(json!({"arguments": {"dir": req_gates.to_str().unwrap()}}).to_string())
            .send(),
    );
    wait_file(&req_gates.join("started")).await;
    s.shutdown.cancel();
    // New connections are refused once the listener is closed.
    let base = s.base.clone();
    let mut refused = false;
    for _ in 0..6000 {
        if client()
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_err()
        {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "the listener stayed open after the shutdown");
    std::fs::write(req_gates.join("gate1"), b"").unwrap();
    std::fs::write(req_gates.join("gate2"), b"").unwrap();
    let resp = in_flight.await.unwrap().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let v = resp.json_body().await;
    assert_eq!(v["stdout"], "finished\n");
    s.task.await.unwrap().unwrap();

    // The job went back to the queue; a new service on the same store
    // runs it to the end.
    let s = Server::start(&dir, HttpConfig::default()).await;
    let st = s.service.job_status(&id).await.unwrap();
    assert!(
        ["queued", "running"].contains(&st["state"].as_str().unwrap()),
        "{st}"
    );
    std::fs::write(job_gates.join("gate1"), b"").unwrap();
    std::fs::write(job_gates.join("gate2"), b"").unwrap();
    let st = s.wait_job(&id, |v| v["state"] == "completed").await;
    // The released attempt was given back, not counted.
    assert_eq!(st["attempts"], 1, "{st}");
    assert_eq!(st["result"]["stdout"], "finished\n");
    s.stop().await;
}
