//! The escape corpus: every way out of the root is refused, and afterwards
//! nothing outside the root has been created, changed or removed.

mod workspace_support;

use core::sync::atomic::{AtomicBool, Ordering};
use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::sync::Arc;
use workspace_support::snapshot;

use core::time::Duration;
use mechops_core::time::Timestamp;
use mechops_std::workspace::{BatchOp, BatchOptions, Cleanup, Error, Options, Workspace};

struct Setup {
    base: PathBuf,
    root: PathBuf,
    outside: PathBuf,
}

fn setup(name: &str) -> Setup {
    let base = std::env::temp_dir().join(format!("ws-escape-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let root = base.join("root");
    let outside = base.join("outside");
    std::fs::create_dir_all(root.join("inner")).unwrap();
    std::fs::create_dir_all(outside.join("sub")).unwrap();
    std::fs::write(outside.join("secret"), b"do not touch").unwrap();
    std::fs::write(outside.join("sub/old"), b"old and outside").unwrap();
    symlink("../outside", root.join("rel")).unwrap();
    symlink(&outside, root.join("abs")).unwrap();
    symlink("chain2", root.join("chain1")).unwrap();
    symlink("inner/../../outside", root.join("chain2")).unwrap();
    symlink("/proc/self/root", root.join("proc")).unwrap();
    symlink(
        format!("/proc/self/root{}", outside.display()),
        root.join("procdir"),
    )
    .unwrap();
    symlink("../outside/secret", root.join("secretlink")).unwrap();
    symlink("../../outside", root.join("inner/up")).unwrap();
    Setup {
        base,
        root,
        outside,
    }
}

#[test]
fn paths_that_leave_the_root_are_refused_by_name() {
    let s = setup("strings");
    let ws = Workspace::open(&s.root, Options::default()).unwrap();
    let long_name = "x".repeat(256);
    let long_path = "a/".repeat(2048);
    for path in [
        "..",
        "../outside/secret",
        "a/../../x",
        "inner/../..",
        "./../x",
        "/etc/passwd",
        "/",
        "",
        ".",
        "a\0b",
        "a//b",
        &long_name,
        &long_path,
        ".mechops/ledger",
        "a/.mechops-tmp-1",
    ] {
        let err = ws.write(path, b"x").unwrap_err();
        assert!(
            matches!(err, Error::InvalidPath { .. } | Error::Reserved { .. }),
            "{path:?}: {err}"
        );
        assert!(err.to_string().contains("invalid path"), "{err}");
        assert!(ws.read(path).is_err());
        assert!(ws.delete(path).is_err());
        assert!(ws.rename("inner", path).is_err());
    }
    std::fs::remove_dir_all(&s.base).unwrap();
}

#[test]
fn symbolic_links_never_lead_outside() {
    let s = setup("links");
    let before = snapshot(&s.outside);
    let ws = Workspace::open(&s.root, Options::default()).unwrap();
    for dir in ["rel", "abs", "chain1", "chain2", "procdir", "inner/up"] {
        let file = format!("{dir}/secret");
        let err = ws.read(&file).unwrap_err();
        assert!(
            matches!(err, Error::Escapes { .. } | Error::Symlink { .. }),
            "{file}: {err}"
        );
        assert!(ws.write(&format!("{dir}/new"), b"x").is_err(), "{dir}");
        assert!(ws.write(&file, b"x").is_err(), "{dir}");
        assert!(ws.delete(&file).is_err(), "{dir}");
        assert!(ws.rename(&file, "stolen").is_err(), "{dir}");
        assert!(
            ws.rename("inner", &format!("{dir}/moved")).is_err(),
            "{dir}"
        );
        assert!(ws.mkdir(&format!("{dir}/made")).is_err(), "{dir}");
        assert!(ws.list(dir).is_err(), "{dir}");
        let batch = [BatchOp::Write {
            path: format!("{dir}/b"),
            content: b"x".to_vec(),
        }];
        for atomic in [false, true] {
            let results = ws
                .batch(
                    &batch,
                    BatchOptions {
                        atomic,
                        ..Default::default()
                    },
                )
                .unwrap();
            assert!(results[0].is_err(), "{dir}");
        }
    }
    let err = ws.read("proc/etc/hostname").unwrap_err();
    assert!(
        matches!(err, Error::Escapes { .. } | Error::Symlink { .. }),
        "{err}"
    );
    assert!(ws.read("secretlink").is_err());
    // Removing or replacing the link itself stays inside.
    ws.write("secretlink", b"mine").unwrap();
    assert_eq!(ws.read("secretlink").unwrap(), b"mine");
    ws.delete("abs").unwrap();
    // Listing, verifying and cleaning never enter a link.
    assert!(ws.list("").unwrap().iter().all(|f| f.path == "secretlink"));
    ws.verify().unwrap();
    let far = Timestamp::from_unix_nanos(Timestamp::MAX.unix_nanos() - 1).unwrap();
    let report = ws
        .cleanup_at(&Cleanup::older_than(Duration::ZERO), far)
        .unwrap();
    assert_eq!(report.removed, ["secretlink"]);
    assert_eq!(snapshot(&s.outside), before);
    std::fs::remove_dir_all(&s.base).unwrap();
}

#[test]
fn a_directory_swapped_for_a_link_while_operations_run() {
    let s = setup("race");
    let before = snapshot(&s.outside);
    let ws = Arc::new(
        Workspace::open(
            &s.root,
            Options::default().durability(mechops_std::workspace::Durability::None),
        )
        .unwrap(),
    );
    std::fs::create_dir(s.root.join("d")).unwrap();
    std::fs::write(s.outside.join("f"), b"outside f").unwrap();
    let before_f = std::fs::read(s.outside.join("f")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let root = s.root.clone();
        let outside = s.outside.clone();
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut swaps = 0u32;
            while !stop.load(Ordering::Relaxed) || swaps < 200 {
                // A real directory and a link to outside take turns at `d`.
                let _ = std::fs::rename(root.join("d"), root.join("d-real"));
                let _ = symlink(&outside, root.join("d"));
                std::thread::yield_now();
                let _ = std::fs::remove_file(root.join("d"));
                let _ = std::fs::rename(root.join("d-real"), root.join("d"));
                swaps += 1;
            }
        })
    };
    let far = Timestamp::from_unix_nanos(Timestamp::MAX.unix_nanos() - 1).unwrap();
    let workers: Vec<_> = (0..2)
        .map(|t| {
            let ws = Arc::clone(&ws);
            std::thread::spawn(move || {
                for i in 0..300 {
                    let _ = ws.write("d/f", format!("{t}-{i}").as_bytes());
                    let _ = ws.read("d/f");
                    let _ = ws.read("d/secret");
                    let _ = ws.delete("d/f");
                    let _ = ws.delete("d/secret");
                    let _ = ws.rename("d/sub", "here");
                    let _ = ws.mkdir("d/sub/new");
                    if i % 30 == 0 {
                        let _ = ws.cleanup_at(&Cleanup::older_than(Duration::ZERO), far);
                        let _ = ws.list("");
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    let mut after = snapshot(&s.outside);
    assert_eq!(std::fs::read(s.outside.join("f")).unwrap(), before_f);
    after.remove(&s.outside.join("f"));
    assert_eq!(after, before);
    std::fs::remove_dir_all(&s.base).unwrap();
}
