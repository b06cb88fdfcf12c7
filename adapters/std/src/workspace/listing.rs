//! Listing, figures and verification: walks of the tree that never follow a
//! symbolic link and skip the workspace's own names.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd};

use mechops_core::time::Timestamp;
use rustix::fs::FileType;

use super::error::{Error, Result};
use super::record::{self, Record};
use super::{CacheStats, Workspace, clean_dir, is_reserved, read_record, sys, timestamp};

/// One file of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    /// Its path relative to the root.
    pub path: String,
    /// Its original size: what a read returns.
    pub size: u64,
    /// The size of the stored bytes.
    pub stored_size: u64,
    /// Whether it is stored compressed.
    pub compressed: bool,
    /// Whether it carries a workspace record (it was written through the
    /// workspace).
    pub recorded: bool,
    /// Its modification time.
    pub modified: Timestamp,
    /// Bytes allocated on disk (`st_blocks * 512`).
    pub allocated: u64,
}

/// Figures about the whole workspace.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Info {
    /// Regular files.
    pub files: u64,
    /// Directories (the root not counted).
    pub directories: u64,
    /// Sum of original sizes.
    pub logical_bytes: u64,
    /// Sum of stored sizes.
    pub stored_bytes: u64,
    /// Sum of allocated sizes.
    pub disk_bytes: u64,
    /// Files stored compressed.
    pub compressed_files: u64,
    /// `stored_bytes / logical_bytes`, 1.0 for an empty workspace.
    pub ratio: f64,
    /// The oldest modification time.
    pub oldest: Option<Timestamp>,
    /// The newest modification time.
    pub newest: Option<Timestamp>,
    /// The largest files by original size, largest first (at most 10).
    pub largest: Vec<(String, u64)>,
    /// The read cache's statistics.
    pub cache: CacheStats,
}

/// What [`Workspace::verify`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verification {
    /// Files whose content no longer matches their record.
    pub modified: Vec<String>,
    /// Files the workspace wrote that are gone.
    pub missing: Vec<String>,
    /// Files present that the workspace never wrote (including names that
    /// are not UTF-8, shown lossily).
    pub unexpected: Vec<String>,
}

impl Verification {
    /// Whether nothing was found.
    #[must_use]
    pub fn is_ok(&self) -> bool {
        self.modified.is_empty() && self.missing.is_empty() && self.unexpected.is_empty()
    }
}

use super::sys::join;

/// Calls `on_file(path, dir, name)` for every non-reserved entry that is
/// not a directory beneath `start`, depth first, `on_dir` for every
/// directory; links are reported as files, never entered. Returns the names
/// that are not UTF-8.
pub(crate) fn walk(
    dir: BorrowedFd<'_>,
    path: &str,
    on_file: &mut dyn FnMut(&str, BorrowedFd<'_>, &str, FileType) -> Result<()>,
    on_dir: &mut dyn FnMut(&str) -> Result<()>,
) -> Result<Vec<String>> {
    let (entries, mut skipped) = sys::read_dir(dir).map_err(|e| Error::io("list", path, e))?;
    for entry in entries {
        if is_reserved(&entry.name) {
            continue;
        }
        let child = join(path, &entry.name);
        if entry.file_type == FileType::Directory {
            // Replaced by something else since it was listed: a link is
            // never entered, a vanished entry is skipped.
            if let Some(sub) = sys::open_subdir_if_dir(dir, &entry.name)
                .map_err(|e| Error::io("open", &child, e))?
            {
                on_dir(&child)?;
                skipped.extend(walk(sub.as_fd(), &child, on_file, on_dir)?);
            }
        } else {
            on_file(&child, dir, &entry.name, entry.file_type)?;
        }
    }
    Ok(skipped.into_iter().map(|name| join(path, &name)).collect())
}

/// The record and stat of a regular file `name` in `dir`, not following a
/// link; `None` if it vanished or is not a regular file.
fn inspect(
    dir: BorrowedFd<'_>,
    name: &str,
    path: &str,
) -> Result<Option<(File, Option<Record>, rustix::fs::Stat)>> {
    let file = match sys::open_file_nofollow(dir, name) {
        Ok(file) => file,
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ELOOP | libc::ENOENT | libc::ENXIO)
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(Error::io("open", path, e)),
    };
    let stat = sys::fstat(&file).map_err(|e| Error::io("stat", path, e))?;
    if sys::kind(&stat) != FileType::RegularFile {
        return Ok(None);
    }
    let record = read_record(&file, path).ok().flatten();
    Ok(Some((file, record, stat)))
}

impl Workspace {
    /// The regular files beneath the directory `prefix` (`""` for all),
    /// sorted by path. Temporary and metadata files never appear; links are
    /// not followed and not listed.
    ///
    /// # Errors
    /// An invalid prefix, an I/O error.
    pub fn list(&self, prefix: &str) -> Result<Vec<FileInfo>> {
        let clean = clean_dir(prefix)?;
        let start =
            sys::open_dir(self.root.as_fd(), &clean).map_err(|e| Error::io("open", prefix, e))?;
        let mut out = Vec::new();
        walk(
            start.as_fd(),
            &clean,
            &mut |path, dir, name, file_type| {
                if file_type != FileType::RegularFile {
                    return Ok(());
                }
                if let Some((_, record, stat)) = inspect(dir, name, path)? {
                    let stored = stat.st_size as u64;
                    out.push(FileInfo {
                        path: path.to_owned(),
                        size: record.map_or(stored, |r| r.original_size),
                        stored_size: stored,
                        compressed: record.is_some_and(|r| r.compressed),
                        recorded: record.is_some(),
                        modified: timestamp(stat.st_mtime, stat.st_mtime_nsec as i64),
                        allocated: stat.st_blocks as u64 * 512,
                    });
                }
                Ok(())
            },
            &mut |_| Ok(()),
        )?;
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// Counts, sizes, compression, ages, the largest files and the cache
    /// statistics of the whole workspace.
    ///
    /// # Errors
    /// An I/O error.
    pub fn info(&self) -> Result<Info> {
        let files = self.list("")?;
        let mut directories = 0;
        walk(self.root.as_fd(), "", &mut |_, _, _, _| Ok(()), &mut |_| {
            directories += 1;
            Ok(())
        })?;
        let mut info = Info {
            files: files.len() as u64,
            directories,
            cache: self.cache_stats(),
            ..Info::default()
        };
        for file in &files {
            info.logical_bytes += file.size;
            info.stored_bytes += file.stored_size;
            info.disk_bytes += file.allocated;
            info.compressed_files += u64::from(file.compressed);
            info.oldest = Some(info.oldest.map_or(file.modified, |t| t.min(file.modified)));
            info.newest = Some(info.newest.map_or(file.modified, |t| t.max(file.modified)));
        }
        info.ratio = crate::codec::compression_ratio(
            info.logical_bytes as usize,
            info.stored_bytes as usize,
        );
        let mut largest: Vec<(String, u64)> = files.into_iter().map(|f| (f.path, f.size)).collect();
        largest.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        largest.truncate(10);
        info.largest = largest;
        Ok(info)
    }

    /// Checks every file against its record and the ledger: modified,
    /// missing and unexpected files, each list sorted.
    ///
    /// # Errors
    /// An I/O error.
    pub fn verify(&self) -> Result<Verification> {
        let mut report = Verification::default();
        let mut present = std::collections::BTreeSet::new();
        let skipped = walk(
            self.root.as_fd(),
            "",
            &mut |path, dir, name, file_type| {
                if file_type != FileType::RegularFile {
                    report.unexpected.push(path.to_owned());
                    return Ok(());
                }
                let Some((mut file, record, _)) = inspect(dir, name, path)? else {
                    return Ok(());
                };
                let Some(record) = record else {
                    report.unexpected.push(path.to_owned());
                    return Ok(());
                };
                present.insert(path.to_owned());
                self.ledger.add(path)?;
                let mut stored = Vec::new();
                file.read_to_end(&mut stored)
                    .map_err(|e| Error::io("read", path, e))?;
                if record::decode(stored, &record).is_err() {
                    report.modified.push(path.to_owned());
                }
                Ok(())
            },
            &mut |_| Ok(()),
        )?;
        report.unexpected.extend(skipped);
        report.missing = self
            .ledger
            .paths()?
            .into_iter()
            .filter(|p| !present.contains(p))
            .collect();
        report.modified.sort();
        report.unexpected.sort();
        Ok(report)
    }
}
