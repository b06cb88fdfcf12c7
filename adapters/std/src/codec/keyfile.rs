//! The key file: one XChaCha20-Poly1305 key as a line of text.
//!
//! Format (also in `docs/FORMAT.md`, "Key files"): the ASCII line
//! `mechops-key v1 xchacha20poly1305 ` followed by exactly 64 lowercase or
//! uppercase hex digits (the 32 key bytes in order) and one `\n` (a `\r\n` is
//! accepted on reading). Nothing else may precede or follow.
//!
//! Writing creates the file with mode 0600 on Unix and refuses to replace an
//! existing file, so a key is never silently overwritten.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::Path;

use mechops_alloc::serialize::{KEY_LEN, Key};

/// The prefix of the only key file version.
pub const KEY_FILE_PREFIX: &str = "mechops-key v1 xchacha20poly1305 ";

/// Why a key file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The file could not be opened, read or written.
    #[error("key file {path}: {source}")]
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
}

/// Renders key bytes as the key file's text.
#[must_use]
pub fn encode_key(key: &[u8; KEY_LEN]) -> String {
    let mut text = String::with_capacity(KEY_FILE_PREFIX.len() + 2 * KEY_LEN + 1);
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
pub fn decode_key_bytes(text: &[u8]) -> Result<[u8; KEY_LEN], &'static str> {
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
    let mut bytes = [0u8; KEY_LEN];
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

/// Reads a key file.
///
/// # Errors
/// [`KeyFileError::Io`] or [`KeyFileError::Malformed`], naming the path.
pub fn read_key_file(path: &Path) -> Result<Key, KeyFileError> {
    let text = std::fs::read(path).map_err(|source| KeyFileError::Io {
        path: path.display().to_string(),
        source,
    })?;
    decode_key(&text).map_err(|problem| KeyFileError::Malformed {
        path: path.display().to_string(),
        problem,
    })
}

/// Writes the key bytes to a new file at `path`, mode 0600 on Unix.
///
/// # Errors
/// [`KeyFileError::Io`], including when the file already exists.
pub fn write_key_file(path: &Path, key: &[u8; KEY_LEN]) -> Result<(), KeyFileError> {
    let io_error = |source| KeyFileError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io_error)?;
    file.write_all(encode_key(key).as_bytes())
        .map_err(io_error)?;
    file.sync_all().map_err(io_error)
}

/// The bytes of a new key from OS entropy.
///
/// # Errors
/// The OS entropy source failed.
pub fn generate_key_bytes() -> Result<[u8; KEY_LEN], getrandom::Error> {
    let mut bytes = [0u8; KEY_LEN];
    getrandom::fill(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip_and_rejections() {
        let key: [u8; KEY_LEN] = core::array::from_fn(|i| (i * 9) as u8);
        let text = encode_key(&key);
        assert_eq!(text.len(), KEY_FILE_PREFIX.len() + 65);
        assert_eq!(decode_key_bytes(text.as_bytes()).unwrap(), key);
        let crlf = text.replace('\n', "\r\n");
        assert!(decode_key(crlf.as_bytes()).is_ok());
        assert!(
            decode_key(text.to_uppercase().as_bytes()).is_err(),
            "prefix is case-sensitive"
        );
        assert!(decode_key(&text.as_bytes()[..text.len() - 2]).is_err());
        let mut bad = text.clone().into_bytes();
        bad[KEY_FILE_PREFIX.len()] = b'g';
        assert_eq!(
            decode_key_bytes(&bad).unwrap_err(),
            "key contains a non-hex character"
        );
        assert!(decode_key(format!("{text}x").as_bytes()).is_err());
    }

    #[test]
    fn write_is_private_and_never_overwrites() {
        let dir = std::env::temp_dir().join(format!("mechops-keyfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("k");
        let _ = std::fs::remove_file(&path);
        let key = generate_key_bytes().unwrap();
        write_key_file(&path, &key).unwrap();
        assert_eq!(
            decode_key_bytes(&std::fs::read(&path).unwrap()).unwrap(),
            key
        );
        read_key_file(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(
            write_key_file(&path, &key),
            Err(KeyFileError::Io { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
