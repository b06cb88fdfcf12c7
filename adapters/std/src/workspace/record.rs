//! The out-of-band record kept with every file written through the
//! workspace, and the stored form of its content (`docs/FORMAT.md`,
//! "Workspace record").
//!
//! The record is the extended attribute [`XATTR_NAME`] on the file itself:
//! it is set on the temporary file before the rename, so the content and its
//! record appear together in one `rename(2)` and no crash can separate
//! them.

use mechops_alloc::serialize::CompressionPolicy;
use serde::Serialize;

use crate::codec::{self, Format, Options};

/// The extended attribute holding a file's record.
pub const XATTR_NAME: &str = "user.mechops.v1";

const MAGIC: [u8; 4] = *b"MWS1";
/// The encoded length of a record.
pub(crate) const RECORD_LEN: usize = 56;
const FLAG_COMPRESSED: u8 = 1;

/// What the workspace knows of a file it wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    /// The stored bytes are a DEFLATE frame of the original content.
    pub(crate) compressed: bool,
    /// Length of the original content.
    pub(crate) original_size: u64,
    /// Length of the stored bytes.
    pub(crate) stored_size: u64,
    /// BLAKE3 of the original content.
    pub(crate) hash: [u8; 32],
}

impl Record {
    pub(crate) fn encode(&self) -> [u8; RECORD_LEN] {
        let mut out = [0u8; RECORD_LEN];
        out[..4].copy_from_slice(&MAGIC);
        out[4] = if self.compressed { FLAG_COMPRESSED } else { 0 };
        out[8..16].copy_from_slice(&self.original_size.to_le_bytes());
        out[16..24].copy_from_slice(&self.stored_size.to_le_bytes());
        out[24..].copy_from_slice(&self.hash);
        out
    }

    /// Decodes a record; `Err` says what is malformed.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, &'static str> {
        if bytes.len() != RECORD_LEN {
            return Err("record has the wrong length");
        }
        if bytes[..4] != MAGIC {
            return Err("record has an unknown magic");
        }
        if bytes[4] & !FLAG_COMPRESSED != 0 || bytes[5..8] != [0; 3] {
            return Err("record has unknown flags");
        }
        let u64_at = |at: usize| {
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(word)
        };
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&bytes[24..]);
        Ok(Self {
            compressed: bytes[4] & FLAG_COMPRESSED != 0,
            original_size: u64_at(8),
            stored_size: u64_at(16),
            hash,
        })
    }
}

/// A byte string serialized as postcard bytes (length varint, then bytes).
struct Bytes<'a>(&'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

/// The stored form of `content` under `policy`, and its record: a postcard
/// frame holding the content as a byte string, DEFLATE-compressed, when the
/// frame is smaller than the content; the content itself otherwise.
pub(crate) fn encode(content: &[u8], policy: CompressionPolicy) -> (Option<Vec<u8>>, Record) {
    let hash = *blake3::hash(content).as_bytes();
    let framed = match policy {
        CompressionPolicy::Never => None,
        _ => codec::serialize(
            &Bytes(content),
            &Options::new(Format::Postcard).compression(policy),
        )
        .ok()
        .filter(|frame| {
            frame.data.len() < content.len()
                && codec::inspect(&frame.data)
                    .is_ok_and(|h| h.compression() == codec::Compression::Deflate)
        })
        .map(|frame| frame.data),
    };
    let record = Record {
        compressed: framed.is_some(),
        original_size: content.len() as u64,
        stored_size: framed.as_ref().map_or(content.len(), Vec::len) as u64,
        hash,
    };
    (framed, record)
}

/// The original content of a file stored as `stored` with `record`, checked
/// against the recorded sizes and hash.
pub(crate) fn decode(stored: Vec<u8>, record: &Record) -> Result<Vec<u8>, String> {
    if stored.len() as u64 != record.stored_size {
        return Err(format!(
            "stored size is {} bytes, {} were written",
            stored.len(),
            record.stored_size
        ));
    }
    let content = if record.compressed {
        let limit = usize::try_from(record.original_size)
            .map_err(|_| "recorded size does not fit in memory".to_owned())?
            .saturating_add(16);
        let options = Options::new(Format::Postcard).max_decoded_size(limit);
        let (_, payload) =
            codec::open(&stored, &options).map_err(|e| format!("compressed frame: {e}"))?;
        let mut payload = payload;
        let start = postcard_bytes_start(&payload)
            .ok_or_else(|| "compressed frame payload is not a byte string".to_owned())?;
        payload.drain(..start);
        payload
    } else {
        stored
    };
    check(&content, record)?;
    Ok(content)
}

/// Where the bytes of a postcard byte string filling all of `payload`
/// start: after a LEB128 length equal to the rest's length.
fn postcard_bytes_start(payload: &[u8]) -> Option<usize> {
    let mut len: u64 = 0;
    for (i, &byte) in payload.iter().enumerate().take(10) {
        len |= u64::from(byte & 0x7f).checked_shl(7 * i as u32)?;
        if byte & 0x80 == 0 {
            let start = i + 1;
            return ((payload.len() - start) as u64 == len).then_some(start);
        }
    }
    None
}

/// Checks original content against its record.
pub(crate) fn check(content: &[u8], record: &Record) -> Result<(), String> {
    if content.len() as u64 != record.original_size {
        return Err(format!(
            "content is {} bytes, {} were written",
            content.len(),
            record.original_size
        ));
    }
    if blake3::hash(content).as_bytes() != &record.hash {
        return Err("content does not match its BLAKE3 hash".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_malformed_ones_are_named() {
        let record = Record {
            compressed: true,
            original_size: 70_000,
            stored_size: 1_234,
            hash: [7; 32],
        };
        assert_eq!(Record::decode(&record.encode()), Ok(record));
        let mut bad = record.encode();
        bad[0] = b'X';
        assert_eq!(Record::decode(&bad), Err("record has an unknown magic"));
        bad = record.encode();
        bad[4] = 2;
        assert_eq!(Record::decode(&bad), Err("record has unknown flags"));
        assert_eq!(
            Record::decode(&bad[..5]),
            Err("record has the wrong length")
        );
    }

    #[test]
    fn compressed_only_when_smaller() {
        let text = b"all work and no play ".repeat(100);
        let (framed, record) = encode(&text, CompressionPolicy::Auto { threshold: 1024 });
        let framed = framed.expect("repetitive text compresses");
        assert!(record.compressed && framed.len() < text.len());
        assert_eq!(decode(framed, &record).unwrap(), text);

        let small = b"short".to_vec();
        let (framed, record) = encode(&small, CompressionPolicy::Always);
        assert!(framed.is_none() && !record.compressed);
        assert_eq!(decode(small.clone(), &record).unwrap(), small);

        let (framed, _) = encode(&text, CompressionPolicy::Never);
        assert!(framed.is_none());
    }

    #[test]
    fn damage_is_detected() {
        let text = b"abc".repeat(1000);
        let (framed, record) = encode(&text, CompressionPolicy::Always);
        let mut framed = framed.unwrap();
        let last = framed.len() - 1;
        framed[last] ^= 1;
        assert!(decode(framed, &record).is_err());
        let (_, record) = encode(b"hello", CompressionPolicy::Never);
        assert!(
            decode(b"hellp".to_vec(), &record)
                .unwrap_err()
                .contains("BLAKE3")
        );
    }
}
