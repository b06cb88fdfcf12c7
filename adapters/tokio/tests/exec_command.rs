//! The command runner against real processes: output and exit codes,
//! progress lines, bounds on gigabytes of output, the process group killed
//! on timeout, cancel, drop and exit, and clear start-up errors.

use core::time::Duration;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use mechops_tokio::exec::{
    CommandRequest, DEFAULT_OUTPUT_LIMIT, ExecError, Outcome, ProgressReport, Stopped, run_command,
};
use tokio_util::sync::CancellationToken;

/// A fresh directory under the target directory, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let p = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("exec-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sh(script: &str, dir: &Path) -> CommandRequest {
    CommandRequest::new("sh", ["-c", script], dir)
}

async fn run(request: &CommandRequest) -> Result<Outcome, ExecError> {
    run_command(request, &mut |_| {}, &CancellationToken::new()).await
}

/// Whether `pid` no longer runs (a zombie waiting for its reaper has
/// stopped running too).
fn process_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

/// The PIDs a script wrote to `file`, one a line.
fn pids(file: &Path) -> Vec<i32> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect()
}

/// Asserts that every PID in `file` is gone, giving init up to 2 s to
/// reap the orphans (SIGKILL itself is immediate).
fn assert_all_gone(file: &Path, expected: usize) {
    let pids = pids(file);
    assert_eq!(pids.len(), expected, "{pids:?}");
    for _ in 0..200 {
        if pids.iter().all(|&p| process_gone(p)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let alive: Vec<_> = pids.iter().filter(|&&p| !process_gone(p)).collect();
    panic!("processes {alive:?} of the group outlived it");
}

/// A script that starts two background grandchildren ignoring SIGTERM,
/// writes their PIDs (and its own) to `pidfile`, reports progress and
/// waits. It ignores SIGTERM itself, so only SIGKILL ends the group.
fn stubborn(pidfile: &Path) -> String {
    let f = pidfile.display();
    format!(
        "trap '' TERM; sleep 300 & echo $! >> {f}; \
         (trap '' TERM; sleep 300) & echo $! >> {f}; echo $$ >> {f}; \
         echo '::progress 10 started' >&2; wait"
    )
}

#[tokio::test]
async fn output_exit_code_and_error_are_reported() {
    let dir = Dir::new("output");
    let out = run(&sh("echo out; echo err >&2; exit 3", &dir.0))
        .await
        .unwrap();
    assert!(!out.ok);
    assert_eq!(
        (out.exit_code, out.stdout.as_str(), out.stderr.as_str()),
        (Some(3), "out\n", "err\n")
    );
    assert!(!out.stdout_truncated && !out.stderr_truncated);
    assert!(out.error.unwrap().contains("exited with code 3"));

    let out = run(&sh("printf ok", &dir.0)).await.unwrap();
    assert!(out.ok, "{out:?}");
    assert_eq!(
        (out.exit_code, out.error, out.stdout.as_str()),
        (Some(0), None, "ok")
    );

    let out = run(&sh("kill -9 $$", &dir.0)).await.unwrap();
    assert!(!out.ok);
    assert_eq!((out.exit_code, out.signal), (None, Some(9)));
    assert!(out.error.unwrap().contains("SIGKILL"));
}

#[tokio::test]
async fn environment_workdir_and_invalid_utf8() {
    let dir = Dir::new("env");
    let mut req = sh("echo \"$GREETING\"; pwd; printf 'a\\377b' >&2", &dir.0);
    req.env.insert("GREETING".into(), "hello there".into());
    let out = run(&req).await.unwrap();
    let canonical = dir.0.canonicalize().unwrap();
    assert_eq!(
        out.stdout,
        format!("hello there\n{}\n", canonical.display())
    );
    assert_eq!(out.stderr, "a\u{fffd}b");
}

#[tokio::test]
async fn start_up_errors_name_the_path() {
    let dir = Dir::new("errors");
    let missing = dir.0.join("no-such-program");
    let err = run(&CommandRequest::new(&missing, [""; 0], &dir.0))
        .await
        .unwrap_err();
    assert!(matches!(err, ExecError::ProgramNotFound { .. }), "{err}");
    assert!(err.to_string().contains("no-such-program"), "{err}");

    let err = run(&CommandRequest::new(
        "no-such-program-on-path",
        [""; 0],
        &dir.0,
    ))
    .await
    .unwrap_err();
    assert!(err.to_string().contains("no-such-program-on-path"), "{err}");

    let plain = dir.0.join("not-executable");
    std::fs::write(&plain, "#!/bin/sh\necho hi\n").unwrap();
    let err = run(&CommandRequest::new(&plain, [""; 0], &dir.0))
        .await
        .unwrap_err();
    assert!(matches!(err, ExecError::NotExecutable { .. }), "{err}");
    assert!(err.to_string().contains("not-executable"), "{err}");

    let nowhere = dir.0.join("no-such-dir");
    let err = run(&CommandRequest::new("true", [""; 0], &nowhere))
        .await
        .unwrap_err();
    assert!(matches!(err, ExecError::WorkdirMissing { .. }), "{err}");
    assert!(err.to_string().contains("no-such-dir"), "{err}");
}

#[tokio::test]
async fn progress_lines_arrive_in_order_and_leave_stderr() {
    let dir = Dir::new("progress");
    let script = "for p in 0 12.5 40 100; do echo \"::progress $p step $p\" >&2; done; \
                  echo '::progress 140 too much' >&2; echo 'plain' >&2; \
                  printf '::progress 99' >&2";
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let out = run_command(
        &sh(script, &dir.0),
        &mut move |r: &ProgressReport| sink.lock().unwrap().push(r.clone()),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert!(out.ok, "{out:?}");
    let percents: Vec<f64> = out.progress.iter().map(|r| r.percent).collect();
    assert_eq!(percents, [0.0, 12.5, 40.0, 100.0, 99.0]);
    assert_eq!(out.progress[1].message.as_deref(), Some("step 12.5"));
    assert_eq!(out.progress[4].message, None);
    assert_eq!(*seen.lock().unwrap(), out.progress);
    assert_eq!(out.stderr, "::progress 140 too much\nplain\n");
}

#[tokio::test]
async fn timeout_kills_the_whole_group_even_when_it_ignores_sigterm() {
    let dir = Dir::new("timeout");
    let pidfile = dir.0.join("pids");
    let mut req = sh(&stubborn(&pidfile), &dir.0);
    req.timeout = Some(Duration::from_millis(500));
    req.kill_grace = Duration::from_millis(200);
    let out = run(&req).await.unwrap();
    assert!(!out.ok);
    assert_eq!(out.stopped, Some(Stopped::TimedOut));
    assert_eq!(out.signal, Some(9), "{out:?}");
    assert!(out.error.unwrap().contains("timed out after 500 ms"));
    assert_eq!(out.progress.len(), 1);
    assert_all_gone(&pidfile, 3);
}

#[tokio::test]
async fn cancel_sends_sigterm_first() {
    let dir = Dir::new("cancel");
    let pidfile = dir.0.join("pids");
    let script = format!(
        "trap 'echo terminated; exit 7' TERM; sleep 300 & echo $! >> {}; \
         echo '::progress 1' >&2; wait",
        pidfile.display()
    );
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let out = run_command(
        &sh(&script, &dir.0),
        &mut move |_: &ProgressReport| trigger.cancel(),
        &cancel,
    )
    .await
    .unwrap();
    assert_eq!(out.stopped, Some(Stopped::Cancelled));
    // The shell's trap ran: the group got SIGTERM, not SIGKILL.
    assert_eq!(
        (out.exit_code, out.stdout.as_str()),
        (Some(7), "terminated\n")
    );
    assert!(out.error.unwrap().contains("cancelled"));
    assert_all_gone(&pidfile, 1);
}

#[tokio::test]
async fn dropping_the_future_kills_the_group() {
    let dir = Dir::new("drop");
    let pidfile = dir.0.join("pids");
    let req = sh(&stubborn(&pidfile), &dir.0);
    let (started, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let _ = run_command(
            &req,
            &mut move |_: &ProgressReport| {
                let _ = started.send(());
            },
            &CancellationToken::new(),
        )
        .await;
    });
    rx.recv()
        .await
        .expect("the script reports progress once started");
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert_all_gone(&pidfile, 3);
}

#[tokio::test]
async fn what_an_exited_command_leaves_behind_is_killed() {
    let dir = Dir::new("strays");
    let pidfile = dir.0.join("pids");
    let script = format!("sleep 300 & echo $! >> {}; echo done", pidfile.display());
    let mut req = sh(&script, &dir.0);
    req.kill_grace = Duration::from_millis(200);
    let out = run(&req).await.unwrap();
    assert!(out.ok, "{out:?}");
    assert_eq!(out.stdout, "done\n");
    assert_all_gone(&pidfile, 1);
}

/// The peak resident memory of this process, in KiB (nextest runs each
/// test in a process of its own).
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn gigabytes_of_output_stay_within_the_bounds() {
    let dir = Dir::new("flood");
    let before = peak_rss_kib();
    // Two GiB on standard output, one on standard error without a newline
    // (so no line ever ends), both at once.
    let out = run(&sh(
        "head -c 1073741824 /dev/zero >&2 & head -c 2147483648 /dev/zero; wait",
        &dir.0,
    ))
    .await
    .unwrap();
    assert!(out.ok, "{:?}", out.error);
    assert!(out.stdout_truncated && out.stderr_truncated);
    assert_eq!(
        (out.stdout.len(), out.stderr.len()),
        (DEFAULT_OUTPUT_LIMIT, DEFAULT_OUTPUT_LIMIT)
    );
    let grown = peak_rss_kib().saturating_sub(before);
    assert!(grown < 32 * 1024, "peak memory grew by {grown} KiB");
}

#[tokio::test]
async fn arguments_reach_the_program_as_exactly_the_argv_elements() {
    let dir = Dir::new("argv");
    let args = [
        "; rm -rf /",
        "$(id)",
        "`id`",
        "--help",
        "-rf",
        "line\nbreak",
        "",
        "'quoted' \"twice\"",
        "a b\tc",
        "*",
        "| cat /etc/passwd",
        "&& echo pwned",
        "--",
        "${HOME}",
        "é ✓",
    ];
    // printf repeats its format for each argument: each one comes back
    // followed by a NUL, which no argument can contain.
    let mut all = vec!["%s\\0".to_owned()];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    let out = run(&CommandRequest::new("printf", all, &dir.0))
        .await
        .unwrap();
    assert!(out.ok, "{out:?}");
    let got: Vec<&str> = out.stdout.split_terminator('\0').collect();
    assert_eq!(got, args);
}
