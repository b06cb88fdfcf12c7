//! The ledger: which paths the workspace has written and not since removed,
//! so that `verify` can report files that went missing.
//!
//! The ledger is `.mechops/ledger`, a sequence of records `+PATH\0` (added)
//! and `-PATH\0` (removed); the last record for a path wins. It is compacted
//! to one `+` record per path when a workspace opens (a temporary file and
//! a rename). Records are appended after a file appears and before one
//! disappears, so a crash between the two steps can only leave a present
//! file unlisted, never list an absent one, and [`Ledger::add`] is applied
//! by `verify` to every present file that carries a record: the ledger is
//! derived state, never needed to read a file back.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Mutex;

use rustix::fs::OFlags;

use super::error::{Error, Result};
use super::sys;

const LEDGER: &str = "ledger";

/// The set of recorded paths and the append-only file behind it.
#[derive(Debug)]
pub(crate) struct Ledger {
    state: Mutex<(File, BTreeSet<String>)>,
}

fn meta_err(detail: impl Into<String>) -> Error {
    Error::Metadata {
        path: format!("{}/{LEDGER}", sys::RESERVED_PREFIX),
        detail: detail.into(),
    }
}

impl Ledger {
    /// Loads and compacts the ledger in the metadata directory `meta`.
    pub(crate) fn open(meta: BorrowedFd<'_>) -> Result<Self> {
        let mut names = BTreeSet::new();
        match sys::open_beneath(meta, LEDGER, OFlags::RDONLY | OFlags::NOFOLLOW) {
            Ok(fd) => {
                let mut bytes = Vec::new();
                File::from(fd)
                    .read_to_end(&mut bytes)
                    .map_err(|e| Error::io("read", LEDGER, e))?;
                // A torn final record (no NUL) is what a crash mid-append
                // leaves; it is dropped.
                let complete = bytes.iter().rposition(|&b| b == 0).map_or(0, |i| i + 1);
                for record in bytes[..complete]
                    .split(|&b| b == 0)
                    .filter(|r| !r.is_empty())
                {
                    let path = core::str::from_utf8(&record[1..])
                        .map_err(|_| meta_err("a path is not UTF-8"))?;
                    match record[0] {
                        b'+' => names.insert(path.to_owned()),
                        b'-' => names.remove(path),
                        other => return Err(meta_err(format!("unknown record kind {other:#04x}"))),
                    };
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("open", LEDGER, e)),
        }
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
        drop(file);
        let file = sys::open_beneath(
            meta,
            LEDGER,
            OFlags::WRONLY | OFlags::APPEND | OFlags::NOFOLLOW,
        )
        .map_err(|e| Error::io("open", LEDGER, e))?;
        Ok(Self {
            state: Mutex::new((File::from(file), names)),
        })
    }

    fn append(&self, kind: u8, path: &str) -> Result<()> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let changed = if kind == b'+' {
            state.1.insert(path.to_owned())
        } else {
            state.1.remove(path)
        };
        if changed {
            let mut record = Vec::with_capacity(path.len() + 2);
            push_record(&mut record, kind, path);
            state
                .0
                .write_all(&record)
                .map_err(|e| Error::io("append", LEDGER, e))?;
        }
        Ok(())
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
        let moved: Vec<String> = {
            let state = self
                .state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            state
                .1
                .iter()
                .filter(|p| p.as_str() == from || p.starts_with(&prefix))
                .cloned()
                .collect()
        };
        for old in moved {
            self.remove(&old)?;
            self.add(&format!("{to}{}", &old[from.len()..]))?;
        }
        Ok(())
    }

    /// The recorded paths, sorted.
    pub(crate) fn paths(&self) -> Vec<String> {
        let state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.1.iter().cloned().collect()
    }
}

fn push_record(out: &mut Vec<u8>, kind: u8, path: &str) {
    out.push(kind);
    out.extend_from_slice(path.as_bytes());
    out.push(0);
}
