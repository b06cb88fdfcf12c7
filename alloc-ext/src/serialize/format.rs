//! Payload formats: how a value becomes the bytes inside a frame.
//!
//! A [`PayloadCodec`] is one serde crate behind a two-method interface. This
//! crate ships [`Postcard`] and [`Json`] (both work with `alloc` alone); the
//! std adapter plugs MessagePack and CBOR into the same frame path by
//! implementing the trait. A codec's `decode` must never read past the slice
//! it is given and must reject trailing bytes, so a frame's payload means one
//! value and nothing else.

use alloc::string::ToString;
use alloc::vec::Vec;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Error, Format};

/// One payload format: encodes values into a `Vec` and decodes them from a slice.
pub trait PayloadCodec {
    /// The format this codec writes; it is recorded in the frame header.
    const FORMAT: Format;

    /// Appends the encoding of `value` to `out`.
    ///
    /// # Errors
    /// [`Error::Encode`] when the serde crate refuses the value (for example a
    /// map with non-string keys in JSON).
    fn encode<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), Error>;

    /// Decodes exactly one value spanning all of `bytes`.
    ///
    /// # Errors
    /// [`Error::Decode`] when the bytes are not one valid value of type `T`.
    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error>;
}

/// postcard: compact, not self-describing; the reader must know the type.
#[derive(Debug, Clone, Copy, Default)]
pub struct Postcard;

impl PayloadCodec for Postcard {
    const FORMAT: Format = Format::Postcard;

    fn encode<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), Error> {
        let taken = core::mem::take(out);
        match postcard::to_extend(value, taken) {
            Ok(filled) => {
                *out = filled;
                Ok(())
            }
            Err(err) => Err(encode_error(Self::FORMAT, err)),
        }
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
        let (value, rest) =
            postcard::take_from_bytes::<T>(bytes).map_err(|err| decode_error(Self::FORMAT, err))?;
        if rest.is_empty() {
            Ok(value)
        } else {
            Err(trailing(Self::FORMAT, bytes.len() - rest.len()))
        }
    }
}

/// JSON through serde_json (alloc only).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

impl PayloadCodec for Json {
    const FORMAT: Format = Format::Json;

    fn encode<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), Error> {
        // serde_json's streaming Serializer needs std::io; to_vec does not.
        let text = serde_json::to_vec(value).map_err(|err| encode_error(Self::FORMAT, err))?;
        if out.is_empty() {
            *out = text;
        } else {
            out.extend_from_slice(&text);
        }
        Ok(())
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
        // from_slice rejects trailing non-whitespace itself.
        serde_json::from_slice(bytes).map_err(|err| decode_error(Self::FORMAT, err))
    }
}

/// Builds [`Error::Encode`] from a serde crate's error.
pub fn encode_error(format: Format, err: impl core::fmt::Display) -> Error {
    Error::Encode {
        format,
        detail: err.to_string().into_boxed_str(),
    }
}

/// Builds [`Error::Decode`] from a serde crate's error.
pub fn decode_error(format: Format, err: impl core::fmt::Display) -> Error {
    Error::Decode {
        format,
        detail: err.to_string().into_boxed_str(),
    }
}

/// Builds the error for a payload that holds more than one value.
pub fn trailing(format: Format, consumed: usize) -> Error {
    Error::Decode {
        format,
        detail: alloc::format!("trailing bytes after the value ending at byte {consumed}")
            .into_boxed_str(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec;

    #[test]
    fn postcard_rejects_trailing_bytes() {
        let mut out = Vec::new();
        Postcard::encode(&7u32, &mut out).unwrap();
        out.push(0);
        let err = Postcard::decode::<u32>(&out).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Decode {
                    format: Format::Postcard,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn json_round_trip_and_appends() {
        let mut out = vec![b'x'];
        Json::encode(&("a", 1u8), &mut out).unwrap();
        assert_eq!(out, b"x[\"a\",1]");
        let back: (String, u8) = Json::decode(&out[1..]).unwrap();
        assert_eq!(back, (String::from("a"), 1));
    }

    #[test]
    fn json_rejects_trailing_value() {
        assert!(Json::decode::<u8>(b"1 2").is_err());
    }
}
