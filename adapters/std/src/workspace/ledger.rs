//! The ledger: which paths the workspace has written and not since removed,
//! so that `verify` can report files that went missing.
//!
//! The ledger is `.mechops/ledger`, a sequence of records `+PATH\0` (added)
//! and `-PATH\0` (removed); the last record for a path wins. Every change
//! appends one record with a single `write(2)` on a descriptor opened with
//! `O_APPEND`, so records of several threads or processes never interleave,
//! and the set is always read from the file, never from a copy that another
//! process could have made stale. It is compacted to one `+` record per path
//! (a temporary file and a rename) only when a workspace opens with no other
//! workspace open on the root.
//!
//! Records are appended after a file appears and before one disappears, so
//! a crash between the two steps can only leave a present file unlisted,
//! never list an absent one, and `verify` adds every present file that
//! carries a record: the ledger is derived state, never needed to read a
//! file back.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Mutex;

use rustix::fs::OFlags;

use super::error::{Error, Result};
use super::sys;

const LEDGER: &str = "ledger";

/// The append-only file of recorded paths.
#[derive(Debug)]
pub(crate) struct Ledger {
    meta: OwnedFd,
    file: Mutex<File>,
}

fn meta_err(detail: impl Into<String>) -> Error {
    Error::Metadata {
        path: format!("{}/{LEDGER}", sys::RESERVED_PREFIX),
        detail: detail.into(),
    }
}

/// The set the records in `meta/ledger` describe.
fn load(meta: BorrowedFd<'_>) -> Result<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    let fd = match sys::open_beneath(meta, LEDGER, OFlags::RDONLY | OFlags::NOFOLLOW) {
        Ok(fd) => fd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(names),
        Err(e) => return Err(Error::io("open", LEDGER, e)),
    };
    let mut bytes = Vec::new();
    File::from(fd)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io("read", LEDGER, e))?;
    // A torn final record (no NUL) is what a crash mid-append leaves; it is
    // dropped.
    let complete = bytes.iter().rposition(|&b| b == 0).map_or(0, |i| i + 1);
    for record in bytes[..complete]
        .split(|&b| b == 0)
        .filter(|r| !r.is_empty())
    {
        let path =
            core::str::from_utf8(&record[1..]).map_err(|_| meta_err("a path is not UTF-8"))?;
        match record[0] {
            b'+' => names.insert(path.to_owned()),
            b'-' => names.remove(path),
            other => return Err(meta_err(format!("unknown record kind {other:#04x}"))),
        };
    }
    Ok(names)
}

impl Ledger {
    /// Opens the ledger in the metadata directory `meta`, compacting it
    /// first when `sole` (no other workspace has the root open).
    pub(crate) fn open(meta: BorrowedFd<'_>, sole: bool) -> Result<Self> {
        let names = load(meta)?;
        if sole {
            let (mut file, temp) =
                sys::create_temp(meta).map_err(|e| Error::io("create", LEDGER, e))?;
            let mut compact = Vec::new();
            for name in &names {
                push_record(&mut compact, b'+', name);
            }
            file.write_all(&compact)
                .and_then(|()| sys::sync(file.as_fd()))
                .and_then(|()| sys::rename(meta, &temp, meta, LEDGER))
                .and_then(|()| sys::sync(meta))
                .map_err(|e| Error::io("write", LEDGER, e))?;
        }
        let file = rustix::fs::openat(
            meta,
            LEDGER,
            OFlags::WRONLY | OFlags::CREATE | OFlags::APPEND | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .map_err(|e| Error::io("open", LEDGER, e))?;
        let meta = sys::open_dir(meta, "").map_err(|e| Error::io("open", LEDGER, e))?;
        Ok(Self {
            meta,
            file: Mutex::new(File::from(file)),
        })
    }

    fn append(&self, kind: u8, path: &str) -> Result<()> {
        let mut record = Vec::with_capacity(path.len() + 2);
        push_record(&mut record, kind, path);
        self.file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .write_all(&record)
            .map_err(|e| Error::io("append", LEDGER, e))
    }

    /// Records that `path` holds a file written through the workspace.
    pub(crate) fn add(&self, path: &str) -> Result<()> {
        self.append(b'+', path)
    }

    /// Records that `path` was removed through the workspace.
    pub(crate) fn remove(&self, path: &str) -> Result<()> {
        self.append(b'-', path)
    }

    /// Records a rename: `from` itself and every path beneath it move.
    pub(crate) fn rename(&self, from: &str, to: &str) -> Result<()> {
        let prefix = format!("{from}/");
        for old in self.paths()? {
            if old == from || old.starts_with(&prefix) {
                self.remove(&old)?;
                self.add(&format!("{to}{}", &old[from.len()..]))?;
            }
        }
        Ok(())
    }

    /// The recorded paths, sorted, as the file says now.
    pub(crate) fn paths(&self) -> Result<Vec<String>> {
        Ok(load(self.meta.as_fd())?.into_iter().collect())
    }
}

fn push_record(out: &mut Vec<u8>, kind: u8, path: &str) {
    out.push(kind);
    out.extend_from_slice(path.as_bytes());
    out.push(0);
}
