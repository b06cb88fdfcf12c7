//! Backups to tar archives and restores from them.
//!
//! # Archive
//!
//! A tar archive (zstd-compressed by default, gzip or plain on request) with
//! one regular-file entry per file, holding its original content, followed
//! by the entry `.mechops-manifest.json`: a JSON array of
//! `{"path","size","blake3"}` (hash in lowercase hex) for every file. The
//! archive is written to a temporary file beside its destination,
//! `fsync`ed, renamed into place, and the directory `fsync`ed.
//!
//! # Restore
//!
//! Every entry is checked by this module, whatever the tar reader allows:
//! a path that is not UTF-8, absolute, leaves the root or names a reserved
//! name, a symbolic or hard link, a device file or FIFO, a second entry for
//! the same path, a truncated archive, a missing or malformed manifest, a
//! file that the manifest does not list or whose size or hash differs: each
//! refuses the whole archive. Files are written through a fresh workspace
//! in a new sibling directory of the target (`.<name>.mechops-restore-<id>`,
//! confined like any workspace), which replaces the target with one
//! `renameat2(RENAME_EXCHANGE)` only once everything verified; the old tree
//! is then removed without following links. Until the exchange the target
//! is untouched; a staging directory left by a crash is removed by the next
//! restore into the same target.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobMatcher};
use serde::{Deserialize, Serialize};

use super::error::{Error, Result};
use super::{Durability, Options, Workspace, clean_path, cleanup, sys};

/// The manifest's entry name.
pub const MANIFEST_NAME: &str = ".mechops-manifest.json";

/// How an archive is compressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ArchiveCompression {
    /// zstd, level 3.
    #[default]
    Zstd,
    /// gzip, level 6.
    Gzip,
    /// A plain tar archive.
    None,
}

/// What [`Workspace::backup`] archives.
#[derive(Clone, Debug, Default)]
pub struct Backup {
    compression: ArchiveCompression,
    glob: Option<GlobMatcher>,
}

impl Backup {
    /// A backup with this compression.
    #[must_use]
    pub fn compression(mut self, compression: ArchiveCompression) -> Self {
        self.compression = compression;
        self
    }

    /// Only the files whose path matches `pattern`.
    ///
    /// # Errors
    /// A malformed pattern: [`Error::Io`] of kind `InvalidInput`.
    pub fn glob(mut self, pattern: &str) -> Result<Self> {
        self.glob = Some(compile_glob(pattern)?);
        Ok(self)
    }
}

pub(crate) fn compile_glob(pattern: &str) -> Result<GlobMatcher> {
    Glob::new(pattern)
        .map(|g| g.compile_matcher())
        .map_err(|e| Error::Io {
            op: "parse glob",
            path: pattern.to_owned(),
            source: io::Error::new(io::ErrorKind::InvalidInput, e.to_string()),
        })
}

/// One file of a manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// The file's path in the workspace.
    pub path: String,
    /// Its original size.
    pub size: u64,
    /// BLAKE3 of its original content, lowercase hex.
    pub blake3: String,
}

/// Parses a manifest: a JSON array of entries with distinct, valid paths.
///
/// # Errors
/// [`Error::Archive`] naming what is wrong.
pub fn parse_manifest(bytes: &[u8]) -> Result<Vec<ManifestEntry>> {
    let entries: Vec<ManifestEntry> = serde_json::from_slice(bytes)
        .map_err(|e| Error::Archive(format!("malformed manifest: {e}")))?;
    let mut seen = HashSet::new();
    for entry in &entries {
        let clean = clean_path(&entry.path)
            .map_err(|e| Error::Archive(format!("manifest entry refused: {e}")))?;
        if entry.blake3.len() != 64 || !entry.blake3.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Archive(format!(
                "manifest hash of {:?} is not 64 hex digits",
                entry.path
            )));
        }
        if !seen.insert(clean) {
            return Err(Error::Archive(format!(
                "manifest lists {:?} twice",
                entry.path
            )));
        }
    }
    Ok(entries)
}

/// What a backup wrote or a restore read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArchiveReport {
    /// The files, sorted by path.
    pub files: Vec<ManifestEntry>,
    /// Sum of their sizes.
    pub bytes: u64,
}

fn archive_err(what: &str, e: impl core::fmt::Display) -> Error {
    Error::Archive(format!("{what}: {e}"))
}

impl Workspace {
    /// Writes the workspace's files (or those matching the rule's glob) to
    /// a tar archive at `out`, atomically. Every file is read (and so
    /// verified against its record) on the way.
    ///
    /// # Errors
    /// A file failing its hash, an I/O error; `out` is then unchanged.
    pub fn backup(&self, out: impl AsRef<Path>, rule: &Backup) -> Result<ArchiveReport> {
        let out = out.as_ref();
        let shown = out.display().to_string();
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let parent_dir = File::open(&parent).map_err(|e| Error::io("open", &shown, e))?;
        let (file, temp) =
            sys::create_temp(parent_dir.as_fd()).map_err(|e| Error::io("create", &shown, e))?;
        let result = self.write_archive(file, rule).and_then(|(file, report)| {
            file.sync_all().map_err(|e| Error::io("fsync", &shown, e))?;
            let name = out
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| Error::Archive(format!("{shown:?} has no UTF-8 file name")))?;
            sys::rename(parent_dir.as_fd(), &temp, parent_dir.as_fd(), name)
                .and_then(|()| sys::sync(parent_dir.as_fd()))
                .map_err(|e| Error::io("rename", &shown, e))?;
            Ok(report)
        });
        if result.is_err() {
            let _ = sys::unlink(parent_dir.as_fd(), &temp, false);
        }
        result
    }

    fn write_archive(&self, file: File, rule: &Backup) -> Result<(File, ArchiveReport)> {
        let sink = BufWriter::new(file);
        let err = |e: io::Error| archive_err("write", e);
        let sink = match rule.compression {
            ArchiveCompression::None => self.write_tar(sink, rule)?,
            ArchiveCompression::Gzip => {
                let (enc, report) = self.write_tar(
                    flate2::write::GzEncoder::new(sink, flate2::Compression::default()),
                    rule,
                )?;
                (enc.finish().map_err(err)?, report)
            }
            ArchiveCompression::Zstd => {
                let encoder = zstd::Encoder::new(sink, 3).map_err(err)?;
                let (enc, report) = self.write_tar(encoder, rule)?;
                (enc.finish().map_err(err)?, report)
            }
        };
        let (buffered, report) = sink;
        let file = buffered.into_inner().map_err(|e| err(e.into_error()))?;
        Ok((file, report))
    }

    fn write_tar<W: Write>(&self, sink: W, rule: &Backup) -> Result<(W, ArchiveReport)> {
        let err = |e: io::Error| archive_err("write", e);
        let mut tar = tar::Builder::new(sink);
        let mut report = ArchiveReport::default();
        for info in self.list("")? {
            if rule.glob.as_ref().is_some_and(|g| !g.is_match(&info.path)) {
                continue;
            }
            let content = match self.read_shared(&info.path) {
                Ok(content) => content,
                // Removed since it was listed.
                Err(Error::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            };
            let mut header = tar::Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(u64::try_from(info.modified.unix_secs()).unwrap_or(0));
            header.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut header, &info.path, &content[..])
                .map_err(err)?;
            report.bytes += content.len() as u64;
            report.files.push(ManifestEntry {
                path: info.path,
                size: content.len() as u64,
                blake3: blake3::hash(&content).to_hex().to_string(),
            });
        }
        let manifest = serde_json::to_vec(&report.files).map_err(|e| archive_err("manifest", e))?;
        let mut header = tar::Header::new_gnu();
        header.set_size(manifest.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, MANIFEST_NAME, &manifest[..])
            .map_err(err)?;
        Ok((tar.into_inner().map_err(err)?, report))
    }

    /// Restores the archive at `archive` as the whole content of the
    /// workspace rooted at `root` (created if missing), then opens it.
    ///
    /// # Errors
    /// [`Error::Archive`] for a refused archive; then, and on any other
    /// error, the target is as it was.
    pub fn restore(
        root: impl AsRef<Path>,
        archive: impl AsRef<Path>,
        options: Options,
    ) -> Result<(Self, ArchiveReport)> {
        let root = root.as_ref();
        let shown = root.display().to_string();
        let name = root
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| Error::Archive(format!("{shown:?} has no UTF-8 directory name")))?
            .to_owned();
        let parent = match root.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(|e| Error::io("create", &shown, e))?;
        let parent_dir = File::open(&parent).map_err(|e| Error::io("open", &shown, e))?;
        let prefix = format!(".{name}.mechops-restore-");
        remove_stale(&parent_dir, &prefix)?;
        let staging_name = format!(
            "{prefix}{:016x}",
            getrandom::u64().map_err(|e| Error::io("restore", &shown, io::Error::other(e)))?
        );
        let staging = parent.join(&staging_name);
        let result = stage(&staging, archive.as_ref());
        let report = match result {
            Ok(report) => report,
            Err(e) => {
                let _ = cleanup::remove_tree(parent_dir.as_fd(), &staging_name);
                return Err(e);
            }
        };
        let swapped = match sys::stat_nofollow(parent_dir.as_fd(), &name) {
            Ok(_) => rustix::fs::renameat_with(
                &parent_dir,
                staging_name.as_str(),
                &parent_dir,
                name.as_str(),
                rustix::fs::RenameFlags::EXCHANGE,
            )
            .map_err(io::Error::from),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                sys::rename(parent_dir.as_fd(), &staging_name, parent_dir.as_fd(), &name)
            }
            Err(e) => Err(e),
        }
        .and_then(|()| sys::sync(parent_dir.as_fd()));
        if let Err(e) = swapped {
            let _ = cleanup::remove_tree(parent_dir.as_fd(), &staging_name);
            return Err(Error::io("swap in", &shown, e));
        }
        // After the exchange the staging name holds the old tree.
        let _ = cleanup::remove_tree(parent_dir.as_fd(), &staging_name);
        Ok((Self::open(root, options)?, report))
    }
}

/// Removes staging directories of earlier, interrupted restores.
fn remove_stale(parent: &File, prefix: &str) -> Result<()> {
    let (entries, _) = sys::read_dir(parent.as_fd()).map_err(|e| Error::io("list", prefix, e))?;
    for entry in entries.iter().filter(|e| e.name.starts_with(prefix)) {
        cleanup::remove_tree(parent.as_fd(), &entry.name)?;
    }
    Ok(())
}

/// Unpacks and verifies `archive` into a new workspace at `staging`.
fn stage(staging: &Path, archive: &Path) -> Result<ArchiveReport> {
    let shown = archive.display().to_string();
    let mut file = BufReader::new(File::open(archive).map_err(|e| Error::io("open", &shown, e))?);
    let mut magic = [0u8; 4];
    let n = read_prefix(&mut file, &mut magic).map_err(|e| Error::io("read", &shown, e))?;
    let head = io::Cursor::new(magic[..n].to_vec()).chain(file);
    let reader: Box<dyn Read> = match magic {
        [0x28, 0xb5, 0x2f, 0xfd] => {
            Box::new(zstd::Decoder::new(head).map_err(|e| archive_err("zstd", e))?)
        }
        [0x1f, 0x8b, ..] => Box::new(flate2::read::GzDecoder::new(head)),
        _ => Box::new(head),
    };
    let options = Options::default()
        .durability(Durability::Full)
        .cache_bytes(0)
        .compression(super::CompressionPolicy::Auto {
            threshold: super::DEFAULT_COMPRESSION_THRESHOLD,
        });
    if staging.exists() {
        return Err(Error::Archive(format!(
            "staging directory {} exists",
            staging.display()
        )));
    }
    let ws = Workspace::open(staging, options)?;
    let mut tar = tar::Archive::new(reader);
    let mut seen: BTreeMap<String, (u64, String)> = BTreeMap::new();
    let mut manifest = None;
    for entry in tar.entries().map_err(|e| archive_err("read", e))? {
        let mut entry = entry.map_err(|e| archive_err("read", e))?;
        let raw = entry.path_bytes().into_owned();
        let path = String::from_utf8(raw).map_err(|e| {
            archive_err(
                "entry name is not UTF-8",
                String::from_utf8_lossy(e.as_bytes()),
            )
        })?;
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name_bytes()
                .map(|t| String::from_utf8_lossy(&t).into_owned())
                .unwrap_or_default();
            return Err(Error::Archive(format!(
                "entry {path:?} is a link (to {target:?}); links are refused"
            )));
        }
        if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            return Err(Error::Archive(format!(
                "entry {path:?} is a device file or FIFO"
            )));
        }
        if path == MANIFEST_NAME {
            if manifest.is_some() {
                return Err(Error::Archive("two manifests".to_owned()));
            }
            let mut bytes = Vec::new();
            entry
                .read_to_end(&mut bytes)
                .map_err(|e| archive_err("truncated manifest", e))?;
            manifest = Some(parse_manifest(&bytes)?);
            continue;
        }
        let clean = if kind.is_dir() {
            super::clean_dir(&path)
        } else {
            clean_path(&path)
        }
        .map_err(|e| Error::Archive(format!("entry refused: {e}")))?;
        if kind.is_dir() {
            if !clean.is_empty() {
                ws.mkdir(&clean)
                    .map_err(|e| Error::Archive(format!("entry {path:?}: {e}")))?;
            }
            continue;
        }
        if !(kind.is_file() || kind.is_contiguous()) {
            return Err(Error::Archive(format!(
                "entry {path:?} has an unsupported type"
            )));
        }
        if seen.contains_key(&clean) {
            return Err(Error::Archive(format!("entry {path:?} appears twice")));
        }
        let mut content = Vec::new();
        entry
            .read_to_end(&mut content)
            .map_err(|e| archive_err(&format!("entry {path:?} is truncated"), e))?;
        ws.write(&clean, &content)
            .map_err(|e| Error::Archive(format!("entry {path:?}: {e}")))?;
        seen.insert(
            clean,
            (
                content.len() as u64,
                blake3::hash(&content).to_hex().to_string(),
            ),
        );
    }
    let manifest = manifest.ok_or_else(|| Error::Archive("no manifest".to_owned()))?;
    let mut listed = HashSet::new();
    for entry in &manifest {
        let clean = clean_path(&entry.path).map_err(|e| Error::Archive(e.to_string()))?;
        match seen.get(&clean) {
            None => {
                return Err(Error::Archive(format!(
                    "{:?} is in the manifest but not the archive",
                    entry.path
                )));
            }
            Some((size, hash))
                if *size != entry.size || !hash.eq_ignore_ascii_case(&entry.blake3) =>
            {
                return Err(Error::Archive(format!(
                    "{:?} does not match its manifest hash",
                    entry.path
                )));
            }
            Some(_) => listed.insert(clean),
        };
    }
    if let Some(extra) = seen.keys().find(|p| !listed.contains(*p)) {
        return Err(Error::Archive(format!(
            "{extra:?} is in the archive but not the manifest"
        )));
    }
    let mut files: Vec<ManifestEntry> = manifest;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let bytes = files.iter().map(|f| f.size).sum();
    Ok(ArchiveReport { files, bytes })
}

fn read_prefix(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}
