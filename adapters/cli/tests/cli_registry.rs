//! `mechops registry` end to end: list, get, validate (exit 0 or 2 with
//! the position at fault) and stats.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const GOOD: &str = r#"{
  "version": 1,
  "scripts": [
    {"id": "hello", "name": "Say hello", "tags": ["demo", "x"], "kind": "command",
     "command": ["echo", "{who}"], "arguments": {"who": {"type": "string", "default": "world"}}},
    {"id": "status", "kind": "http", "url": "http://127.0.0.1:9/status"},
    {"id": "count", "kind": "sql", "pool": "main", "query": "SELECT 1"}
  ],
  "pools": {"main": {"url": "postgres://app@127.0.0.1/app"}}
}"#;

/// A fresh folder under the target directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("cli-registry-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn write(&self, text: &str) -> PathBuf {
        let p = self.0.join("registry.json");
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mechops(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mechops"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the mechops binary runs")
}

fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "{o:?}");
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr_line(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(o.stdout.is_empty(), "{o:?}");
    let e = String::from_utf8(o.stderr.clone()).unwrap();
    assert_eq!(e.lines().count(), 1, "one line: {e:?}");
    e
}

#[test]
fn list_and_get() {
    let dir = TempDir::new("list");
    let path = dir.write(GOOD);
    let p = path.to_str().unwrap();
    let text = stdout(&mechops(&["registry", "--registry", p, "list"], &dir.0));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "hello\tcommand\tSay hello\tdemo,x",
            "status\thttp\tstatus\t",
            "count\tsql\tcount\t"
        ]
    );
    let json: Value = serde_json::from_str(&stdout(&mechops(
        &["registry", "list", "--json", "--registry", p],
        &dir.0,
    )))
    .unwrap();
    assert_eq!(json.as_array().unwrap().len(), 3);
    assert_eq!(json[0]["id"], "hello");
    assert_eq!(json[2]["kind"], "sql");

    let got: Value = serde_json::from_str(&stdout(&mechops(
        &["registry", "--registry", p, "get", "hello"],
        &dir.0,
    )))
    .unwrap();
    assert_eq!(got["command"], serde_json::json!(["echo", "{who}"]));
    assert_eq!(got["arguments"]["who"]["default"], "world");
    let compact = stdout(&mechops(
        &["registry", "--registry", p, "get", "hello", "--json"],
        &dir.0,
    ));
    assert_eq!(compact.lines().count(), 1);
    let e = stderr_line(&mechops(
        &["registry", "--registry", p, "get", "nope"],
        &dir.0,
    ));
    assert!(e.contains(r#"unknown script "nope""#), "{e}");
}

#[test]
fn the_default_is_the_registry_of_the_current_folder() {
    let dir = TempDir::new("default");
    dir.write(GOOD);
    let text = stdout(&mechops(&["registry", "list"], &dir.0));
    assert_eq!(text.lines().count(), 3);
}

#[test]
fn validate_exits_0_or_2_with_the_place_at_fault() {
    let dir = TempDir::new("validate");
    let p = dir.write(GOOD);
    let p = p.to_str().unwrap();
    let ok = stdout(&mechops(&["registry", "--registry", p, "validate"], &dir.0));
    assert!(ok.contains("valid, 3 scripts, 1 pools"), "{ok}");
    let v: Value = serde_json::from_str(&stdout(&mechops(
        &["registry", "--registry", p, "validate", "--json"],
        &dir.0,
    )))
    .unwrap();
    assert_eq!(v["valid"], true);

    dir.write(&GOOD.replace(r#""pool": "main""#, r#""pool": "other""#));
    let e = stderr_line(&mechops(&["registry", "--registry", p, "validate"], &dir.0));
    assert!(
        e.contains(r#"scripts[2] "count" (line 7): field "pool": no pool named "other""#),
        "{e}"
    );

    dir.write(&GOOD.replace(r#""tags": ["demo", "x"],"#, r#""tags": ["demo" "x"],"#));
    let e = stderr_line(&mechops(&["registry", "--registry", p, "validate"], &dir.0));
    assert!(e.contains("line 4, column"), "{e}");

    dir.write(&GOOD.replace(r#""id": "status""#, r#""id": "hello""#));
    let e = stderr_line(&mechops(&["registry", "--registry", p, "validate"], &dir.0));
    assert!(e.contains(r#"duplicate id "hello""#), "{e}");
}

#[test]
fn a_missing_file_is_an_io_failure() {
    let dir = TempDir::new("missing");
    let missing = dir.0.join("none.json");
    let o = mechops(
        &[
            "registry",
            "--registry",
            missing.to_str().unwrap(),
            "validate",
        ],
        &dir.0,
    );
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let e = String::from_utf8(o.stderr).unwrap();
    assert!(e.contains("cannot read registry"), "{e}");
}

#[test]
fn stats_has_the_cache_keys() {
    let dir = TempDir::new("stats");
    let p = dir.write(GOOD);
    let p = p.to_str().unwrap();
    let v: Value = serde_json::from_str(&stdout(&mechops(
        &["registry", "--registry", p, "stats", "--json"],
        &dir.0,
    )))
    .unwrap();
    for key in [
        "hits",
        "misses",
        "evictions",
        "hit_rate",
        "memory_usage",
        "reloads",
        "reload_errors",
    ] {
        assert!(v.get(key).is_some(), "{key} in {v}");
    }
    assert_eq!(
        (v["hits"].as_u64(), v["misses"].as_u64()),
        (Some(3), Some(3))
    );
    assert!(v["memory_usage"].as_u64().unwrap() > 0);
    let text = stdout(&mechops(
        &["registry", "--registry", p, "stats", "--rounds", "1"],
        &dir.0,
    ));
    assert!(text.lines().any(|l| l == "misses=3"), "{text}");
    let o = Command::new(env!("CARGO_BIN_EXE_mechops"))
        .args(["registry", "--registry", p, "stats"])
        .env("CACHE_SIZE", "lots")
        .output()
        .unwrap();
    let e = stderr_line(&o);
    assert!(e.contains("CACHE_SIZE"), "{e}");
}
