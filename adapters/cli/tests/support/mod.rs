//! Running the `mechops` binary as a user does, and checking how it fails.

#![allow(dead_code, unreachable_pub)] // each test file uses its own subset

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// What one run of `mechops` did.
pub struct Run {
    /// The exit code.
    pub code: i32,
    /// Everything written to stdout.
    pub stdout: Vec<u8>,
    /// Everything written to stderr.
    pub stderr: String,
}

/// Runs `mechops args` with `stdin` piped in.
pub fn run(args: &[&str], stdin: &[u8]) -> Run {
    finish(
        Command::new(env!("CARGO_BIN_EXE_mechops")).args(args),
        stdin,
    )
}

/// Runs `mechops args` from `sh`: `prelude` runs first (`ulimit`, `trap`),
/// and `redirect` applies to the command (`>&-`, `< /dev/zero`).
pub fn run_in_shell(prelude: &str, args: &[&str], redirect: &str, stdin: &[u8]) -> Run {
    run_script(
        &format!("{prelude}\nexec \"$0\" \"$@\" {redirect}"),
        args,
        stdin,
    )
}

/// Runs the `sh` script `script` with `$0` the `mechops` binary and `args`
/// as `$1`...
pub fn run_script(script: &str, args: &[&str], stdin: &[u8]) -> Run {
    finish(
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(env!("CARGO_BIN_EXE_mechops"))
            .args(args),
        stdin,
    )
}

fn finish(command: &mut Command, stdin: &[u8]) -> Run {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mechops");
    let mut input = child.stdin.take().unwrap();
    // A command that fails early may close stdin before reading it all.
    let _ = input.write_all(stdin);
    drop(input);
    let out = child.wait_with_output().unwrap();
    Run {
        code: out
            .status
            .code()
            .unwrap_or_else(|| panic!("killed by a signal: {out:?}")),
        stdout: out.stdout,
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// Asserts exit code `code`, no output, and exactly one line on stderr that
/// mentions `needle`.
pub fn assert_fails(run: &Run, code: i32, needle: &str) {
    assert_eq!(run.code, code, "stderr: {}", run.stderr);
    assert!(run.stdout.is_empty(), "no partial output");
    assert_eq!(run.stderr.lines().count(), 1, "one line: {:?}", run.stderr);
    assert!(run.stderr.starts_with("mechops: "), "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert!(
        run.stderr.to_lowercase().contains(&needle.to_lowercase()),
        "{:?} should mention {needle:?}",
        run.stderr
    );
}

/// Bad usage or input: exit code 2, see [`assert_fails`].
pub fn assert_refused(run: &Run, needle: &str) {
    assert_fails(run, 2, needle);
}

/// An I/O failure: exit code 1, see [`assert_fails`].
pub fn assert_io_failure(run: &Run, needle: &str) {
    assert_fails(run, 1, needle);
}

/// A fresh, empty directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mechops-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The names in `dir`, sorted.
pub fn entries(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
