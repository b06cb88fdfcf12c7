//! MessagePack (rmp-serde) and CBOR (ciborium), the formats whose serde crates
//! need std, and a std flavour of JSON.
//!
//! Both decoders reject trailing bytes and cap nesting at
//! [`MAX_DEPTH`](mechops_alloc::serialize::MAX_DEPTH) levels, the bound
//! serde_json applies, so hostile payloads cannot exhaust the stack.

use mechops_alloc::serialize::{
    Error, Format, MAX_DEPTH, PayloadCodec, decode_error, encode_error, trailing,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// JSON through serde_json's streaming writer.
///
/// Same bytes as `mechops_alloc::serialize::Json`, but written straight
/// after the frame header: serde_json's alloc-only API can only return a new
/// `Vec`, which for large documents costs a second buffer and a copy.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

impl PayloadCodec for Json {
    const FORMAT: Format = Format::Json;

    fn encode<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), Error> {
        serde_json::to_writer(out, value).map_err(|err| encode_error(Self::FORMAT, err))
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
        mechops_alloc::serialize::Json::decode(bytes)
    }
}

/// MessagePack through rmp-serde; structs are written as maps with their
/// field names, so other MessagePack readers see self-describing data.
#[derive(Debug, Clone, Copy, Default)]
pub struct MessagePack;

impl PayloadCodec for MessagePack {
    const FORMAT: Format = Format::MessagePack;

    fn encode<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), Error> {
        let mut serializer = rmp_serde::Serializer::new(out).with_struct_map();
        value
            .serialize(&mut serializer)
            .map_err(|err| encode_error(Self::FORMAT, err))
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
        let mut de = rmp_serde::Deserializer::new(std::io::Cursor::new(bytes));
        de.set_max_depth(MAX_DEPTH);
        let value = T::deserialize(&mut de).map_err(|err| decode_error(Self::FORMAT, err))?;
        // position() <= bytes.len(), so the cast is exact.
        let consumed = de.position() as usize;
        if consumed == bytes.len() {
            Ok(value)
        } else {
            Err(trailing(Self::FORMAT, consumed))
        }
    }
}

/// CBOR (RFC 8949) through ciborium.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cbor;

impl PayloadCodec for Cbor {
    const FORMAT: Format = Format::Cbor;

    fn encode<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), Error> {
        ciborium::into_writer(value, out).map_err(|err| encode_error(Self::FORMAT, err))
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
        let mut rest = bytes;
        let value: T = ciborium::de::from_reader_with_recursion_limit(&mut rest, MAX_DEPTH)
            .map_err(|err| decode_error(Self::FORMAT, err))?;
        if rest.is_empty() {
            Ok(value)
        } else {
            Err(trailing(Self::FORMAT, bytes.len() - rest.len()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Point {
        x: i32,
        label: String,
    }

    #[test]
    fn std_json_writes_the_same_bytes_after_a_prefix() {
        let point = Point {
            x: 7,
            label: "q".into(),
        };
        let mut ours = vec![0xaa];
        Json::encode(&point, &mut ours).unwrap();
        let mut alloc = Vec::new();
        mechops_alloc::serialize::Json::encode(&point, &mut alloc).unwrap();
        assert_eq!(&ours[1..], alloc.as_slice());
        assert_eq!(Json::decode::<Point>(&ours[1..]).unwrap(), point);
    }

    #[test]
    fn round_trips_and_rejects_trailing() {
        let point = Point {
            x: -3,
            label: "p".into(),
        };
        let mut mp = Vec::new();
        MessagePack::encode(&point, &mut mp).unwrap();
        assert_eq!(MessagePack::decode::<Point>(&mp).unwrap(), point);
        // Struct-as-map: the field name is in the bytes.
        assert!(mp.windows(5).any(|w| w == b"label"));
        mp.push(0xc0);
        assert!(matches!(
            MessagePack::decode::<Point>(&mp),
            Err(Error::Decode {
                format: Format::MessagePack,
                ..
            })
        ));

        let mut cbor = Vec::new();
        Cbor::encode(&point, &mut cbor).unwrap();
        assert_eq!(Cbor::decode::<Point>(&cbor).unwrap(), point);
        cbor.push(0xf6);
        assert!(matches!(
            Cbor::decode::<Point>(&cbor),
            Err(Error::Decode {
                format: Format::Cbor,
                ..
            })
        ));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        // 100k nested one-element arrays.
        let mp: Vec<u8> = core::iter::repeat_n(0x91, 100_000).chain([0xc0]).collect();
        assert!(MessagePack::decode::<serde_json::Value>(&mp).is_err());
        let cbor: Vec<u8> = core::iter::repeat_n(0x81, 100_000).chain([0xf6]).collect();
        assert!(Cbor::decode::<serde_json::Value>(&cbor).is_err());
    }
}
