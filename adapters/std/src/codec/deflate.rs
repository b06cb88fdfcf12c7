//! The std DEFLATE encoder choice.
//!
//! Level 1 (the default) goes to zlib-rs, zlib-ng's algorithm in Rust: on the
//! benchmark documents it is about 1.6 times as fast as miniz_oxide at level 1
//! and its output is 3 to 10 % smaller. At higher levels zlib-rs trades size
//! for speed (its level 6 is 6 % larger than zlib's on twitter.json), so
//! levels 0 and 2 to 10 stay with miniz_oxide, whose level 6 is within the
//! 2 % size target. Both write standard raw DEFLATE; readers cannot tell them
//! apart.

use mechops_alloc::serialize::miniz_deflate;

/// Raw DEFLATE of `input` at `level` (0..=10) with the encoder std prefers
/// for that level.
#[must_use]
pub fn std_deflate(input: &[u8], level: u8) -> Vec<u8> {
    if level == 1 {
        if let Some(out) = zlib_rs_deflate(input, 1) {
            return out;
        }
    }
    miniz_deflate(input, level)
}

/// zlib-rs raw DEFLATE; `None` if it reports any error, so the caller can
/// fall back rather than fail.
fn zlib_rs_deflate(input: &[u8], level: i32) -> Option<Vec<u8>> {
    let config = zlib_rs::DeflateConfig {
        level,
        // Negative window bits: raw DEFLATE, no zlib header or trailer.
        window_bits: -15,
        ..zlib_rs::DeflateConfig::default()
    };
    let mut out = vec![0u8; zlib_rs::compress_bound(input.len())];
    let (written, rc) = zlib_rs::compress_slice(&mut out, input, config);
    if rc != zlib_rs::ReturnCode::Ok {
        return None;
    }
    let len = written.len();
    out.truncate(len);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_inflates_back_with_the_core() {
        let text: Vec<u8> = (0..20_000u32)
            .flat_map(|i| format!("{{\"n\":{},\"s\":\"row {}\"}},", i % 97, i % 13).into_bytes())
            .collect();
        for level in 0..=10 {
            let packed = std_deflate(&text, level);
            let mut out = vec![0u8; text.len()];
            let n = mechops_core::codec::inflate::inflate(&packed, &mut out).unwrap();
            assert_eq!(n, text.len(), "level {level}");
            assert_eq!(out, text, "level {level}");
        }
        assert!(std_deflate(&text, 1).len() < text.len() / 4);
        assert!(std_deflate(b"", 1).len() <= 8);
    }
}
