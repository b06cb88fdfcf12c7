//! The outcome check of the worker crash tests, shared by the SQLite and
//! Redis stores: a job mix of `noop`, `sleep`, `fail` once and `fail`
//! permanently, run by a worker killed with `SIGKILL` many times; and the
//! bulk submission both start with.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

/// `mechops jobs --store STORE submit-bulk` with `lines` on its standard
/// input; the printed job IDs, one per line.
pub(crate) fn submit_bulk(store: &str, lines: &str) -> Vec<String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mechops"))
        .args(["jobs", "--store", store, "submit-bulk"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// xorshift64*: the kill points; the seed is printed so a failure can be
/// replayed.
pub(crate) struct Rng(u64);

impl Rng {
    /// Seeded from the clock; the seed is printed.
    pub(crate) fn from_time() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1;
        eprintln!("crash test seed {seed}");
        Self(seed)
    }

    pub(crate) fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % below
    }
}

/// `count` jobs for `submit-bulk`, a line each: six in ten `noop`, two
/// `sleep` of `sleep_ms`, one that fails once, one that fails permanently
/// (so `count / 10` end dead); each may take ten attempts.
pub(crate) fn job_mix(count: usize, sleep_ms: u64) -> String {
    let mut lines = String::new();
    for i in 0..count {
        let line = match i % 10 {
            0..=5 => r#"{"handler":"noop","max_attempts":10}"#.to_owned(),
            6 | 7 => {
                format!(r#"{{"handler":"sleep","args":{{"ms":{sleep_ms}}},"max_attempts":10}}"#)
            }
            8 => r#"{"handler":"fail","args":{"times":1},"max_attempts":10}"#.to_owned(),
            _ => r#"{"handler":"fail","args":{"times":100,"permanent":true},"max_attempts":10}"#
                .to_owned(),
        };
        lines.push_str(&line);
        lines.push('\n');
    }
    lines
}

/// Checks every listed job ended as its handler dictates, and that exactly
/// `dead` jobs (the permanent failures) are dead; returns how many jobs ran
/// more attempts than their handler needs, which only a kill explains. At
/// most `per_kill` jobs (the worker's concurrency) may run again per kill.
pub(crate) fn check_outcomes(all: &[Value], dead: usize, kills: usize, per_kill: usize) -> usize {
    let mut excess_jobs = 0;
    for j in all {
        let handler = j["handler"].as_str().unwrap();
        let permanent = handler == "fail"
            && j["error"]
                .as_str()
                .is_some_and(|e| e.contains("fails as asked"))
            && j["state"] == "dead";
        let attempts = j["attempts"].as_u64().unwrap();
        let expected = if permanent {
            assert_eq!(j["state"], "dead", "{j}");
            1
        } else {
            assert_eq!(j["state"], "completed", "{j}");
            if handler == "fail" { 2 } else { 1 }
        };
        assert!(attempts >= expected, "{j}");
        if attempts > expected {
            excess_jobs += 1;
        }
    }
    let found = all.iter().filter(|j| j["state"] == "dead").count();
    assert_eq!(found, dead, "exactly the permanent failures are dead");
    assert!(
        excess_jobs <= kills * per_kill,
        "{excess_jobs} jobs re-ran after {kills} kills"
    );
    excess_jobs
}
