//! The worked examples in docs/FORMAT.md, byte for byte: if the format
//! changes, these fail until the document is updated with it.

use mechops_core::codec::aead::{Key, NonceSource};
use mechops_core::codec::frame::{self, Sealer};
use mechops_core::codec::header::Format;

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn plain_json_frame() {
    let mut buf = [0u8; 64];
    let n = frame::encode(Format::Json, br#"{"a":1}"#, &mut buf, None).unwrap();
    assert_eq!(
        hex(&buf[..n]),
        "4d 4f 50 46 01 01 00 00 07 00 00 00 07 00 00 00 \
         af ac 1b 56 00 00 00 00 b7 3a 5c bb \
         7b 22 61 22 3a 31 7d"
    );
}

#[test]
fn sealed_json_frame() {
    let key: [u8; 32] = core::array::from_fn(|i| i as u8);
    let nonce: [u8; 24] = core::array::from_fn(|i| 0xa0 + i as u8);
    let key = Key::from_bytes(&key);
    let mut buf = [0u8; 128];
    let sealer = Sealer::new(&key, NonceSource::Explicit(nonce));
    let n = frame::encode(Format::Json, br#"{"a":1}"#, &mut buf, Some(sealer)).unwrap();
    assert_eq!(
        hex(&buf[..n]),
        "4d 4f 50 46 01 01 00 01 07 00 00 00 33 00 00 00 \
         00 00 00 00 00 00 00 00 86 78 f1 06 \
         a0 a1 a2 a3 a4 a5 a6 a7 a8 a9 aa ab ac ad ae af b0 b1 b2 b3 b4 b5 b6 b7 \
         3e ce 6b 3f 8d 6c d9 \
         03 cd 74 7b \
         a0 a7 4b 65 67 9f f8 a6 62 79 c2 bf 00 7c 9a 6e"
    );
    let mut scratch = [0u8; 0];
    let d = frame::decode(&mut buf[..n], Some(&key), &mut scratch).unwrap();
    assert_eq!(d.payload, br#"{"a":1}"#);
}

#[test]
fn frame_written_by_zlib_decodes() {
    // Written by Python's zlib (raw DEFLATE, level 9) and struct, following
    // docs/FORMAT.md only.
    let hex_frame = "4d4f504601010100920000002d00000009a10c5700000000eb25cd48ab562a4ecd2bce2f\
                     52b2522a3154d2512a4bcc294d2d56b28a36d031d431d231d631d131d531d3a11b2fb61600";
    let mut bytes: Vec<u8> = (0..hex_frame.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex_frame[i..i + 2], 16).unwrap())
        .collect();
    let mut expected = String::from(r#"{"sensor":"t1","values":["#);
    let values: Vec<String> = (0..60).map(|i| (i % 7).to_string()).collect();
    expected.push_str(&values.join(","));
    expected.push_str("]}");
    let mut scratch = vec![0u8; 146];
    let d = frame::decode(&mut bytes, None, &mut scratch).unwrap();
    assert_eq!(d.payload, expected.as_bytes());
}
