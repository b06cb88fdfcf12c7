//! Seeds for the codec fuzz targets, checked here so that each seed is
//! known to reach the code it is meant to reach.
//!
//! `MECHOPS_WRITE_FUZZ_SEEDS=1 cargo test -p mechops-core --test codec_fuzz_seeds`
//! (re)writes them into `fuzz/seeds/<target>/`.

use std::path::PathBuf;

use mechops_core::codec::aead::{Key, NonceSource};
use mechops_core::codec::checksum::crc32;
use mechops_core::codec::frame::{self, Sealer, StoredPayload};
use mechops_core::codec::header::{Compression, Encryption, Format, FrameHeader, FrameSpec};
use mechops_core::codec::inflate::inflate;
use mechops_core::codec::postcard::{from_slice, to_slice};

const KEY: [u8; 32] = [0x42; 32];
const PAYLOAD: &[u8] = br#"{"job":"backup","retries":3,"tags":["nightly","db","db","db"]}"#;

fn frame_of(f: Format, c: Compression, e: Encryption, payload: &[u8]) -> Vec<u8> {
    let key = Key::from_bytes(&KEY);
    let stored = match c {
        Compression::None => payload.to_vec(),
        _ => miniz_oxide::deflate::compress_to_vec(payload, 6),
    };
    let sealer = (e != Encryption::None).then(|| Sealer::new(&key, NonceSource::Explicit([7; 24])));
    let mut out = vec![0u8; stored.len() + 72];
    let n = frame::encode_stored(
        StoredPayload {
            format: f,
            compression: c,
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

fn combos() -> impl Iterator<Item = (u8, Format, Compression, Encryption)> {
    (0u8..16).map(|m| {
        (
            m,
            Format::ALL[usize::from(m & 3)],
            Compression::ALL[usize::from((m >> 2) & 1)],
            Encryption::ALL[usize::from((m >> 3) & 1)],
        )
    })
}

fn frame_decode_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    for (m, f, c, e) in combos() {
        // Raw mode: a valid frame decoded as is.
        let mut raw = vec![0u8];
        raw.extend(frame_of(f, c, e, PAYLOAD));
        seeds.push((format!("raw-{m:02}"), raw));
        // Build mode: flags in the low bits, level in bits 4..7, no mutation.
        let mut build = vec![0x80 | 0x60 | m, 0, 0, 0, 0];
        build.extend_from_slice(PAYLOAD);
        seeds.push((format!("build-{m:02}"), build));
    }
    seeds
}

fn stream_decode_seeds() -> Vec<(String, Vec<u8>)> {
    let mut stream = vec![7u8, 128];
    for (_, f, c, _) in combos().filter(|(_, _, _, e)| *e == Encryption::None) {
        stream.extend(frame_of(f, c, Encryption::None, PAYLOAD));
        stream.extend_from_slice(b"noise MO MOP");
    }
    let mut empty = vec![1u8, 0];
    empty.extend(frame_of(
        Format::Postcard,
        Compression::None,
        Encryption::None,
        b"",
    ));
    vec![("mixed".into(), stream), ("empty-frame".into(), empty)]
}

fn inflate_limit_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    let text = PAYLOAD.repeat(20);
    for level in [0u8, 1, 6, 9] {
        let stream = miniz_oxide::deflate::compress_to_vec(&text, level);
        for limit in [text.len(), text.len() - 1] {
            let mut s = (limit as u16).to_le_bytes().to_vec();
            s.extend_from_slice(&stream);
            seeds.push((format!("level{level}-limit{limit}"), s));
        }
    }
    let mut stored = 5u16.to_le_bytes().to_vec();
    stored.extend_from_slice(&[0x01, 0x05, 0x00, 0xFA, 0xFF, b'h', b'e', b'l', b'l', b'o']);
    seeds.push(("stored".into(), stored));
    seeds
}

fn postcard_decode_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    for (m, f, c, e) in combos() {
        let stored = if c == Compression::None { 1000 } else { 321 };
        let h = FrameHeader::new(FrameSpec::new(f, c, e), 1000, stored, 0xC0FFEE).unwrap();
        let mut buf = [0u8; 64];
        let n = to_slice(&h, &mut buf).unwrap();
        let mut seed = vec![0u8];
        seed.extend_from_slice(&buf[..n]);
        seeds.push((format!("header-{m:02}"), seed));
        let n = to_slice(&(h, u64::from(m) << 40, m % 2 == 0), &mut buf).unwrap();
        let mut seed = vec![0x31u8];
        seed.extend_from_slice(&buf[..n]);
        seeds.push((format!("tuple-{m:02}"), seed));
    }
    seeds
}

#[test]
fn seeds_reach_their_code_and_can_be_written() {
    let key = Key::from_bytes(&KEY);
    let sets = [
        ("frame_decode", frame_decode_seeds()),
        ("stream_decode", stream_decode_seeds()),
        ("inflate_limit", inflate_limit_seeds()),
        ("postcard_decode", postcard_decode_seeds()),
    ];
    // Each raw frame seed decodes; each inflate seed with the full limit
    // inflates; each postcard seed decodes as its type.
    for (name, seed) in &sets[0].1 {
        if name.starts_with("raw") {
            let mut buf = seed[1..].to_vec();
            let h = FrameHeader::decode(&buf).unwrap();
            let k = (h.encryption() != Encryption::None).then_some(&key);
            let mut scratch = vec![0u8; h.original_size() as usize];
            assert_eq!(
                frame::decode(&mut buf, k, &mut scratch).unwrap().payload,
                PAYLOAD
            );
        }
    }
    for (name, seed) in &sets[2].1 {
        let limit = usize::from(u16::from_le_bytes([seed[0], seed[1]]));
        let res = inflate(&seed[2..], &mut vec![0u8; limit]);
        assert_eq!(
            res.is_ok(),
            !name.ends_with(&format!("{}", PAYLOAD.len() * 20 - 1)),
            "{name}"
        );
    }
    for (name, seed) in &sets[3].1 {
        if name.starts_with("header") {
            assert!(from_slice::<FrameHeader>(&seed[1..]).is_ok(), "{name}");
        } else {
            assert!(
                from_slice::<(FrameHeader, u64, bool)>(&seed[1..]).is_ok(),
                "{name}"
            );
        }
    }
    if std::env::var_os("MECHOPS_WRITE_FUZZ_SEEDS").is_some() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds");
        for (target, seeds) in &sets {
            let dir = root.join(target);
            std::fs::create_dir_all(&dir).unwrap();
            for (name, bytes) in seeds {
                std::fs::write(dir.join(name), bytes).unwrap();
            }
        }
    }
}
