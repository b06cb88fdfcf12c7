//! Removing old files, and the temporary files a crash left behind.
//!
//! Both walk the tree holding a descriptor per directory, opened with
//! `O_NOFOLLOW | O_DIRECTORY` and `RESOLVE_NO_SYMLINKS`, and remove names
//! with `unlinkat` relative to that descriptor: replacing a directory by a
//! symbolic link during the walk makes its open fail, and a removal can
//! never land outside the directory that was opened (CVE-2022-21658).

use core::time::Duration;
use std::os::fd::{AsFd, BorrowedFd};

use globset::GlobMatcher;
use mechops_core::time::{Timestamp, WallClock};
use rustix::fs::FileType;

use super::error::{Error, Result};
use super::{Durability, Workspace, is_reserved, sys, timestamp};
use crate::clock::SystemClock;

/// What [`Workspace::cleanup`] removes.
#[derive(Clone, Debug)]
pub struct Cleanup {
    older_than: Duration,
    glob: Option<GlobMatcher>,
    dry_run: bool,
}

impl Cleanup {
    /// Files last modified more than `age` ago.
    #[must_use]
    pub fn older_than(age: Duration) -> Self {
        Self {
            older_than: age,
            glob: None,
            dry_run: false,
        }
    }

    /// Only files whose path matches `pattern` (globset syntax: `*` stays
    /// within a name, `**` crosses directories).
    ///
    /// # Errors
    /// A malformed pattern: [`Error::Io`] of kind `InvalidInput`.
    pub fn glob(mut self, pattern: &str) -> Result<Self> {
        self.glob = Some(super::backup::compile_glob(pattern)?);
        Ok(self)
    }

    /// Only report what would be removed.
    #[must_use]
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }
}

/// What a cleanup removed (or, in a dry run, would remove).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// Removed files, sorted.
    pub removed: Vec<String>,
    /// Directories removed because they became empty, sorted.
    pub removed_dirs: Vec<String>,
    /// Stored bytes of the removed files.
    pub bytes_freed: u64,
}

impl Workspace {
    /// Removes the files older than the cutoff (by modification time, read
    /// with `fstatat(AT_SYMLINK_NOFOLLOW)`), then the directories that
    /// became empty. Symbolic links are never followed nor removed.
    ///
    /// # Errors
    /// An I/O error other than a file vanishing under the walk.
    pub fn cleanup(&self, rule: &Cleanup) -> Result<CleanupReport> {
        self.cleanup_at(rule, SystemClock.now())
    }

    /// [`Workspace::cleanup`] with the current time given.
    ///
    /// # Errors
    /// As [`Workspace::cleanup`].
    pub fn cleanup_at(&self, rule: &Cleanup, now: Timestamp) -> Result<CleanupReport> {
        let cutoff = now.unix_nanos() - rule.older_than.as_nanos().min(i128::MAX as u128) as i128;
        let mut report = CleanupReport::default();
        self.clean_dir(self.root.as_fd(), "", rule, cutoff, &mut report)?;
        report.removed.sort();
        report.removed_dirs.sort();
        Ok(report)
    }

    /// Cleans `dir`; returns whether it is now empty (so its parent may
    /// remove it).
    fn clean_dir(
        &self,
        dir: BorrowedFd<'_>,
        path: &str,
        rule: &Cleanup,
        cutoff: i128,
        report: &mut CleanupReport,
    ) -> Result<bool> {
        let (entries, skipped) = sys::read_dir(dir).map_err(|e| Error::io("list", path, e))?;
        let mut kept = skipped.len();
        let mut removed_here = false;
        for entry in entries {
            let child = sys::join(path, &entry.name);
            if is_reserved(&entry.name) {
                kept += 1;
                continue;
            }
            if entry.file_type == FileType::Directory {
                let Some(sub) = sys::open_subdir_if_dir(dir, &entry.name)
                    .map_err(|e| Error::io("open", &child, e))?
                else {
                    kept += 1;
                    continue;
                };
                let before = report.removed.len();
                let empty = self.clean_dir(sub.as_fd(), &child, rule, cutoff, report)?;
                // Only a directory this cleanup emptied goes, never one
                // that was empty already.
                if empty && report.removed.len() > before {
                    if rule.dry_run {
                        report.removed_dirs.push(child);
                        removed_here = true;
                        continue;
                    }
                    // Refilled, or swapped for something that is not an
                    // empty directory: it stays.
                    if sys::unlink(dir, &entry.name, true).is_ok() {
                        report.removed_dirs.push(child);
                        removed_here = true;
                        continue;
                    }
                }
                kept += 1;
                continue;
            }
            let stat = match sys::stat_nofollow(dir, &entry.name) {
                Ok(stat) => stat,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("stat", &child, e)),
            };
            let modified = timestamp(stat.st_mtime, stat.st_mtime_nsec as i64).unix_nanos();
            let matches = rule.glob.as_ref().is_none_or(|g| g.is_match(&child));
            if sys::kind(&stat) != FileType::RegularFile || modified >= cutoff || !matches {
                kept += 1;
                continue;
            }
            if !rule.dry_run {
                self.ledger.remove(&child)?;
                self.forget(&child);
                match sys::unlink(dir, &entry.name, false) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(Error::io("remove", &child, e)),
                }
            }
            removed_here = true;
            report.bytes_freed += stat.st_size as u64;
            report.removed.push(child);
        }
        if removed_here && !rule.dry_run && self.options.durability == Durability::Full {
            sys::sync(dir).map_err(|e| Error::io("fsync", path, e))?;
        }
        Ok(kept == 0)
    }
}

/// Removes every temporary file beneath `dir`, the metadata directory
/// included, without following links.
pub(crate) fn remove_temporaries(dir: BorrowedFd<'_>, path: &str) -> Result<()> {
    let (entries, _) = sys::read_dir(dir).map_err(|e| Error::io("list", path, e))?;
    for entry in entries {
        if entry.name.starts_with(sys::TEMP_PREFIX) && entry.file_type != FileType::Directory {
            match sys::unlink(dir, &entry.name, false) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove", &entry.name, e)),
            }
        } else if entry.file_type == FileType::Directory {
            let child = sys::join(path, &entry.name);
            if let Some(sub) = sys::open_subdir_if_dir(dir, &entry.name)
                .map_err(|e| Error::io("open", &child, e))?
            {
                remove_temporaries(sub.as_fd(), &child)?;
            }
        }
    }
    Ok(())
}

/// Removes the directory `name` of `dir` and everything beneath it without
/// following links (a link is removed itself); a missing `name` is fine.
pub(crate) fn remove_tree(dir: BorrowedFd<'_>, name: &str) -> Result<()> {
    let Some(sub) = sys::open_subdir_if_dir(dir, name).map_err(|e| Error::io("open", name, e))?
    else {
        return match sys::unlink(dir, name, false) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("remove", name, e)),
            _ => Ok(()),
        };
    };
    let (entries, skipped) = sys::read_dir(sub.as_fd()).map_err(|e| Error::io("list", name, e))?;
    if !skipped.is_empty() {
        return Err(Error::io(
            "remove",
            name,
            std::io::Error::other("names that are not UTF-8"),
        ));
    }
    for entry in entries {
        if entry.file_type == FileType::Directory {
            remove_tree(sub.as_fd(), &entry.name)?;
        } else {
            match sys::unlink(sub.as_fd(), &entry.name, false) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::io("remove", &entry.name, e));
                }
                _ => {}
            }
        }
    }
    sys::unlink(dir, name, true).map_err(|e| Error::io("remove", name, e))
}
