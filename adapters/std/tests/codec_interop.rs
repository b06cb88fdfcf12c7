//! Payloads and DEFLATE streams decode with independent implementations.

use std::io::Read;

use mechops_std::codec::{
    Compression, CompressionPolicy, Format, FrameHeader, Key, Options, open, serialize,
};

fn document() -> serde_json::Value {
    serde_json::from_slice(include_bytes!("../../../benches/data/citm_catalog.json")).unwrap()
}

fn payload_of(format: Format) -> Vec<u8> {
    let options = Options::new(format).compression(CompressionPolicy::Always);
    let out = serialize(&document(), &options).unwrap();
    open(&out.data, &options).unwrap().1
}

#[test]
fn messagepack_payload_decodes_with_rmpv() {
    let payload = payload_of(Format::MessagePack);
    let mut slice = payload.as_slice();
    let value = rmpv::decode::read_value(&mut slice).unwrap();
    assert!(slice.is_empty(), "one value, no trailing bytes");
    // Convert rmpv's tree to JSON through serde and compare with the source.
    let json = serde_json::to_value(&value).unwrap();
    assert_eq!(json, document());
}

#[test]
fn cbor_payload_decodes_with_cbor4ii() {
    let payload = payload_of(Format::Cbor);
    let json: serde_json::Value = cbor4ii::serde::from_slice(&payload).unwrap();
    assert_eq!(json, document());
}

#[test]
fn deflate_body_decodes_with_flate2_at_every_level() {
    let text = serde_json::to_vec(&document()).unwrap();
    for level in 0..=10 {
        let options = Options::new(Format::Json)
            .compression(CompressionPolicy::Always)
            .level(level);
        let out = serialize(&document(), &options).unwrap();
        let header = FrameHeader::decode(&out.data).unwrap();
        if level == 0 {
            // Stored blocks never shrink the payload, so the frame keeps it as is.
            assert_eq!(header.compression(), Compression::None);
            continue;
        }
        assert_eq!(header.compression(), Compression::Deflate, "level {level}");
        let body = &out.data[FrameHeader::LEN..];
        let mut inflated = Vec::new();
        flate2::read::DeflateDecoder::new(body)
            .read_to_end(&mut inflated)
            .unwrap();
        assert_eq!(inflated, text, "level {level}");
        assert_eq!(crc32(&inflated), header.checksum().unwrap());
    }
}

#[test]
fn flate2_streams_open_as_frames() {
    // A frame whose body another DEFLATE encoder wrote reads back.
    let text = serde_json::to_vec(&document()).unwrap();
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut encoder, &text).unwrap();
    let body = encoder.finish().unwrap();
    let header = FrameHeader::new(
        mechops_std::codec::FrameSpec::new(
            Format::Json,
            Compression::Deflate,
            mechops_std::codec::Encryption::None,
        ),
        text.len(),
        body.len(),
        crc32(&text),
    )
    .unwrap();
    let mut frame = header.to_bytes().to_vec();
    frame.extend_from_slice(&body);
    let value: serde_json::Value =
        mechops_std::codec::deserialize(&frame, &Options::default()).unwrap();
    assert_eq!(value, document());
}

#[test]
fn encrypted_body_opens_with_chacha20poly1305_directly() {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    let key_bytes = [0x42; 32];
    let key = Key::from_bytes(&key_bytes);
    let options = Options::new(Format::Cbor)
        .key(key.clone())
        .compression(CompressionPolicy::Never);
    let out = serialize(&"independent", &options).unwrap();
    let (header, body) = out.data.split_at(FrameHeader::LEN);
    let (nonce, sealed) = body.split_at(24);
    let cipher = chacha20poly1305::XChaCha20Poly1305::new((&key_bytes).into());
    let plain = cipher
        .decrypt(
            nonce.try_into().unwrap(),
            Payload {
                msg: sealed,
                aad: header,
            },
        )
        .unwrap();
    let (payload, checksum) = plain.split_at(plain.len() - 4);
    assert_eq!(
        u32::from_le_bytes(checksum.try_into().unwrap()),
        crc32(payload)
    );
    let text: String = cbor4ii::serde::from_slice(payload).unwrap();
    assert_eq!(text, "independent");
}

fn crc32(bytes: &[u8]) -> u32 {
    flate2::Crc::new().tap(bytes)
}

trait Tap {
    fn tap(self, bytes: &[u8]) -> u32;
}

impl Tap for flate2::Crc {
    fn tap(mut self, bytes: &[u8]) -> u32 {
        self.update(bytes);
        self.sum()
    }
}
