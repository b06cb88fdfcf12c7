//! The workspace's operations: round trips, compression, integrity, the
//! cache, listing, cleanup and batches (with a fault after every step).

mod workspace_support;

use core::time::Duration;
use std::path::PathBuf;

use mechops_core::time::Timestamp;
use mechops_std::workspace::{
    BatchOp, BatchOptions, Cleanup, CompressionPolicy, Durability, Error, Fault, FaultKind,
    Options, Workspace,
};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ws-ops-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn writes_read_back_compressed_or_not_and_verify() {
    let dir = scratch("rt");
    let ws = Workspace::open(&dir, Options::default()).unwrap();
    let big = b"0123456789abcdef".repeat(256);
    ws.write("a/big.txt", &big).unwrap();
    ws.write("small", b"tiny").unwrap();
    assert_eq!(ws.read("a/big.txt").unwrap(), big);
    assert!(std::fs::metadata(dir.join("a/big.txt")).unwrap().len() < big.len() as u64);
    let listing = ws.list("").unwrap();
    let names: Vec<_> = listing.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(names, ["a/big.txt", "small"]);
    assert!(listing[0].compressed && !listing[1].compressed);
    assert_eq!(listing[0].size, big.len() as u64);

    // A user file that happens to be a valid frame reads back unchanged.
    let frame = std::fs::read(dir.join("a/big.txt")).unwrap();
    let plain = ws.write_options();
    ws.write_with(
        "frame",
        &frame,
        mechops_std::workspace::WriteOptions {
            compression: CompressionPolicy::Never,
            ..plain
        },
    )
    .unwrap();
    assert_eq!(ws.read("frame").unwrap(), frame);
    assert!(ws.verify().unwrap().is_ok());

    // Damage, a vanished file, a foreign file.
    std::fs::write(dir.join("outsider"), b"x").unwrap();
    std::fs::remove_file(dir.join("small")).unwrap();
    let mut bytes = std::fs::read(dir.join("frame")).unwrap();
    bytes[10] ^= 0xff;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("frame"))
        .unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &bytes[10..11], 10).unwrap();
    let report = ws.verify().unwrap();
    assert_eq!(report.modified, ["frame"]);
    assert_eq!(report.missing, ["small"]);
    assert_eq!(report.unexpected, ["outsider"]);
    let err = ws.read("frame").unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert_eq!(ws.read("outsider").unwrap(), b"x");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn cache_hits_and_sees_other_writers() {
    let dir = scratch("cache");
    let ws = Workspace::open(&dir, Options::default()).unwrap();
    ws.write("f", b"one").unwrap();
    assert_eq!(ws.read("f").unwrap(), b"one");
    assert_eq!(ws.read("f").unwrap(), b"one");
    let stats = ws.cache_stats();
    assert_eq!((stats.hits, stats.misses), (1, 1));
    // Another process replaces the file: the entry is stale.
    std::fs::write(dir.join("g"), b"two!").unwrap();
    std::fs::rename(dir.join("g"), dir.join("f")).unwrap();
    assert_eq!(ws.read("f").unwrap(), b"two!");
    assert_eq!(ws.cache_stats().stale, 1);

    let trusted = Workspace::open(
        &dir,
        Options::default().trusted_cache(true).cache_bytes(4096),
    )
    .unwrap();
    assert_eq!(trusted.read("f").unwrap(), b"two!");
    assert_eq!(trusted.read("f").unwrap(), b"two!");
    assert_eq!(trusted.cache_stats().hits, 1);
    let big: Vec<u8> = (0..5000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    trusted.write("big", &big).unwrap();
    trusted.read("big").unwrap();
    assert_eq!(trusted.read("big").unwrap(), big);
    assert!(trusted.cache_stats().bytes <= 4096);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn info_cleanup_rename_delete() {
    let dir = scratch("clean");
    let ws = Workspace::open(&dir, Options::default().durability(Durability::None)).unwrap();
    ws.write("logs/a.log", b"aaaa").unwrap();
    ws.write("logs/deep/b.log", b"bb").unwrap();
    ws.write("keep.txt", b"k").unwrap();
    ws.mkdir("empty/already").unwrap();
    let info = ws.info().unwrap();
    assert_eq!((info.files, info.logical_bytes), (3, 7));
    assert_eq!(info.largest[0], ("logs/a.log".to_owned(), 4));

    let later = Timestamp::from_unix_nanos(Timestamp::MAX.unix_nanos() - 1).unwrap();
    let rule = Cleanup::older_than(Duration::from_secs(1))
        .glob("logs/**")
        .unwrap();
    let dry = ws.cleanup_at(&rule.clone().dry_run(true), later).unwrap();
    assert_eq!(dry.removed, ["logs/a.log", "logs/deep/b.log"]);
    assert!(ws.exists("logs/a.log").unwrap());
    let done = ws.cleanup_at(&rule, later).unwrap();
    assert_eq!(done.removed, dry.removed);
    assert_eq!(done.bytes_freed, 6);
    assert_eq!(done.removed_dirs, ["logs", "logs/deep"]);
    assert!(
        ws.exists("empty/already").unwrap(),
        "an already empty directory stays"
    );
    assert!(
        ws.cleanup(&Cleanup::older_than(Duration::from_secs(3600)))
            .unwrap()
            .removed
            .is_empty()
    );

    ws.rename("keep.txt", "moved/keep.txt").unwrap();
    assert_eq!(ws.read("moved/keep.txt").unwrap(), b"k");
    assert!(ws.read("keep.txt").unwrap_err().is_not_found());
    ws.delete("moved/keep.txt").unwrap();
    assert!(matches!(
        ws.delete("moved").unwrap_err(),
        Error::WrongKind { .. }
    ));
    assert!(ws.verify().unwrap().is_ok());
    std::fs::remove_dir_all(&dir).unwrap();
}

fn sample_batch() -> Vec<BatchOp> {
    vec![
        BatchOp::Write {
            path: "a".into(),
            content: b"new a".to_vec(),
        },
        BatchOp::Delete { path: "b".into() },
        BatchOp::Rename {
            from: "c".into(),
            to: "d/c".into(),
        },
        BatchOp::Mkdir { path: "e/f".into() },
        BatchOp::Write {
            path: "g".into(),
            content: vec![7; 4000],
        },
    ]
}

fn setup(dir: &PathBuf) -> Workspace {
    let _ = std::fs::remove_dir_all(dir);
    let ws = Workspace::open(dir, Options::default()).unwrap();
    ws.write("a", b"old a").unwrap();
    ws.write("b", b"old b").unwrap();
    ws.write("c", b"old c").unwrap();
    ws
}

fn state(ws: &Workspace) -> Vec<(String, Vec<u8>)> {
    ws.list("")
        .unwrap()
        .into_iter()
        .map(|f| (f.path.clone(), ws.read(&f.path).unwrap()))
        .collect()
}

#[test]
fn batches_report_per_operation_and_atomic_ones_are_all_or_nothing() {
    let dir = scratch("batch");
    let ws = setup(&dir);
    let before = state(&ws);
    let mut bad = sample_batch();
    bad.push(BatchOp::Delete {
        path: "nothing-here".into(),
    });
    let plain = ws.batch(&bad, BatchOptions::default()).unwrap();
    assert!(plain[..5].iter().all(Result::is_ok));
    assert!(plain[5].as_ref().unwrap_err().is_not_found());
    drop(ws);

    let ws = setup(&dir);
    let atomic = ws.batch(&bad, BatchOptions::atomic()).unwrap();
    assert!(atomic.iter().all(Result::is_err));
    assert_eq!(state(&ws), before);

    let ok = ws.batch(&sample_batch(), BatchOptions::atomic()).unwrap();
    assert!(ok.iter().all(Result::is_ok));
    let after = state(&ws);
    assert_eq!(
        after.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
        ["a", "d/c", "g"]
    );
    assert!(ws.exists("e/f").unwrap());
    assert!(ws.verify().unwrap().is_ok());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_fault_after_every_step_leaves_all_or_nothing() {
    let dir = scratch("fault");
    let ws = setup(&dir);
    let before = state(&ws);
    let steps = ws.batch_steps(&sample_batch()).unwrap();
    let ops = sample_batch();
    ws.batch(&ops, BatchOptions::atomic()).unwrap();
    let after = state(&ws);
    drop(ws);
    for step in 0..=steps + 2 {
        for kind in [FaultKind::Fail, FaultKind::Crash, FaultKind::FailThenCrash] {
            let ws = setup(&dir);
            let fault = Some(Fault {
                after_step: step,
                kind,
            });
            let result = ws.batch(
                &ops,
                BatchOptions {
                    atomic: true,
                    fault,
                    ..Default::default()
                },
            );
            drop(ws);
            let ws = Workspace::open(&dir, Options::default()).unwrap();
            let now = state(&ws);
            match kind {
                FaultKind::Fail | FaultKind::FailThenCrash if step >= steps => {
                    assert_eq!(now, after, "fail after step {step}");
                }
                FaultKind::Fail => {
                    assert!(result.unwrap().iter().all(Result::is_err));
                    assert_eq!(now, before, "fail after step {step}");
                }
                FaultKind::FailThenCrash => {
                    // A failure before any step leaves nothing to undo; else
                    // the rollback "crashes" and recovery finishes it.
                    assert_eq!(step == 0, result.is_ok(), "{step}");
                    assert_eq!(now, before, "crash while rolling back after step {step}");
                }
                FaultKind::Crash => {
                    assert!(matches!(result, Err(Error::InjectedCrash { .. })), "{step}");
                    // Recovery rolls the batch forward.
                    assert_eq!(now, after, "crash after step {step}");
                }
            }
            assert_eq!(ws.exists("e/f").unwrap(), now == after);
            workspace_support::assert_no_journal(&dir);
            assert!(ws.verify().unwrap().unexpected.is_empty());
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn temporaries_are_hidden_and_removed_on_open_and_the_ledger_survives() {
    let dir = scratch("temps");
    let ws = Workspace::open(&dir, Options::default()).unwrap();
    ws.write("sub/kept", b"kept").unwrap();
    ws.write("gone", b"gone").unwrap();
    std::fs::write(
        dir.join("sub/.mechops-tmp-0123456789abcdef"),
        b"left by a crash",
    )
    .unwrap();
    assert_eq!(ws.list("").unwrap().len(), 2);
    drop(ws);
    // A torn final ledger record, as a crash mid-append leaves.
    let ledger = dir.join(".mechops/ledger");
    let mut bytes = std::fs::read(&ledger).unwrap();
    bytes.extend_from_slice(b"-gon");
    std::fs::write(&ledger, bytes).unwrap();
    std::fs::remove_file(dir.join("gone")).unwrap();
    let ws = Workspace::open(&dir, Options::default()).unwrap();
    assert!(!dir.join("sub/.mechops-tmp-0123456789abcdef").exists());
    let report = ws.verify().unwrap();
    assert_eq!(report.missing, ["gone"]);
    assert!(report.unexpected.is_empty() && report.modified.is_empty());
    std::fs::write(dir.join(".mechops/ledger"), b"?junk\0").unwrap();
    drop(ws);
    let err = Workspace::open(&dir, Options::default()).unwrap_err();
    assert!(matches!(err, Error::Metadata { .. }), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn recovery_waits_until_no_workspace_has_the_root_open() {
    let dir = scratch("shared");
    let first = setup(&dir);
    let fault = Some(Fault {
        after_step: 2,
        kind: FaultKind::Crash,
    });
    let crashed = first.batch(
        &sample_batch(),
        BatchOptions {
            fault,
            ..BatchOptions::atomic()
        },
    );
    assert!(matches!(crashed, Err(Error::InjectedCrash { step: 2 })));
    // The first workspace is still open: its journal is work in progress.
    let second = Workspace::open(&dir, Options::default()).unwrap();
    let journals = |dir: &PathBuf| {
        std::fs::read_dir(dir.join(".mechops"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("journal-")
            })
            .count()
    };
    assert_eq!(journals(&dir), 2, "journal and progress file stay");
    drop(first);
    drop(second);
    let third = Workspace::open(&dir, Options::default()).unwrap();
    assert_eq!(journals(&dir), 0);
    assert_eq!(third.read("a").unwrap(), b"new a");
    std::fs::remove_dir_all(&dir).unwrap();
}
