//! Crash tests: a child process writing files and running atomic batches is
//! killed with `SIGKILL` (its whole process group) at random points, many
//! times; after each kill the workspace opens, every file reads back as one
//! complete version, and every atomic batch is all or nothing.

mod workspace_support;

use core::time::Duration;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use mechops_std::workspace::{BatchOp, BatchOptions, Options, Workspace};

const CHILD_ENV: &str = "MECHOPS_WS_CRASH_CHILD";
const FILES: usize = 4;
const BATCH_FILES: usize = 4;

/// Version `v` of file `i`: its header names both, the length varies so
/// that some versions are compressed and some not.
fn content(i: usize, v: u64) -> Vec<u8> {
    let len = 100 + (v as usize * 997 + i * 131) % 6000;
    let mut out = format!("{i}:{v}:").into_bytes();
    while out.len() < len {
        out.extend_from_slice(format!("{v} ").as_bytes());
    }
    out.truncate(len);
    out
}

fn version_of(bytes: &[u8]) -> u64 {
    let text = core::str::from_utf8(bytes).expect("content is ASCII");
    let mut parts = text.splitn(3, ':');
    let i: usize = parts.next().unwrap().parse().unwrap();
    let v: u64 = parts.next().unwrap().parse().unwrap();
    assert_eq!(bytes, content(i, v), "file {i} version {v} is torn");
    v
}

fn child(dir: &Path) -> ! {
    let ws = Workspace::open(dir, Options::default()).unwrap();
    let start = ws.read("counter").map_or(0, |b| version_of(&b));
    for v in start + 1.. {
        for i in 0..FILES {
            ws.write(&format!("single/{i}"), &content(i, v)).unwrap();
        }
        let mut ops: Vec<BatchOp> = (0..BATCH_FILES)
            .map(|i| BatchOp::Write {
                path: format!("batch/{i}"),
                content: content(i, v),
            })
            .collect();
        // The batch also moves a marker file, so renames are covered.
        let (from, to) = if v % 2 == 0 {
            ("batch/odd", "batch/even")
        } else {
            ("batch/even", "batch/odd")
        };
        if ws.exists(from).unwrap() {
            ops.push(BatchOp::Rename {
                from: from.into(),
                to: to.into(),
            });
        } else {
            ops.push(BatchOp::Write {
                path: to.into(),
                content: content(0, v),
            });
        }
        ops.push(BatchOp::Write {
            path: "counter".into(),
            content: content(0, v),
        });
        let results = ws.batch(&ops, BatchOptions::atomic()).unwrap();
        assert!(results.iter().all(Result::is_ok));
    }
    unreachable!("the loop runs until the process is killed")
}

fn check(dir: &Path) {
    let ws = Workspace::open(dir, Options::default()).unwrap();
    for i in 0..FILES {
        if let Ok(bytes) = ws.read(&format!("single/{i}")) {
            version_of(&bytes);
        }
    }
    if let Ok(counter) = ws.read("counter") {
        let v = version_of(&counter);
        for i in 0..BATCH_FILES {
            let bytes = ws.read(&format!("batch/{i}")).unwrap();
            assert_eq!(version_of(&bytes), v, "batch/{i} against counter");
        }
        let marker = if v % 2 == 0 {
            "batch/even"
        } else {
            "batch/odd"
        };
        let other = if v % 2 == 0 {
            "batch/odd"
        } else {
            "batch/even"
        };
        assert!(
            ws.exists(marker).unwrap() && !ws.exists(other).unwrap(),
            "marker at {v}"
        );
    } else {
        assert!(
            !ws.exists("batch/0").unwrap(),
            "batch files without a counter"
        );
    }
    let report = ws.verify().unwrap();
    assert!(
        report.modified.is_empty() && report.unexpected.is_empty(),
        "{report:?}"
    );
    workspace_support::assert_no_journal(dir);
}

/// A child in its own process group, killed with the group when dropped,
/// so a failing round leaves no writer running.
struct GroupGuard(std::process::Child);

impl GroupGuard {
    /// Sends `SIGKILL` to the child's process group; returns kill(2)'s result.
    fn kill_group(&self) -> i32 {
        let Ok(pgid) = i32::try_from(self.0.id()) else {
            return -1;
        };
        // SAFETY: kill(2) with a negative pid signals the child's own
        // process group, made by `process_group(0)` at spawn; it touches no
        // memory of ours.
        unsafe { libc::kill(-pgid, libc::SIGKILL) }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        // A round that failed before its kill leaves the child running.
        if matches!(self.0.try_wait(), Ok(None)) {
            self.kill_group();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn killed_writers_leave_whole_versions_and_whole_batches() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(Path::new(&dir));
    }
    let dir = std::env::temp_dir().join(format!("ws-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let exe = std::env::current_exe().unwrap();
    let mut seed = u64::from(std::process::id()) | 1;
    for round in 0..25 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut child = GroupGuard(
            Command::new(&exe)
                .args([
                    "--exact",
                    "killed_writers_leave_whole_versions_and_whole_batches",
                    "--nocapture",
                ])
                .env(CHILD_ENV, &dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap(),
        );
        std::thread::sleep(Duration::from_millis(30 + seed % 150));
        assert_eq!(child.kill_group(), 0, "round {round}");
        let status = child.0.wait().unwrap();
        assert!(
            !status.success(),
            "round {round}: the child ended on its own: {status:?}"
        );
        check(&dir);
    }
    let ws = Workspace::open(&dir, Options::default()).unwrap();
    assert!(ws.read("counter").is_ok(), "no batch ever completed");
    std::fs::remove_dir_all(&dir).unwrap();
}
