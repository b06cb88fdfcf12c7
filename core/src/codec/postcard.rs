//! postcard encoding and decoding of serde types into and out of slices,
//! `embedded_io` 0.7 writers and readers, and frames.
//!
//! Invariants:
//! - nothing allocates: encoders write into the caller's slice or writer,
//!   decoders borrow from the caller's slice or scratch;
//! - a full output buffer is reported with the exact size needed
//!   ([`PostcardError::BufferTooSmall`]), never as a silently short message;
//! - [`from_slice`] requires the value to use every input byte; trailing
//!   bytes are an error ([`take_from_slice`] hands them back instead);
//! - decoding errors name the input offset where they were found.
//!
//! ```
//! use mechops_core::codec::postcard::{from_slice, to_slice};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, Debug, PartialEq)]
//! struct Reading<'a> { sensor: &'a str, value: i32 }
//!
//! let mut buf = [0u8; 32];
//! let n = to_slice(&Reading { sensor: "t1", value: -40 }, &mut buf)?;
//! assert_eq!(from_slice::<Reading<'_>>(&buf[..n])?, Reading { sensor: "t1", value: -40 });
//! # Ok::<(), mechops_core::codec::postcard::PostcardError>(())
//! ```

mod flavors;

use core::fmt;

use embedded_io::{ErrorKind, Read, Write};
use postcard::{Deserializer, Serializer};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use self::flavors::{Counter, Fault, ReaderInput, SliceInput, WriterOutput};
use super::aead::Key;
use super::checksum::crc32;
use super::frame::{self, Sealer};
use super::header::{Compression, Encryption, Format, FrameError, FrameSpec};

/// Which rule of the postcard wire format the input broke.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformation {
    /// A varint runs past its maximum length or overflows its type.
    Varint,
    /// A bool byte other than 0 or 1.
    Bool,
    /// A `char` that is not a Unicode scalar value.
    Char,
    /// A string that is not UTF-8.
    Utf8,
    /// An `Option` tag other than 0 or 1.
    Option,
    /// An enum discriminant out of range.
    Enum,
    /// Some other encoding rule.
    Encoding,
    /// The type's own `Deserialize` rejected the value (a serde custom
    /// error, for instance an invalid frame header field).
    Value,
}

impl Malformation {
    fn describe(self) -> &'static str {
        match self {
            Self::Varint => "bad varint",
            Self::Bool => "bad bool",
            Self::Char => "bad char",
            Self::Utf8 => "invalid UTF-8",
            Self::Option => "bad option tag",
            Self::Enum => "bad enum discriminant",
            Self::Encoding => "bad encoding",
            Self::Value => "invalid value",
        }
    }
}

/// Why postcard encoding or decoding failed.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostcardError {
    /// The output buffer is too small; the encoding needs `needed` bytes.
    BufferTooSmall {
        /// Bytes the encoding needs.
        needed: usize,
    },
    /// The input ends inside the value; `at` is the offset of the item
    /// (varint, string, byte string) that did not fit.
    UnexpectedEnd {
        /// Input offset.
        at: usize,
    },
    /// The input breaks the wire format at offset `at`.
    Malformed {
        /// Which rule was broken.
        kind: Malformation,
        /// Input offset where decoding stopped.
        at: usize,
    },
    /// The value ended at offset `at` but the input goes on.
    TrailingBytes {
        /// Offset of the first unused byte.
        at: usize,
    },
    /// A byte string of `needed` bytes does not fit the scratch slice given
    /// to a reader decode.
    ScratchTooSmall {
        /// Bytes needed.
        needed: usize,
    },
    /// The value cannot be expressed in postcard (for instance a sequence
    /// whose length serde does not know up front).
    Unsupported,
    /// The reader or writer failed.
    Io(ErrorKind),
    /// The enclosing frame was rejected.
    Frame(FrameError),
    /// The frame carries a format other than postcard.
    WrongFormat(Format),
}

impl fmt::Display for PostcardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BufferTooSmall { needed } => {
                write!(f, "postcard output buffer too small: {needed} bytes needed")
            }
            Self::UnexpectedEnd { at } => write!(f, "postcard input ends early at byte {at}"),
            Self::Malformed { kind, at } => {
                write!(
                    f,
                    "postcard input malformed at byte {at}: {}",
                    kind.describe()
                )
            }
            Self::TrailingBytes { at } => {
                write!(f, "postcard value ends at byte {at} but more input follows")
            }
            Self::ScratchTooSmall { needed } => {
                write!(
                    f,
                    "postcard scratch buffer too small: {needed} bytes needed"
                )
            }
            Self::Unsupported => f.write_str("value cannot be encoded as postcard"),
            Self::Io(kind) => write!(f, "postcard I/O failed: {kind:?}"),
            Self::Frame(e) => write!(f, "{e}"),
            Self::WrongFormat(format) => write!(f, "frame holds {format}, not postcard"),
        }
    }
}

// The cause is part of the message, which no_std callers print with
// `Display` alone, so `source()` stays `None`: a printer of the cause
// chain then says it once.
impl core::error::Error for PostcardError {}

impl From<FrameError> for PostcardError {
    fn from(e: FrameError) -> Self {
        Self::Frame(e)
    }
}

/// Maps a postcard decoding error found at offset `at`.
fn decode_error(e: &postcard::Error, at: usize) -> PostcardError {
    use postcard::Error as E;
    let kind = match e {
        E::DeserializeUnexpectedEnd => return PostcardError::UnexpectedEnd { at },
        E::DeserializeBadVarint => Malformation::Varint,
        E::DeserializeBadBool => Malformation::Bool,
        E::DeserializeBadChar => Malformation::Char,
        E::DeserializeBadUtf8 => Malformation::Utf8,
        E::DeserializeBadOption => Malformation::Option,
        E::DeserializeBadEnum => Malformation::Enum,
        E::SerdeDeCustom => Malformation::Value,
        _ => Malformation::Encoding,
    };
    PostcardError::Malformed { kind, at }
}

/// The number of bytes `value` encodes to.
///
/// # Errors
/// [`PostcardError::Unsupported`] when the value cannot be encoded.
pub fn serialized_size<T: Serialize + ?Sized>(value: &T) -> Result<usize, PostcardError> {
    let mut ser = Serializer {
        output: Counter::default(),
    };
    value
        .serialize(&mut ser)
        .map_err(|_| PostcardError::Unsupported)?;
    Ok(ser.output.0)
}

/// Encodes `value` at the start of `out` and returns the length.
///
/// # Errors
/// [`PostcardError::BufferTooSmall`] with the exact size when `out` is too
/// short; [`PostcardError::Unsupported`] for values postcard cannot express.
pub fn to_slice<T: Serialize + ?Sized>(value: &T, out: &mut [u8]) -> Result<usize, PostcardError> {
    match postcard::to_slice(value, out) {
        Ok(used) => Ok(used.len()),
        Err(postcard::Error::SerializeBufferFull) => Err(PostcardError::BufferTooSmall {
            needed: serialized_size(value)?,
        }),
        Err(_) => Err(PostcardError::Unsupported),
    }
}

/// Decodes a value that spans all of `bytes`.
///
/// # Errors
/// Decoding errors with their offset; [`PostcardError::TrailingBytes`] when
/// the value ends before the input does.
pub fn from_slice<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, PostcardError> {
    let (value, rest) = take_from_slice(bytes)?;
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(PostcardError::TrailingBytes {
            at: bytes.len() - rest.len(),
        })
    }
}

/// Decodes one value from the start of `bytes` and returns it with the
/// bytes after it.
///
/// # Errors
/// Decoding errors with their offset.
pub fn take_from_slice<'de, T: Deserialize<'de>>(
    bytes: &'de [u8],
) -> Result<(T, &'de [u8]), PostcardError> {
    // postcard's own slice flavor is the fastest path; it cannot say where
    // it stopped, so only a failed decode is replayed through a flavor that
    // can (errors are the rare case, and the replay is bounded by the input).
    match postcard::take_from_bytes(bytes) {
        Ok(done) => Ok(done),
        Err(_) => Err(locate_error::<T>(bytes)),
    }
}

/// Decodes `bytes` again through [`SliceInput`], whose remainder survives
/// the error, to name the offset where decoding stopped.
fn locate_error<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> PostcardError {
    let mut de = Deserializer::from_flavor(SliceInput::new(bytes));
    let err = match T::deserialize(&mut de) {
        Ok(_) => {
            return PostcardError::Malformed {
                kind: Malformation::Encoding,
                at: 0,
            };
        }
        Err(e) => e,
    };
    let at = de
        .finalize()
        .map_or(bytes.len(), |rest| bytes.len() - rest.len());
    decode_error(&err, at)
}

/// Encodes `value` into `writer` and returns the number of bytes written.
///
/// The writer is not flushed: callers flush when the transport needs it.
/// Bytes go out in pieces of up to 128 bytes as they are produced, so on an
/// error part of the value may already have been written; callers that must
/// not emit partial messages encode with [`to_slice`] first.
///
/// # Errors
/// [`PostcardError::Io`] with the writer's error kind;
/// [`PostcardError::Unsupported`] for values postcard cannot express.
pub fn to_writer<T, W>(value: &T, writer: &mut W) -> Result<usize, PostcardError>
where
    T: Serialize + ?Sized,
    W: Write + ?Sized,
{
    let mut ser = Serializer {
        output: WriterOutput::new(writer),
    };
    let res = value.serialize(&mut ser).and_then(|()| ser.output.drain());
    match (res, ser.output.fault) {
        (Ok(()), _) => Ok(ser.output.written()),
        (Err(_), Some(kind)) => Err(PostcardError::Io(kind)),
        (Err(_), None) => Err(PostcardError::Unsupported),
    }
}

/// Decodes one value from `reader`, reading exactly its bytes and no more;
/// byte strings are read through `scratch`, which must hold the largest one
/// (and, for types that borrow, all of them).
///
/// # Errors
/// [`PostcardError::UnexpectedEnd`] when the reader ends inside the value,
/// [`PostcardError::Io`], [`PostcardError::ScratchTooSmall`], and decoding
/// errors with the offset (bytes read so far).
pub fn from_reader<T, R>(reader: &mut R, scratch: &mut [u8]) -> Result<T, PostcardError>
where
    T: DeserializeOwned,
    R: Read + ?Sized,
{
    let mut de = Deserializer::from_flavor(ReaderInput::new(reader, scratch));
    match T::deserialize(&mut de) {
        Ok(value) => Ok(value),
        Err(e) => {
            let (read, fault) = de.finalize().unwrap_or((0, None));
            Err(match fault {
                Some(Fault::Io(kind)) => PostcardError::Io(kind),
                Some(Fault::Eof) => PostcardError::UnexpectedEnd { at: read },
                Some(Fault::Scratch { needed }) => PostcardError::ScratchTooSmall { needed },
                None => decode_error(&e, read),
            })
        }
    }
}

/// Encodes `value` as postcard straight into a frame at the start of `out`
/// (uncompressed; sealed when a sealer is given) and returns the frame
/// length. No intermediate copy: the value is serialized in place.
///
/// # Errors
/// [`PostcardError::BufferTooSmall`] with the whole frame's size, frame
/// errors, and [`PostcardError::Unsupported`].
pub fn to_frame<T: Serialize + ?Sized>(
    value: &T,
    out: &mut [u8],
    sealer: Option<Sealer<'_>>,
) -> Result<usize, PostcardError> {
    let encryption = if sealer.is_some() {
        Encryption::XChaCha20Poly1305
    } else {
        Encryption::None
    };
    let spec = FrameSpec::new(Format::Postcard, Compression::None, encryption);
    let start = spec.payload_offset();
    let tail = spec.overhead() - start;
    let room = out.len().saturating_sub(start + tail);
    let payload_len = match out.get_mut(start..start + room) {
        Some(region) => match to_slice(value, region) {
            Ok(n) => n,
            Err(PostcardError::BufferTooSmall { needed }) => {
                return Err(PostcardError::BufferTooSmall {
                    needed: spec.frame_len(needed)?,
                });
            }
            Err(e) => return Err(e),
        },
        None => {
            let needed = serialized_size(value)?;
            return Err(PostcardError::BufferTooSmall {
                needed: spec.frame_len(needed)?,
            });
        }
    };
    let checksum = crc32(&out[start..start + payload_len]);
    Ok(frame::finish_in_place(
        out,
        spec,
        payload_len,
        payload_len,
        checksum,
        sealer,
    )?)
}

/// Decodes a postcard frame at the start of `frame` (opening it with `key`
/// when encrypted, inflating into `scratch` when compressed) and returns the
/// value and the frame's length.
///
/// # Errors
/// [`PostcardError::Frame`] for a rejected frame,
/// [`PostcardError::WrongFormat`] for a frame of another format, and
/// decoding errors (offsets are within the payload).
pub fn from_frame<'a, T: Deserialize<'a>>(
    frame: &'a mut [u8],
    key: Option<&Key>,
    scratch: &'a mut [u8],
) -> Result<(T, usize), PostcardError> {
    let decoded = frame::decode(frame, key, scratch)?;
    if decoded.header.format() != Format::Postcard {
        return Err(PostcardError::WrongFormat(decoded.header.format()));
    }
    Ok((from_slice(decoded.payload)?, decoded.header.frame_len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::aead::NonceSource;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Sample<'a> {
        id: u32,
        name: &'a str,
        data: &'a [u8],
        flag: Option<bool>,
    }

    const SAMPLE: Sample<'static> = Sample {
        id: 300,
        name: "pump-7",
        data: &[1, 2, 3],
        flag: Some(true),
    };

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Owned {
        id: u64,
        tags: [u16; 3],
        name: Name,
    }

    /// An owned, fixed-capacity string: what a no-alloc caller decodes
    /// text into.
    #[derive(Debug, PartialEq)]
    struct Name {
        bytes: [u8; 16],
        len: usize,
    }

    impl Name {
        fn new(s: &str) -> Self {
            let mut bytes = [0; 16];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            Self {
                bytes,
                len: s.len(),
            }
        }
    }

    impl Serialize for Name {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_str(core::str::from_utf8(&self.bytes[..self.len]).unwrap())
        }
    }

    impl<'de> Deserialize<'de> for Name {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl serde::de::Visitor<'_> for V {
                type Value = Name;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a string of at most 16 bytes")
                }
                fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Name, E> {
                    if v.len() > 16 {
                        return Err(E::invalid_length(v.len(), &self));
                    }
                    Ok(Name::new(v))
                }
            }
            d.deserialize_str(V)
        }
    }

    /// An `embedded_io` reader over a slice that counts read calls.
    struct SliceReader<'a> {
        data: &'a [u8],
        fail_at: Option<usize>,
        pos: usize,
    }

    impl embedded_io::ErrorType for SliceReader<'_> {
        type Error = ErrorKind;
    }

    impl Read for SliceReader<'_> {
        fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
            if self.fail_at.is_some_and(|f| self.pos >= f) {
                return Err(ErrorKind::TimedOut);
            }
            let n = buf.len().min(self.data.len() - self.pos).min(3);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    /// An `embedded_io` writer into a fixed array that may refuse.
    struct ArrayWriter {
        buf: [u8; 512],
        len: usize,
        calls: usize,
    }

    impl embedded_io::ErrorType for ArrayWriter {
        type Error = ErrorKind;
    }

    impl Write for ArrayWriter {
        fn write(&mut self, data: &[u8]) -> Result<usize, ErrorKind> {
            self.calls += 1;
            let n = data.len().min(self.buf.len() - self.len);
            if n == 0 && !data.is_empty() {
                return Err(ErrorKind::WriteZero);
            }
            self.buf[self.len..self.len + n].copy_from_slice(&data[..n]);
            self.len += n;
            Ok(n)
        }

        fn flush(&mut self) -> Result<(), ErrorKind> {
            Ok(())
        }
    }

    #[test]
    fn slice_round_trip_and_exact_needed_size() {
        let mut buf = [0u8; 64];
        let n = to_slice(&SAMPLE, &mut buf).unwrap();
        assert_eq!(serialized_size(&SAMPLE).unwrap(), n);
        assert_eq!(from_slice::<Sample<'_>>(&buf[..n]).unwrap(), SAMPLE);
        assert_eq!(
            to_slice(&SAMPLE, &mut buf[..n - 1]),
            Err(PostcardError::BufferTooSmall { needed: n })
        );
    }

    #[test]
    fn decoding_errors_name_the_offset() {
        let mut buf = [0u8; 64];
        let n = to_slice(&SAMPLE, &mut buf).unwrap();
        assert_eq!(
            from_slice::<Sample<'_>>(&buf[..n + 1]),
            Err(PostcardError::TrailingBytes { at: n })
        );
        assert_eq!(
            from_slice::<Sample<'_>>(&buf[..5]),
            Err(PostcardError::UnexpectedEnd { at: 3 })
        );
        // Bytes: id varint (2), name len (1), name (6), data len (1), data (3), option tag.
        // The name's six bytes do not fit in five, reported at its start.
        let mut bad = buf;
        bad[13] = 2;
        assert_eq!(
            from_slice::<Sample<'_>>(&bad[..n]),
            Err(PostcardError::Malformed {
                kind: Malformation::Option,
                at: 14
            })
        );
        let mut bad = buf;
        bad[3] = 0xFF;
        assert!(matches!(
            from_slice::<Sample<'_>>(&bad[..n]),
            Err(PostcardError::Malformed {
                kind: Malformation::Utf8,
                ..
            })
        ));
    }

    #[test]
    fn writer_and_reader_round_trip() {
        let value = Owned {
            id: u64::MAX,
            tags: [1, 300, 65535],
            name: Name::new("valve"),
        };
        let mut w = ArrayWriter {
            buf: [0; 512],
            len: 0,
            calls: 0,
        };
        let n = to_writer(&value, &mut w).unwrap();
        assert_eq!(n, w.len);
        assert_eq!(w.calls, 1, "small values go out in one write");
        assert_eq!(from_slice::<Owned>(&w.buf[..n]).unwrap(), value);

        // Two values back to back: the reader stops exactly after the first.
        let mut two = [0u8; 128];
        two[..n].copy_from_slice(&w.buf[..n]);
        two[n..2 * n].copy_from_slice(&w.buf[..n]);
        let mut r = SliceReader {
            data: &two[..2 * n],
            fail_at: None,
            pos: 0,
        };
        let mut scratch = [0u8; 16];
        assert_eq!(
            from_reader::<Owned, _>(&mut r, &mut scratch).unwrap(),
            value
        );
        assert_eq!(r.pos, n);
        assert_eq!(
            from_reader::<Owned, _>(&mut r, &mut scratch).unwrap(),
            value
        );
        assert_eq!(
            from_reader::<Owned, _>(&mut r, &mut scratch),
            Err(PostcardError::UnexpectedEnd { at: 0 })
        );
    }

    #[test]
    fn reader_and_writer_faults_are_reported() {
        let value = Owned {
            id: 1,
            tags: [0; 3],
            name: Name::new("a-long-name"),
        };
        let mut buf = [0u8; 64];
        let n = to_slice(&value, &mut buf).unwrap();
        let mut r = SliceReader {
            data: &buf[..n],
            fail_at: Some(4),
            pos: 0,
        };
        assert_eq!(
            from_reader::<Owned, _>(&mut r, &mut [0u8; 16]),
            Err(PostcardError::Io(ErrorKind::TimedOut))
        );
        let mut r = SliceReader {
            data: &buf[..n],
            fail_at: None,
            pos: 0,
        };
        assert_eq!(
            from_reader::<Owned, _>(&mut r, &mut [0u8; 4]),
            Err(PostcardError::ScratchTooSmall { needed: 11 })
        );
        let mut r = SliceReader {
            data: &buf[..n - 2],
            fail_at: None,
            pos: 0,
        };
        assert!(matches!(
            from_reader::<Owned, _>(&mut r, &mut [0u8; 16]),
            Err(PostcardError::UnexpectedEnd { .. })
        ));
        let big = [7u8; 600];
        let mut w = ArrayWriter {
            buf: [0; 512],
            len: 0,
            calls: 0,
        };
        assert_eq!(
            to_writer(&big[..], &mut w),
            Err(PostcardError::Io(ErrorKind::WriteZero))
        );
    }

    #[test]
    fn frame_round_trip_plain_and_sealed() {
        let key = Key::from_bytes(&[4; 32]);
        let mut buf = [0u8; 128];
        let n = to_frame(&SAMPLE, &mut buf, None).unwrap();
        let (v, len) = from_frame::<Sample<'_>>(&mut buf, None, &mut []).unwrap();
        assert_eq!((v, len), (SAMPLE, n));

        let mut buf = [0u8; 128];
        let sealer = Sealer::new(&key, NonceSource::Explicit([8; 24]));
        let n = to_frame(&SAMPLE, &mut buf, Some(sealer)).unwrap();
        assert_eq!(n, serialized_size(&SAMPLE).unwrap() + 72);
        let (v, _) = from_frame::<Sample<'_>>(&mut buf[..n], Some(&key), &mut []).unwrap();
        assert_eq!(v, SAMPLE);
    }

    #[test]
    fn frame_buffer_too_small_names_the_frame_size() {
        let need = serialized_size(&SAMPLE).unwrap() + 28;
        for len in [0, 10, 28, need - 1] {
            let mut buf = std::vec![0u8; len];
            assert_eq!(
                to_frame(&SAMPLE, &mut buf, None),
                Err(PostcardError::BufferTooSmall { needed: need })
            );
        }
    }

    #[test]
    fn frame_of_another_format_is_refused() {
        let mut buf = [0u8; 64];
        let n = frame::encode(Format::Json, b"{}", &mut buf, None).unwrap();
        assert_eq!(
            from_frame::<Sample<'_>>(&mut buf[..n], None, &mut []),
            Err(PostcardError::WrongFormat(Format::Json))
        );
    }

    #[test]
    fn frame_header_round_trips_through_serde() {
        let spec = FrameSpec::new(
            Format::Cbor,
            Compression::Deflate,
            Encryption::XChaCha20Poly1305,
        );
        let header = crate::codec::header::FrameHeader::new(spec, 1000, 300, 0).unwrap();
        let mut buf = [0u8; 32];
        let n = to_slice(&header, &mut buf).unwrap();
        assert_eq!(
            from_slice::<crate::codec::header::FrameHeader>(&buf[..n]).unwrap(),
            header
        );
        // An unknown format code is refused by the type's own validation.
        buf[1] = 9;
        assert!(matches!(
            from_slice::<crate::codec::header::FrameHeader>(&buf[..n]),
            Err(PostcardError::Malformed {
                kind: Malformation::Value,
                ..
            })
        ));
    }
}
