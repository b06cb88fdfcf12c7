//! [`AsyncWorkspace`]: the confined, crash-safe file store of
//! [`mechops_std::workspace`] for async code.
//!
//! Every operation runs the synchronous [`Workspace`] method on tokio's
//! blocking pool ([`tokio::task::spawn_blocking`]), so file system calls and
//! `fsync`s never stall a runtime worker. The workspace is shared through an
//! `Arc`, so an [`AsyncWorkspace`] is cheap to clone and many operations may
//! run at once, as with the synchronous type.
//!
//! # Cancellation
//!
//! Nothing happens until a future is first polled. From then on the
//! operation runs on a blocking thread that cannot be interrupted:
//! **dropping the future (a `timeout`, a `select!` branch that lost, an
//! aborted task) does not stop the operation**; it runs to its end and its
//! result is discarded. Each operation keeps its own guarantee regardless: a
//! write or a delete completes atomically or not at all (a reader sees the
//! old file or the new one, never a mix), an atomic batch is all or nothing,
//! a restore swaps the whole tree in or leaves it as it was. A caller that
//! drops a write's future therefore cannot tell whether it happened; it
//! finds out by reading the path again. Operations started by one task run
//! in the order the task awaits them; a dropped operation may still be
//! running when the next one starts.
//!
//! ```
//! use mechops_std::workspace::Options;
//! use mechops_tokio::workspace::AsyncWorkspace;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let dir = std::env::temp_dir().join(format!("ws-async-doc-{}", std::process::id()));
//! let ws = AsyncWorkspace::open(&dir, Options::default()).await?;
//! ws.write("notes/today.txt", b"hello".to_vec()).await?;
//! assert_eq!(ws.read("notes/today.txt").await?, b"hello");
//! assert!(ws.read("../etc/passwd").await.is_err());
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), mechops_std::workspace::Error>(())
//! # }).unwrap();
//! ```

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use mechops_std::workspace::{
    ArchiveReport, Backup, BatchOp, BatchOptions, CacheStats, Cleanup, CleanupReport, Error,
    FileInfo, Info, Options, Result, Verification, Workspace, WriteOptions,
};

/// A [`Workspace`] whose operations run on tokio's blocking pool; see the
/// module documentation for what dropping a future means.
#[derive(Clone, Debug)]
pub struct AsyncWorkspace {
    inner: Arc<Workspace>,
}

impl From<Arc<Workspace>> for AsyncWorkspace {
    fn from(inner: Arc<Workspace>) -> Self {
        Self { inner }
    }
}

impl From<Workspace> for AsyncWorkspace {
    fn from(inner: Workspace) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }
}

/// Runs `op` on the blocking pool. A panic in `op` is resumed here; a task
/// cancelled because the runtime is shutting down is an I/O error.
async fn blocking<T, F>(what: &'static str, path: String, op: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(op).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(Error::Io {
            op: what,
            path,
            source: io::Error::other(e),
        }),
    }
}

impl AsyncWorkspace {
    /// Opens (creating it if needed) the workspace rooted at `root`, as
    /// [`Workspace::open`].
    ///
    /// # Errors
    /// As [`Workspace::open`].
    pub async fn open(root: impl Into<PathBuf>, options: Options) -> Result<Self> {
        let root = root.into();
        let shown = root.display().to_string();
        let ws = blocking("open", shown, move || Workspace::open(root, options)).await?;
        Ok(ws.into())
    }

    /// Restores `archive` as the whole content of the workspace at `root`,
    /// as [`Workspace::restore`]; dropped, the restore still either swaps
    /// the verified tree in or leaves the target as it was.
    ///
    /// # Errors
    /// As [`Workspace::restore`].
    pub async fn restore(
        root: impl Into<PathBuf>,
        archive: impl Into<PathBuf>,
        options: Options,
    ) -> Result<(Self, ArchiveReport)> {
        let (root, archive) = (root.into(), archive.into());
        let shown = root.display().to_string();
        let (ws, report) = blocking("restore", shown, move || {
            Workspace::restore(root, archive, options)
        })
        .await?;
        Ok((ws.into(), report))
    }

    /// The synchronous workspace, for code that is already on a blocking
    /// thread.
    #[must_use]
    pub fn workspace(&self) -> &Arc<Workspace> {
        &self.inner
    }

    /// [`Workspace::write`] on the blocking pool.
    ///
    /// # Errors
    /// As [`Workspace::write`].
    pub async fn write(&self, path: impl Into<String>, content: impl Into<Vec<u8>>) -> Result<()> {
        let options = self.inner.write_options();
        self.write_with(path, content, options).await
    }

    /// [`Workspace::write_with`] on the blocking pool.
    ///
    /// # Errors
    /// As [`Workspace::write_with`].
    pub async fn write_with(
        &self,
        path: impl Into<String>,
        content: impl Into<Vec<u8>>,
        options: WriteOptions,
    ) -> Result<()> {
        let (ws, path, content) = (Arc::clone(&self.inner), path.into(), content.into());
        blocking("write", path.clone(), move || {
            ws.write_with(&path, &content, options)
        })
        .await
    }

    /// [`Workspace::read`] on the blocking pool.
    ///
    /// # Errors
    /// As [`Workspace::read`].
    pub async fn read(&self, path: impl Into<String>) -> Result<Vec<u8>> {
        let (ws, path) = (Arc::clone(&self.inner), path.into());
        blocking("read", path.clone(), move || ws.read(&path)).await
    }

    /// [`Workspace::read_shared`] on the blocking pool.
    ///
    /// # Errors
    /// As [`Workspace::read`].
    pub async fn read_shared(&self, path: impl Into<String>) -> Result<Arc<[u8]>> {
        let (ws, path) = (Arc::clone(&self.inner), path.into());
        blocking("read", path.clone(), move || ws.read_shared(&path)).await
    }

    /// [`Workspace::delete`] on the blocking pool.
    ///
    /// # Errors
    /// As [`Workspace::delete`].
    pub async fn delete(&self, path: impl Into<String>) -> Result<()> {
        let (ws, path) = (Arc::clone(&self.inner), path.into());
        blocking("remove", path.clone(), move || ws.delete(&path)).await
    }

    /// [`Workspace::rename`] on the blocking pool.
    ///
    /// # Errors
    /// As [`Workspace::rename`].
    pub async fn rename(&self, from: impl Into<String>, to: impl Into<String>) -> Result<()> {
        let (ws, from, to) = (Arc::clone(&self.inner), from.into(), to.into());
        blocking("rename", from.clone(), move || ws.rename(&from, &to)).await
    }

    /// [`Workspace::mkdir`] on the blocking pool.
    ///
    /// # Errors
    /// As [`Workspace::mkdir`].
    pub async fn mkdir(&self, path: impl Into<String>) -> Result<()> {
        let (ws, path) = (Arc::clone(&self.inner), path.into());
        blocking("mkdir", path.clone(), move || ws.mkdir(&path)).await
    }

    /// [`Workspace::exists`] on the blocking pool.
    ///
    /// # Errors
    /// As [`Workspace::exists`].
    pub async fn exists(&self, path: impl Into<String>) -> Result<bool> {
        let (ws, path) = (Arc::clone(&self.inner), path.into());
        blocking("stat", path.clone(), move || ws.exists(&path)).await
    }

    /// [`Workspace::list`] on the blocking pool.
    ///
    /// # Errors
    /// As [`Workspace::list`].
    pub async fn list(&self, prefix: impl Into<String>) -> Result<Vec<FileInfo>> {
        let (ws, prefix) = (Arc::clone(&self.inner), prefix.into());
        blocking("list", prefix.clone(), move || ws.list(&prefix)).await
    }

    /// [`Workspace::info`] on the blocking pool.
    ///
    /// # Errors
    /// As [`Workspace::info`].
    pub async fn info(&self) -> Result<Info> {
        let ws = Arc::clone(&self.inner);
        blocking("info", String::new(), move || ws.info()).await
    }

    /// [`Workspace::verify`] on the blocking pool.
    ///
    /// # Errors
    /// As [`Workspace::verify`].
    pub async fn verify(&self) -> Result<Verification> {
        let ws = Arc::clone(&self.inner);
        blocking("verify", String::new(), move || ws.verify()).await
    }

    /// [`Workspace::cleanup`] on the blocking pool; dropped, the cleanup
    /// still runs to its end.
    ///
    /// # Errors
    /// As [`Workspace::cleanup`].
    pub async fn cleanup(&self, rule: Cleanup) -> Result<CleanupReport> {
        let ws = Arc::clone(&self.inner);
        blocking("cleanup", String::new(), move || ws.cleanup(&rule)).await
    }

    /// [`Workspace::batch`] on the blocking pool; dropped, an atomic batch
    /// is still all or nothing.
    ///
    /// # Errors
    /// As [`Workspace::batch`].
    pub async fn batch(&self, ops: Vec<BatchOp>, options: BatchOptions) -> Result<Vec<Result<()>>> {
        let ws = Arc::clone(&self.inner);
        blocking("batch", String::new(), move || ws.batch(&ops, options)).await
    }

    /// [`Workspace::backup`] on the blocking pool; the archive is written
    /// atomically, so a dropped backup leaves the old archive or the new.
    ///
    /// # Errors
    /// As [`Workspace::backup`].
    pub async fn backup(&self, out: impl Into<PathBuf>, rule: Backup) -> Result<ArchiveReport> {
        let (ws, out) = (Arc::clone(&self.inner), out.into());
        let shown = out.display().to_string();
        blocking("backup", shown, move || ws.backup(out, &rule)).await
    }

    /// The read cache's statistics (no I/O, so not on the blocking pool).
    #[must_use]
    pub fn cache_stats(&self) -> CacheStats {
        self.inner.cache_stats()
    }
}

#[cfg(test)]
mod tests {
    use core::time::Duration;

    use super::*;

    /// A fresh directory for one test, removed when dropped.
    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir()
                .join(format!("mechops-tokio-ws-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            Self(dir)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[tokio::test]
    async fn write_read_list_rename_delete() {
        let dir = Dir::new("basic");
        let ws = AsyncWorkspace::open(&dir.0, Options::default())
            .await
            .unwrap();
        ws.write("a/one", b"one".to_vec()).await.unwrap();
        ws.write("two", "two".repeat(1000)).await.unwrap();
        assert_eq!(ws.read("a/one").await.unwrap(), b"one");
        assert_eq!(
            &*ws.read_shared("two").await.unwrap(),
            "two".repeat(1000).as_bytes()
        );
        assert!(ws.cache_stats().entries >= 1);
        let listed: Vec<String> = ws
            .list("")
            .await
            .unwrap()
            .into_iter()
            .map(|f| f.path)
            .collect();
        assert_eq!(listed, ["a/one", "two"]);
        ws.rename("a/one", "b/one").await.unwrap();
        assert!(!ws.exists("a/one").await.unwrap());
        ws.delete("b/one").await.unwrap();
        assert!(ws.read("b/one").await.unwrap_err().is_not_found());
        ws.mkdir("empty").await.unwrap();
        assert_eq!(ws.info().await.unwrap().files, 1);
        assert!(ws.verify().await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn refusals_come_back_as_errors() {
        let dir = Dir::new("refuse");
        let ws = AsyncWorkspace::open(&dir.0, Options::default())
            .await
            .unwrap();
        for path in ["../x", "/etc/passwd", "a/../../x", ""] {
            assert!(matches!(
                ws.write(path, b"x".to_vec()).await,
                Err(Error::InvalidPath { .. })
            ));
        }
        let results = ws
            .batch(
                vec![
                    BatchOp::Write {
                        path: "ok".into(),
                        content: b"x".to_vec(),
                    },
                    BatchOp::Delete {
                        path: "missing".into(),
                    },
                ],
                BatchOptions::atomic(),
            )
            .await
            .unwrap();
        assert!(results.iter().all(Result::is_err));
        assert!(!ws.exists("ok").await.unwrap());
    }

    #[tokio::test]
    async fn backup_restore_and_cleanup() {
        let dir = Dir::new("backup");
        let ws = AsyncWorkspace::open(dir.0.join("ws"), Options::default())
            .await
            .unwrap();
        ws.write("keep", b"k".to_vec()).await.unwrap();
        let archive = dir.0.join("a.tar.zst");
        let report = ws.backup(&archive, Backup::default()).await.unwrap();
        assert_eq!(report.files.len(), 1);
        let (restored, _) =
            AsyncWorkspace::restore(dir.0.join("copy"), &archive, Options::default())
                .await
                .unwrap();
        assert_eq!(restored.read("keep").await.unwrap(), b"k");
        let gone = restored
            .cleanup(Cleanup::older_than(Duration::ZERO))
            .await
            .unwrap();
        assert_eq!(gone.removed, ["keep"]);
        assert!(!restored.exists("keep").await.unwrap());
    }

    /// With one blocking thread, blocking tasks run in the order they were
    /// spawned: the read after a dropped write runs after that write has
    /// finished, and sees all of it.
    #[test]
    fn a_dropped_write_still_completes_whole() {
        let dir = Dir::new("dropped");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .max_blocking_threads(1)
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            let ws = AsyncWorkspace::open(&dir.0, Options::default())
                .await
                .unwrap();
            ws.write("f", vec![1u8; 100_000]).await.unwrap();
            let new = vec![2u8; 100_000];
            // A zero timeout polls the write once (starting it) and drops it.
            let dropped = tokio::time::timeout(Duration::ZERO, ws.write("f", new.clone())).await;
            assert!(dropped.is_err(), "the timeout dropped the write");
            assert_eq!(ws.read("f").await.unwrap(), new);
            assert!(ws.verify().await.unwrap().is_ok());
        });
    }
}
