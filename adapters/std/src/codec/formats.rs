//! MessagePack (rmp-serde) and CBOR (ciborium): the formats whose serde crates need std.
//!
//! Both decoders reject trailing bytes and cap nesting at
//! [`MAX_DEPTH`](mechops_alloc::serialize::MAX_DEPTH) levels, the bound
//! serde_json applies, so hostile payloads cannot exhaust the stack.

use mechops_alloc::serialize::{
    Error, Format, MAX_DEPTH, PayloadCodec, decode_error, encode_error, trailing,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

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
