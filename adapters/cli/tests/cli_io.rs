//! How every command meets its environment: bounded reads, exit codes 1 (I/O
//! failure) and 2 (bad usage or input), a closed or full standard output, a
//! full disk under `-o` and `keygen`, and private key files.

mod support;

use std::path::Path;

use mechops_std::codec::{Compression, Encryption, Format, FrameHeader, FrameSpec};
use support::{
    assert_io_failure, assert_refused, entries, run, run_in_shell, run_script, temp_dir,
};

/// A shell prelude under which the process may map at most 512 MiB, so a
/// command that read its whole input into memory would die on
/// `/dev/zero` (an allocation failure aborts: no exit code at all).
const SMALL_MEMORY: &str = "ulimit -v 524288";

/// A shell prelude under which every write to a file fails with EFBIG
/// (`SIGXFSZ` ignored): a full disk from the first byte.
const FULL_DISK: &str = "trap '' XFSZ\nulimit -f 0";

/// The 28-byte header of an uncompressed, unencrypted postcard frame that
/// declares a `len`-byte payload.
fn header_declaring(len: usize) -> Vec<u8> {
    let spec = FrameSpec::new(Format::Postcard, Compression::None, Encryption::None);
    FrameHeader::new(spec, len, len, 0)
        .unwrap()
        .to_bytes()
        .to_vec()
}

#[test]
fn endless_input_is_refused_at_the_limit_in_bounded_memory() {
    let out = run_in_shell(SMALL_MEMORY, &["pack"], "< /dev/zero", b"");
    assert_refused(&out, "longer than the limit of 67108864 bytes");
    let out = run_in_shell(
        SMALL_MEMORY,
        &["pack", "--max-input", "1000"],
        "< /dev/zero",
        b"",
    );
    assert_refused(&out, "longer than the limit of 1000 bytes");
    // At the limit exactly, the input is read and parsed.
    let out = run(&["pack", "--max-input", "2"], b"{}");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = run(&["pack", "--max-input", "2"], b"{} ");
    assert_refused(&out, "--max-input");

    // A header, then zeros for ever: read exactly the declared frame, then
    // refuse the first byte after it.
    let dir = temp_dir("endless");
    let header = dir.join("header");
    std::fs::write(&header, header_declaring(1 << 20)).unwrap();
    let stream = format!("< /dev/zero cat {} /dev/zero |", header.display());
    for command in ["unpack", "inspect"] {
        let out = run_in_shell(SMALL_MEMORY, &[command], "", b"");
        // Empty input: a truncated header.
        assert_refused(&out, "truncated");
        let script = format!("{SMALL_MEMORY}\n{stream} \"$0\" {command}");
        let out = run_script(&script, &[], b"");
        assert_refused(&out, "trailing bytes after the 1048604-byte frame");
    }
    // A header that declares more than the limit: refused before its body.
    std::fs::write(&header, header_declaring(1 << 30)).unwrap();
    let script = format!("{SMALL_MEMORY}\n{stream} \"$0\" unpack");
    assert_refused(
        &run_script(&script, &[], b""),
        "above the limit of 67108864",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn key_files_must_be_small_private_regular_files() {
    let dir = temp_dir("keyfiles");
    let key = dir.join("key");
    let key_arg = key.to_str().unwrap();
    assert_eq!(run(&["keygen", "-o", key_arg], b"").code, 0);
    assert_eq!(run(&["pack", "--key-file", key_arg], b"{}").code, 0);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "keygen writes a private file");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let out = run(&["pack", "--key-file", key_arg], b"{}");
        assert_refused(&out, "accessible by group or others (mode 0644)");
        assert!(out.stderr.contains("chmod 600"), "{}", out.stderr);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    assert_refused(
        &run(&["pack", "--key-file", "/dev/zero"], b"{}"),
        "not a regular file",
    );
    let big = dir.join("big");
    std::fs::write(&big, vec![b'a'; 100_000]).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&big, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    assert_refused(
        &run(&["unpack", "--key-file", big.to_str().unwrap()], b""),
        "larger than 256 bytes",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Runs every command that writes to stdout with stdout redirected by
/// `redirect`, and asserts each is an I/O failure mentioning `needle`.
fn assert_every_stdout_command_fails(redirect: &str, needle: &str) {
    let packed = run(&["pack"], b"{\"a\":1}").stdout;
    for args in [
        &["uuid"][..],
        &["uuid", "-n", "100000"],
        &["uuid", "inspect", "017F22E2-79B0-7CC3-98C4-DC0C0C07398F"],
        &["time", "now"],
        &["time", "format", "0"],
        &["pack"],
        &["unpack"],
        &["inspect"],
    ] {
        let stdin = if args[0] == "pack" {
            &b"{}"[..]
        } else {
            &packed
        };
        let out = run_in_shell("", args, redirect, stdin);
        assert_io_failure(&out, needle);
    }
}

#[test]
fn a_full_standard_output_is_an_io_failure_for_every_command() {
    assert_every_stdout_command_fails("> /dev/full", "writing stdout: no space left on device");
}

#[test]
fn a_closed_standard_output_is_reported() {
    assert_every_stdout_command_fails(">&-", "standard output is closed");
    let packed = run(&["pack"], b"{}").stdout;
    // Commands that write files do not need it.
    let dir = temp_dir("closed");
    let key = dir.join("key");
    let out = run_in_shell("", &["keygen", "-o", key.to_str().unwrap()], ">&-", b"");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let frame = dir.join("frame");
    let out = run_in_shell("", &["pack", "-o", frame.to_str().unwrap()], ">&-", b"{}");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(std::fs::read(&frame).unwrap(), packed);
    // Redirected to /dev/null is not closed.
    let out = run_in_shell("", &["uuid"], "> /dev/null", b"");
    assert_eq!(out.code, 0, "{}", out.stderr);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_reader_going_away_is_not_a_failure() {
    let script = "\"$0\" uuid -n 1000000 | head -n 1 >/dev/null\necho \"status $?\" >&2";
    let out = run_script(script, &[], b"");
    assert_eq!(out.code, 0);
    assert_eq!(out.stderr, "status 0\n");
}

/// Asserts that a failed write left `dir` holding exactly `names`.
fn assert_left(dir: &Path, names: &[&str]) {
    assert_eq!(entries(dir), names, "no partial file, no temporary");
}

#[test]
fn a_full_disk_leaves_no_partial_file() {
    let dir = temp_dir("full-disk");
    let key = dir.join("key");
    let key_arg = key.to_str().unwrap();
    let out = run_in_shell(FULL_DISK, &["keygen", "-o", key_arg], "", b"");
    assert_io_failure(&out, "file too large");
    assert_left(&dir, &[]);
    // The failed run left nothing to trip over.
    assert_eq!(run(&["keygen", "-o", key_arg], b"").code, 0);

    let packed = run(&["pack"], b"{\"a\":1}").stdout;
    let frame = dir.join("frame");
    let frame_arg = frame.to_str().unwrap();
    let out = run_in_shell(FULL_DISK, &["pack", "-o", frame_arg], "", b"{\"a\":1}");
    assert_io_failure(&out, "file too large");
    assert_left(&dir, &["key"]);
    let json = dir.join("json");
    let json_arg = json.to_str().unwrap();
    let out = run_in_shell(FULL_DISK, &["unpack", "-o", json_arg], "", &packed);
    assert_io_failure(&out, "file too large");
    assert_left(&dir, &["key"]);

    // An existing output keeps its old contents when the new ones fail.
    std::fs::write(&json, b"old").unwrap();
    let out = run_in_shell(FULL_DISK, &["unpack", "-o", json_arg], "", &packed);
    assert_io_failure(&out, "file too large");
    assert_eq!(std::fs::read(&json).unwrap(), b"old");
    assert_left(&dir, &["json", "key"]);
    let out = run(&["unpack", "-o", json_arg], &packed);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(std::fs::read(&json).unwrap(), b"{\"a\":1}\n");

    // Standard output named as a file is written in place, not renamed
    // over: the shell's descriptor still points at the file afterwards.
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let redirected = dir.join("redirected");
        std::fs::write(&redirected, b"").unwrap();
        let inode = std::fs::metadata(&redirected).unwrap().ino();
        let script = format!("\"$0\" unpack -o /dev/stdout > {}", redirected.display());
        let out = run_script(&script, &[], &packed);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(std::fs::read(&redirected).unwrap(), b"{\"a\":1}\n");
        assert_eq!(std::fs::metadata(&redirected).unwrap().ino(), inode);
        std::fs::remove_file(&redirected).unwrap();
    }

    // Devices are written in place, not replaced.
    assert_io_failure(
        &run(&["unpack", "-o", "/dev/full"], &packed),
        "writing /dev/full: no space left on device",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn usage_and_input_exit_2_io_exits_1() {
    assert_refused(&run(&["pack", "--format", "xml"], b""), "xml");
    assert_refused(&run(&["time", "format", "soon"], b""), "not an integer");
    assert_refused(&run(&["pack"], b"{"), "not valid json");
    let dir = temp_dir("codes");
    let key = dir.join("key");
    let key_arg = key.to_str().unwrap();
    assert_eq!(run(&["keygen", "-o", key_arg], b"").code, 0);
    assert_refused(&run(&["keygen", "-o", key_arg], b""), "already exists");
    let missing = dir.join("missing.json");
    let out = run(&["pack", "-i", missing.to_str().unwrap()], b"");
    assert_io_failure(&out, "opening");
    assert_eq!(
        out.stderr.matches("No such file").count(),
        1,
        "{}",
        out.stderr
    );
    let nowhere = dir.join("no").join("such").join("dir");
    let out = run(&["keygen", "-o", nowhere.to_str().unwrap()], b"");
    assert_io_failure(&out, "no such file");
    assert_eq!(
        out.stderr.matches("No such file").count(),
        1,
        "{}",
        out.stderr
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
