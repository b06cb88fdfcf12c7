//! Frame decoding never panics, never writes past its buffers, and never
//! returns a payload the frame does not vouch for.
//!
//! The input is either decoded as is (with and without a key), or used to
//! build a valid frame of the flag combination it selects, which is then
//! mutated at fuzzer-chosen positions: an unmutated frame must decode to its
//! payload, a mutated encrypted frame must be rejected.
#![no_main]

use mechops_core::codec::aead::{Key, NonceSource};
use mechops_core::codec::checksum::crc32;
use mechops_core::codec::frame::{self, Sealer, StoredPayload};
use mechops_core::codec::header::{Compression, Encryption, Format, FrameHeader};

const KEY: [u8; 32] = [0x42; 32];
const SCRATCH_LIMIT: usize = 1 << 16;

fn decode_raw(data: &[u8], key: &Key) {
    for k in [None, Some(key)] {
        let mut buf = data.to_vec();
        let size = FrameHeader::decode(&buf).map_or(0, |h| h.original_size() as usize);
        let mut scratch = vec![0u8; size.min(SCRATCH_LIMIT)];
        let scratch_len = scratch.len();
        if let Ok(d) = frame::decode(&mut buf, k, &mut scratch) {
            assert!(d.header.frame_len() <= data.len());
            assert!(d.payload.len() <= d.header.frame_len().max(scratch_len));
            assert_eq!(d.payload.len(), d.header.original_size() as usize);
            assert_eq!(crc32(d.payload), crc32(d.payload));
        }
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let key = Key::from_bytes(&KEY);
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 0x80 == 0 {
        decode_raw(rest, &key);
        return;
    }
    // Build: mode selects the combination; the first 4 bytes of rest are
    // mutation positions and masks, the remainder is the payload.
    let format = Format::ALL[usize::from(mode & 3)];
    let compression = Compression::ALL[usize::from((mode >> 2) & 1)];
    let encryption = Encryption::ALL[usize::from((mode >> 3) & 1)];
    let (muts, payload) = rest.split_at(rest.len().min(4));
    let stored = match compression {
        Compression::None => payload.to_vec(),
        _ => miniz_oxide::deflate::compress_to_vec(payload, mode >> 4 & 7),
    };
    let sealer = (encryption != Encryption::None)
        .then(|| Sealer::new(&key, NonceSource::Explicit([mode; 24])));
    let mut buf = vec![0u8; stored.len() + 72];
    let n = frame::encode_stored(
        StoredPayload {
            format,
            compression,
            bytes: &stored,
            original_size: payload.len(),
            checksum: crc32(payload),
        },
        &mut buf,
        sealer,
    )
    .expect("a frame of a valid payload encodes");
    buf.truncate(n);
    let k = (encryption != Encryption::None).then_some(&key);
    let mut scratch = vec![0u8; payload.len()];

    let mut clean = buf.clone();
    let d = frame::decode(&mut clean, k, &mut scratch).expect("an untouched frame decodes");
    assert_eq!(d.payload, payload);

    let mut bad = buf.clone();
    for pair in muts.chunks(2) {
        if let [pos, mask] = *pair {
            let at = usize::from(pos) * n / 256;
            bad[at] ^= mask;
        }
    }
    // Two mutations of the same byte may cancel out.
    let changed = bad != buf;
    let res = frame::decode(&mut bad, k, &mut scratch).map(|d| d.payload.to_vec());
    if changed && encryption != Encryption::None {
        assert!(res.is_err(), "a tampered sealed frame was accepted");
    }
    let changed_bytes = bad.iter().zip(&buf).filter(|(a, b)| a != b).count();
    if let Ok(p) = res {
        // A plain frame may survive a change in unused DEFLATE padding; the
        // payload must then still be the original. A CRC-32 catches every
        // burst of up to 32 bits, so one changed byte never slips through;
        // two scattered ones can (one chance in 2^32), which is why only
        // the AEAD is relied on against tampering.
        if changed_bytes <= 1 {
            assert_eq!(p, payload);
        }
    }
});
