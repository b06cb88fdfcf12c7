//! The system calls the workspace is built from, each relative to a
//! directory file descriptor.
//!
//! Every multi-component path is resolved by `openat2` with
//! `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`: the kernel refuses (`EXDEV`,
//! `ELOOP`) any resolution that would leave the directory, whether through
//! `..`, an absolute or relative symbolic link, or a `/proc` magic link, at
//! the moment of the open. Everything else (`unlinkat`, `renameat`,
//! `mkdirat`, creating with `O_EXCL`) takes a single name relative to a
//! directory descriptor opened that way, so no path string is checked and
//! then used.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{self as rfs, AtFlags, Mode, OFlags, ResolveFlags};

/// Names starting with this are the workspace's own and never listed.
pub(crate) const RESERVED_PREFIX: &str = ".mechops";
/// Temporary files: `<prefix><random hex>`, removed when a workspace opens.
pub(crate) const TEMP_PREFIX: &str = ".mechops-tmp-";

const BENEATH: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_MAGICLINKS);

fn openat2_retry(
    dir: BorrowedFd<'_>,
    path: &str,
    flags: OFlags,
    mode: Mode,
    resolve: ResolveFlags,
) -> io::Result<OwnedFd> {
    let mut tries = 0;
    loop {
        match rfs::openat2(dir, path, flags | OFlags::CLOEXEC, mode, resolve) {
            // The kernel asks for a retry when a concurrent rename could
            // have made the resolution unsafe; it cannot loop forever
            // unless renames never stop, so give up after a while.
            Err(rustix::io::Errno::AGAIN) if tries < 64 => tries += 1,
            other => return other.map_err(io::Error::from),
        }
    }
}

/// Opens `path` (one or more names) beneath `dir`; symbolic links inside
/// the directory are followed, nothing leaves it.
pub(crate) fn open_beneath(dir: BorrowedFd<'_>, path: &str, flags: OFlags) -> io::Result<OwnedFd> {
    openat2_retry(dir, path, flags, Mode::empty(), BENEATH)
}

/// Opens the directory `path` beneath `dir` (`""` is `dir` itself).
pub(crate) fn open_dir(dir: BorrowedFd<'_>, path: &str) -> io::Result<OwnedFd> {
    let path = if path.is_empty() { "." } else { path };
    open_beneath(dir, path, OFlags::RDONLY | OFlags::DIRECTORY)
}

/// Opens the subdirectory `name` of `dir` without following any symbolic
/// link: what removal walks use.
pub(crate) fn open_subdir_nofollow(dir: BorrowedFd<'_>, name: &str) -> io::Result<OwnedFd> {
    openat2_retry(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW,
        Mode::empty(),
        BENEATH | ResolveFlags::NO_SYMLINKS,
    )
}

/// [`open_subdir_nofollow`] mapping "vanished, not a directory or a link"
/// (all of which a walk skips) to `None`.
pub(crate) fn open_subdir_if_dir(dir: BorrowedFd<'_>, name: &str) -> io::Result<Option<OwnedFd>> {
    match open_subdir_nofollow(dir, name) {
        Ok(fd) => Ok(Some(fd)),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ELOOP | libc::ENOTDIR | libc::ENOENT)
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// `dir/name`, or `name` in the root (`dir` empty).
pub(crate) fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// Opens the regular file `name` of `dir` for reading without following a
/// link or blocking on a FIFO.
pub(crate) fn open_file_nofollow(dir: BorrowedFd<'_>, name: &str) -> io::Result<File> {
    openat2_retry(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK,
        Mode::empty(),
        BENEATH | ResolveFlags::NO_SYMLINKS,
    )
    .map(File::from)
}

/// Opens (creating as needed) every directory of `path` beneath `dir`.
pub(crate) fn create_dirs(dir: BorrowedFd<'_>, path: &str) -> io::Result<OwnedFd> {
    match open_dir(dir, path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        other => return other,
    }
    let mut current = open_dir(dir, "")?;
    for name in path.split('/') {
        match rfs::mkdirat(&current, name, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
        current = open_beneath(current.as_fd(), name, OFlags::RDONLY | OFlags::DIRECTORY)?;
    }
    Ok(current)
}

/// Creates a fresh temporary file in `dir`; `O_EXCL` means an existing name
/// (a link planted there included) is never opened.
pub(crate) fn create_temp(dir: BorrowedFd<'_>) -> io::Result<(File, String)> {
    loop {
        let name = format!(
            "{TEMP_PREFIX}{:016x}",
            getrandom::u64().map_err(io::Error::other)?
        );
        match rfs::openat(
            dir,
            name.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        ) {
            Ok(fd) => return Ok((File::from(fd), name)),
            Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// `fsync` on a descriptor.
pub(crate) fn sync(fd: impl AsFd) -> io::Result<()> {
    rfs::fsync(fd).map_err(io::Error::from)
}

/// `renameat` within or across directories, replacing the target.
pub(crate) fn rename(
    from_dir: BorrowedFd<'_>,
    from: &str,
    to_dir: BorrowedFd<'_>,
    to: &str,
) -> io::Result<()> {
    rfs::renameat(from_dir, from, to_dir, to).map_err(io::Error::from)
}

/// `renameat2(RENAME_NOREPLACE)`: fails with `EEXIST` if `to` exists.
pub(crate) fn rename_noreplace(
    from_dir: BorrowedFd<'_>,
    from: &str,
    to_dir: BorrowedFd<'_>,
    to: &str,
) -> io::Result<()> {
    rfs::renameat_with(from_dir, from, to_dir, to, rfs::RenameFlags::NOREPLACE)
        .map_err(io::Error::from)
}

/// `unlinkat` of a file (or, with `dir`, an empty directory); never
/// follows a link: a link is removed itself.
pub(crate) fn unlink(dir: BorrowedFd<'_>, name: &str, is_dir: bool) -> io::Result<()> {
    let flags = if is_dir {
        AtFlags::REMOVEDIR
    } else {
        AtFlags::empty()
    };
    rfs::unlinkat(dir, name, flags).map_err(io::Error::from)
}

/// `fstatat(AT_SYMLINK_NOFOLLOW)`.
pub(crate) fn stat_nofollow(dir: BorrowedFd<'_>, name: &str) -> io::Result<rfs::Stat> {
    rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).map_err(io::Error::from)
}

/// `fstat`.
pub(crate) fn fstat(fd: impl AsFd) -> io::Result<rfs::Stat> {
    rfs::fstat(fd).map_err(io::Error::from)
}

/// Whether a stat result is a regular file, a directory or something else.
pub(crate) fn kind(stat: &rfs::Stat) -> rfs::FileType {
    rfs::FileType::from_raw_mode(stat.st_mode)
}

/// One entry of a directory: its name (UTF-8 only) and type.
pub(crate) struct DirEntry {
    pub(crate) name: String,
    pub(crate) file_type: rfs::FileType,
}

/// The entries of `dir` except `.` and `..`; names that are not UTF-8 are
/// returned in `skipped` (lossily converted), for reports.
pub(crate) fn read_dir(dir: BorrowedFd<'_>) -> io::Result<(Vec<DirEntry>, Vec<String>)> {
    let mut entries = Vec::new();
    let mut skipped = Vec::new();
    let mut reader = rfs::Dir::read_from(dir)?;
    while let Some(entry) = reader.read() {
        let entry = entry?;
        let bytes = entry.file_name().to_bytes();
        if bytes == b"." || bytes == b".." {
            continue;
        }
        match core::str::from_utf8(bytes) {
            Ok(name) => {
                let mut file_type = entry.file_type();
                if file_type == rfs::FileType::Unknown {
                    file_type = kind(&stat_nofollow(dir, name)?);
                }
                entries.push(DirEntry {
                    name: name.to_owned(),
                    file_type,
                })
            }
            Err(_) => skipped.push(String::from_utf8_lossy(bytes).into_owned()),
        }
    }
    Ok((entries, skipped))
}

/// Reads an extended attribute into `buf`; `Ok(None)` when absent or when
/// the file system has no extended attributes.
pub(crate) fn get_xattr(fd: impl AsFd, name: &str, buf: &mut [u8]) -> io::Result<Option<usize>> {
    match rfs::fgetxattr(fd, name, buf) {
        Ok(n) => Ok(Some(n)),
        Err(rustix::io::Errno::NODATA | rustix::io::Errno::NOTSUP) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Sets an extended attribute.
pub(crate) fn set_xattr(fd: impl AsFd, name: &str, value: &[u8]) -> io::Result<()> {
    rfs::fsetxattr(fd, name, value, rfs::XattrFlags::empty()).map_err(io::Error::from)
}

/// Splits a normalized path into its directory (`""` for the root) and
/// final name.
pub(crate) fn split(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}
