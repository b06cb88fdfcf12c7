//! Lexical validation and normalization of paths relative to a root.
//!
//! [`normalize`] turns a caller's path (bytes, `/`-separated, as on Unix)
//! into its canonical relative form in a buffer the caller owns: `.`
//! components and one trailing `/` are dropped, `name/..` pairs cancel, and
//! everything that cannot name something beneath the root is refused with a
//! [`PathError`] saying why and where.
//!
//! # Refused
//!
//! - the empty path, and a path that normalizes to the root itself
//!   ([`PathError::Empty`]; [`normalize_dir`] accepts the root, for listings);
//! - an absolute path, one starting with `/` ([`PathError::Absolute`]);
//! - a NUL byte anywhere ([`PathError::Nul`]);
//! - a `..` with nothing left to cancel, which would leave the root
//!   ([`PathError::EscapesRoot`]);
//! - an empty name between two separators, as in `a//b`
//!   ([`PathError::EmptyName`]);
//! - a name longer than [`MAX_NAME_LEN`] bytes ([`PathError::NameTooLong`])
//!   or a path longer than [`MAX_PATH_LEN`] bytes
//!   ([`PathError::TooLong`]), the limits of Linux (`NAME_MAX`, `PATH_MAX`
//!   less the terminating NUL).
//!
//! # Invariants
//!
//! - On success the output holds no empty, `.` or `..` component, starts
//!   and ends with a name (never `/`), and contains no NUL; normalizing it
//!   again returns it unchanged.
//! - The output is never longer than the input.
//! - Every error offset is an index into the input.
//! - Nothing here consults the file system: `a/../b` becomes `b` even when
//!   `a` is a symbolic link. Confinement against links is the opener's job
//!   (the std workspace resolves every normalized path with the kernel's
//!   `RESOLVE_BENEATH`); this module only guarantees that the string itself
//!   stays beneath the root.
//!
//! ```
//! use mechops_core::path::{PathError, normalize};
//!
//! let mut buf = [0u8; 64];
//! let n = normalize(b"./logs/../data//", &mut buf);
//! assert_eq!(n, Err(PathError::EmptyName { at: 15 }));
//! let n = normalize(b"./logs/../data/today.txt", &mut buf).unwrap();
//! assert_eq!(&buf[..n], b"data/today.txt");
//! assert_eq!(normalize(b"../etc/passwd", &mut buf), Err(PathError::EscapesRoot { at: 0 }));
//! ```

use core::fmt;

/// The longest name (one component) accepted, in bytes: Linux's `NAME_MAX`.
pub const MAX_NAME_LEN: usize = 255;

/// The longest path accepted, in bytes: Linux's `PATH_MAX` less its NUL.
pub const MAX_PATH_LEN: usize = 4095;

/// Why a path was refused; offsets index the input.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PathError {
    /// The path is empty or names the root itself.
    Empty,
    /// The path starts with `/`.
    Absolute,
    /// A NUL byte at this offset.
    Nul {
        /// Offset of the NUL byte.
        at: usize,
    },
    /// The `..` at this offset would leave the root.
    EscapesRoot {
        /// Offset of the `..` component.
        at: usize,
    },
    /// An empty name (two separators in a row) at this offset.
    EmptyName {
        /// Offset of the second separator.
        at: usize,
    },
    /// The name at this offset is longer than [`MAX_NAME_LEN`].
    NameTooLong {
        /// Offset of the name's first byte.
        at: usize,
        /// Its length in bytes.
        len: usize,
    },
    /// The path is longer than [`MAX_PATH_LEN`].
    TooLong {
        /// The input's length in bytes.
        len: usize,
    },
    /// The output buffer is too small; `needed` bytes always suffice.
    BufferTooSmall {
        /// Bytes that suffice (the input's length).
        needed: usize,
    },
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Empty => f.write_str("empty path (it names the root itself)"),
            Self::Absolute => f.write_str("absolute path (paths are relative to the root)"),
            Self::Nul { at } => write!(f, "NUL byte at offset {at}"),
            Self::EscapesRoot { at } => write!(f, "`..` at offset {at} leaves the root"),
            Self::EmptyName { at } => write!(f, "empty name at offset {at}"),
            Self::NameTooLong { at, len } => write!(
                f,
                "name at offset {at} is {len} bytes, more than {MAX_NAME_LEN}"
            ),
            Self::TooLong { len } => {
                write!(f, "path is {len} bytes, more than {MAX_PATH_LEN}")
            }
            Self::BufferTooSmall { needed } => {
                write!(f, "output buffer too small: {needed} bytes needed")
            }
        }
    }
}

impl core::error::Error for PathError {}

/// Normalizes `path` into `out` and returns the output's length; the root
/// itself (an empty result) is refused with [`PathError::Empty`].
///
/// # Errors
/// See the module documentation; [`PathError::BufferTooSmall`] when `out`
/// is shorter than the normalized path (`path.len()` bytes always suffice).
pub fn normalize(path: &[u8], out: &mut [u8]) -> Result<usize, PathError> {
    match normalize_dir(path, out)? {
        0 => Err(PathError::Empty),
        n => Ok(n),
    }
}

/// [`normalize`] accepting the root: `""`, `.` and `a/..` give length 0.
///
/// # Errors
/// As [`normalize`], without [`PathError::Empty`].
pub fn normalize_dir(path: &[u8], out: &mut [u8]) -> Result<usize, PathError> {
    if path.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong { len: path.len() });
    }
    if path.first() == Some(&b'/') {
        return Err(PathError::Absolute);
    }
    if let Some(at) = path.iter().position(|&b| b == 0) {
        return Err(PathError::Nul { at });
    }
    let mut len = 0;
    let mut start = 0;
    while start <= path.len() {
        let end = path[start..]
            .iter()
            .position(|&b| b == b'/')
            .map_or(path.len(), |i| start + i);
        let name = &path[start..end];
        match name {
            b"" => {
                // Only a single trailing separator (or an empty input) may
                // leave an empty name; `a//b` and `a//` are refused.
                let trailing = end == path.len() && (start == 0 || path[start - 1] == b'/');
                let after_name = start == 0 || (start >= 2 && path[start - 2] != b'/');
                if !(trailing && after_name) {
                    return Err(PathError::EmptyName { at: start });
                }
            }
            b"." => {}
            b".." => {
                if len == 0 {
                    return Err(PathError::EscapesRoot { at: start });
                }
                len = out[..len].iter().rposition(|&b| b == b'/').unwrap_or(0);
            }
            _ => {
                if name.len() > MAX_NAME_LEN {
                    return Err(PathError::NameTooLong {
                        at: start,
                        len: name.len(),
                    });
                }
                let sep = usize::from(len > 0);
                let needed = len + sep + name.len();
                if needed > out.len() {
                    return Err(PathError::BufferTooSmall { needed: path.len() });
                }
                if sep == 1 {
                    out[len] = b'/';
                }
                out[len + sep..needed].copy_from_slice(name);
                len = needed;
            }
        }
        start = end + 1;
    }
    Ok(len)
}

/// Whether `path` is already in normal form: [`normalize`] would accept it
/// and return it unchanged. Needs no buffer.
#[must_use]
pub fn is_normal(path: &[u8]) -> bool {
    !path.is_empty()
        && path.len() <= MAX_PATH_LEN
        && path.split(|&b| b == b'/').all(|name| {
            !matches!(name, b"" | b"." | b"..") && name.len() <= MAX_NAME_LEN && !name.contains(&0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(path: &[u8]) -> Result<std::vec::Vec<u8>, PathError> {
        let mut buf = [0u8; MAX_PATH_LEN];
        normalize(path, &mut buf).map(|n| buf[..n].to_vec())
    }

    #[test]
    fn accepted_forms() {
        for (input, want) in [
            (&b"a"[..], &b"a"[..]),
            (b"a/b/c", b"a/b/c"),
            (b"./a", b"a"),
            (b"a/./b", b"a/b"),
            (b"a/", b"a"),
            (b"a/b/../c", b"a/c"),
            (b"a/b/../../c", b"c"),
            (b"..a/b..", b"..a/b.."),
            (b"a/.../b", b"a/.../b"),
        ] {
            assert_eq!(norm(input).as_deref(), Ok(want), "{input:?}");
            assert!(is_normal(want));
        }
    }

    #[test]
    fn refusals_name_the_reason() {
        assert_eq!(norm(b""), Err(PathError::Empty));
        assert_eq!(norm(b"."), Err(PathError::Empty));
        assert_eq!(norm(b"a/.."), Err(PathError::Empty));
        assert_eq!(norm(b"/etc"), Err(PathError::Absolute));
        assert_eq!(norm(b"a\0b"), Err(PathError::Nul { at: 1 }));
        assert_eq!(norm(b".."), Err(PathError::EscapesRoot { at: 0 }));
        assert_eq!(norm(b"a/../.."), Err(PathError::EscapesRoot { at: 5 }));
        assert_eq!(
            norm(b"a/b/../../../c"),
            Err(PathError::EscapesRoot { at: 10 })
        );
        assert_eq!(norm(b"a//b"), Err(PathError::EmptyName { at: 2 }));
        assert_eq!(norm(b"a//"), Err(PathError::EmptyName { at: 2 }));
        let long = [b'x'; MAX_NAME_LEN + 1];
        assert_eq!(
            norm(&long),
            Err(PathError::NameTooLong {
                at: 0,
                len: MAX_NAME_LEN + 1
            })
        );
        let huge = [b'x'; MAX_PATH_LEN + 1];
        assert_eq!(
            norm(&huge),
            Err(PathError::TooLong {
                len: MAX_PATH_LEN + 1
            })
        );
        let mut tiny = [0u8; 2];
        assert_eq!(
            normalize(b"abc", &mut tiny),
            Err(PathError::BufferTooSmall { needed: 3 })
        );
    }

    #[test]
    fn the_root_is_a_directory() {
        let mut buf = [0u8; 8];
        assert_eq!(normalize_dir(b"", &mut buf), Ok(0));
        assert_eq!(normalize_dir(b"./", &mut buf), Ok(0));
        assert_eq!(normalize_dir(b"a/..", &mut buf), Ok(0));
        assert!(!is_normal(b""));
        assert!(!is_normal(b"a/"));
        assert!(!is_normal(b"a/./b"));
    }
}
