//! The workspace's error type: every failure names the path it concerns.

use std::io;

use mechops_core::path::PathError;

/// What went wrong in a workspace operation.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The path was refused before anything was opened.
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// Why it was refused.
        reason: PathError,
    },
    /// The path names the workspace's own metadata (`.mechops…`).
    #[error("invalid path {path:?}: names starting with `.mechops` are reserved")]
    Reserved {
        /// The path as given.
        path: String,
    },
    /// Resolving the path would leave the root (through `..` or a symbolic
    /// link); the kernel refused it at open time.
    #[error("path {path:?} resolves outside the workspace root")]
    Escapes {
        /// The path as given.
        path: String,
    },
    /// A symbolic link where the operation does not follow one.
    #[error("path {path:?} goes through a symbolic link, which this operation never follows")]
    Symlink {
        /// The path as given.
        path: String,
    },
    /// Nothing at the path.
    #[error("no such file: {path:?}")]
    NotFound {
        /// The path as given.
        path: String,
    },
    /// The path names a directory where a file is needed, or the reverse.
    #[error("{path:?} is {what}")]
    WrongKind {
        /// The path as given.
        path: String,
        /// `"a directory"`, `"not a directory"`, `"not a regular file"`.
        what: &'static str,
    },
    /// The stored bytes no longer match the hash recorded when they were
    /// written.
    #[error("{path:?} is damaged: {detail}")]
    Corrupt {
        /// The path as given.
        path: String,
        /// What did not match.
        detail: String,
    },
    /// An operating-system error.
    #[error("{op} {path:?}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path concerned (`""` for the root).
        path: String,
        /// The underlying error.
        source: io::Error,
    },
    /// A batch was refused before any change, or a step of it failed (and
    /// the batch was rolled back when atomic).
    #[error("batch operation {index}: {source}")]
    Batch {
        /// The operation's index in the batch.
        index: usize,
        /// What went wrong.
        source: Box<Self>,
    },
    /// Not applied: the atomic batch was rolled back because another of its
    /// operations failed.
    #[error("not applied: the atomic batch was rolled back (operation {index} failed)")]
    RolledBack {
        /// The operation that failed.
        index: usize,
    },
    /// A fault injected by a test hook stopped the operation as a crash
    /// would: nothing after the step ran, nothing was cleaned up.
    #[error("injected crash after step {step}")]
    InjectedCrash {
        /// The last step that completed.
        step: usize,
    },
    /// An archive was refused, or a restore failed; the target is unchanged.
    #[error("archive: {0}")]
    Archive(String),
    /// The workspace's metadata is malformed.
    #[error("metadata {path:?}: {detail}")]
    Metadata {
        /// The metadata file.
        path: String,
        /// What is wrong with it.
        detail: String,
    },
}

impl Error {
    pub(crate) fn io(op: &'static str, path: &str, source: impl Into<io::Error>) -> Self {
        let source = source.into();
        let path = path.to_owned();
        match source.raw_os_error() {
            Some(libc::EXDEV) => Self::Escapes { path },
            Some(libc::ELOOP) => Self::Symlink { path },
            Some(libc::ENOENT) => Self::NotFound { path },
            Some(libc::EISDIR) => Self::WrongKind {
                path,
                what: "a directory",
            },
            Some(libc::ENOTDIR) => Self::WrongKind {
                path,
                what: "not a directory",
            },
            _ => Self::Io { op, path, source },
        }
    }

    /// Whether the error means that nothing was found at the path.
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
}

/// A workspace result.
pub type Result<T, E = Error> = core::result::Result<T, E>;
