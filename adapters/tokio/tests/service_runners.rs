//! The service's `http` and `sql` scripts through their runners: an `http`
//! script calling the service's own `/healthz` over a real connection, and
//! an `sql` script on a pool of the registry, created on first use in the
//! process-wide pool registry, against a PostgreSQL server of the test's
//! own.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mechops_tokio::http::{self, HttpConfig};
use mechops_tokio::jobs::open::StoreUrl;
use mechops_tokio::service::{ServiceConfig, ServiceError, ToolService};
use serde_json::{Map, Value, json};
use support::postgres_server::PostgresServer;
use support::redis_server::{Persistence, RedisServer};
use tokio_util::sync::CancellationToken;

fn test_dir(name: &str, registry: &Value) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("service-runners-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("registry.json"), registry.to_string()).unwrap();
    dir
}

fn config(dir: &Path) -> ServiceConfig {
    let mut c = ServiceConfig::from_env(dir.join("registry.json")).unwrap();
    c.store = StoreUrl::Memory(None);
    c.workspace = dir.join("workspace");
    c.worker = None;
    c
}

fn args(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_script_calls_the_service_itself() {
    let listener = http::bind("127.0.0.1:0".parse().unwrap(), &HttpConfig::default())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let registry = json!({"version": 1, "scripts": [
        {"id": "self-health", "kind": "http", "method": "GET",
         "url": format!("http://{addr}/healthz"), "timeout_ms": 10000, "arguments": {}},
        {"id": "self-missing", "kind": "http", "method": "GET",
         "url": format!("http://{addr}/scripts/{{id}}"), "timeout_ms": 10000,
         "arguments": {"id": {"type": "string", "required": true}}}
    ], "pools": {}});
    let dir = test_dir("http", &registry);
    let service = ToolService::start(config(&dir)).await.unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn({
        let (service, shutdown) = (Arc::clone(&service), shutdown.clone());
        async move { http::serve(listener, service, &HttpConfig::default(), shutdown).await }
    });

    let out = service.execute("self-health", &Map::new()).await.unwrap();
    assert!(out.ok, "{out:?}");
    assert_eq!(out.status, Some(200));
    assert_eq!(out.body.as_deref(), Some(r#"{"status":"ok"}"#));
    // A 404 is a run that failed, not a service error; the placeholder is
    // percent-encoded into the path.
    let out = service
        .execute("self-missing", &args(json!({"id": "no such/thing"})))
        .await
        .unwrap();
    assert!(!out.ok);
    assert_eq!(out.status, Some(404));
    let body: Value = serde_json::from_str(out.body.as_deref().unwrap()).unwrap();
    assert_eq!(body["error"], "unknown_script");
    assert!(
        body["detail"].as_str().unwrap().contains("no such/thing"),
        "{body}"
    );
    let stats = service.stats_json().await.unwrap();
    assert_eq!(stats["executions"]["self-missing"]["failures"], 1);

    shutdown.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sql_script_runs_on_a_registry_pool_made_on_first_use() {
    let Some(server) = PostgresServer::start(Path::new(env!("CARGO_TARGET_TMPDIR"))) else {
        return;
    };
    let pool = format!("service-main-{}", std::process::id());
    let registry = json!({"version": 1, "scripts": [
        {"id": "team", "kind": "sql", "pool": pool,
         "query": "SELECT $1::text AS team, $2::int8 * 2 AS doubled",
         "params": ["{team}", "{n}"], "timeout_ms": 10000,
         "arguments": {"team": {"type": "string", "required": true},
                       "n": {"type": "integer", "required": true}}}
    ], "pools": {pool.clone(): {"url": server.url(), "min_connections": 1, "max_connections": 2}}});
    let dir = test_dir("sql", &registry);
    let service = ToolService::start(config(&dir)).await.unwrap();
    assert!(mechops_tokio::conn::registry().get_any(&pool).is_none());

    // An injection attempt is a parameter, never query text.
    let team = "x'); DROP TABLE users; --";
    let out = service
        .execute("team", &args(json!({"team": team, "n": 21})))
        .await
        .unwrap();
    assert!(out.ok, "{out:?}");
    let rows = out.rows.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["team"], team);
    assert_eq!(rows[0]["doubled"], 42);
    assert!(mechops_tokio::conn::registry().get_any(&pool).is_some());
    let metrics = service.metrics_text().await.unwrap();
    assert!(metrics.contains(&pool), "{metrics}");

    let err = service
        .execute("team", &args(json!({"team": "a", "n": "many"})))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ServiceError::InvalidArguments { .. }),
        "{err}"
    );

    service.shutdown().await;
    // The service closes the pools it made.
    assert!(mechops_tokio::conn::registry().get_any(&pool).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_two_services_share_parsed_scripts() {
    let Some(redis) = RedisServer::start(Path::new(env!("CARGO_TARGET_TMPDIR")), Persistence::None)
    else {
        return;
    };
    let registry = json!({"version": 1, "scripts": [
        {"id": "hi", "kind": "command", "command": ["sh", "-c", "echo hi"],
         "timeout_ms": 10000, "arguments": {}}
    ], "pools": {}});
    let name = format!("service-tier-{}", std::process::id());
    let mut services = Vec::new();
    for who in ["a", "b"] {
        let dir = test_dir(&format!("tier-{who}"), &registry);
        let mut c = config(&dir);
        c.redis_url = Some(redis.url());
        c.tier_name = Some(name.clone());
        services.push(ToolService::start(c).await.unwrap());
    }
    // The first lookup parses the local file and offers the entry to
    // Redis; the other process then takes it from there.
    let out = services[0].execute("hi", &Map::new()).await.unwrap();
    assert_eq!(out.stdout, "hi\n");
    let out = services[1].execute("hi", &Map::new()).await.unwrap();
    assert_eq!(out.stdout, "hi\n");
    let a = services[0].stats_json().await.unwrap();
    let b = services[1].stats_json().await.unwrap();
    assert_eq!(a["cache"]["tier"]["local_lookups"], 1, "{a}");
    assert_eq!(b["cache"]["tier"]["shared_hits"], 1, "{b}");
    assert_eq!(b["cache"]["tier"]["local_lookups"], 0, "{b}");
    // An unknown script is unknown through the tier too.
    let err = services[1].execute("nope", &Map::new()).await.unwrap_err();
    assert!(matches!(err, ServiceError::UnknownScript(_)), "{err}");
    for s in services {
        s.shutdown().await;
    }
}
