//! `mechops jobs` on a Redis store, end to end: a worker process (the CLI's
//! own `worker` command) killed with SIGKILL again and again at random
//! points while it runs thousands of jobs, then restarted, loses no job and
//! re-runs only jobs that were running at a kill. The test starts its own
//! `redis-server` on a free loopback port.

#[path = "../../tokio/tests/support/redis_server.rs"]
mod redis_server;

#[path = "support/crash_jobs.rs"]
mod crash_jobs;
use crash_jobs::{Rng, submit_bulk};

use core::time::Duration;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use redis_server::{Persistence, RedisServer};
use serde_json::Value;

fn mechops(store: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mechops"));
    cmd.args(["jobs", "--store", store]).args(args);
    cmd
}

fn ok(store: &str, args: &[&str]) -> String {
    let out = mechops(store, args)
        .stdin(Stdio::null())
        .output()
        .expect("the mechops binary runs");
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// A worker process leading its own process group, killed with the whole
/// group when dropped unreaped (a failing assertion must not leave it
/// running against the next test's server).
struct WorkerGroup(Option<Child>);

impl WorkerGroup {
    fn spawn(store: &str, extra: &[&str]) -> Self {
        let child = mechops(store, &["worker", "--concurrency", "4"])
            .args(["--lease", "300ms", "--max-stalls", "1000"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        Self(Some(child))
    }

    /// Sends SIGKILL to the group and reaps the leader.
    fn kill(&mut self) {
        let Some(mut child) = self.0.take() else {
            return;
        };
        let pgid = i32::try_from(child.id()).unwrap();
        // SAFETY: killpg only sends a signal; the group is the one the child
        // leads (process_group(0)), and the child is not yet reaped, so the
        // ID names no other group.
        let rc = unsafe { libc::killpg(pgid, libc::SIGKILL) };
        assert_eq!(rc, 0, "killpg failed");
        child.wait().unwrap();
    }

    /// Waits for the worker to exit on its own, for at most `limit`.
    fn wait(mut self, limit: Duration, store: &str) {
        let start = std::time::Instant::now();
        let child = self.0.as_mut().unwrap();
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                self.0 = None;
                assert!(st.success(), "the final worker failed: {st}");
                return;
            }
            assert!(
                start.elapsed() < limit,
                "the final worker on {store} did not finish"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for WorkerGroup {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            if let Ok(pgid) = i32::try_from(child.id()) {
                // SAFETY: as in `kill`: the unreaped child leads this group.
                unsafe { libc::killpg(pgid, libc::SIGKILL) };
            }
            let _ = child.wait();
        }
    }
}

#[test]
fn a_redis_worker_killed_again_and_again_loses_no_job() {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let Some(server) = RedisServer::start(base, Persistence::None) else {
        return;
    };
    let s = server.url();
    let mut rng = Rng::from_time();
    // Sleeps long enough that kills catch jobs running.
    let ids = submit_bulk(&s, &crash_jobs::job_mix(3000, 20));
    assert_eq!(ids.len(), 3000);
    let kills = 30;
    for _ in 0..kills {
        let mut worker = WorkerGroup::spawn(&s, &[]);
        std::thread::sleep(Duration::from_millis(60 + rng.next(240)));
        worker.kill();
    }
    WorkerGroup::spawn(&s, &["--until-empty"]).wait(Duration::from_secs(120), &s);

    let all: Vec<Value> = ok(&s, &["list", "--limit", "1000000", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(all.len(), 3000, "no job lost");
    let mut listed: Vec<&str> = all.iter().map(|j| j["id"].as_str().unwrap()).collect();
    listed.sort_unstable();
    let mut submitted: Vec<&str> = ids.iter().map(String::as_str).collect();
    submitted.sort_unstable();
    assert_eq!(listed, submitted, "the submitted jobs, each once");
    // Only jobs running at a kill run again: at most `concurrency` per kill.
    let excess_jobs = crash_jobs::check_outcomes(&all, 300, kills, 4);
    // The kills caught jobs running, so recovery was exercised.
    let stats: Value = serde_json::from_str(&ok(&s, &["stats", "--json"])).unwrap();
    eprintln!("{kills} kills: {excess_jobs} jobs re-ran; stats {stats}");
    assert!(excess_jobs > 0, "no kill caught a job running: {stats}");
}

/// `mechops jobs stats` on Redis reports the completions of the last
/// minute by every worker process on the queue.
#[test]
fn redis_stats_count_the_completions_of_every_worker_process() {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let Some(server) = RedisServer::start(base, Persistence::None) else {
        return;
    };
    let s = server.url();
    // Two worker processes, one after the other, three jobs each.
    for _ in 0..2 {
        for _ in 0..3 {
            ok(&s, &["submit", "noop"]);
        }
        ok(&s, &["worker", "--until-empty"]);
    }
    let stats: Value = serde_json::from_str(&ok(&s, &["stats", "--json"])).unwrap();
    assert_eq!(stats["completed"].as_u64(), Some(6), "{stats}");
    assert_eq!(stats["completed_last_minute"].as_u64(), Some(6), "{stats}");
    assert_eq!(stats["throughput_per_s"].as_f64(), Some(0.1), "{stats}");
    assert!(ok(&s, &["stats"]).contains("throughput_per_s"));
}
