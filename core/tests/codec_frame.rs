//! Frames end to end: every flag combination, tampering, truncation, wrong
//! keys and decompression bombs.

use mechops_core::codec::aead::{Key, NonceSource};
use mechops_core::codec::checksum::crc32;
use mechops_core::codec::frame::{self, Sealer, StoredPayload};
use mechops_core::codec::header::{Compression, Encryption, Format, FrameError, FrameHeader};
use mechops_core::codec::inflate::{InflateError, inflate};
use proptest::prelude::*;

const KEY: [u8; 32] = [0x5A; 32];

/// Builds a frame with the given choices around `payload`.
fn build(
    format: Format,
    compression: Compression,
    encryption: Encryption,
    payload: &[u8],
    nonce: [u8; 24],
) -> Vec<u8> {
    let key = Key::from_bytes(&KEY);
    let stored = match compression {
        Compression::None => payload.to_vec(),
        _ => miniz_oxide::deflate::compress_to_vec(payload, 6),
    };
    let sealer = match encryption {
        Encryption::None => None,
        _ => Some(Sealer::new(&key, NonceSource::Explicit(nonce))),
    };
    let mut out = vec![0u8; stored.len() + 72];
    let n = frame::encode_stored(
        StoredPayload {
            format,
            compression,
            bytes: &stored,
            original_size: payload.len(),
            checksum: crc32(payload),
        },
        &mut out,
        sealer,
    )
    .unwrap();
    out.truncate(n);
    out
}

/// Decodes a frame the way a careful reader does: limit from the header.
fn open(frame: &[u8], key: Option<&Key>) -> Result<Vec<u8>, FrameError> {
    let mut buf = frame.to_vec();
    let size = match FrameHeader::decode(&buf) {
        Ok(h) => h.original_size() as usize,
        Err(e) => return Err(e),
    };
    let mut scratch = vec![0u8; size.min(1 << 20)];
    let d = frame::decode(&mut buf, key, &mut scratch)?;
    if d.header.frame_len() != frame.len() {
        return Err(FrameError::Truncated {
            needed: d.header.frame_len(),
        });
    }
    Ok(d.payload.to_vec())
}

fn combos() -> Vec<(Format, Compression, Encryption)> {
    let mut v = Vec::new();
    for f in Format::ALL {
        for c in Compression::ALL {
            for e in Encryption::ALL {
                v.push((f, c, e));
            }
        }
    }
    v
}

fn sample_payload() -> Vec<u8> {
    br#"{"id":42,"name":"pump-7","readings":[1.5,2.5,3.5,3.5,3.5,3.5],"ok":true}"#.repeat(3)
}

#[test]
fn every_combination_round_trips() {
    let key = Key::from_bytes(&KEY);
    for (f, c, e) in combos() {
        for payload in [Vec::new(), vec![0u8], sample_payload()] {
            let frame = build(f, c, e, &payload, [1; 24]);
            let h = FrameHeader::decode(&frame).unwrap();
            assert_eq!((h.format(), h.compression(), h.encryption()), (f, c, e));
            assert_eq!(h.original_size() as usize, payload.len());
            let k = (e != Encryption::None).then_some(&key);
            assert_eq!(open(&frame, k).unwrap(), payload, "{f:?} {c:?} {e:?}");
        }
    }
}

#[test]
fn every_bit_flip_of_every_combination_is_rejected() {
    let key = Key::from_bytes(&KEY);
    let payload = sample_payload();
    for (f, c, e) in combos() {
        let frame = build(f, c, e, &payload, [2; 24]);
        let k = (e != Encryption::None).then_some(&key);
        for bit in 0..frame.len() * 8 {
            let mut bad = frame.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            match open(&bad, k) {
                Err(_) => {}
                // The unused bits after a DEFLATE stream's last code are
                // covered by nothing in a plain frame; flipping them cannot
                // change the payload, which is what the checksum protects.
                Ok(p) if e == Encryption::None && c == Compression::Deflate => {
                    assert_eq!(
                        bit / 8,
                        frame.len() - 1,
                        "{f:?}: flip of bit {bit} accepted"
                    );
                    assert_eq!(p, payload);
                }
                Ok(_) => panic!("{f:?} {c:?} {e:?}: flip of bit {bit} accepted"),
            }
        }
    }
}

#[test]
fn every_truncation_of_an_encrypted_frame_is_rejected() {
    let key = Key::from_bytes(&KEY);
    for c in Compression::ALL {
        let frame = build(
            Format::Postcard,
            c,
            Encryption::XChaCha20Poly1305,
            &sample_payload(),
            [3; 24],
        );
        for n in 0..frame.len() {
            let mut buf = frame[..n].to_vec();
            let mut scratch = vec![0u8; 4096];
            let res = frame::decode(&mut buf, Some(&key), &mut scratch);
            let expected = if n < FrameHeader::LEN {
                FrameError::Truncated {
                    needed: FrameHeader::LEN,
                }
            } else {
                FrameError::Truncated {
                    needed: frame.len(),
                }
            };
            assert_eq!(res, Err(expected), "{c:?} truncated to {n}");
        }
    }
}

#[test]
fn wrong_key_and_missing_key_are_rejected() {
    let wrong = Key::from_bytes(&[0xA5; 32]);
    for c in Compression::ALL {
        let frame = build(
            Format::Cbor,
            c,
            Encryption::XChaCha20Poly1305,
            &sample_payload(),
            [4; 24],
        );
        assert_eq!(
            open(&frame, Some(&wrong)),
            Err(FrameError::AuthenticationFailed)
        );
        assert_eq!(open(&frame, None), Err(FrameError::KeyRequired));
    }
}

#[test]
fn stripping_encryption_is_not_a_downgrade() {
    // Rewriting the encryption byte (and resealing the header check) turns
    // the body into garbage for a plain reader: the lengths or the checksum
    // no longer agree.
    let frame = build(
        Format::Json,
        Compression::None,
        Encryption::XChaCha20Poly1305,
        b"secret",
        [5; 24],
    );
    let mut bad = frame.clone();
    bad[7] = 0;
    let check = crc32(&bad[..24]);
    bad[24..28].copy_from_slice(&check.to_le_bytes());
    assert!(open(&bad, None).is_err());
}

/// A raw DEFLATE stream of `zero_bytes + 3` bytes that inflates to about
/// `1032 * zero_bytes` zeros: one dynamic block whose literal/length code
/// gives symbol 285 (length 258) a 1-bit code and whose distance code is a
/// single 1-bit code for distance 1, so every zero bit pair repeats 258
/// bytes. DEFLATE cannot do better than this ratio (about 1032:1).
fn bomb(zero_bytes: usize) -> Vec<u8> {
    struct Bits {
        out: Vec<u8>,
        acc: u64,
        n: u32,
    }
    impl Bits {
        fn put(&mut self, value: u64, count: u32) {
            self.acc |= value << self.n;
            self.n += count;
            while self.n >= 8 {
                self.out.push(self.acc as u8);
                self.acc >>= 8;
                self.n -= 8;
            }
        }
        /// Huffman codes go most significant bit first.
        fn code(&mut self, code: u64, len: u32) {
            let mut rev = 0;
            for i in 0..len {
                rev |= ((code >> i) & 1) << (len - 1 - i);
            }
            self.put(rev, len);
        }
        fn finish(mut self) -> Vec<u8> {
            if self.n > 0 {
                self.out.push(self.acc as u8);
            }
            self.out
        }
    }
    let mut b = Bits {
        out: Vec::new(),
        acc: 0,
        n: 0,
    };
    b.put(1, 1); // BFINAL
    b.put(2, 2); // dynamic
    b.put(29, 5); // HLIT: 286 codes
    b.put(0, 5); // HDIST: 1 code
    b.put(14, 4); // HCLEN: 18 code length codes
    // Code length code lengths, in RFC 1951 order; symbols 0, 1, 2 and 18
    // get 2 bits each, so their codes are 00, 01, 10, 11.
    let order = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1];
    for sym in order {
        b.put(if matches!(sym, 0 | 1 | 2 | 18) { 2 } else { 0 }, 3);
    }
    // Literal/length lengths: 0 -> 2, 1..=255 -> 0, 256 -> 2, 257..=284 -> 0, 285 -> 1.
    b.code(0b10, 2); // symbol 0: length 2
    b.code(0b11, 2); // 138 zeros
    b.put(127, 7);
    b.code(0b11, 2); // 117 zeros
    b.put(106, 7);
    b.code(0b10, 2); // symbol 256: length 2
    b.code(0b11, 2); // 28 zeros
    b.put(17, 7);
    b.code(0b01, 2); // symbol 285: length 1
    b.code(0b01, 2); // distance 0: length 1
    // Canonical codes: 285 -> 0, literal 0 -> 10, end of block -> 11;
    // distance 0 -> 0.
    b.code(0b10, 2); // one literal zero
    let mut out = b.finish();
    // Each zero bit pair now reads as "length 258, distance 1". The partial
    // byte above already ends in zero bits, which only add more matches.
    out.resize(out.len() + zero_bytes, 0);
    // End of block: code 11, padded.
    out.push(0b11);
    out
}

#[test]
fn bomb_helper_is_a_valid_stream() {
    // The small bomb inflates completely, with an independent decoder
    // agreeing on every byte.
    let small = bomb(10);
    let reference = miniz_oxide::inflate::decompress_to_vec(&small).unwrap();
    assert!(reference.len() > 10_000 && reference.iter().all(|&b| b == 0));
    let mut out = vec![0xFFu8; reference.len()];
    assert_eq!(inflate(&small, &mut out), Ok(reference.len()));
    assert!(out.iter().all(|&b| b == 0));
}

#[test]
fn decompression_bomb_is_refused_at_the_limit() {
    // About 2 MiB that would inflate to about 2.2 GB.
    let stream = bomb(2 << 20);
    let limit = 1 << 20;
    let mut out = vec![0u8; limit + 64];
    let guard = [0xEEu8; 64];
    out[limit..].copy_from_slice(&guard);
    assert_eq!(
        inflate(&stream, &mut out[..limit]),
        Err(InflateError::OutputTooLarge { limit })
    );
    assert_eq!(out[limit..], guard, "nothing written past the limit");

    // Inside a frame: the header's original size is the limit.
    let mut frame = vec![0u8; stream.len() + 28];
    let n = frame::encode_stored(
        StoredPayload {
            format: Format::Postcard,
            compression: Compression::Deflate,
            bytes: &stream,
            original_size: limit,
            checksum: 0,
        },
        &mut frame,
        None,
    )
    .unwrap();
    let mut scratch = vec![0u8; limit];
    assert_eq!(
        frame::decode(&mut frame[..n], None, &mut scratch),
        Err(FrameError::OriginalSizeMismatch {
            declared: limit as u32
        })
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn round_trips_any_payload_and_combination(
        payload in prop::collection::vec(any::<u8>(), 0..2048),
        combo in 0usize..16,
        nonce in any::<[u8; 24]>(),
    ) {
        let (f, c, e) = combos()[combo];
        let frame = build(f, c, e, &payload, nonce);
        let key = Key::from_bytes(&KEY);
        let k = (e != Encryption::None).then_some(&key);
        prop_assert_eq!(open(&frame, k).unwrap(), payload);
    }

    #[test]
    fn inflate_matches_an_independent_encoder_and_enforces_the_limit(
        payload in prop::collection::vec(0u8..4, 0..4096),
        level in 0u8..=10,
    ) {
        let stream = miniz_oxide::deflate::compress_to_vec(&payload, level);
        let mut out = vec![0u8; payload.len()];
        prop_assert_eq!(inflate(&stream, &mut out), Ok(payload.len()));
        prop_assert_eq!(&out, &payload);
        if !payload.is_empty() {
            let limit = payload.len() - 1;
            prop_assert_eq!(
                inflate(&stream, &mut out[..limit]),
                Err(InflateError::OutputTooLarge { limit })
            );
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let key = Key::from_bytes(&KEY);
        let mut buf = bytes.clone();
        let _ = frame::decode(&mut buf, Some(&key), &mut [0u8; 512]);
        let mut buf = bytes.clone();
        let _ = frame::decode(&mut buf, None, &mut [0u8; 512]);
        let _ = inflate(&bytes, &mut [0u8; 512]);
    }
}
