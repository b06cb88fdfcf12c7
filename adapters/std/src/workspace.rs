//! A confined, crash-safe file store: [`Workspace`].
//!
//! A workspace is a directory (its root) whose files are written, read,
//! listed, renamed, removed, verified and cleaned up through paths relative
//! to the root. It is synchronous, `Send + Sync`, and meant to be shared by
//! many threads (`Arc<Workspace>`).
//!
//! # Confinement
//!
//! Every path is normalized by [`mechops_core::path::normalize`] (absolute
//! paths, `..` leaving the root, NUL bytes, empty and over-long names are
//! refused, naming the path and the reason) and names starting with
//! `.mechops` are reserved. The root is held open as a directory descriptor
//! and every path is resolved by the kernel with `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_MAGICLINKS)`: a symbolic link that would lead outside, placed
//! there before or while the operation runs, makes the open fail
//! ([`Error::Escapes`]). No path string is checked and then used. Removal
//! (`delete`, `cleanup`) works with `unlinkat` on names relative to
//! directory descriptors opened with `O_NOFOLLOW | O_DIRECTORY` and
//! `RESOLVE_NO_SYMLINKS`, so a directory swapped for a link mid-walk is
//! never entered (the race of CVE-2022-21658).
//!
//! # Durable writes
//!
//! [`Workspace::write`] with [`Durability::Full`] (the default):
//!
//! 1. create `.mechops-tmp-<random>` in the target's directory (`O_EXCL`);
//! 2. `write` the stored bytes, `fsetxattr` the record (see below);
//! 3. `fsync` the temporary file: content and record are on disk;
//! 4. `renameat` it over the target: readers see the old file or the new
//!    one, never a mix, never an empty file;
//! 5. `fsync` the directory: the rename is on disk.
//!
//! [`Durability::None`] skips steps 3 and 5 (scratch data: after a power cut
//! the file may hold the old content or, on some file systems, be empty;
//! after `kill -9` it is still old or new).
//!
//! # Crash model
//!
//! A crash may stop the process between any two system calls, and a power
//! cut may lose anything not yet `fsync`ed. What survives is always a state
//! some prefix of the steps produced: temporary files left behind are
//! removed when a workspace opens, atomic batches are finished or undone by
//! their journal (see [`batch`]). Each open workspace holds a shared
//! `flock` on `.mechops/lock`; recovery, the removal of temporary files and
//! the compaction of the ledger run only when an exclusive lock is
//! granted, that is when no other workspace, in this process or another,
//! has the root open, so they never touch work in progress. Several
//! processes may use one root at once; an atomic batch is all or nothing,
//! not isolated from concurrent operations.
//!
//! # Compression and integrity
//!
//! Content of at least the [`Options::compression`] threshold (1024 bytes
//! by default) is stored as a DEFLATE-compressed frame of the project's
//! frame format when that is smaller. Each file written through the
//! workspace carries its record in the extended attribute
//! `user.mechops.v1` (`docs/FORMAT.md`): whether it is compressed, the
//! original and stored sizes and the BLAKE3 hash of the original content.
//! The attribute is set on the temporary file before the rename, so the
//! record is atomic with the content; extended attributes work on ext4,
//! xfs, btrfs and, since Linux 6.6, tmpfs. A file without a record (put
//! there by another program) is read as it is; a file whose stored bytes do
//! not match their record fails with [`Error::Corrupt`].
//!
//! # Read cache
//!
//! Reads fill a byte-bounded cache (64 MiB by default) keyed by path. A
//! cached entry is returned only if `fstatat` of the path still reports the
//! same device, inode, size, modification and change time (nanoseconds): a
//! write by another process in between replaces the inode or changes the
//! times. (As with any metadata check, a same-size rewrite in place by
//! another program within one tick of the file system's timestamp clock is
//! not seen; the workspace itself never writes in place.) In the trusted
//! mode ([`Options::trusted_cache`], one writer: this workspace) entries
//! are returned without that check.
//!
//! # Other operations
//!
//! [`Workspace::list`], [`Workspace::info`] and [`Workspace::verify`] walk
//! the tree without following links and never show `.mechops` names;
//! [`Workspace::cleanup`] removes old files (optionally matching a glob,
//! optionally as a dry run) and the directories it emptied;
//! [`Workspace::batch`] runs several operations, atomically if asked
//! ([`batch`]); [`Workspace::backup`] and [`Workspace::restore`] write and
//! read verified tar archives ([`backup`]).
//!
//! ```
//! use mechops_std::workspace::{Options, Workspace};
//!
//! let dir = std::env::temp_dir().join(format!("ws-doc-{}", std::process::id()));
//! let ws = Workspace::open(&dir, Options::default())?;
//! ws.write("notes/today.txt", b"hello")?;
//! assert_eq!(ws.read("notes/./today.txt")?, b"hello");
//! assert!(ws.read("../etc/passwd").is_err());
//! assert!(ws.verify()?.is_ok());
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), mechops_std::workspace::Error>(())
//! ```

pub mod backup;
pub mod batch;
mod cleanup;
mod error;
mod ledger;
mod listing;
mod record;
mod sys;

use core::sync::atomic::{AtomicU64, Ordering};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;

use mechops_core::path::{MAX_PATH_LEN, is_normal, normalize, normalize_dir};
use mechops_core::time::Timestamp;
use rustix::fs::{FlockOperation, OFlags};

use crate::cache::SyncCache;
pub use crate::codec::CompressionPolicy;
pub use backup::{
    ArchiveCompression, ArchiveReport, Backup, MANIFEST_NAME, ManifestEntry, parse_manifest,
};
pub use batch::{Batch, BatchOp, BatchOptions, Fault, FaultKind};
pub use cleanup::{Cleanup, CleanupReport};
pub use error::{Error, Result};
pub use listing::{FileInfo, Info, Verification};
pub use record::XATTR_NAME;

use ledger::Ledger;
use record::Record;

/// Whether writes are made durable with `fsync`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Durability {
    /// `fsync` the file before the rename and the directory after it.
    #[default]
    Full,
    /// No `fsync`: atomic against a process crash, not a power cut.
    None,
}

/// How a workspace is opened; [`Options::default`] is durable, compresses
/// from 1024 bytes and caches 64 MiB with validation.
#[derive(Clone, Debug)]
pub struct Options {
    durability: Durability,
    compression: CompressionPolicy,
    cache_bytes: u64,
    trusted_cache: bool,
}

/// The default compression threshold in bytes.
pub const DEFAULT_COMPRESSION_THRESHOLD: usize = 1024;
/// The default read cache size in bytes.
pub const DEFAULT_CACHE_BYTES: u64 = 64 << 20;

impl Default for Options {
    fn default() -> Self {
        Self {
            durability: Durability::Full,
            compression: CompressionPolicy::Auto {
                threshold: DEFAULT_COMPRESSION_THRESHOLD,
            },
            cache_bytes: DEFAULT_CACHE_BYTES,
            trusted_cache: false,
        }
    }
}

impl Options {
    /// The default durability of writes.
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// The default compression of writes.
    #[must_use]
    pub fn compression(mut self, compression: CompressionPolicy) -> Self {
        self.compression = compression;
        self
    }

    /// The read cache's bound in bytes of content; 0 turns the cache off.
    #[must_use]
    pub fn cache_bytes(mut self, bytes: u64) -> Self {
        self.cache_bytes = bytes;
        self
    }

    /// Returns cached entries without checking the file's metadata: only
    /// when this workspace is the root's sole writer.
    #[must_use]
    pub fn trusted_cache(mut self, trusted: bool) -> Self {
        self.trusted_cache = trusted;
        self
    }
}

/// How one write is done; [`Workspace::write_options`] gives the
/// workspace's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteOptions {
    /// Whether to `fsync`.
    pub durability: Durability,
    /// Whether to compress.
    pub compression: CompressionPolicy,
}

/// Read cache statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Reads served from the cache.
    pub hits: u64,
    /// Reads that found no entry.
    pub misses: u64,
    /// Entries found but refused because the file changed since.
    pub stale: u64,
    /// Entries dropped to stay within the byte bound.
    pub evictions: u64,
    /// Entries held now.
    pub entries: u64,
    /// Bytes of content held now.
    pub bytes: u64,
}

/// What identifies one version of a file, for cache validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileKey {
    dev: u64,
    ino: u64,
    size: i64,
    mtime: (i64, u64),
    ctime: (i64, u64),
}

impl FileKey {
    fn of(stat: &rustix::fs::Stat) -> Self {
        Self {
            dev: stat.st_dev,
            ino: stat.st_ino,
            size: stat.st_size,
            mtime: (stat.st_mtime, stat.st_mtime_nsec),
            ctime: (stat.st_ctime, stat.st_ctime_nsec),
        }
    }
}

#[derive(Clone)]
struct Cached {
    key: FileKey,
    content: Arc<[u8]>,
}

/// A confined, crash-safe file store rooted at one directory; see the
/// module documentation.
pub struct Workspace {
    root: OwnedFd,
    meta: OwnedFd,
    options: Options,
    cache: Option<SyncCache<String, Cached>>,
    stale: AtomicU64,
    ledger: Ledger,
    /// A shared `flock` on `.mechops/lock` while the workspace is open.
    _lock: OwnedFd,
}

/// The lock file in the metadata directory.
const LOCK: &str = "lock";

impl core::fmt::Debug for Workspace {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Workspace")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// A path normalized and checked against the reserved names.
pub(crate) fn clean_path(path: &str) -> Result<String> {
    // Most paths arrive in normal form, which normalizing returns unchanged:
    // no buffer of `MAX_PATH_LEN` bytes to clear on every read.
    if is_normal(path.as_bytes()) {
        return finish_clean(path, path.as_bytes());
    }
    let mut buf = [0u8; MAX_PATH_LEN];
    let n = normalize(path.as_bytes(), &mut buf).map_err(|reason| Error::InvalidPath {
        path: path.to_owned(),
        reason,
    })?;
    finish_clean(path, &buf[..n])
}

/// [`clean_path`] accepting the root (`""`).
pub(crate) fn clean_dir(path: &str) -> Result<String> {
    if is_normal(path.as_bytes()) {
        return finish_clean(path, path.as_bytes());
    }
    let mut buf = [0u8; MAX_PATH_LEN];
    let n = normalize_dir(path.as_bytes(), &mut buf).map_err(|reason| Error::InvalidPath {
        path: path.to_owned(),
        reason,
    })?;
    finish_clean(path, &buf[..n])
}

fn finish_clean(path: &str, normal: &[u8]) -> Result<String> {
    // Normalizing only drops and rejoins whole names of valid UTF-8.
    let normal = String::from_utf8_lossy(normal).into_owned();
    if !normal.is_empty() && normal.split('/').any(is_reserved) {
        return Err(Error::Reserved {
            path: path.to_owned(),
        });
    }
    Ok(normal)
}

pub(crate) fn is_reserved(name: &str) -> bool {
    name.starts_with(sys::RESERVED_PREFIX)
}

impl Workspace {
    /// Opens (creating it if needed) the workspace rooted at `root`. When
    /// no other workspace has the root open, first finishes interrupted
    /// atomic batches, removes temporary files and compacts the ledger.
    ///
    /// # Errors
    /// When the root cannot be created or opened, or recovery fails.
    pub fn open(root: impl AsRef<Path>, options: Options) -> Result<Self> {
        let root = root.as_ref();
        let shown = root.display().to_string();
        std::fs::create_dir_all(root).map_err(|e| Error::io("create", &shown, e))?;
        let root_fd: OwnedFd = File::open(root)
            .map_err(|e| Error::io("open", &shown, e))?
            .into();
        let meta = match sys::open_subdir_nofollow(root_fd.as_fd(), sys::RESERVED_PREFIX) {
            Ok(fd) => fd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                sys::create_dirs(root_fd.as_fd(), sys::RESERVED_PREFIX)
                    .map_err(|e| Error::io("create", sys::RESERVED_PREFIX, e))?
            }
            Err(e) => return Err(Error::io("open", sys::RESERVED_PREFIX, e)),
        };
        let lock = rustix::fs::openat(
            &meta,
            LOCK,
            OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .map_err(|e| Error::io("open", LOCK, e))?;
        // Recovery and the removal of temporary files run only when no
        // other workspace (in this process or another) has the root open:
        // their journals and temporary files belong to work in progress.
        let sole = match rustix::fs::flock(&lock, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => true,
            Err(rustix::io::Errno::WOULDBLOCK) => false,
            Err(e) => return Err(Error::io("lock", LOCK, e)),
        };
        if sole {
            batch::recover(root_fd.as_fd(), meta.as_fd())?;
            cleanup::remove_temporaries(root_fd.as_fd(), "")?;
        }
        let ledger = Ledger::open(meta.as_fd(), sole)?;
        // Held for the workspace's lifetime; a blocking shared lock waits
        // for another opener's recovery to finish.
        rustix::fs::flock(&lock, FlockOperation::LockShared)
            .map_err(|e| Error::io("lock", LOCK, e))?;
        let cache = if options.cache_bytes == 0 {
            None
        } else {
            let built = SyncCache::builder()
                .max_weight(options.cache_bytes, |k: &String, v: &Cached| {
                    (k.len() + v.content.len()) as u64
                })
                .build()
                .map_err(|e| Error::Io {
                    op: "build cache",
                    path: shown.clone(),
                    source: std::io::Error::other(e.to_string()),
                })?;
            Some(built)
        };
        Ok(Self {
            root: root_fd,
            meta,
            options,
            cache,
            stale: AtomicU64::new(0),
            ledger,
            _lock: lock,
        })
    }

    /// The workspace's default write options.
    #[must_use]
    pub fn write_options(&self) -> WriteOptions {
        WriteOptions {
            durability: self.options.durability,
            compression: self.options.compression,
        }
    }

    /// Writes `content` to `path` atomically (and durably by default),
    /// creating missing directories.
    ///
    /// # Errors
    /// An invalid or escaping path, a directory in the way, an I/O error.
    pub fn write(&self, path: &str, content: &[u8]) -> Result<()> {
        self.write_with(path, content, self.write_options())
    }

    /// [`Workspace::write`] with explicit options.
    ///
    /// # Errors
    /// As [`Workspace::write`].
    pub fn write_with(&self, path: &str, content: &[u8], options: WriteOptions) -> Result<()> {
        let clean = clean_path(path)?;
        let staged = self.stage(path, &clean, content, options)?;
        if options.durability == Durability::Full {
            sys::sync(staged.file.as_fd()).map_err(|e| Error::io("fsync", path, e))?;
        }
        drop(staged.file);
        self.forget(&clean);
        let (_, name) = sys::split(&clean);
        if let Err(e) = sys::rename(staged.dir.as_fd(), &staged.temp, staged.dir.as_fd(), name) {
            let _ = sys::unlink(staged.dir.as_fd(), &staged.temp, false);
            return Err(Error::io("rename", path, e));
        }
        if options.durability == Durability::Full {
            sys::sync(staged.dir.as_fd()).map_err(|e| Error::io("fsync", path, e))?;
        }
        self.ledger.add(&clean)
    }

    /// Creates a temporary file beside `clean` holding the stored form of
    /// `content` and its record; not yet synced or renamed.
    fn stage(
        &self,
        path: &str,
        clean: &str,
        content: &[u8],
        options: WriteOptions,
    ) -> Result<Staged> {
        let (parent, _) = sys::split(clean);
        let dir =
            sys::create_dirs(self.root.as_fd(), parent).map_err(|e| Error::io("open", path, e))?;
        let (mut file, temp) =
            sys::create_temp(dir.as_fd()).map_err(|e| Error::io("create", path, e))?;
        let (framed, record) = record::encode(content, options.compression);
        let written = file
            .write_all(framed.as_deref().unwrap_or(content))
            .and_then(|()| sys::set_xattr(file.as_fd(), XATTR_NAME, &record.encode()));
        if let Err(e) = written {
            let _ = sys::unlink(dir.as_fd(), &temp, false);
            return Err(Error::io("write", path, e));
        }
        Ok(Staged { dir, file, temp })
    }

    fn forget(&self, clean: &str) {
        if let Some(cache) = &self.cache {
            cache.remove(clean);
        }
    }

    /// The original content of `path`.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Escapes`], [`Error::Corrupt`] when the
    /// stored bytes fail their recorded hash, an I/O error.
    pub fn read(&self, path: &str) -> Result<Vec<u8>> {
        self.read_shared(path).map(|content| content.to_vec())
    }

    /// [`Workspace::read`] returning the cache's shared copy.
    ///
    /// # Errors
    /// As [`Workspace::read`].
    pub fn read_shared(&self, path: &str) -> Result<Arc<[u8]>> {
        let clean = clean_path(path)?;
        if let Some(cache) = &self.cache {
            if let Some(hit) = cache.get(clean.as_str()) {
                if self.options.trusted_cache {
                    return Ok(hit.content);
                }
                // One `fstatat` of the whole path. It may pass through a
                // link out of the root, but then it cannot report the
                // device, inode, size and times of the file that was read
                // beneath the root, so the entry is refused.
                let now = sys::stat_nofollow(self.root.as_fd(), &clean);
                if now.is_ok_and(|stat| FileKey::of(&stat) == hit.key) {
                    return Ok(hit.content);
                }
                self.stale.fetch_add(1, Ordering::Relaxed);
                cache.remove(clean.as_str());
            }
        }
        let fd = sys::open_beneath(self.root.as_fd(), &clean, OFlags::RDONLY | OFlags::NONBLOCK)
            .map_err(|e| Error::io("open", path, e))?;
        let stat = sys::fstat(&fd).map_err(|e| Error::io("stat", path, e))?;
        if sys::kind(&stat) != rustix::fs::FileType::RegularFile {
            return Err(Error::WrongKind {
                path: path.to_owned(),
                what: "not a regular file",
            });
        }
        let record = read_record(&fd, path)?;
        let mut stored = Vec::with_capacity(usize::try_from(stat.st_size).unwrap_or(0));
        File::from(fd)
            .read_to_end(&mut stored)
            .map_err(|e| Error::io("read", path, e))?;
        let content: Arc<[u8]> = match record {
            None => stored.into(),
            Some(record) => record::decode(stored, &record)
                .map_err(|detail| Error::Corrupt {
                    path: path.to_owned(),
                    detail,
                })?
                .into(),
        };
        if let Some(cache) = &self.cache {
            let entry = Cached {
                key: FileKey::of(&stat),
                content: Arc::clone(&content),
            };
            // An entry larger than the whole cache is simply not kept.
            let _ = cache.insert(clean, entry);
        }
        Ok(content)
    }

    /// Removes the file at `path` (not a directory; see
    /// [`Workspace::remove_dir`]). A symbolic link is removed itself.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::WrongKind`] for a directory, an I/O error.
    pub fn delete(&self, path: &str) -> Result<()> {
        self.delete_synced(path, self.options.durability == Durability::Full)
    }

    fn delete_synced(&self, path: &str, durable: bool) -> Result<()> {
        let clean = clean_path(path)?;
        let (parent, name) = sys::split(&clean);
        let dir =
            sys::open_dir(self.root.as_fd(), parent).map_err(|e| Error::io("open", path, e))?;
        let stat = sys::stat_nofollow(dir.as_fd(), name).map_err(|e| Error::io("stat", path, e))?;
        if sys::kind(&stat) == rustix::fs::FileType::Directory {
            return Err(Error::WrongKind {
                path: path.to_owned(),
                what: "a directory",
            });
        }
        self.ledger.remove(&clean)?;
        self.forget(&clean);
        sys::unlink(dir.as_fd(), name, false).map_err(|e| Error::io("remove", path, e))?;
        if durable {
            sys::sync(dir.as_fd()).map_err(|e| Error::io("fsync", path, e))?;
        }
        Ok(())
    }

    /// Removes the empty directory at `path`.
    ///
    /// # Errors
    /// [`Error::NotFound`], a directory that is not empty, an I/O error.
    pub fn remove_dir(&self, path: &str) -> Result<()> {
        let clean = clean_path(path)?;
        let (parent, name) = sys::split(&clean);
        let dir =
            sys::open_dir(self.root.as_fd(), parent).map_err(|e| Error::io("open", path, e))?;
        sys::unlink(dir.as_fd(), name, true).map_err(|e| Error::io("remove", path, e))?;
        if self.options.durability == Durability::Full {
            sys::sync(dir.as_fd()).map_err(|e| Error::io("fsync", path, e))?;
        }
        Ok(())
    }

    /// Renames a file or directory, replacing a file at `to`; missing
    /// directories of `to` are created.
    ///
    /// # Errors
    /// [`Error::NotFound`] for a missing `from`, an invalid path, an I/O
    /// error.
    pub fn rename(&self, from: &str, to: &str) -> Result<()> {
        self.rename_synced(from, to, self.options.durability == Durability::Full)
    }

    fn rename_synced(&self, from: &str, to: &str, durable: bool) -> Result<()> {
        let clean_from = clean_path(from)?;
        let clean_to = clean_path(to)?;
        let (from_parent, from_name) = sys::split(&clean_from);
        let (to_parent, to_name) = sys::split(&clean_to);
        let from_dir = sys::open_dir(self.root.as_fd(), from_parent)
            .map_err(|e| Error::io("open", from, e))?;
        sys::stat_nofollow(from_dir.as_fd(), from_name).map_err(|e| Error::io("stat", from, e))?;
        let to_dir =
            sys::create_dirs(self.root.as_fd(), to_parent).map_err(|e| Error::io("open", to, e))?;
        self.forget(&clean_from);
        self.forget(&clean_to);
        if let Some(cache) = &self.cache {
            // Entries beneath a renamed directory would be validated away,
            // but in the trusted mode they must go now.
            if self.options.trusted_cache {
                cache.clear();
            }
        }
        sys::rename(from_dir.as_fd(), from_name, to_dir.as_fd(), to_name)
            .map_err(|e| Error::io("rename", from, e))?;
        if durable {
            sys::sync(to_dir.as_fd()).map_err(|e| Error::io("fsync", to, e))?;
            sys::sync(from_dir.as_fd()).map_err(|e| Error::io("fsync", from, e))?;
        }
        self.ledger.rename(&clean_from, &clean_to)
    }

    /// Creates the directory `path` and its missing parents.
    ///
    /// # Errors
    /// A file in the way, an invalid path, an I/O error.
    pub fn mkdir(&self, path: &str) -> Result<()> {
        self.mkdir_synced(path, self.options.durability == Durability::Full)
    }

    fn mkdir_synced(&self, path: &str, durable: bool) -> Result<()> {
        let clean = clean_path(path)?;
        let dir =
            sys::create_dirs(self.root.as_fd(), &clean).map_err(|e| Error::io("mkdir", path, e))?;
        if durable {
            sys::sync(dir.as_fd()).map_err(|e| Error::io("fsync", path, e))?;
            let (parent, _) = sys::split(&clean);
            let parent =
                sys::open_dir(self.root.as_fd(), parent).map_err(|e| Error::io("open", path, e))?;
            sys::sync(parent.as_fd()).map_err(|e| Error::io("fsync", path, e))?;
        }
        Ok(())
    }

    /// Whether a file or directory exists at `path` (a link is not followed).
    ///
    /// # Errors
    /// An invalid or escaping path, an I/O error other than not found.
    pub fn exists(&self, path: &str) -> Result<bool> {
        let clean = clean_path(path)?;
        let (parent, name) = sys::split(&clean);
        let found = sys::open_dir(self.root.as_fd(), parent)
            .and_then(|dir| sys::stat_nofollow(dir.as_fd(), name));
        match found {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("stat", path, e)),
        }
    }

    /// The read cache's statistics (zero when the cache is off).
    #[must_use]
    pub fn cache_stats(&self) -> CacheStats {
        let Some(cache) = &self.cache else {
            return CacheStats::default();
        };
        let inner = cache.stats();
        let stale = self.stale.load(Ordering::Relaxed);
        CacheStats {
            hits: inner.hits.saturating_sub(stale),
            misses: inner.misses,
            stale,
            evictions: inner.evictions,
            entries: cache.len() as u64,
            bytes: cache.weight(),
        }
    }
}

// Shared by threads: this stops compiling if `Workspace` loses `Send + Sync`.
const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<Workspace>();
};

/// A temporary file written and not yet renamed.
struct Staged {
    dir: OwnedFd,
    file: File,
    temp: String,
}

/// The record of an open file, `None` when it has none.
fn read_record(fd: impl AsFd, path: &str) -> Result<Option<Record>> {
    let mut buf = [0u8; record::RECORD_LEN + 1];
    match sys::get_xattr(fd, XATTR_NAME, &mut buf).map_err(|e| Error::io("read record", path, e))? {
        None => Ok(None),
        Some(n) => Record::decode(&buf[..n])
            .map(Some)
            .map_err(|detail| Error::Corrupt {
                path: path.to_owned(),
                detail: detail.to_owned(),
            }),
    }
}

/// A timestamp from a stat's seconds and nanoseconds, saturating.
fn timestamp(secs: i64, nanos: i64) -> Timestamp {
    let fallback = if secs < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    };
    Timestamp::from_unix_nanos(i128::from(secs) * 1_000_000_000 + i128::from(nanos))
        .unwrap_or(fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast path for paths already in normal form gives what
    /// normalizing gives, and still refuses reserved names.
    #[test]
    fn clean_path_agrees_with_normalize() {
        for path in [
            "a", "a/b", "./a", "a/./b", "a/", "a/b/../c", "..a/b..", "a//b", "../a", "/a", "", ".",
            "a/..", "a\0b",
        ] {
            let mut buf = [0u8; MAX_PATH_LEN];
            let want = normalize(path.as_bytes(), &mut buf).map(|n| buf[..n].to_vec());
            match (clean_path(path), want) {
                (Ok(got), Ok(want)) => assert_eq!(got.as_bytes(), want, "{path:?}"),
                (Err(Error::InvalidPath { reason, .. }), Err(want)) => {
                    assert_eq!(reason, want, "{path:?}");
                }
                (got, want) => panic!("{path:?}: {got:?} vs {want:?}"),
            }
        }
        for path in [".mechops/lock", "a/.mechops-tmp-1", "./.mechops"] {
            assert!(
                matches!(clean_path(path), Err(Error::Reserved { .. })),
                "{path:?}"
            );
        }
        assert_eq!(clean_dir("").unwrap(), "");
        assert_eq!(clean_dir("a/b").unwrap(), "a/b");
        assert_eq!(clean_dir("a/../b/").unwrap(), "b");
    }
}
