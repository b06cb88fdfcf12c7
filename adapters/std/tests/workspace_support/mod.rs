//! Helpers shared by the workspace tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

#[allow(dead_code, reason = "not every test file runs batches")]
/// Asserts that no atomic-batch journal is left in the workspace at `root`.
pub(crate) fn assert_no_journal(root: &Path) {
    let leftovers: Vec<_> = std::fs::read_dir(root.join(".mechops"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("journal"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// What [`snapshot`] records of a path: whether it is a directory, its
/// content (files only) and its modification time.
pub(crate) type Snapshot = BTreeMap<PathBuf, (bool, Vec<u8>, SystemTime)>;

/// Everything below `dir`, links not followed.
#[allow(dead_code, reason = "not every test file takes snapshots")]
pub(crate) fn snapshot(dir: &Path) -> Snapshot {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let content = if meta.is_file() {
                std::fs::read(&path).unwrap()
            } else {
                Vec::new()
            };
            if meta.is_dir() {
                stack.push(path.clone());
            }
            out.insert(path, (meta.is_dir(), content, meta.modified().unwrap()));
        }
    }
    out
}
