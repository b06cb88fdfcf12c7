//! Backups and restores: round trips in every compression, and malicious
//! archives built here, each refused with the target unchanged and nothing
//! written outside it.

mod workspace_support;

use std::path::PathBuf;
use workspace_support::snapshot;

use mechops_std::workspace::{
    ArchiveCompression, Backup, Error, MANIFEST_NAME, Options, Workspace, parse_manifest,
};

fn base(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ws-archive-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn fill(ws: &Workspace) {
    ws.write("a.txt", b"alpha").unwrap();
    ws.write("docs/big.md", &b"# big\n".repeat(500)).unwrap();
    ws.write("docs/deep/c.bin", &[0, 1, 2, 255]).unwrap();
}

#[test]
fn backups_restore_in_every_compression() {
    let dir = base("rt");
    let ws = Workspace::open(dir.join("src"), Options::default()).unwrap();
    fill(&ws);
    for (i, compression) in [
        ArchiveCompression::Zstd,
        ArchiveCompression::Gzip,
        ArchiveCompression::None,
    ]
    .into_iter()
    .enumerate()
    {
        let archive = dir.join(format!("backup-{i}.tar"));
        let report = ws
            .backup(&archive, &Backup::default().compression(compression))
            .unwrap();
        assert_eq!(report.files.len(), 3);
        let target = dir.join(format!("dst-{i}"));
        std::fs::create_dir_all(&target).unwrap();
        std::fs::write(target.join("stale"), b"replaced by the restore").unwrap();
        let (restored, read) = Workspace::restore(&target, &archive, Options::default()).unwrap();
        assert_eq!(read.files, report.files);
        for f in &report.files {
            assert_eq!(restored.read(&f.path).unwrap(), ws.read(&f.path).unwrap());
        }
        assert!(!restored.exists("stale").unwrap());
        assert!(restored.verify().unwrap().is_ok());
    }
    let only_docs = ws
        .backup(
            dir.join("docs.tar"),
            &Backup::default().glob("docs/**").unwrap(),
        )
        .unwrap();
    let paths: Vec<_> = only_docs.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["docs/big.md", "docs/deep/c.bin"]);
    // No temporary or staging file is left beside the archives or targets.
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A raw tar entry: the name goes into the header as bytes, unchecked.
fn raw_entry(
    tar: &mut tar::Builder<Vec<u8>>,
    name: &[u8],
    kind: tar::EntryType,
    link: &[u8],
    data: &[u8],
) {
    let mut header = tar::Header::new_old();
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
    header.as_old_mut().linkname[..link.len()].copy_from_slice(link);
    header.set_entry_type(kind);
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append(&header, data).unwrap();
}

fn manifest_for(files: &[(&str, &[u8])]) -> Vec<u8> {
    let entries: Vec<_> = files
        .iter()
        .map(|(p, c)| serde_json::json!({"path": p, "size": c.len(), "blake3": blake3::hash(c).to_hex().to_string()}))
        .collect();
    serde_json::to_vec(&entries).unwrap()
}

/// Name, type, link target and data of a raw entry.
type RawEntry<'a> = (&'a [u8], tar::EntryType, &'a [u8], &'a [u8]);

fn archive(entries: &[RawEntry<'_>], manifest: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, kind, link, data) in entries {
        raw_entry(&mut tar, name, *kind, link, data);
    }
    if !manifest.is_empty() || entries.is_empty() {
        raw_entry(
            &mut tar,
            MANIFEST_NAME.as_bytes(),
            tar::EntryType::Regular,
            b"",
            &manifest_for(manifest),
        );
    }
    tar.into_inner().unwrap()
}

#[test]
fn malicious_archives_are_refused_and_change_nothing() {
    use tar::EntryType::{Block, Char, Fifo, Link, Regular, Symlink};
    let dir = base("evil");
    let target = dir.join("target");
    let ws = Workspace::open(&target, Options::default()).unwrap();
    fill(&ws);
    drop(ws);
    let good = std::env::temp_dir().join(format!("ws-archive-good-{}.tar", std::process::id()));
    Workspace::open(&target, Options::default())
        .unwrap()
        .backup(
            &good,
            &Backup::default().compression(ArchiveCompression::None),
        )
        .unwrap();
    let good_bytes = std::fs::read(&good).unwrap();
    let ok: &[u8] = b"fine";
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "dotdot",
            archive(&[(b"../evil", Regular, b"", ok)], &[("evil", ok)]),
        ),
        (
            "nested dotdot",
            archive(&[(b"a/../../evil", Regular, b"", ok)], &[("evil", ok)]),
        ),
        (
            "absolute",
            archive(&[(b"/tmp/evil", Regular, b"", ok)], &[("evil", ok)]),
        ),
        (
            "symlink out",
            archive(
                &[
                    (b"link", Symlink, b"../../outside", b""),
                    (b"link/evil", Regular, b"", ok),
                ],
                &[("x", ok)],
            ),
        ),
        (
            "symlink in",
            archive(&[(b"link", Symlink, b"a.txt", b"")], &[("x", ok)]),
        ),
        (
            "hard link",
            archive(&[(b"hard", Link, b"/etc/passwd", b"")], &[("x", ok)]),
        ),
        (
            "char device",
            archive(&[(b"null", Char, b"", b"")], &[("x", ok)]),
        ),
        (
            "block device",
            archive(&[(b"disk", Block, b"", b"")], &[("x", ok)]),
        ),
        ("fifo", archive(&[(b"pipe", Fifo, b"", b"")], &[("x", ok)])),
        (
            "duplicate",
            archive(
                &[(b"a", Regular, b"", ok), (b"a", Regular, b"", ok)],
                &[("a", ok)],
            ),
        ),
        (
            "dot duplicate",
            archive(
                &[(b"a", Regular, b"", ok), (b"./a", Regular, b"", ok)],
                &[("a", ok)],
            ),
        ),
        (
            "reserved",
            archive(&[(b".mechops/ledger", Regular, b"", ok)], &[("x", ok)]),
        ),
        (
            "hash mismatch",
            archive(&[(b"a", Regular, b"", b"evil")], &[("a", ok)]),
        ),
        (
            "unlisted file",
            archive(
                &[(b"a", Regular, b"", ok), (b"b", Regular, b"", ok)],
                &[("a", ok)],
            ),
        ),
        (
            "missing file",
            archive(&[(b"a", Regular, b"", ok)], &[("a", ok), ("b", ok)]),
        ),
        ("no manifest", archive(&[(b"a", Regular, b"", ok)], &[])),
        ("truncated", good_bytes[..good_bytes.len() / 2].to_vec()),
        ("garbage", b"this is not an archive at all".repeat(40)),
    ];
    let archives = base("evil-archives");
    let before = snapshot(&dir);
    for (name, bytes) in cases {
        let path = archives.join("evil.tar");
        std::fs::write(&path, &bytes).unwrap();
        let err = Workspace::restore(&target, &path, Options::default()).unwrap_err();
        assert!(matches!(err, Error::Archive(_)), "{name}: {err}");
        assert_eq!(snapshot(&dir), before, "{name}: something changed");
    }
    std::fs::remove_dir_all(&archives).unwrap();
    // The good archive still restores.
    Workspace::restore(&target, &good, Options::default()).unwrap();
    std::fs::remove_file(&good).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn manifests_are_checked() {
    assert!(parse_manifest(b"[]").unwrap().is_empty());
    for bad in [
        &b"{"[..],
        br#"[{"path":"../x","size":1,"blake3":"00"}]"#,
        br#"[{"path":"x","size":1,"blake3":"zz"}]"#,
        br#"[{"path":"x","size":1}]"#,
    ] {
        assert!(matches!(parse_manifest(bad), Err(Error::Archive(_))));
    }
    let hex = "0".repeat(64);
    let twice = format!(
        r#"[{{"path":"x","size":1,"blake3":"{hex}"}},{{"path":"./x","size":1,"blake3":"{hex}"}}]"#
    );
    // Two spellings of one path are one path listed twice.
    assert!(parse_manifest(twice.as_bytes()).is_err());
}
