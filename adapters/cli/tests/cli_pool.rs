//! `mechops pool soak` and `mechops pool ping` against the line server,
//! run in this test process.

use std::process::{Command, Output};

use mechops_tokio::conn::line_server::LineServer;

fn mechops(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mechops"))
        .args(args)
        .output()
        .expect("the mechops binary runs")
}

/// Runs `args` on a blocking thread while the server keeps serving.
async fn run(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        mechops(&args)
    })
    .await
    .unwrap()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_prints_one_json_object() {
    let server = LineServer::local().await.unwrap();
    let url = server.url();
    let out = run(strings(&[
        "pool",
        "soak",
        "--endpoint",
        &url,
        "--min",
        "1",
        "--max",
        "3",
        "--tasks",
        "6",
        "--duration",
        "300ms",
        "--request",
        "SET k v",
        "--json",
    ]))
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    for key in [
        "ops",
        "errors",
        "timeouts",
        "acquire_p50_us",
        "acquire_p99_us",
        "request_p50_us",
        "request_p99_us",
        "max_open",
    ] {
        assert!(v[key].is_u64(), "{key} in {text}");
    }
    assert!(v["ops"].as_u64().unwrap() > 0);
    assert_eq!(v["errors"], 0);
    assert!(v["max_open"].as_u64().unwrap() <= 3);
    let e = &v["per_endpoint"][&url];
    assert_eq!(e["breaker"], "closed", "{text}");
    assert_eq!(e["ops"], v["ops"]);
    assert!(e["opened"].as_u64().unwrap() >= 1);
    assert!(server.max_open() <= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_against_a_dead_endpoint_completes_with_errors() {
    let mut server = LineServer::local().await.unwrap();
    let url = server.url();
    server.kill().await;
    let out = run(strings(&[
        "pool",
        "soak",
        "--endpoint",
        &url,
        "--tasks",
        "2",
        "--duration",
        "200ms",
        "--acquire-timeout",
        "100ms",
        "--json",
    ]))
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ops"], 0);
    assert!(v["timeouts"].as_u64().unwrap() > 0);
    assert_eq!(v["errors"], v["timeouts"]);
    assert_ne!(v["per_endpoint"][&url]["breaker"], "closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_text_output_names_each_endpoint() {
    let a = LineServer::local().await.unwrap();
    let b = LineServer::local().await.unwrap();
    let endpoints = format!("{},{}", a.url(), b.url());
    let out = run(strings(&[
        "pool",
        "soak",
        "--endpoint",
        &endpoints,
        "--min",
        "2",
        "--max",
        "4",
        "--tasks",
        "4",
        "--duration",
        "200ms",
        "--balance",
        "least-connections",
    ]))
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("ops "), "{text}");
    let rate = text
        .lines()
        .find_map(|l| l.strip_prefix("rate"))
        .and_then(|r| r.trim().strip_suffix(" ops/s"))
        .and_then(|r| r.parse::<f64>().ok());
    assert!(rate.is_some_and(|r| r > 0.0), "{text}");
    assert!(text.contains(&a.url()) && text.contains(&b.url()), "{text}");
    assert!(a.accepted() >= 1 && b.accepted() >= 1);
}

#[test]
fn soak_bad_usage_exits_2_with_one_line() {
    for args in [
        &["pool", "soak", "--endpoint", "http://x:1"][..],
        &[
            "pool",
            "soak",
            "--endpoint",
            "tcp://x:1",
            "--duration",
            "0s",
        ],
        &[
            "pool",
            "soak",
            "--endpoint",
            "tcp://x:1",
            "--duration",
            "soon",
        ],
        &[
            "pool",
            "soak",
            "--endpoint",
            "tcp://x:1",
            "--min",
            "5",
            "--max",
            "2",
        ],
        &["pool", "soak", "--endpoint", "tcp://x:1", "--tasks", "0"],
        &[
            "pool",
            "soak",
            "--endpoint",
            "tcp://x:1",
            "--balance",
            "random",
        ],
        &["pool", "soak"],
        &["pool", "ping", "tcp://x"],
    ] {
        let out = mechops(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(!err.contains("panicked"), "{err}");
        if args.len() > 2 {
            assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_prints_the_reply_and_round_trip() {
    let server = LineServer::local().await.unwrap();
    let url = server.url();
    let out = run(strings(&["pool", "ping", &url])).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with(&format!("PONG from {url} in ")), "{text}");
    assert!(text.trim_end().ends_with(" us"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_of_a_dead_server_fails_with_one_line() {
    let mut server = LineServer::local().await.unwrap();
    let url = server.url();
    server.kill().await;
    let out = run(strings(&["pool", "ping", &url])).await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&url), "{err}");
}
