//! Helpers shared by the registry tests.

use std::path::PathBuf;

/// A fresh folder under the system's temporary folder, removed when
/// dropped.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("mechops-registry-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// The registry file's path in it.
    pub(crate) fn file(&self) -> PathBuf {
        self.0.join("registry.json")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
