//! `mechops jobs` end to end: the commands and their exit codes, the
//! built-in handlers (exec's process-group kill included), two worker
//! processes on one SQLite file, and a crash test: a worker process killed
//! with SIGKILL again and again at random points, then restarted, loses no
//! job and re-runs only jobs that were running at a kill.

#[path = "support/crash_jobs.rs"]
mod crash_jobs;
use crash_jobs::{Rng, submit_bulk};

use core::time::Duration;
use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let p = std::env::temp_dir().join(format!(
            "mechops-cli-jobs-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }

    fn store(&self) -> String {
        format!("sqlite://{}", self.0.join("jobs.db").display())
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn jobs(store: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mechops"))
        .args(["jobs", "--store", store])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the mechops binary runs")
}

fn ok(store: &str, args: &[&str]) -> String {
    let out = jobs(store, args);
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn bad(store: &str, args: &[&str], needle: &str) {
    let out = jobs(store, args);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    assert!(err.contains(needle), "{err:?} lacks {needle:?}");
}

fn status(store: &str, id: &str) -> Value {
    serde_json::from_str(&ok(store, &["status", id, "--json"])).unwrap()
}

fn all_jobs(store: &str) -> Vec<Value> {
    ok(store, &["list", "--limit", "1000000", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn commands_and_builtin_handlers() {
    let dir = Dir::new("cmds");
    let s = dir.store();
    let echo = ok(
        &s,
        &[
            "submit",
            "echo",
            "--args",
            r#"{"x":[1,2]}"#,
            "--priority",
            "high",
        ],
    );
    let echo = echo.trim();
    let flaky = ok(&s, &["submit", "fail", "--args", r#"{"times":1}"#]);
    let perm = ok(
        &s,
        &[
            "submit",
            "fail",
            "--args",
            r#"{"times":5,"permanent":true}"#,
        ],
    );
    let exec = ok(
        &s,
        &[
            "submit",
            "exec",
            "--args",
            r#"{"argv":["printf","%s","out"]}"#,
        ],
    );
    let exec_fail = ok(
        &s,
        &[
            "submit",
            "exec",
            "--args",
            r#"{"argv":["false"]}"#,
            "--max-attempts",
            "1",
        ],
    );
    let progress = ok(
        &s,
        &["submit", "progress", "--args", r#"{"steps":3,"ms":20}"#],
    );
    let bulk = Command::new(env!("CARGO_BIN_EXE_mechops"))
        .args(["jobs", "--store", &s, "submit-bulk"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(b"{\"handler\":\"noop\"}\n\n{\"handler\":\"sleep\",\"args\":{\"ms\":5},\"priority\":\"low\",\"max_attempts\":2}\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(bulk.status.success(), "{bulk:?}");
    assert_eq!(String::from_utf8(bulk.stdout).unwrap().lines().count(), 2);

    let stats: Value = serde_json::from_str(&ok(&s, &["stats", "--json"])).unwrap();
    assert_eq!(
        (stats["queue_size"].as_u64(), stats["delayed"].as_u64()),
        (Some(8), Some(0))
    );

    let out = ok(
        &s,
        &["worker", "--until-empty", "--concurrency", "3", "--json"],
    );
    let events: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(events.iter().any(|e| e["event"] == "progress"));
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "completed" && e["result"]["x"][1] == 2)
    );

    let e = status(&s, echo);
    assert_eq!(
        (e["state"].as_str(), e["priority"].as_str()),
        (Some("completed"), Some("high"))
    );
    assert_eq!(e["result"], serde_json::json!({"x":[1,2]}));
    for key in ["created_at", "started_at", "finished_at"] {
        assert!(e[key].as_str().unwrap().ends_with('Z'), "{key}: {e}");
    }
    let f = status(&s, flaky.trim());
    assert_eq!(
        (f["state"].as_str(), f["attempts"].as_u64()),
        (Some("completed"), Some(2))
    );
    let p = status(&s, perm.trim());
    assert_eq!(
        (p["state"].as_str(), p["attempts"].as_u64()),
        (Some("dead"), Some(1))
    );
    let x = status(&s, exec.trim());
    assert_eq!(x["result"]["stdout"], "out");
    let xf = status(&s, exec_fail.trim());
    assert_eq!(xf["state"], "dead");
    assert!(xf["error"].as_str().unwrap().contains("false"), "{xf}");
    let pr = status(&s, progress.trim());
    assert_eq!(
        (pr["progress"].as_f64(), pr["message"].as_str()),
        (Some(1.0), Some("step 3 of 3"))
    );
    // Throughput: the six completions of the last minute, from the file.
    let stats: Value = serde_json::from_str(&ok(&s, &["stats", "--json"])).unwrap();
    assert_eq!(stats["completed_last_minute"].as_u64(), Some(6), "{stats}");
    assert_eq!(stats["throughput_per_s"].as_f64(), Some(0.1), "{stats}");
    assert!(ok(&s, &["stats"]).contains("throughput_per_s"));
    // A delayed job keeps --until-empty waiting, so it comes after.
    let later = ok(&s, &["submit", "noop", "--delay", "1h", "--unique", "u1"]);
    bad(&s, &["submit", "noop", "--unique", "u1"], "unique key");
    assert_eq!(status(&s, later.trim())["state"], "delayed");

    // cancel, retry, purge, list.
    assert_eq!(ok(&s, &["cancel", later.trim()]).trim(), "cancelled");
    bad(&s, &["cancel", later.trim()], "cancel");
    assert_eq!(ok(&s, &["retry", perm.trim()]).trim(), "queued");
    assert_eq!(status(&s, perm.trim())["state"], "queued");
    bad(&s, &["retry", echo], "retry");
    let dead = ok(&s, &["list", "--state", "dead"]);
    assert_eq!(dead.lines().count(), 1, "{dead}");
    bad(&s, &["purge", "--state", "queued"], "purge");
    assert_eq!(
        ok(&s, &["purge", "--state", "completed", "--older-than", "1h"]).trim(),
        "0"
    );
    assert_eq!(ok(&s, &["purge", "--state", "completed"]).trim(), "6");
    bad(&s, &["status", echo], "unknown job");

    // Bad input: one line, exit 2.
    bad(&s, &["submit", "noop", "--args", "{oops"], "JSON");
    bad(&s, &["submit", "noop", "--priority", "urgent"], "priority");
    bad(&s, &["submit", "noop", "--delay", "soon"], "delay");
    bad(&s, &["status", "not-an-id"], "job ID");
    bad(&s, &["list", "--state", "sleeping"], "state");
    bad("ftp://x", &["stats"], "unknown job store scheme");
    let junk = dir.0.join("junk.db");
    std::fs::write(&junk, "hello").unwrap();
    bad(
        &format!("sqlite://{}", junk.display()),
        &["stats"],
        "not a job store",
    );
    assert_eq!(std::fs::read_to_string(&junk).unwrap(), "hello");
    let lines = dir.0.join("bulk.jsonl");
    std::fs::write(&lines, "{\"handler\":\"noop\"}\n{\"handler\":1}\n").unwrap();
    bad(
        &s,
        &["submit-bulk", "-i", lines.to_str().unwrap()],
        "line 2",
    );
}

fn process_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // A zombie waiting for init to reap it has stopped running.
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn exec_timeout_kills_the_whole_process_group() {
    let dir = Dir::new("exec");
    let s = dir.store();
    let pidfile = dir.0.join("pid");
    let script = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
    let args = serde_json::json!({"argv": ["sh", "-c", script], "timeout_ms": 300}).to_string();
    let id = ok(
        &s,
        &["submit", "exec", "--args", &args, "--max-attempts", "1"],
    );
    ok(&s, &["worker", "--until-empty"]);
    let st = status(&s, id.trim());
    assert_eq!(st["state"], "dead");
    assert!(st["error"].as_str().unwrap().contains("timed out"), "{st}");
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut gone = false;
    for _ in 0..200 {
        if process_gone(pid) {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(gone, "the grandchild {pid} outlived the timeout");
}

#[test]
fn two_worker_processes_on_one_file_run_each_job_once() {
    let dir = Dir::new("two");
    let s = dir.store();
    let lines: String = (0..1000).map(|_| "{\"handler\":\"noop\"}\n").collect();
    let ids = submit_bulk(&s, &lines);
    assert_eq!(ids.len(), 1000);
    let workers: Vec<_> = (0..2)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_mechops"))
                .args([
                    "jobs",
                    "--store",
                    &s,
                    "worker",
                    "--until-empty",
                    "--concurrency",
                    "4",
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut completed: HashMap<String, u32> = HashMap::new();
    for w in workers {
        let out = w.wait_with_output().unwrap();
        assert!(out.status.success());
        for line in String::from_utf8(out.stdout).unwrap().lines() {
            if let Some(id) = line.strip_prefix("completed ") {
                *completed.entry(id.to_owned()).or_default() += 1;
            }
        }
    }
    assert_eq!(completed.len(), 1000);
    assert!(completed.values().all(|&n| n == 1), "a job ran twice");
    for j in all_jobs(&s) {
        assert_eq!(
            (j["state"].as_str(), j["attempts"].as_u64()),
            (Some("completed"), Some(1)),
            "{j}"
        );
    }
}

fn spawn_worker(store: &str, extra: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_mechops"))
        .args(["jobs", "--store", store, "worker", "--concurrency", "4"])
        .args(["--lease", "300ms", "--max-stalls", "1000"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap()
}

fn kill_group(child: &mut std::process::Child) {
    let pgid = i32::try_from(child.id()).unwrap();
    // SAFETY: killpg only sends a signal; the group is the one the child
    // leads (process_group(0)), and the child is not yet reaped, so the ID
    // names no other group.
    let rc = unsafe { libc::killpg(pgid, libc::SIGKILL) };
    assert_eq!(rc, 0, "killpg failed");
    child.wait().unwrap();
}

fn wait_with_deadline(mut child: std::process::Child, limit: Duration, path: &Path) {
    let start = std::time::Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            assert!(st.success(), "the final worker failed: {st}");
            return;
        }
        if start.elapsed() > limit {
            kill_group(&mut child);
            panic!("the final worker on {} did not finish", path.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_worker_killed_again_and_again_loses_no_job() {
    let dir = Dir::new("crash");
    let s = dir.store();
    let mut rng = Rng::from_time();
    let ids = submit_bulk(&s, &crash_jobs::job_mix(3000, 3));
    assert_eq!(ids.len(), 3000);
    let kills = 14;
    for _ in 0..kills {
        let mut child = spawn_worker(&s, &[]);
        std::thread::sleep(Duration::from_millis(60 + rng.next(240)));
        kill_group(&mut child);
    }
    let last = spawn_worker(&s, &["--until-empty"]);
    wait_with_deadline(last, Duration::from_secs(60), &dir.0);

    let all = all_jobs(&s);
    assert_eq!(all.len(), 3000, "no job lost");
    // Only jobs running at a kill run again: at most `concurrency` per kill.
    crash_jobs::check_outcomes(&all, 300, kills, 4);
}

#[test]
fn sigterm_lets_short_jobs_finish_and_releases_long_ones() {
    let dir = Dir::new("term");
    let s = dir.store();
    let short = ok(&s, &["submit", "sleep", "--args", r#"{"ms":300}"#]);
    let long = ok(&s, &["submit", "sleep", "--args", r#"{"ms":60000}"#]);
    let mut worker = Command::new(env!("CARGO_BIN_EXE_mechops"))
        .args([
            "jobs",
            "--store",
            &s,
            "worker",
            "--concurrency",
            "2",
            "--grace",
            "1s",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until both jobs run, then ask the worker to stop.
    let mut both_running = false;
    for _ in 0..500 {
        if all_jobs(&s).iter().all(|j| j["state"] == "running") {
            both_running = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(both_running, "the worker never ran both jobs");
    let pid = i32::try_from(worker.id()).unwrap();
    // SAFETY: kill only sends a signal to our own child, not yet reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let start = std::time::Instant::now();
    loop {
        if worker.try_wait().unwrap().is_some() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the worker ignored SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = worker.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let events = String::from_utf8(out.stdout).unwrap();
    assert!(events.contains("\"released\""), "{events}");
    assert_eq!(
        status(&s, short.trim())["state"],
        "completed",
        "finished within the grace period"
    );
    let l = status(&s, long.trim());
    assert_eq!(
        (l["state"].as_str(), l["attempts"].as_u64()),
        (Some("queued"), Some(0)),
        "released: {l}"
    );
}
