//! Formats that need std (MessagePack, CBOR), streaming over `std::io`, key files.
//!
//! This module is the std face of `mechops_alloc::serialize`: the same
//! frames, the same [`Options`], plus
//!
//! - [`MessagePack`] and [`Cbor`] codecs plugged into the same frame path, so
//!   [`serialize`] and [`deserialize`] handle all four formats;
//! - nonces from OS entropy, so encrypting needs no caller-supplied generator;
//! - [`write_frame`] / [`read_frame`] over `std::io` through
//!   `embedded-io-adapters`: a reader checks each header, and the declared
//!   size against the limit, before it reads or allocates the body;
//! - key files ([`read_key_file`], [`write_key_file`]).
//!
//! DEFLATE: unless the options name an encoder, std frames are compressed by
//! [`std_deflate`], which uses zlib-rs at level 1 (measured faster and smaller
//! than miniz_oxide there) and miniz_oxide at every other level (where
//! zlib-rs is larger than zlib at the zlib-6 setting); see
//! `docs/benchmarks/codec.md`. Decoding always uses the core's bounded
//! inflate: any encoder's raw DEFLATE reads back the same.

mod deflate;
mod formats;
mod keyfile;
mod stream;

pub use deflate::std_deflate;
pub use formats::{Cbor, Json, MessagePack};
pub use keyfile::{
    KEY_FILE_PREFIX, KeyFileError, MAX_KEY_FILE_LEN, decode_key, decode_key_bytes, encode_key,
    generate_key_bytes, read_key_file, write_key_file,
};
pub use mechops_alloc::serialize::{
    Compression, CompressionPolicy, DEFAULT_LEVEL, DEFAULT_MAX_DECODED_SIZE, DEFAULT_THRESHOLD,
    Encryption, Error, Format, FrameCache, FrameCacheStats, FrameError, FrameHeader, FrameSpec,
    KEY_LEN, Key, MAX_LEVEL, Options, PayloadCodec, Postcard, Serialized, VERSION, Value,
    ValueError, ZLIB_DEFAULT_LEVEL, compress, compression_ratio, inspect, open, peek_format,
};
use mechops_alloc::serialize::{deserialize_with, serialize_with};
use rand_core::{TryCryptoRng, TryRng};
use serde::Serialize;
use serde::de::DeserializeOwned;
pub use stream::{FrameIoError, read_frame, write_frame};

/// OS entropy as a fallible nonce source: a failure becomes
/// [`Error::NonceSourceFailed`] instead of a panic.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsNonces;

impl TryRng for OsNonces {
    type Error = getrandom::Error;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        getrandom::u32()
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        getrandom::u64()
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        getrandom::fill(dst)
    }
}

// getrandom is the operating system's CSPRNG.
impl TryCryptoRng for OsNonces {}

/// Serializes `value` in any of the four formats, encrypting with a nonce
/// from OS entropy when `options.key` is set.
///
/// # Errors
/// The errors of `mechops_alloc::serialize::serialize_with`, and
/// [`Error::NonceSourceFailed`] if the OS cannot supply entropy.
pub fn serialize<T: Serialize + ?Sized>(value: &T, options: &Options) -> Result<Serialized, Error> {
    serialize_cached(value, options, None)
}

/// [`serialize`] reusing compressed payloads of repeated values from `cache`.
///
/// # Errors
/// As [`serialize`].
pub fn serialize_cached<T: Serialize + ?Sized>(
    value: &T,
    options: &Options,
    cache: Option<&mut FrameCache>,
) -> Result<Serialized, Error> {
    let rng = &mut OsNonces;
    let with_std_deflate;
    let options = if options.deflate.is_none() {
        with_std_deflate = options.clone().deflate(std_deflate);
        &with_std_deflate
    } else {
        options
    };
    match options.format {
        Format::Postcard => serialize_with::<Postcard, T, _>(value, options, rng, cache),
        Format::Json => serialize_with::<Json, T, _>(value, options, rng, cache),
        Format::MessagePack => serialize_with::<MessagePack, T, _>(value, options, rng, cache),
        Format::Cbor => serialize_with::<Cbor, T, _>(value, options, rng, cache),
        other => Err(Error::FormatUnavailable(other)),
    }
}

/// Serializes each value of `values` with the same options.
///
/// # Errors
/// The first error of [`serialize`]; no partial batch is returned.
pub fn serialize_batch<'a, T: Serialize + 'a + ?Sized>(
    values: impl IntoIterator<Item = &'a T>,
    options: &Options,
    mut cache: Option<&mut FrameCache>,
) -> Result<Vec<Serialized>, Error> {
    values
        .into_iter()
        .map(|value| serialize_cached(value, options, cache.as_deref_mut()))
        .collect()
}

/// Deserializes a frame in any of the four formats, dispatching on its header.
///
/// # Errors
/// The errors of `mechops_alloc::serialize::deserialize_with`.
pub fn deserialize<T: DeserializeOwned>(data: &[u8], options: &Options) -> Result<T, Error> {
    match peek_format(data)? {
        Format::Postcard => deserialize_with::<Postcard, T>(data, options),
        Format::Json => deserialize_with::<Json, T>(data, options),
        Format::MessagePack => deserialize_with::<MessagePack, T>(data, options),
        Format::Cbor => deserialize_with::<Cbor, T>(data, options),
        other => Err(Error::FormatUnavailable(other)),
    }
}

/// Deserializes each frame of `frames` with the same options.
///
/// # Errors
/// The first error of [`deserialize`].
pub fn deserialize_batch<'a, T: DeserializeOwned>(
    frames: impl IntoIterator<Item = &'a [u8]>,
    options: &Options,
) -> Result<Vec<T>, Error> {
    frames
        .into_iter()
        .map(|frame| deserialize(frame, options))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_four_formats_round_trip_with_os_nonces() {
        let value: Vec<(String, i64)> = (0..300).map(|i| (format!("k{i}"), -i)).collect();
        let key = Key::from_bytes(&[3; 32]);
        for format in Format::ALL {
            let options = Options::new(format).key(key.clone());
            let a = serialize(&value, &options).unwrap();
            let b = serialize(&value, &options).unwrap();
            assert_ne!(a.data, b.data, "{format}: fresh nonce per frame");
            assert_eq!(inspect(&a.data).unwrap().format(), format);
            let back: Vec<(String, i64)> = deserialize(&a.data, &options).unwrap();
            assert_eq!(back, value, "{format}");
        }
    }
}
