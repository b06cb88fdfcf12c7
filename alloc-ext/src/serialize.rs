//! `serialize` / `deserialize`: framed values in `Vec<u8>` with compression and encryption.
//!
//! A value goes through three steps, each recorded in the frame header
//! (`docs/FORMAT.md`): a payload format ([`PayloadCodec`]), optional raw
//! DEFLATE ([`CompressionPolicy`]), optional XChaCha20-Poly1305 ([`Key`]).
//! [`deserialize`] undoes them in reverse and is safe on untrusted bytes:
//!
//! - the header's declared original size is checked against
//!   [`Options::max_decoded_size`] *before* anything is allocated for the
//!   payload, and inflation runs into a buffer of exactly that size with the
//!   core's hard output limit, so a decompression bomb costs at most the limit;
//! - an encrypted frame is authenticated (header included) before it is
//!   decompressed or parsed;
//! - the plaintext checksum is verified before the payload reaches serde;
//! - every failure is an [`Error`]; nothing panics on input.
//!
//! This crate has no entropy source: encrypting needs a caller-supplied
//! [`rand_core::TryCryptoRng`] ([`serialize_with_rng`]). `mechops-std` wraps these
//! functions with OS entropy and adds the MessagePack and CBOR codecs.

mod cache;
mod compress;
mod error;
mod format;
mod frame;
mod value;

use alloc::vec::Vec;

use rand_core::TryCryptoRng;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use cache::{FrameCache, FrameCacheStats};
pub use compress::{
    CompressionPolicy, DEFAULT_LEVEL, DEFAULT_THRESHOLD, DeflateFn, MAX_LEVEL, ZLIB_DEFAULT_LEVEL,
    check_level, compress, compress_with, miniz_deflate,
};
pub use error::Error;
pub use format::{Json, PayloadCodec, Postcard, decode_error, encode_error, trailing};
pub use frame::{
    Compression, Encryption, Format, FrameError, FrameHeader, FrameSpec, Header, KEY_LEN, Key,
    VERSION, inspect, peek_format,
};
pub use value::{MAX_DEPTH, Value, ValueError};

/// The default [`Options::max_decoded_size`]: 64 MiB.
pub const DEFAULT_MAX_DECODED_SIZE: usize = 64 << 20;

/// How to serialize, and the bounds and key used to deserialize.
#[derive(Clone, Debug)]
pub struct Options {
    /// The payload format written by [`serialize`]; [`deserialize`] reads the
    /// format from the header instead.
    pub format: Format,
    /// When to compress.
    pub compression: CompressionPolicy,
    /// DEFLATE level, 0 (store) to 10 (slowest, smallest).
    pub level: u8,
    /// Encrypts when writing; required to read encrypted frames.
    pub key: Option<Key>,
    /// The largest payload [`deserialize`] will allocate for.
    pub max_decoded_size: usize,
    /// The DEFLATE encoder; `None` picks the default of the crate that
    /// serializes (miniz_oxide here, see `mechops-std` for std's).
    pub deflate: Option<DeflateFn>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            format: Format::Postcard,
            compression: CompressionPolicy::default(),
            level: DEFAULT_LEVEL,
            key: None,
            max_decoded_size: DEFAULT_MAX_DECODED_SIZE,
            deflate: None,
        }
    }
}

impl Options {
    /// Default options writing `format`.
    #[must_use]
    pub fn new(format: Format) -> Self {
        Self {
            format,
            ..Self::default()
        }
    }

    /// Sets the compression policy.
    #[must_use]
    pub fn compression(mut self, compression: CompressionPolicy) -> Self {
        self.compression = compression;
        self
    }

    /// Sets the DEFLATE level (checked when used).
    #[must_use]
    pub fn level(mut self, level: u8) -> Self {
        self.level = level;
        self
    }

    /// Sets the encryption key.
    #[must_use]
    pub fn key(mut self, key: Key) -> Self {
        self.key = Some(key);
        self
    }

    /// Sets the DEFLATE encoder.
    #[must_use]
    pub fn deflate(mut self, deflate: DeflateFn) -> Self {
        self.deflate = Some(deflate);
        self
    }

    /// Sets the maximum decoded size.
    #[must_use]
    pub fn max_decoded_size(mut self, limit: usize) -> Self {
        self.max_decoded_size = limit;
        self
    }
}

/// A frame and its size figures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Serialized {
    /// The whole frame: header, stored payload and (if encrypted) tag.
    pub data: Vec<u8>,
    /// The payload's size in its format, before compression.
    pub original_size: usize,
    /// The frame's size, `data.len()`.
    pub final_size: usize,
}

impl Serialized {
    /// `final_size / original_size`: below 1.0 the frame is smaller than the
    /// bare payload.
    #[must_use]
    pub fn compression_ratio(&self) -> f64 {
        compression_ratio(self.original_size, self.final_size)
    }
}

/// `final_size / original_size`, with an empty original counting as 1.0.
#[must_use]
pub fn compression_ratio(original_size: usize, final_size: usize) -> f64 {
    if original_size == 0 {
        1.0
    } else {
        final_size as f64 / original_size as f64
    }
}

/// Serializes `value` as `options.format` (postcard or JSON in this crate).
///
/// # Errors
/// [`Error::FormatUnavailable`] for MessagePack and CBOR (use `mechops-std`),
/// [`Error::NonceSourceMissing`] when `options.key` is set (use
/// [`serialize_with_rng`]), and the errors of [`serialize_with`].
pub fn serialize<T: Serialize + ?Sized>(value: &T, options: &Options) -> Result<Serialized, Error> {
    match options.format {
        Format::Postcard => encode::<Postcard, T, frame::NoNonces>(value, options, None, None),
        Format::Json => encode::<Json, T, frame::NoNonces>(value, options, None, None),
        other => Err(Error::FormatUnavailable(other)),
    }
}

/// Serializes `value` as `options.format`, drawing the nonce from `rng` when
/// `options.key` is set.
///
/// # Errors
/// See [`serialize`].
pub fn serialize_with_rng<T, R>(
    value: &T,
    options: &Options,
    rng: &mut R,
) -> Result<Serialized, Error>
where
    T: Serialize + ?Sized,
    R: TryCryptoRng + ?Sized,
{
    match options.format {
        Format::Postcard => serialize_with::<Postcard, T, R>(value, options, rng, None),
        Format::Json => serialize_with::<Json, T, R>(value, options, rng, None),
        other => Err(Error::FormatUnavailable(other)),
    }
}

/// Serializes `value` with the codec `C` (its format overrides
/// `options.format`), optionally reusing compressed payloads from `cache`.
///
/// # Errors
/// [`Error::Encode`] when the codec refuses the value,
/// [`Error::InvalidLevel`], [`Error::PayloadTooLarge`] beyond what a frame can
/// declare.
pub fn serialize_with<C, T, R>(
    value: &T,
    options: &Options,
    rng: &mut R,
    cache: Option<&mut FrameCache>,
) -> Result<Serialized, Error>
where
    C: PayloadCodec,
    T: Serialize + ?Sized,
    R: TryCryptoRng + ?Sized,
{
    encode::<C, T, R>(value, options, Some(rng), cache)
}

fn encode<C, T, R>(
    value: &T,
    options: &Options,
    rng: Option<&mut R>,
    cache: Option<&mut FrameCache>,
) -> Result<Serialized, Error>
where
    C: PayloadCodec,
    T: Serialize + ?Sized,
    R: TryCryptoRng + ?Sized,
{
    check_level(options.level)?;
    let sealing = match (options.key.as_ref(), rng) {
        (None, _) => None,
        (Some(key), Some(rng)) => Some((key, rng)),
        (Some(_), None) => return Err(Error::NonceSourceMissing),
    };
    let plan = frame::Plan {
        policy: options.compression,
        level: options.level,
        deflate: options.deflate.unwrap_or(miniz_deflate),
        sealing,
        cache,
    };
    let (data, original_size) = frame::encode::<C, T, R>(value, plan)?;
    Ok(Serialized {
        original_size,
        final_size: data.len(),
        data,
    })
}

/// Serializes every value of `values` with the same options and codec,
/// drawing one fresh nonce per frame when encrypting.
///
/// # Errors
/// The first error of [`serialize_with`]; no partial batch is returned.
pub fn serialize_batch<'a, C, T, R>(
    values: impl IntoIterator<Item = &'a T>,
    options: &Options,
    rng: &mut R,
    mut cache: Option<&mut FrameCache>,
) -> Result<Vec<Serialized>, Error>
where
    C: PayloadCodec,
    T: Serialize + 'a + ?Sized,
    R: TryCryptoRng + ?Sized,
{
    values
        .into_iter()
        .map(|value| serialize_with::<C, T, R>(value, options, rng, cache.as_deref_mut()))
        .collect()
}

/// Deserializes a frame written as postcard or JSON.
///
/// # Errors
/// [`Error::FormatUnavailable`] for MessagePack and CBOR frames, and the
/// errors of [`deserialize_with`].
pub fn deserialize<T: DeserializeOwned>(data: &[u8], options: &Options) -> Result<T, Error> {
    match peek_format(data)? {
        Format::Postcard => deserialize_with::<Postcard, T>(data, options),
        Format::Json => deserialize_with::<Json, T>(data, options),
        other => Err(Error::FormatUnavailable(other)),
    }
}

/// Deserializes a frame whose payload is in `C`'s format.
///
/// # Errors
/// [`Error::Frame`] for a malformed, truncated or tampered frame (including a
/// wrong key), [`FrameError::KeyRequired`], [`Error::TooLarge`] above
/// `options.max_decoded_size`, [`Error::FormatMismatch`], [`Error::Decode`].
pub fn deserialize_with<C: PayloadCodec, T: DeserializeOwned>(
    data: &[u8],
    options: &Options,
) -> Result<T, Error> {
    let located = frame::parse(data)?;
    let found = located.header().format();
    if found != C::FORMAT {
        return Err(Error::FormatMismatch {
            expected: C::FORMAT,
            found,
        });
    }
    frame::with_payload(
        data,
        located,
        options.key.as_ref(),
        options.max_decoded_size,
        |_, payload| C::decode(payload),
    )
}

/// Deserializes every frame of `frames` with the same options and codec.
///
/// # Errors
/// The first error of [`deserialize_with`].
pub fn deserialize_batch<'a, C: PayloadCodec, T: DeserializeOwned>(
    frames: impl IntoIterator<Item = &'a [u8]>,
    options: &Options,
) -> Result<Vec<T>, Error> {
    frames
        .into_iter()
        .map(|frame| deserialize_with::<C, T>(frame, options))
        .collect()
}

/// Verifies, decrypts and decompresses a frame and returns its header and the
/// payload exactly as the format wrote it.
///
/// # Errors
/// As [`deserialize_with`], less the format errors.
pub fn open(data: &[u8], options: &Options) -> Result<(Header, Vec<u8>), Error> {
    frame::with_payload(
        data,
        frame::parse(data)?,
        options.key.as_ref(),
        options.max_decoded_size,
        |header, payload| Ok((header, payload.to_vec())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec;
    use rand_core::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// A fixed-seed generator standing in for a CSPRNG in tests only.
    struct TestRng(Xoshiro256PlusPlus);

    impl rand_core::TryRng for TestRng {
        type Error = core::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            self.0.try_next_u32()
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            self.0.try_next_u64()
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            self.0.try_fill_bytes(dst)
        }
    }
    impl rand_core::TryCryptoRng for TestRng {}

    fn rng() -> TestRng {
        TestRng(Xoshiro256PlusPlus::seed_from_u64(7))
    }

    fn doc() -> Vec<(String, u32)> {
        (0..200).map(|i| (alloc::format!("item-{i}"), i)).collect()
    }

    #[test]
    fn plain_frame_matches_the_documented_layout() {
        let options = Options::new(Format::Postcard).compression(CompressionPolicy::Never);
        let out = serialize(&5u8, &options).unwrap();
        // Header (28) + the one postcard byte.
        assert_eq!(out.data.len(), 29);
        assert_eq!(&out.data[..8], b"MOPF\x01\x00\x00\x00");
        assert_eq!(&out.data[8..16], &[1, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(&out.data[16..20], &crc32fast::hash(&[5]).to_le_bytes());
        assert_eq!(out.data[28], 5);
        assert_eq!((out.original_size, out.final_size), (1, 29));
        assert_eq!(deserialize::<u8>(&out.data, &options).unwrap(), 5);
    }

    #[test]
    fn auto_compresses_large_repetitive_payloads_only() {
        let options = Options::new(Format::Json);
        let big = serialize(&doc(), &options).unwrap();
        assert_eq!(
            inspect(&big.data).unwrap().compression(),
            Compression::Deflate
        );
        assert!(big.compression_ratio() < 0.5, "{}", big.compression_ratio());
        let small = serialize(&doc()[..3], &options).unwrap();
        assert_eq!(
            inspect(&small.data).unwrap().compression(),
            Compression::None
        );
        assert_eq!(
            deserialize::<Vec<(String, u32)>>(&big.data, &options).unwrap(),
            doc()
        );
    }

    #[test]
    fn encrypted_round_trip_and_key_errors() {
        let key = Key::from_bytes(&[7; 32]);
        let options = Options::new(Format::Postcard).key(key);
        assert_eq!(serialize(&1u8, &options), Err(Error::NonceSourceMissing));
        let sealed = serialize_with_rng(&doc(), &options, &mut rng()).unwrap();
        let header = inspect(&sealed.data).unwrap();
        assert_eq!(header.encryption(), Encryption::XChaCha20Poly1305);
        assert_eq!(header.checksum(), None);
        assert_eq!(
            deserialize::<Vec<(String, u32)>>(&sealed.data, &options).unwrap(),
            doc()
        );
        let wrong = Options::new(Format::Postcard).key(Key::from_bytes(&[8; 32]));
        assert_eq!(
            deserialize::<Vec<(String, u32)>>(&sealed.data, &wrong),
            Err(Error::Frame(FrameError::AuthenticationFailed))
        );
        assert_eq!(
            deserialize::<Vec<(String, u32)>>(&sealed.data, &Options::default()),
            Err(Error::Frame(FrameError::KeyRequired))
        );
        let plain = serialize(&1u8, &Options::default()).unwrap();
        assert_eq!(
            deserialize::<u8>(&plain.data, &options),
            Err(Error::Frame(FrameError::NotEncrypted))
        );
    }

    #[test]
    fn limit_is_checked_before_decoding() {
        let options = Options::new(Format::Postcard).compression(CompressionPolicy::Always);
        let out = serialize(&vec![0u8; 10_000], &options).unwrap();
        let tight = options.clone().max_decoded_size(9_000);
        assert!(matches!(
            deserialize::<Vec<u8>>(&out.data, &tight),
            Err(Error::TooLarge { limit: 9_000, .. })
        ));
        assert_eq!(
            deserialize::<Vec<u8>>(&out.data, &options).unwrap(),
            vec![0u8; 10_000]
        );
    }

    #[test]
    fn mismatched_and_unavailable_formats_are_named() {
        let out = serialize(&1u8, &Options::new(Format::Json)).unwrap();
        assert_eq!(
            deserialize_with::<Postcard, u8>(&out.data, &Options::default()),
            Err(Error::FormatMismatch {
                expected: Format::Postcard,
                found: Format::Json
            })
        );
        assert_eq!(
            serialize(&1u8, &Options::new(Format::Cbor)),
            Err(Error::FormatUnavailable(Format::Cbor))
        );
        assert_eq!(
            serialize(&1u8, &Options::default().level(11)),
            Err(Error::InvalidLevel(11))
        );
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut out = serialize(&1u8, &Options::default()).unwrap().data;
        out.push(0);
        assert_eq!(
            deserialize::<u8>(&out, &Options::default()),
            Err(Error::TrailingBytes {
                frame_len: 29,
                input_len: 30
            })
        );
    }

    #[test]
    fn batch_and_cache_give_the_same_frames() {
        let values = [doc(), doc(), doc()];
        let options = Options::new(Format::Postcard).compression(CompressionPolicy::Always);
        let mut cache = FrameCache::new(8, 1 << 20);
        let batch =
            serialize_batch::<Postcard, _, _>(&values, &options, &mut rng(), Some(&mut cache))
                .unwrap();
        assert_eq!(cache.stats().hits, 2);
        assert_eq!(cache.stats().misses, 1);
        let plain = serialize(&doc(), &options).unwrap();
        assert!(batch.iter().all(|frame| frame == &plain));
        let back: Vec<Vec<(String, u32)>> =
            deserialize_batch::<Postcard, _>(batch.iter().map(|s| s.data.as_slice()), &options)
                .unwrap();
        assert_eq!(back, values);
    }

    #[test]
    fn compression_ratio_of_empty_is_one() {
        assert_eq!(compression_ratio(0, 28), 1.0);
        assert_eq!(compression_ratio(100, 25), 0.25);
    }
}
