//! Helpers shared by the workspace tests.

use std::path::Path;

/// Asserts that no atomic-batch journal is left in the workspace at `root`.
pub(crate) fn assert_no_journal(root: &Path) {
    let leftovers: Vec<_> = std::fs::read_dir(root.join(".mechops"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("journal"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
