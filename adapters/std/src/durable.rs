//! Whole-file writes that never leave a partial file behind.
//!
//! Both functions write the bytes to a new temporary file in the target's
//! directory (so the last step stays on one file system), `fsync` it, and only
//! then give it the target's name, with a system call that is atomic: the
//! target holds either all the bytes or what it held before (nothing, for a
//! new file). Any failure, a full disk included, removes the temporary. Once
//! the name is given, the directory is `fsync`ed too, so the name survives a
//! crash as well as the bytes do.
//!
//! - [`create_new`] names the file with `link(2)`, which fails when the name
//!   exists, so an existing file is never replaced, even by a racing writer.
//!   On a file system without hard links it creates the target itself with
//!   `O_EXCL` and removes it on failure (not crash-safe, still never partial
//!   after an error).
//! - [`replace`] names the file with `rename(2)`, which replaces atomically
//!   and keeps the old file's permission bits. A target that exists and is not
//!   a regular file (`/dev/stdout`, a FIFO, `/dev/full`) is written in place:
//!   renaming over it would replace the device node. So is a path in `/dev`
//!   or `/proc`, or a symbolic link into them (`/dev/stdout`, `/dev/fd/3`,
//!   a link to either): it names an open descriptor, and renaming over the
//!   file behind it would leave the descriptor's owner writing to a deleted
//!   file. Any other symbolic link is followed: its target is replaced, not
//!   the link.
//!
//! Temporaries are named `.NAME.PID.RANDOM.tmp`; one is left behind only when
//! the process is killed between creating and renaming it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Writes `bytes` to a new file at `path` (mode `mode` on Unix, before the
/// umask); fails with [`io::ErrorKind::AlreadyExists`] if `path` exists.
///
/// # Errors
/// Creating, writing, syncing or linking failed; no file is left at `path`
/// and no temporary beside it.
pub fn create_new(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let temporary = write_fresh(&temporary_path(path)?, bytes, mode)?;
    match fs::hard_link(&temporary.path, path) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => return Err(err),
        Err(_) => {
            // No hard links here (FAT, some network file systems).
            drop(temporary);
            return write_fresh(path, bytes, mode).map(Fresh::keep);
        }
    }
    drop(temporary);
    sync_directory(path)
}

/// Writes `bytes` to `path`, replacing what it held only once all of them
/// are on disk.
///
/// # Errors
/// Creating, writing, syncing or renaming failed; `path` is as it was and no
/// temporary is left beside it.
pub fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let target = match fs::canonicalize(path) {
        Ok(real) => real,
        Err(err) if err.kind() == io::ErrorKind::NotFound => path.to_owned(),
        Err(err) => return Err(err),
    };
    let existing = match fs::metadata(&target) {
        Ok(meta) => Some(meta),
        Err(err) if err.kind() == io::ErrorKind::NotFound => None,
        Err(err) => return Err(err),
    };
    if existing.as_ref().is_some_and(|meta| !meta.is_file()) || names_a_descriptor(path) {
        let mut file = OpenOptions::new().write(true).truncate(true).open(path)?;
        file.write_all(bytes)?;
        return file.flush();
    }
    let temporary = write_fresh(&temporary_path(&target)?, bytes, 0o666)?;
    if let Some(meta) = existing {
        fs::set_permissions(&temporary.path, meta.permissions())?;
    }
    fs::rename(&temporary.path, &target)?;
    temporary.keep();
    sync_directory(&target)
}

/// Whether `path`, or a symbolic link on the way from it, lies in `/dev` or
/// `/proc` (see the module docs).
fn names_a_descriptor(path: &Path) -> bool {
    let special = |p: &Path| p.starts_with("/dev") || p.starts_with("/proc");
    let Ok(mut hop) = std::path::absolute(path) else {
        return false;
    };
    // As many hops as the kernel follows before ELOOP.
    for _ in 0..40 {
        if special(&hop) {
            return true;
        }
        let Ok(next) = fs::read_link(&hop) else {
            return false;
        };
        hop = match hop.parent() {
            Some(dir) => dir.join(next),
            None => next,
        };
    }
    false
}

/// A file this module created, removed on drop unless kept.
struct Fresh {
    path: PathBuf,
    keep: bool,
}

impl Fresh {
    fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for Fresh {
    fn drop(&mut self) {
        if !self.keep {
            // Best effort: the error that got us here is the one to report.
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Creates `path` (which must not exist), writes and syncs `bytes`.
fn write_fresh(path: &Path, bytes: &[u8], mode: u32) -> io::Result<Fresh> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path)?;
    let fresh = Fresh {
        path: path.to_owned(),
        keep: false,
    };
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(fresh)
}

/// A name for a temporary beside `path`, unused by any live process.
fn temporary_path(path: &Path) -> io::Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} does not name a file", path.display()),
        )
    })?;
    let random = getrandom::u64().map_err(io::Error::other)?;
    let mut temporary = std::ffi::OsString::from(".");
    temporary.push(name);
    temporary.push(format!(".{}.{random:016x}.tmp", std::process::id()));
    Ok(path.with_file_name(temporary))
}

/// Makes the directory entry of `path` durable.
fn sync_directory(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("mechops-durable-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn create_new_never_replaces_and_leaves_no_temporary() {
        let dir = scratch("create");
        let path = dir.join("key");
        create_new(&path, b"first", 0o600).unwrap();
        let err = create_new(&path, b"second", 0o600).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&path).unwrap(), b"first");
        assert_eq!(entries(&dir), ["key"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn replace_keeps_permissions_and_follows_links() {
        let dir = scratch("replace");
        let path = dir.join("out");
        replace(&path, b"one").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"one");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
            let link = dir.join("link");
            std::os::unix::fs::symlink(&path, &link).unwrap();
            replace(&link, b"two").unwrap();
            assert!(fs::symlink_metadata(&link).unwrap().is_symlink());
            assert_eq!(fs::read(&path).unwrap(), b"two");
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o640);
        }
        assert!(entries(&dir).iter().all(|name| !name.ends_with(".tmp")));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_directory_fails_cleanly() {
        let dir = scratch("missing");
        let path = dir.join("no").join("such");
        assert_eq!(
            replace(&path, b"x").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            create_new(&path, b"x", 0o600).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn devices_are_written_in_place() {
        // Renaming over /dev/full would need root and destroy the node; the
        // write in place reports the device's own error instead.
        let err = replace(Path::new("/dev/full"), b"x").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
        replace(Path::new("/dev/null"), b"x").unwrap();
    }

    #[test]
    fn descriptor_names_are_recognised_through_links() {
        assert!(names_a_descriptor(Path::new("/dev/stdout")));
        assert!(names_a_descriptor(Path::new("/proc/self/fd/1")));
        let dir = scratch("descriptors");
        let plain = dir.join("plain");
        assert!(!names_a_descriptor(&plain));
        fs::write(&plain, b"").unwrap();
        assert!(!names_a_descriptor(&plain));
        #[cfg(unix)]
        {
            let to_plain = dir.join("to-plain");
            std::os::unix::fs::symlink("plain", &to_plain).unwrap();
            assert!(!names_a_descriptor(&to_plain));
            let to_stdout = dir.join("to-stdout");
            std::os::unix::fs::symlink("/dev/stdout", &to_stdout).unwrap();
            assert!(names_a_descriptor(&to_stdout));
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
