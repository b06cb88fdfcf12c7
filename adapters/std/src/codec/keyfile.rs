//! The key file: one XChaCha20-Poly1305 key as a line of text.
//!
//! Format (also in `docs/FORMAT.md`, "Key files"): the ASCII line
//! `mechops-key v1 xchacha20poly1305 ` followed by exactly 64 lowercase or
//! uppercase hex digits (the 32 key bytes in order) and one `\n` (a `\r\n` is
//! accepted on reading). Nothing else may precede or follow.
//!
//! Reading accepts only a regular file (a symbolic link to one is followed)
//! of at most [`MAX_KEY_FILE_LEN`] bytes that, on Unix, neither the group nor
//! others may read, write or execute: like ssh with a private key, a key
//! file anyone else can see is refused, not used with a warning, because a
//! warning in a script's log protects nothing. Opening does not block on a
//! FIFO (it is refused as not a regular file).
//!
//! Writing creates the file with mode 0600 on Unix through
//! [`crate::durable::create_new`]: the key reaches the disk under a temporary
//! name and is then linked into place, so a full disk leaves no empty or
//! partial key file, and an existing file is never replaced.
//!
//! Every copy of key material made here (the text, the hex digits, the
//! decoded bytes, the read buffer) is wiped on drop with `zeroize`, which
//! the optimizer cannot remove as it can a plain `fill(0)` before a free.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::path::Path;

use mechops_alloc::serialize::{KEY_LEN, Key};
use zeroize::Zeroizing;

/// The prefix of the only key file version.
pub const KEY_FILE_PREFIX: &str = "mechops-key v1 xchacha20poly1305 ";

/// The largest key file read: a valid one is 98 or 99 bytes.
pub const MAX_KEY_FILE_LEN: usize = 256;

/// Why a key file could not be read or written.
///
/// The I/O variant does not repeat its source in its message: the source is
/// returned by `source()`, for a printer of the cause chain to show once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The file could not be opened, read or written.
    #[error("key file {path}")]
    Io {
        /// The file's path.
        path: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The file does not hold a key in the documented format.
    #[error("key file {path}: {problem}")]
    Malformed {
        /// The file's path.
        path: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// Writing: a file of that name exists already (it is left as it is).
    #[error("key file {path} already exists; a key file is never overwritten")]
    Exists {
        /// The file's path.
        path: String,
    },
    /// Reading: the path names a directory, device, FIFO or socket.
    #[error("key file {path} is not a regular file")]
    NotRegular {
        /// The file's path.
        path: String,
    },
    /// Reading: the file is larger than [`MAX_KEY_FILE_LEN`].
    #[error("key file {path} is larger than {MAX_KEY_FILE_LEN} bytes, too large to be a key")]
    TooLarge {
        /// The file's path.
        path: String,
    },
    /// Reading: the group or others have access to the file (Unix).
    #[error(
        "key file {path} is accessible by group or others (mode {mode:04o}); \
         make it private with chmod 600"
    )]
    Exposed {
        /// The file's path.
        path: String,
        /// The file's permission bits.
        mode: u32,
    },
}

/// Renders key bytes as the key file's text.
#[must_use]
pub fn encode_key(key: &[u8; KEY_LEN]) -> Zeroizing<String> {
    // Allocated once at its final size, so no reallocation leaves a copy.
    let mut text = Zeroizing::new(String::with_capacity(
        KEY_FILE_PREFIX.len() + 2 * KEY_LEN + 1,
    ));
    text.push_str(KEY_FILE_PREFIX);
    for byte in key {
        text.push(char::from(HEX[usize::from(byte >> 4)]));
        text.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    text.push('\n');
    text
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Parses the key file's text into a key.
///
/// # Errors
/// The problem, as a static message.
pub fn decode_key(text: &[u8]) -> Result<Key, &'static str> {
    decode_key_bytes(text).map(|bytes| Key::from_bytes(&bytes))
}

/// Parses the key file's text into the key's bytes.
///
/// # Errors
/// The problem, as a static message.
pub fn decode_key_bytes(text: &[u8]) -> Result<Zeroizing<[u8; KEY_LEN]>, &'static str> {
    let body = text
        .strip_prefix(KEY_FILE_PREFIX.as_bytes())
        .ok_or("not a mechops v1 key file (bad first bytes)")?;
    let hex = body
        .strip_suffix(b"\r\n")
        .or_else(|| body.strip_suffix(b"\n"))
        .unwrap_or(body);
    if hex.len() != 2 * KEY_LEN {
        return Err("key must be exactly 64 hex digits on one line");
    }
    let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
    for (byte, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
        let high = hex_digit(pair[0]).ok_or("key contains a non-hex character")?;
        let low = hex_digit(pair[1]).ok_or("key contains a non-hex character")?;
        *byte = (high << 4) | low;
    }
    Ok(bytes)
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Reads a key file, with the checks of the module docs.
///
/// # Errors
/// [`KeyFileError::Io`] when the file cannot be opened or read;
/// [`KeyFileError::NotRegular`], [`KeyFileError::Exposed`],
/// [`KeyFileError::TooLarge`] or [`KeyFileError::Malformed`] when it is
/// not a private key file. Each names the path.
pub fn read_key_file(path: &Path) -> Result<Key, KeyFileError> {
    let shown = || path.display().to_string();
    let io_error = |source| KeyFileError::Io {
        path: shown(),
        source,
    };
    let file = open_for_reading(path).map_err(io_error)?;
    let meta = file.metadata().map_err(io_error)?;
    if !meta.is_file() {
        return Err(KeyFileError::NotRegular { path: shown() });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(KeyFileError::Exposed {
                path: shown(),
                mode,
            });
        }
    }
    // One allocation of the final size: reading never reallocates, so the
    // only copy of the text is the one wiped on drop.
    let mut text = Zeroizing::new(Vec::with_capacity(MAX_KEY_FILE_LEN + 1));
    file.take(MAX_KEY_FILE_LEN as u64 + 1)
        .read_to_end(&mut text)
        .map_err(io_error)?;
    if text.len() > MAX_KEY_FILE_LEN {
        return Err(KeyFileError::TooLarge { path: shown() });
    }
    decode_key(&text).map_err(|problem| KeyFileError::Malformed {
        path: shown(),
        problem,
    })
}

/// Opens `path` for reading without blocking on a FIFO that has no writer.
fn open_for_reading(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    options.open(path)
}

/// Writes the key bytes to a new file at `path`, mode 0600 on Unix, durably
/// and never partially (see the module docs).
///
/// # Errors
/// [`KeyFileError::Exists`] when `path` exists; [`KeyFileError::Io`] when
/// the file cannot be written, in which case nothing is left at `path`.
pub fn write_key_file(path: &Path, key: &[u8; KEY_LEN]) -> Result<(), KeyFileError> {
    let text = encode_key(key);
    crate::durable::create_new(path, text.as_bytes(), 0o600).map_err(|source| {
        let path = path.display().to_string();
        if source.kind() == io::ErrorKind::AlreadyExists {
            KeyFileError::Exists { path }
        } else {
            KeyFileError::Io { path, source }
        }
    })
}

/// The bytes of a new key from OS entropy, wiped on drop.
///
/// # Errors
/// The OS entropy source failed.
pub fn generate_key_bytes() -> Result<Zeroizing<[u8; KEY_LEN]>, getrandom::Error> {
    let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
    getrandom::fill(&mut bytes[..])?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Compiles only for types that wipe themselves on drop.
    fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>(_: &T) {}

    #[test]
    fn text_round_trip_and_rejections() {
        let key: [u8; KEY_LEN] = core::array::from_fn(|i| (i * 9) as u8);
        let text = encode_key(&key);
        wiped_on_drop(&text);
        assert_eq!(text.len(), KEY_FILE_PREFIX.len() + 65);
        let decoded = decode_key_bytes(text.as_bytes()).unwrap();
        wiped_on_drop(&decoded);
        assert_eq!(*decoded, key);
        let crlf = text.replace('\n', "\r\n");
        assert!(decode_key(crlf.as_bytes()).is_ok());
        assert!(
            decode_key(text.to_uppercase().as_bytes()).is_err(),
            "prefix is case-sensitive"
        );
        assert!(decode_key(&text.as_bytes()[..text.len() - 2]).is_err());
        let mut bad = text.as_bytes().to_vec();
        bad[KEY_FILE_PREFIX.len()] = b'g';
        assert_eq!(
            decode_key_bytes(&bad).unwrap_err(),
            "key contains a non-hex character"
        );
        assert!(decode_key(format!("{}x", text.as_str()).as_bytes()).is_err());
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("mechops-keyfile-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn write_is_private_and_never_overwrites() {
        let dir = scratch("write");
        let path = dir.join("k");
        let key = generate_key_bytes().unwrap();
        wiped_on_drop(&key);
        write_key_file(&path, &key).unwrap();
        assert_eq!(
            *decode_key_bytes(&std::fs::read(&path).unwrap()).unwrap(),
            *key
        );
        read_key_file(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let err = write_key_file(&path, &[7; KEY_LEN]).unwrap_err();
        assert!(matches!(err, KeyFileError::Exists { .. }), "{err}");
        assert_eq!(
            *decode_key_bytes(&std::fs::read(&path).unwrap()).unwrap(),
            *key
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_small_private_regular_files_are_read() {
        let dir = scratch("read");
        let path = dir.join("k");
        write_key_file(&path, &[1; KEY_LEN]).unwrap();
        let err = read_key_file(&dir).unwrap_err();
        assert!(matches!(err, KeyFileError::NotRegular { .. }), "{err}");
        let big = dir.join("big");
        std::fs::write(&big, vec![b'0'; MAX_KEY_FILE_LEN + 1]).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let private = std::fs::Permissions::from_mode(0o600);
            std::fs::set_permissions(&big, private).unwrap();
            for mode in [0o640, 0o604, 0o620, 0o602, 0o610] {
                let perms = std::fs::Permissions::from_mode(mode);
                std::fs::set_permissions(&path, perms).unwrap();
                let err = read_key_file(&path).unwrap_err();
                assert!(
                    matches!(err, KeyFileError::Exposed { mode: m, .. } if m == mode),
                    "{err}"
                );
                assert!(err.to_string().contains(&format!("{mode:04o}")), "{err}");
            }
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
            read_key_file(&path).unwrap();
            // A FIFO with no writer: refused at once, not waited on.
            let fifo = dir.join("fifo");
            let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
            // SAFETY: `c_path` is a valid NUL-terminated path for the call.
            assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
            let err = read_key_file(&fifo).unwrap_err();
            assert!(matches!(err, KeyFileError::NotRegular { .. }), "{err}");
        }
        let err = read_key_file(&big).unwrap_err();
        assert!(matches!(err, KeyFileError::TooLarge { .. }), "{err}");
        let err = read_key_file(&dir.join("missing")).unwrap_err();
        assert!(matches!(err, KeyFileError::Io { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            format!("key file {}", dir.join("missing").display())
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
