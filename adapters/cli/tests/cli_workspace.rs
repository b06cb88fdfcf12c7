//! `mechops workspace` end to end: every command through the binary, the
//! escape corpus, batches, a tampered file, backup and restore.

mod support;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use serde_json::Value;
use support::{Run, assert_io_failure, assert_refused, run, temp_dir};

/// `mechops workspace --root ROOT args...` with `stdin`.
fn ws(root: &Path, args: &[&str], stdin: &[u8]) -> Run {
    let mut all = vec!["workspace", "--root", root.to_str().unwrap()];
    all.extend_from_slice(args);
    run(&all, stdin)
}

/// A run that must succeed with nothing on stderr; its stdout.
fn ok(run: Run) -> Vec<u8> {
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    run.stdout
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap()
}

fn json(bytes: Vec<u8>) -> Value {
    serde_json::from_slice(&bytes).unwrap()
}

/// A test directory holding a workspace root `ws` and an outside directory
/// `outside` with one file, for checking that nothing escaped.
struct Setup {
    base: PathBuf,
    root: PathBuf,
    outside: PathBuf,
}

impl Setup {
    fn new(name: &str) -> Self {
        let base = temp_dir(&format!("ws-{name}"));
        let root = base.join("ws");
        let outside = base.join("outside");
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("secret"), b"outside").unwrap();
        Self {
            base,
            root,
            outside,
        }
    }

    fn ws(&self, args: &[&str], stdin: &[u8]) -> Run {
        ws(&self.root, args, stdin)
    }

    /// Nothing outside the root was created, changed or removed.
    fn assert_outside_untouched(&self) {
        assert_eq!(support::entries(&self.outside), ["secret"]);
        assert_eq!(fs::read(self.outside.join("secret")).unwrap(), b"outside");
        let mut base = support::entries(&self.base);
        base.retain(|n| !n.ends_with(".tar") && !n.ends_with(".zst") && !n.ends_with(".gz"));
        assert_eq!(base, ["outside", "ws"]);
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.base);
    }
}

#[test]
fn put_get_ls_rm_round_trip() {
    let s = Setup::new("basic");
    assert!(ok(s.ws(&["put", "notes/a.txt"], b"hello")).is_empty());
    let big = "line of text\n".repeat(500);
    let input = s.base.join("big.txt");
    fs::write(&input, &big).unwrap();
    ok(s.ws(
        &["put", "notes/big.txt", "-i", input.to_str().unwrap()],
        b"",
    ));
    ok(s.ws(
        &["put", "raw.bin", "--compress", "never", "--no-sync"],
        &[0, 1, 2],
    ));
    ok(s.ws(&["put", "tiny", "--compress", "always"], &[7; 64]));
    assert_eq!(ok(s.ws(&["get", "notes/a.txt"], b"")), b"hello");
    assert_eq!(ok(s.ws(&["get", "notes/big.txt"], b"")), big.as_bytes());
    assert_eq!(ok(s.ws(&["get", "./raw.bin"], b"")), [0, 1, 2]);
    assert_eq!(ok(s.ws(&["get", "tiny"], b"")), [7; 64]);
    let out = s.base.join("out.txt");
    assert!(ok(s.ws(&["get", "notes/a.txt", "-o", out.to_str().unwrap()], b"")).is_empty());
    assert_eq!(fs::read(&out).unwrap(), b"hello");
    fs::remove_file(&out).unwrap();
    fs::remove_file(&input).unwrap();

    assert_eq!(
        text(ok(s.ws(&["ls"], b""))),
        "notes/a.txt\nnotes/big.txt\nraw.bin\ntiny\n"
    );
    assert_eq!(
        text(ok(s.ws(&["ls", "notes"], b""))),
        "notes/a.txt\nnotes/big.txt\n"
    );
    let listed = json(ok(s.ws(&["ls", "--json"], b"")));
    let files = listed.as_array().unwrap();
    assert_eq!(files.len(), 4);
    let big_entry = &files[1];
    assert_eq!(big_entry["path"], "notes/big.txt");
    assert_eq!(big_entry["size"], big.len());
    assert_eq!(big_entry["compressed"], true);
    assert!(big_entry["stored_size"].as_u64().unwrap() < big.len() as u64);
    assert_eq!(files[2]["compressed"], false);
    assert_eq!(files[3]["compressed"], true, "always compresses 64 bytes");
    let modified = big_entry["modified"].as_str().unwrap();
    assert!(
        modified.ends_with('Z') && modified.contains('T'),
        "{modified}"
    );
    assert_eq!(
        files[0].as_object().unwrap().keys().collect::<Vec<_>>(),
        ["compressed", "modified", "path", "size", "stored_size"]
    );

    assert!(ok(s.ws(&["rm", "raw.bin"], b"")).is_empty());
    assert_refused(&s.ws(&["get", "raw.bin"], b""), "no such file");
    assert_refused(&s.ws(&["rm", "raw.bin"], b""), "no such file");
    assert_refused(&s.ws(&["rm", "notes"], b""), "directory");
    s.assert_outside_untouched();
}

#[test]
fn info_reports_counts_and_compression() {
    let s = Setup::new("info");
    ok(s.ws(&["put", "a/x"], "abc".repeat(1000).as_bytes()));
    ok(s.ws(&["put", "b"], b"12345"));
    let info = json(ok(s.ws(&["info", "--json"], b"")));
    assert_eq!(info["files"], 2);
    assert_eq!(info["directories"], 1);
    assert_eq!(info["logical_bytes"], 3005);
    assert_eq!(info["compressed_files"], 1);
    assert!(info["stored_bytes"].as_u64().unwrap() < 3005);
    assert!(info["ratio"].as_f64().unwrap() < 1.0);
    assert_eq!(info["largest"][0]["path"], "a/x");
    assert!(info["oldest"].is_string() && info["newest"].is_string());
    assert!(info["cache"]["hits"].is_u64());
    let plain = text(ok(s.ws(&["info"], b"")));
    assert!(plain.contains("files: 2\n"), "{plain}");
    assert!(plain.contains("compressed files: 1\n"), "{plain}");
}

#[test]
fn the_escape_corpus_is_refused_and_nothing_outside_changes() {
    let s = Setup::new("escape");
    ok(s.ws(&["put", "inside/file"], b"in"));
    for path in [
        "..",
        "../secret",
        "../outside/secret",
        "inside/../../outside/secret",
        "inside/../..",
        "a/b/../../../x",
        "/etc/passwd",
        "/",
        "",
        ".mechops/lock",
    ] {
        for args in [vec!["put", path], vec!["get", path], vec!["rm", path]] {
            let run = s.ws(&args, b"overwritten");
            assert_refused(&run, "path");
        }
    }
    let outside = s.outside.to_str().unwrap().to_owned();
    // Links to the outside created in the root: relative, absolute, chained,
    // through /proc/self/root.
    symlink("../outside", s.root.join("rel")).unwrap();
    symlink(&outside, s.root.join("abs")).unwrap();
    symlink("rel", s.root.join("chain")).unwrap();
    symlink(format!("/proc/self/root{outside}"), s.root.join("proc")).unwrap();
    symlink(format!("{outside}/secret"), s.root.join("file_link")).unwrap();
    for link in ["rel", "abs", "chain", "proc"] {
        let through = format!("{link}/secret");
        assert_refused(&s.ws(&["get", &through], b""), &through);
        assert_refused(&s.ws(&["put", &through], b"overwritten"), &through);
        assert_refused(&s.ws(&["put", &format!("{link}/new")], b"x"), link);
        assert_refused(&s.ws(&["rm", &through], b""), &through);
        assert_refused(&s.ws(&["ls", link], b""), link);
    }
    assert_refused(&s.ws(&["get", "file_link"], b""), "file_link");
    // Removing a link removes the link itself, never its target.
    ok(s.ws(&["rm", "file_link"], b""));
    // Cleanup never follows links out.
    ok(s.ws(&["cleanup", "--older-than", "0s"], b""));
    // A batch with one escaping path: the atomic one changes nothing.
    let lines = "{\"op\":\"write\",\"path\":\"ok\",\"content\":\"x\"}\n\
                 {\"op\":\"write\",\"path\":\"rel/secret\",\"content\":\"x\"}\n";
    let run = s.ws(&["batch", "--atomic"], lines.as_bytes());
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1);
    s.assert_outside_untouched();
    assert!(!s.root.join("ok").exists());
}

#[test]
fn batch_runs_lines_and_refuses_malformed_ones() {
    let s = Setup::new("batch");
    let lines = "{\"op\":\"write\",\"path\":\"a\",\"content\":\"text\"}\n\
                 \n\
                 {\"op\":\"write\",\"path\":\"b\",\"content_base64\":\"AAEC\"}\n\
                 {\"op\":\"mkdir\",\"path\":\"d/e\"}\n\
                 {\"op\":\"rename\",\"from\":\"a\",\"to\":\"d/e/a\"}\n\
                 {\"op\":\"delete\",\"path\":\"b\"}\n";
    assert_eq!(
        text(ok(s.ws(&["batch", "--atomic"], lines.as_bytes()))),
        "ok\nok\nok\nok\nok\n"
    );
    assert_eq!(ok(s.ws(&["get", "d/e/a"], b"")), b"text");
    assert_eq!(text(ok(s.ws(&["ls"], b""))), "d/e/a\n");
    let input = s.base.join("ops.jsonl");
    fs::write(
        &input,
        "{\"op\":\"write\",\"path\":\"c\",\"content\":\"c\"}\n",
    )
    .unwrap();
    let out = text(ok(
        s.ws(&["batch", "--json", "-i", input.to_str().unwrap()], b"")
    ));
    let result: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(result["index"], 0);
    assert_eq!(result["ok"], true);
    fs::remove_file(&input).unwrap();

    // A failing operation in a plain batch: the others run, each is reported.
    let lines = "{\"op\":\"write\",\"path\":\"f\",\"content\":\"f\"}\n\
                 {\"op\":\"delete\",\"path\":\"missing\"}\n";
    let run = s.ws(&["batch", "--json"], lines.as_bytes());
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("batch operation 1"), "{}", run.stderr);
    let results: Vec<Value> = text(run.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results[0]["ok"], true);
    assert_eq!(results[1]["ok"], false);
    assert!(results[1]["error"].as_str().unwrap().contains("missing"));
    assert_eq!(ok(s.ws(&["get", "f"], b"")), b"f");

    // Malformed lines: refused before anything runs.
    for (lines, needle) in [
        (
            "{\"op\":\"write\",\"path\":\"g\",\"content\":\"g\"}\nnot json\n",
            "line 2",
        ),
        ("{\"op\":\"chmod\",\"path\":\"g\"}\n", "line 1"),
        ("{\"op\":\"write\",\"path\":\"g\"}\n", "content"),
        (
            "{\"op\":\"write\",\"path\":\"g\",\"content_base64\":\"***\"}\n",
            "base64",
        ),
        ("{\"op\":\"rename\",\"from\":\"f\"}\n", "to"),
        ("{\"op\":\"delete\",\"path\":\"f\",\"extra\":1}\n", "extra"),
    ] {
        assert_refused(&s.ws(&["batch"], lines.as_bytes()), needle);
    }
    assert_refused(&s.ws(&["batch"], &[0xff, 0xfe]), "UTF-8");
    assert!(!s.root.join("g").exists());
    assert_eq!(ok(s.ws(&["get", "f"], b"")), b"f");
}

#[test]
fn a_tampered_file_fails_get_and_verify() {
    let s = Setup::new("tamper");
    ok(s.ws(&["put", "doc"], b"original"));
    ok(s.ws(&["put", "gone"], b"bye"));
    assert_eq!(
        json(ok(s.ws(&["verify", "--json"], b""))),
        serde_json::json!({"ok": true, "modified": [], "missing": [], "unexpected": []})
    );
    assert_eq!(text(ok(s.ws(&["verify"], b""))), "ok\n");
    // Same size, other bytes: only the hash can tell.
    let mut bytes = fs::read(s.root.join("doc")).unwrap();
    bytes[0] ^= 1;
    fs::write(s.root.join("doc"), &bytes).unwrap();
    fs::remove_file(s.root.join("gone")).unwrap();
    fs::write(s.root.join("stray"), b"not ours").unwrap();
    assert_refused(&s.ws(&["get", "doc"], b""), "damaged");
    let run = s.ws(&["verify", "--json"], b"");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1);
    assert!(run.stderr.contains("1 modified"), "{}", run.stderr);
    assert_eq!(
        json(run.stdout),
        serde_json::json!({"ok": false, "modified": ["doc"], "missing": ["gone"], "unexpected": ["stray"]})
    );
    let run = s.ws(&["verify"], b"");
    assert_eq!(run.code, 1);
    assert_eq!(
        text(run.stdout),
        "modified doc\nmissing gone\nunexpected stray\n"
    );
    // A file put there by another program reads as it is.
    assert_eq!(ok(s.ws(&["get", "stray"], b"")), b"not ours");
}

#[test]
fn cleanup_removes_old_files_and_reports() {
    let s = Setup::new("cleanup");
    ok(s.ws(&["put", "logs/a.log"], b"aaaa"));
    ok(s.ws(&["put", "logs/b.txt"], b"bb"));
    ok(s.ws(&["put", "keep"], b"k"));
    assert!(text(ok(s.ws(&["cleanup", "--older-than", "24h"], b""))).is_empty());
    let dry = json(ok(s.ws(
        &[
            "cleanup",
            "--older-than",
            "0s",
            "--glob",
            "logs/*.log",
            "--dry-run",
            "--json",
        ],
        b"",
    )));
    assert_eq!(dry["removed"], serde_json::json!(["logs/a.log"]));
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["bytes_freed"], 4);
    assert!(s.root.join("logs/a.log").exists());
    assert_eq!(
        text(ok(s.ws(
            &["cleanup", "--older-than", "0s", "--glob", "logs/**"],
            b""
        ))),
        "logs/a.log\nlogs/b.txt\n"
    );
    assert!(!s.root.join("logs").exists(), "emptied directory removed");
    assert_eq!(text(ok(s.ws(&["ls"], b""))), "keep\n");
    assert_refused(
        &s.ws(&["cleanup", "--older-than", "soon"], b""),
        "--older-than",
    );
    assert_refused(&s.ws(&["cleanup", "--older-than", "-5s"], b""), "negative");
    assert_refused(
        &s.ws(&["cleanup", "--older-than", "1s", "--glob", "a[b"], b""),
        "glob",
    );
}

#[test]
fn backup_and_restore_round_trip() {
    let s = Setup::new("backup");
    ok(s.ws(&["put", "a/one"], b"one"));
    ok(s.ws(&["put", "two"], "two".repeat(600).as_bytes()));
    for (compression, name) in [
        ("zstd", "b.tar.zst"),
        ("gzip", "b.tar.gz"),
        ("none", "b.tar"),
    ] {
        let archive = s.base.join(name);
        let line = text(ok(s.ws(
            &[
                "backup",
                "-o",
                archive.to_str().unwrap(),
                "--compression",
                compression,
            ],
            b"",
        )));
        assert!(line.starts_with("backed up 2 files"), "{line}");
        let target = s.base.join(format!("restored-{compression}"));
        let line = text(ok(ws(
            &target,
            &["restore", "-i", archive.to_str().unwrap()],
            b"",
        )));
        assert_eq!(line, "restored 2 files (1803 bytes)\n");
        assert_eq!(ok(ws(&target, &["get", "a/one"], b"")), b"one");
        assert_eq!(
            ok(ws(&target, &["get", "two"], b"")),
            "two".repeat(600).as_bytes()
        );
        assert_eq!(text(ok(ws(&target, &["verify"], b""))), "ok\n");
        fs::remove_dir_all(&target).unwrap();
    }
    // Only the files matching a glob, restored over an existing workspace.
    let archive = s.base.join("only-a.tar");
    ok(s.ws(
        &[
            "backup",
            "-o",
            archive.to_str().unwrap(),
            "--glob",
            "a/**",
            "--compression",
            "none",
        ],
        b"",
    ));
    ok(s.ws(&["restore", "-i", archive.to_str().unwrap()], b""));
    assert_eq!(text(ok(s.ws(&["ls"], b""))), "a/one\n");
    s.assert_outside_untouched();
}

/// A ustar header block for `name` of `size` bytes and entry type `kind`.
fn tar_header(name: &str, size: usize, kind: u8, link: &str) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[148..156].copy_from_slice(b"        ");
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    h
}

/// A plain tar archive of `(name, kind, link, content)` entries.
fn tar(entries: &[(&str, u8, &str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, link, content) in entries {
        out.extend_from_slice(&tar_header(name, content.len(), *kind, link));
        out.extend_from_slice(content);
        out.resize(out.len().next_multiple_of(512), 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

#[test]
fn refused_archives_leave_the_target_as_it_was() {
    let s = Setup::new("refuse");
    ok(s.ws(&["put", "kept"], b"kept"));
    let archive = s.base.join("bad.tar");
    let manifest = br#"[{"path":"x","size":1,"blake3":"0000000000000000000000000000000000000000000000000000000000000000"}]"#;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (tar(&[("../escape", b'0', "", b"x")]), "escape"),
        (tar(&[("/abs", b'0', "", b"x")]), "abs"),
        (tar(&[("link", b'2', "../outside/secret", b"")]), "link"),
        (tar(&[("hard", b'1', "/etc/passwd", b"")]), "hard"),
        (tar(&[("dev", b'3', "", b"")]), "dev"),
        (tar(&[("x", b'0', "", b"x"), ("x", b'0', "", b"y")]), "x"),
        (
            tar(&[
                ("x", b'0', "", b"x"),
                (".mechops-manifest.json", b'0', "", manifest),
            ]),
            "x",
        ),
        (b"this is not an archive".to_vec(), ""),
    ];
    for (bytes, needle) in cases {
        fs::write(&archive, &bytes).unwrap();
        let run = s.ws(&["restore", "-i", archive.to_str().unwrap()], b"");
        assert_refused(&run, needle);
        assert_eq!(text(ok(s.ws(&["ls"], b""))), "kept\n");
        assert_eq!(ok(s.ws(&["get", "kept"], b"")), b"kept");
        s.assert_outside_untouched();
    }
    // A truncated archive of a real backup.
    ok(s.ws(
        &[
            "backup",
            "-o",
            archive.to_str().unwrap(),
            "--compression",
            "none",
        ],
        b"",
    ));
    let full = fs::read(&archive).unwrap();
    fs::write(&archive, &full[..700]).unwrap();
    assert_refused(
        &s.ws(&["restore", "-i", archive.to_str().unwrap()], b""),
        "",
    );
    let missing = s.base.join("missing.tar");
    assert_refused(
        &s.ws(&["restore", "-i", missing.to_str().unwrap()], b""),
        "missing.tar",
    );
    assert_eq!(text(ok(s.ws(&["ls"], b""))), "kept\n");
}

#[test]
fn bad_usage_and_inputs_are_one_line_with_exit_2() {
    let s = Setup::new("usage");
    assert_refused(&s.ws(&["put"], b""), "required");
    assert_refused(&s.ws(&["put", "x", "--compress", "maybe"], b""), "maybe");
    assert_refused(&s.ws(&["frobnicate"], b""), "frobnicate");
    let missing = s.base.join("nope");
    assert_refused(
        &s.ws(&["put", "x", "-i", missing.to_str().unwrap()], b""),
        "no such file",
    );
    assert_refused(
        &s.ws(&["batch", "-i", missing.to_str().unwrap()], b""),
        "no such file",
    );
    assert_refused(&s.ws(&["put", "x\u{1}/../../y"], b""), "path");
    assert!(!s.root.join("x").exists());
}

#[test]
fn an_unwritable_output_is_an_io_failure() {
    let s = Setup::new("io");
    ok(s.ws(&["put", "a"], b"a"));
    let blocked = s.base.join("ws").join("a").join("out");
    assert_io_failure(
        &s.ws(&["get", "a", "-o", blocked.to_str().unwrap()], b""),
        "out",
    );
}
