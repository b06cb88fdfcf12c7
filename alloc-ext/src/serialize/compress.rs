//! When and how payloads are compressed.
//!
//! CompressionPolicy is raw DEFLATE (RFC 1951) through miniz_oxide. The policy never
//! grows a frame: under [`CompressionPolicy::Auto`] and [`CompressionPolicy::Always`] the
//! compressed bytes are kept only when they are strictly shorter than the
//! payload, so a frame's stored size never exceeds its original size.

use alloc::vec::Vec;

use super::Error;

/// The highest level miniz_oxide accepts (its "uber" level, slower than 9).
pub const MAX_LEVEL: u8 = 10;

/// The default level: 1, the fastest level that still uses a real match
/// finder. On the benchmark documents it compresses several times faster than
/// level 6 for a few percent larger output (see `docs/benchmarks/codec.md`).
pub const DEFAULT_LEVEL: u8 = 1;

/// The level whose output size matches zlib's default (level 6).
pub const ZLIB_DEFAULT_LEVEL: u8 = 6;

/// The default threshold of [`CompressionPolicy::Auto`]: payloads shorter than this
/// are stored as they are.
pub const DEFAULT_THRESHOLD: usize = 1024;

/// When to compress a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CompressionPolicy {
    /// Store every payload as it is.
    Never,
    /// Compress every payload, keeping the result only if it is shorter.
    Always,
    /// Compress payloads of at least `threshold` bytes, keeping the result
    /// only if it is shorter.
    Auto {
        /// The smallest payload worth trying.
        threshold: usize,
    },
}

impl Default for CompressionPolicy {
    fn default() -> Self {
        Self::Auto {
            threshold: DEFAULT_THRESHOLD,
        }
    }
}

impl CompressionPolicy {
    /// Whether a payload of `len` bytes is worth trying to compress.
    #[must_use]
    pub fn should_try(self, len: usize) -> bool {
        match self {
            Self::Never => false,
            Self::Always => true,
            Self::Auto { threshold } => len >= threshold,
        }
    }
}

/// Checks a compression level.
///
/// # Errors
/// [`Error::InvalidLevel`] above [`MAX_LEVEL`].
pub fn check_level(level: u8) -> Result<(), Error> {
    if level > MAX_LEVEL {
        Err(Error::InvalidLevel(level))
    } else {
        Ok(())
    }
}

/// A raw DEFLATE encoder: the whole input at a level in 0..=10, as one
/// complete RFC 1951 stream. Any correct encoder will do; readers only
/// inflate, so frames from different encoders are interchangeable.
pub type DeflateFn = fn(input: &[u8], level: u8) -> Vec<u8>;

/// The portable encoder: miniz_oxide, the same backend and therefore the
/// same bytes as flate2's default.
#[must_use]
pub fn miniz_deflate(input: &[u8], level: u8) -> Vec<u8> {
    miniz_oxide::deflate::compress_to_vec(input, level)
}

/// Compresses `payload` as raw DEFLATE at `level` with miniz_oxide if the
/// policy says so and the result is strictly shorter; `None` means "store as
/// is".
///
/// # Errors
/// [`Error::InvalidLevel`] for a level above [`MAX_LEVEL`].
pub fn compress(
    payload: &[u8],
    policy: CompressionPolicy,
    level: u8,
) -> Result<Option<Vec<u8>>, Error> {
    compress_with(payload, policy, level, miniz_deflate)
}

/// [`compress`] with another encoder.
///
/// # Errors
/// [`Error::InvalidLevel`] for a level above [`MAX_LEVEL`].
pub fn compress_with(
    payload: &[u8],
    policy: CompressionPolicy,
    level: u8,
    deflate: DeflateFn,
) -> Result<Option<Vec<u8>>, Error> {
    check_level(level)?;
    if !policy.should_try(payload.len()) {
        return Ok(None);
    }
    let packed = deflate(payload, level);
    Ok((packed.len() < payload.len()).then_some(packed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_thresholds() {
        assert!(!CompressionPolicy::Never.should_try(usize::MAX));
        assert!(CompressionPolicy::Always.should_try(0));
        assert!(!CompressionPolicy::default().should_try(1023));
        assert!(CompressionPolicy::default().should_try(1024));
    }

    #[test]
    fn keeps_only_shrinking_output() {
        let repetitive = [b'a'; 4096];
        let packed = compress(&repetitive, CompressionPolicy::Always, 6)
            .unwrap()
            .unwrap();
        assert!(packed.len() < 100);
        // Eight bytes cannot shrink under DEFLATE's block overhead.
        assert_eq!(
            compress(b"abcdefgh", CompressionPolicy::Always, 6).unwrap(),
            None
        );
        assert_eq!(
            compress(&repetitive, CompressionPolicy::Never, 6).unwrap(),
            None
        );
        assert_eq!(
            compress(&[0; 10], CompressionPolicy::Always, 11),
            Err(Error::InvalidLevel(11))
        );
    }
}
