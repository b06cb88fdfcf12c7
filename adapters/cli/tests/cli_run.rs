//! `mechops run` end to end on the example registry the repository ships:
//! the script's output and exit code, `--json`, `--async`, and exit code 2
//! for an unknown script, invalid arguments and bad usage, before anything
//! runs.

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::{Run, assert_refused, temp_dir};

/// Runs `mechops args` in `dir`, where no `registry.json` exists, so the
/// example registry is served.
fn run_in(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_mechops"))
        .args(args)
        .current_dir(dir)
        .env_remove("JOB_STORAGE_PATH")
        .output()
        .unwrap();
    Run {
        code: out.status.code().expect("exited"),
        stdout: out.stdout,
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

#[test]
fn runs_a_script_with_typed_arguments() {
    let dir = temp_dir("run-greet");
    let r = run_in(
        &dir,
        &["run", "greet", "--arg", "name=Ada", "--arg", "times=2"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, b"hello, Ada\nhello, Ada\n");
    // The outcome is in the workspace under ./.mechops.
    let runs = std::fs::read_dir(dir.join(".mechops/workspace/runs"))
        .unwrap()
        .count();
    assert_eq!(runs, 1);
}

#[test]
fn arguments_reach_the_program_as_plain_words() {
    let dir = temp_dir("run-inject");
    let text = "a; rm -rf / $(id) `id` | cat -- --help";
    let arg = format!("text={text}");
    let r = run_in(&dir, &["run", "word-count", "--arg", &arg, "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_slice(&r.stdout).unwrap();
    let counted: Value = serde_json::from_str(v["stdout"].as_str().unwrap()).unwrap();
    assert_eq!(counted["words"], text.split_whitespace().count());
    assert_eq!(counted["characters"], text.chars().count());
}

#[test]
fn exit_code_is_the_scripts() {
    let dir = temp_dir("run-fail");
    let r = run_in(&dir, &["run", "fail", "--arg", "code=4"]);
    assert_eq!(r.code, 4);
    assert_eq!(r.stdout, b"about to fail\n");
    assert!(
        r.stderr.contains("failing on purpose with exit code 4"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("mechops: script \"fail\""),
        "{}",
        r.stderr
    );
}

#[test]
fn json_prints_the_outcome() {
    let dir = temp_dir("run-json");
    let r = run_in(
        &dir,
        &[
            "run", "progress", "--arg", "steps=2", "--arg", "delay=0", "--json",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["exit_code"], 0);
    assert_eq!(v["stdout"], "step 1 done\nstep 2 done\n");
    // Progress lines are reports, not output.
    assert_eq!(v["stderr"], "");
    let progress: Vec<f64> = v["progress"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["percent"].as_f64().unwrap())
        .collect();
    assert_eq!(progress, [50.0, 100.0]);
    assert_eq!(v["progress"][0]["message"], "step 1 of 2");
    for key in [
        "stdout_truncated",
        "stderr_truncated",
        "duration_ms",
        "error",
    ] {
        assert!(v.get(key).is_some(), "{key}: {v}");
    }
}

#[test]
fn a_timeout_kills_the_script() {
    let dir = temp_dir("run-timeout");
    let r = run_in(&dir, &["run", "slow", "--json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let v: Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert!(v["error"].as_str().unwrap().contains("timed out"), "{v}");
    assert_eq!(v["stdout"], "sleeping 30 seconds\n");
}

#[test]
fn async_submits_a_job() {
    let dir = temp_dir("run-async");
    let r = run_in(&dir, &["run", "greet", "--arg", "name=Bo", "--async"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let id = String::from_utf8(r.stdout).unwrap();
    let id = id.trim();
    let s = run_in(&dir, &["jobs", "status", id, "--json"]);
    assert_eq!(s.code, 0, "{}", s.stderr);
    let v: Value = serde_json::from_slice(&s.stdout).unwrap();
    assert_eq!(v["handler"], "script");
    assert_eq!(v["state"], "queued");
    assert_eq!(v["max_attempts"], 4);
}

#[test]
fn bad_calls_exit_2_before_anything_runs() {
    let dir = temp_dir("run-bad");
    assert_refused(&run_in(&dir, &["run", "nope"]), "unknown script \"nope\"");
    assert_refused(&run_in(&dir, &["run", "greet"]), "name");
    assert_refused(
        &run_in(
            &dir,
            &["run", "greet", "--arg", "name=x", "--arg", "times=many"],
        ),
        "times",
    );
    assert_refused(
        &run_in(
            &dir,
            &["run", "greet", "--arg", "name=x", "--arg", "colour=red"],
        ),
        "colour",
    );
    assert_refused(
        &run_in(&dir, &["run", "greet", "--arg", "name"]),
        "NAME=VALUE",
    );
    let missing = dir.join("missing.json");
    let r = run_in(
        &dir,
        &["run", "greet", "--registry", missing.to_str().unwrap()],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    // Nothing ran: no outcome was written.
    assert!(!dir.join(".mechops/workspace/runs").exists());
}
