//! An incremental frame decoder for byte streams (serial links, TCP), fed
//! arbitrary chunks and bounded by a buffer the caller owns.
//!
//! Invariants:
//! - memory is the caller's buffer and nothing else; a frame larger than the
//!   buffer is reported ([`StreamError::FrameTooLarge`]) and skipped without
//!   being stored, since its header (checked by its CRC) says how long it is;
//! - every input byte is accounted for: it ends up in a delivered frame, in
//!   the buffer awaiting more input, or in a reported error;
//! - after any error the decoder resynchronises on its own by scanning for the
//!   next `MOPF` magic, so one corrupt frame costs that frame only;
//! - the decoder validates headers only; bodies are checked when the caller
//!   decodes the delivered frame (it may need a key).
//!
//! Calling order: call [`FrameAccumulator::feed`] with each chunk read; on
//! [`Feed::Frame`] decode the frame, then feed `remaining`; on
//! [`Feed::Error`] log or count it, then feed `remaining`; on
//! [`Feed::Consumed`] read the next chunk. The frame slice stays valid until
//! the next `feed` ([`FrameAccumulator::delivered_frame`] hands it out again
//! meanwhile). [`FrameAccumulator::feed_all`] runs that loop over one chunk
//! and hands each frame or error to a callback. When the input ends, call
//! [`FrameAccumulator::finish`]: it reports a frame cut short or trailing
//! garbage, so every byte is accounted for. For a blocking `embedded_io`
//! reader, [`read_frame`] reads one frame at a time instead.
//!
//! ```
//! use mechops_core::codec::accumulator::FrameAccumulator;
//! use mechops_core::codec::{frame, header::Format};
//!
//! let mut wire = [0u8; 64];
//! let n = frame::encode(Format::Json, b"[1]", &mut wire, None)?;
//!
//! let mut acc = FrameAccumulator::new([0u8; 256]);
//! let mut got = 0;
//! for chunk in wire[..n].chunks(5) {
//!     acc.feed_all(chunk, |event| match event {
//!         Ok(f) => {
//!             assert_eq!(frame::parse(f).and_then(|r| r.payload(&mut [])), Ok(&b"[1]"[..]));
//!             got += 1;
//!         }
//!         Err(error) => panic!("{error}"),
//!     });
//! }
//! assert_eq!(acc.finish(), Ok(()));
//! assert_eq!(got, 1);
//! # Ok::<(), mechops_core::codec::header::FrameError>(())
//! ```

use core::fmt;

use embedded_io::{Error as _, ErrorKind, Read};

use super::header::{FrameError, FrameHeader, MAGIC};

/// Why the stream decoder dropped bytes.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamError {
    /// `skipped` bytes that cannot start a frame were dropped while looking
    /// for the magic.
    Garbage {
        /// Bytes dropped.
        skipped: usize,
    },
    /// A header failed validation; its first byte was dropped and the
    /// decoder is scanning for the next magic.
    Header(FrameError),
    /// A valid header announces a frame of `len` bytes, more than the
    /// buffer's `capacity`; the frame is being skipped.
    FrameTooLarge {
        /// The frame's length.
        len: usize,
        /// The decoder's buffer size.
        capacity: usize,
    },
    /// The reader ended inside a frame after `got` of its `needed` bytes.
    Truncated {
        /// Bytes the frame (or its header, while that is incomplete) needs.
        needed: usize,
        /// Bytes read.
        got: usize,
    },
    /// The reader failed.
    Io(ErrorKind),
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Garbage { skipped } => write!(f, "skipped {skipped} bytes that are not a frame"),
            Self::Header(e) => write!(f, "bad frame header in stream: {e}"),
            Self::FrameTooLarge { len, capacity } => write!(
                f,
                "frame of {len} bytes exceeds the stream buffer of {capacity} bytes; skipped"
            ),
            Self::Truncated { needed, got } => {
                write!(f, "stream ended inside a frame: {got} of {needed} bytes")
            }
            Self::Io(kind) => write!(f, "stream read failed: {kind:?}"),
        }
    }
}

// The cause is part of the message, which no_std callers print with
// `Display` alone, so `source()` stays `None`: a printer of the cause
// chain then says it once.
impl core::error::Error for StreamError {}

/// What [`FrameAccumulator::feed`] made of a chunk.
#[derive(Debug, PartialEq, Eq)]
pub enum Feed<'input, 'buf> {
    /// All input was consumed; no frame is complete yet.
    Consumed,
    /// A whole frame (header validated, body unchecked) and the input after
    /// it.
    Frame {
        /// The frame's bytes, in the decoder's buffer; mutable so that it
        /// can be decrypted in place.
        frame: &'buf mut [u8],
        /// Input not yet consumed.
        remaining: &'input [u8],
    },
    /// Bytes were dropped; the decoder has already resynchronised.
    Error {
        /// What was wrong.
        error: StreamError,
        /// Input not yet consumed.
        remaining: &'input [u8],
    },
}

/// The incremental decoder; `S` is its buffer (`[u8; N]`, `&mut [u8]`, a
/// `Vec<u8>`...), whose length bounds the largest frame it accepts.
#[derive(Debug)]
pub struct FrameAccumulator<S> {
    buf: S,
    /// The candidate header, kept apart from `buf` so that headers are
    /// checked (and oversized frames skipped in step) whatever the buffer
    /// size.
    head: [u8; FrameHeader::LEN],
    /// Bytes held in `head`.
    head_len: usize,
    /// Bytes of the current frame held in `buf`, once its header validated.
    len: usize,
    /// Length of the current frame once its header validated.
    expected: Option<usize>,
    /// Bytes of an oversized frame still to drop.
    skip: usize,
    /// Length of the oversized frame being dropped, for [`Self::finish`].
    skip_len: usize,
    /// Garbage bytes dropped and not yet reported.
    skipped: usize,
    /// Set after an error: bytes dropped while resynchronising belong to
    /// that error and are not reported again as garbage.
    resyncing: bool,
    /// A frame was handed out; clear the buffer on the next feed.
    delivered: bool,
}

impl<S: AsRef<[u8]> + AsMut<[u8]>> FrameAccumulator<S> {
    /// A decoder using `buf`; frames up to `buf.len()` bytes are delivered.
    pub fn new(buf: S) -> Self {
        Self {
            buf,
            head: [0; FrameHeader::LEN],
            head_len: 0,
            len: 0,
            expected: None,
            skip: 0,
            skip_len: 0,
            skipped: 0,
            resyncing: false,
            delivered: false,
        }
    }

    /// The largest frame this decoder delivers.
    pub fn capacity(&self) -> usize {
        self.buf.as_ref().len()
    }

    /// Bytes held for a frame not yet complete.
    pub fn buffered(&self) -> usize {
        match self.expected {
            _ if self.delivered => 0,
            Some(_) => self.len,
            None => self.head_len,
        }
    }

    /// Forgets any partial frame, for instance after the link was reset.
    pub fn reset(&mut self) {
        self.head_len = 0;
        self.len = 0;
        self.expected = None;
        self.skip = 0;
        self.skip_len = 0;
        self.skipped = 0;
        self.resyncing = false;
        self.delivered = false;
    }

    /// The frame the last [`feed`](Self::feed) delivered, while the decoder
    /// still holds it (until the next `feed` or [`reset`](Self::reset));
    /// `None` otherwise.
    ///
    /// For callers that must leave their feed loop before handing the frame
    /// on (an async reader returning it from a loop of reads).
    pub fn delivered_frame(&mut self) -> Option<&mut [u8]> {
        match self.expected {
            Some(len) if self.delivered => Some(&mut self.buf.as_mut()[..len]),
            _ => None,
        }
    }

    /// Feeds all of `input`, handing each complete frame (`Ok`) and each
    /// error (`Err`) to `on_event` in stream order: the loop of the calling
    /// order above, for callers that handle every frame on the spot.
    ///
    /// Bytes of a frame not yet complete stay in the decoder for the next
    /// call.
    pub fn feed_all<F>(&mut self, mut input: &[u8], mut on_event: F)
    where
        F: FnMut(Result<&mut [u8], StreamError>),
    {
        loop {
            match self.feed(input) {
                Feed::Consumed => return,
                Feed::Frame { frame, remaining } => {
                    on_event(Ok(frame));
                    input = remaining;
                }
                Feed::Error { error, remaining } => {
                    on_event(Err(error));
                    input = remaining;
                }
            }
        }
    }

    /// Tells the decoder that the input has ended, and leaves it reset for a
    /// new stream.
    ///
    /// # Errors
    /// [`StreamError::Truncated`] when the input ended inside a frame (its
    /// header, its body, or the body of an oversized frame being skipped);
    /// [`StreamError::Garbage`] when it ended on bytes that cannot start a
    /// frame and were not reported yet.
    pub fn finish(&mut self) -> Result<(), StreamError> {
        let result = if self.skip > 0 {
            Err(StreamError::Truncated {
                needed: self.skip_len,
                got: self.skip_len - self.skip,
            })
        } else if let (Some(expected), false) = (self.expected, self.delivered) {
            Err(StreamError::Truncated {
                needed: expected,
                got: self.len,
            })
        } else if self.head_len > 0 {
            Err(StreamError::Truncated {
                needed: FrameHeader::LEN,
                got: self.head_len,
            })
        } else if self.skipped > 0 && !self.resyncing {
            Err(StreamError::Garbage {
                skipped: self.skipped,
            })
        } else {
            Ok(())
        };
        self.reset();
        result
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> S {
        self.buf
    }

    /// Consumes input until a frame completes, an error is found, or the
    /// input runs out.
    pub fn feed<'input>(&mut self, mut input: &'input [u8]) -> Feed<'input, '_> {
        if self.delivered {
            self.delivered = false;
            self.len = 0;
            self.expected = None;
        }
        loop {
            if self.skip > 0 {
                let n = self.skip.min(input.len());
                self.skip -= n;
                input = &input[n..];
                if self.skip > 0 {
                    return Feed::Consumed;
                }
                continue;
            }
            if let Some(expected) = self.expected {
                let n = (expected - self.len).min(input.len());
                self.buf.as_mut()[self.len..self.len + n].copy_from_slice(&input[..n]);
                self.len += n;
                input = &input[n..];
                if self.len < expected {
                    return Feed::Consumed;
                }
                self.delivered = true;
                self.resyncing = false;
                return Feed::Frame {
                    frame: &mut self.buf.as_mut()[..expected],
                    remaining: input,
                };
            }
            if self.head_len == 0 {
                // Hunting: drop bytes that cannot start a frame.
                let start = magic_candidate(input);
                self.skipped += start;
                input = &input[start..];
                if let Some(err) = self.take_garbage(!input.is_empty()) {
                    return Feed::Error {
                        error: err,
                        remaining: input,
                    };
                }
                if input.is_empty() {
                    return Feed::Consumed;
                }
            }
            // Fill the header.
            let n = (FrameHeader::LEN - self.head_len).min(input.len());
            self.head[self.head_len..self.head_len + n].copy_from_slice(&input[..n]);
            self.head_len += n;
            input = &input[n..];
            let held = &self.head[..self.head_len];
            let magic_len = held.len().min(MAGIC.len());
            if held[..magic_len] != MAGIC[..magic_len] {
                // Only possible after a resync shift left a partial candidate
                // whose later bytes disagree.
                self.drop_front(1);
                if self.head_len > 0
                    && let Some(err) = self.take_garbage(true)
                {
                    return Feed::Error {
                        error: err,
                        remaining: input,
                    };
                }
                continue;
            }
            if self.head_len < FrameHeader::LEN {
                return Feed::Consumed;
            }
            match FrameHeader::decode(&self.head) {
                Ok(header) => {
                    let len = header.frame_len();
                    let capacity = self.capacity();
                    self.head_len = 0;
                    if len > capacity {
                        self.skip = len - FrameHeader::LEN;
                        self.skip_len = len;
                        self.resyncing = false;
                        return Feed::Error {
                            error: StreamError::FrameTooLarge { len, capacity },
                            remaining: input,
                        };
                    }
                    // len >= LEN, so the header fits the buffer here.
                    self.buf.as_mut()[..FrameHeader::LEN].copy_from_slice(&self.head);
                    self.len = FrameHeader::LEN;
                    self.expected = Some(len);
                }
                Err(e) => {
                    self.resyncing = true;
                    self.drop_front(1);
                    return Feed::Error {
                        error: StreamError::Header(e),
                        remaining: input,
                    };
                }
            }
        }
    }

    /// Reports accumulated garbage once a frame may start (or keeps
    /// counting while the input is exhausted).
    fn take_garbage(&mut self, found_candidate: bool) -> Option<StreamError> {
        if !found_candidate || self.skipped == 0 {
            return None;
        }
        let skipped = core::mem::take(&mut self.skipped);
        if core::mem::take(&mut self.resyncing) {
            return None;
        }
        Some(StreamError::Garbage { skipped })
    }

    /// Drops the first `n` held bytes and any following ones that cannot
    /// start a frame, keeping the rest as the new candidate.
    fn drop_front(&mut self, n: usize) {
        let start = n + magic_candidate(&self.head[n..self.head_len]);
        self.head.copy_within(start..self.head_len, 0);
        self.head_len -= start;
        self.skipped += start;
    }
}

/// Reads exactly one frame from a blocking reader into the start of `buf`
/// and returns its length, or `None` when the reader is at its end before
/// the first byte of a frame.
///
/// For links where the reader blocks until data arrives (a UART driver, a
/// socket); use [`FrameAccumulator`] where chunks arrive on their own
/// schedule. A frame larger than `buf` is read through `buf` and discarded,
/// so the stream stays aligned on the next frame; a bad header leaves the
/// position unknown, and the caller should switch to a [`FrameAccumulator`]
/// to resynchronise or drop the connection.
///
/// # Errors
/// [`StreamError::Header`], [`StreamError::FrameTooLarge`] (after skipping
/// the frame), [`StreamError::Truncated`], [`StreamError::Io`].
pub fn read_frame<R: Read + ?Sized>(
    reader: &mut R,
    buf: &mut [u8],
) -> Result<Option<usize>, StreamError> {
    let mut head = [0u8; FrameHeader::LEN];
    let got = fill(reader, &mut head)?;
    if got == 0 {
        return Ok(None);
    }
    if got < FrameHeader::LEN {
        return Err(StreamError::Truncated {
            needed: FrameHeader::LEN,
            got,
        });
    }
    let header = FrameHeader::decode(&head).map_err(StreamError::Header)?;
    let len = header.frame_len();
    let Some(frame) = buf.get_mut(..len) else {
        let capacity = buf.len();
        let mut left = len - FrameHeader::LEN;
        while left > 0 {
            let scratch: &mut [u8] = if buf.is_empty() { &mut head } else { &mut *buf };
            let n = left.min(scratch.len());
            let got = fill(reader, &mut scratch[..n])?;
            if got < n {
                return Err(StreamError::Truncated {
                    needed: len,
                    got: len - left + got,
                });
            }
            left -= n;
        }
        return Err(StreamError::FrameTooLarge { len, capacity });
    };
    frame[..FrameHeader::LEN].copy_from_slice(&head);
    let got = fill(reader, &mut frame[FrameHeader::LEN..])?;
    if got < len - FrameHeader::LEN {
        return Err(StreamError::Truncated {
            needed: len,
            got: FrameHeader::LEN + got,
        });
    }
    Ok(Some(len))
}

/// Reads until `dst` is full or the reader ends; returns the bytes read.
fn fill<R: Read + ?Sized>(reader: &mut R, dst: &mut [u8]) -> Result<usize, StreamError> {
    let mut got = 0;
    while got < dst.len() {
        match reader.read(&mut dst[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(StreamError::Io(e.kind())),
        }
    }
    Ok(got)
}

/// Offset of the first position in `bytes` where a frame could start: the
/// magic, or a prefix of it running to the end of `bytes`.
fn magic_candidate(bytes: &[u8]) -> usize {
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i..].iter().position(|&b| b == MAGIC[0]) {
            None => return bytes.len(),
            Some(p) => i += p,
        }
        let rest = &bytes[i..];
        let k = rest.len().min(MAGIC.len());
        if rest[..k] == MAGIC[..k] {
            return i;
        }
        i += 1;
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use std::vec::Vec;

    use super::*;
    use crate::codec::frame;
    use crate::codec::header::Format;

    fn frame_bytes(payload: &[u8]) -> Vec<u8> {
        let mut buf = std::vec![0u8; payload.len() + 28];
        let n = frame::encode(Format::Postcard, payload, &mut buf, None).unwrap();
        buf.truncate(n);
        buf
    }

    /// Feeds `stream` in chunks of `chunk` bytes; returns payloads and errors.
    fn run<S: AsRef<[u8]> + AsMut<[u8]>>(
        acc: &mut FrameAccumulator<S>,
        stream: &[u8],
        chunk: usize,
    ) -> (Vec<Vec<u8>>, Vec<StreamError>) {
        let mut frames = Vec::new();
        let mut errors = Vec::new();
        for c in stream.chunks(chunk.max(1)) {
            acc.feed_all(c, |event| match event {
                Ok(f) => frames.push(frame::parse(f).unwrap().payload(&mut []).unwrap().to_vec()),
                Err(error) => errors.push(error),
            });
        }
        (frames, errors)
    }

    #[test]
    fn any_chunking_delivers_every_frame() {
        let mut stream = Vec::new();
        let payloads: Vec<Vec<u8>> = (0..5)
            .map(|i| (0..i * 7).map(|b| b as u8 ^ 0x4D).collect())
            .collect();
        for p in &payloads {
            stream.extend(frame_bytes(p));
        }
        for chunk in [1, 2, 3, 5, 27, 28, 29, 64, 1000] {
            let mut acc = FrameAccumulator::new([0u8; 128]);
            let (frames, errors) = run(&mut acc, &stream, chunk);
            assert_eq!(frames, payloads, "chunk {chunk}");
            assert!(errors.is_empty(), "chunk {chunk}: {errors:?}");
            assert_eq!(acc.buffered(), 0);
        }
    }

    #[test]
    fn leading_garbage_is_reported_once_then_frames_flow() {
        let mut stream = std::vec![b'M', b'O', b'x', 0, 0xFF, b'M'];
        stream.extend(frame_bytes(b"abc"));
        for chunk in [1, 4, 100] {
            let mut acc = FrameAccumulator::new([0u8; 64]);
            let (frames, errors) = run(&mut acc, &stream, chunk);
            assert_eq!(frames, [b"abc".to_vec()], "chunk {chunk}");
            let skipped: usize = errors
                .iter()
                .map(|e| match e {
                    StreamError::Garbage { skipped } => *skipped,
                    other => panic!("{other:?}"),
                })
                .sum();
            assert_eq!(skipped, 6, "chunk {chunk}");
        }
    }

    #[test]
    fn corrupt_header_costs_one_frame() {
        let mut stream = frame_bytes(b"first");
        let second_at = stream.len();
        stream.extend(frame_bytes(b"second"));
        stream.extend(frame_bytes(b"third"));
        stream[second_at + 13] ^= 0x01; // body_len of the second frame
        for chunk in [1, 7, 1000] {
            let mut acc = FrameAccumulator::new([0u8; 64]);
            let (frames, errors) = run(&mut acc, &stream, chunk);
            assert_eq!(
                frames,
                [b"first".to_vec(), b"third".to_vec()],
                "chunk {chunk}"
            );
            assert_eq!(
                errors,
                [StreamError::Header(FrameError::HeaderChecksumMismatch)]
            );
        }
    }

    #[test]
    fn oversized_frame_is_skipped_without_buffering() {
        let big = std::vec![7u8; 200];
        let mut stream = frame_bytes(&big);
        stream.extend(frame_bytes(b"small"));
        for chunk in [1, 50, 1000] {
            let mut acc = FrameAccumulator::new([0u8; 64]);
            let (frames, errors) = run(&mut acc, &stream, chunk);
            assert_eq!(frames, [b"small".to_vec()]);
            assert_eq!(
                errors,
                [StreamError::FrameTooLarge {
                    len: 228,
                    capacity: 64
                }]
            );
        }
    }

    #[test]
    fn partial_frame_waits_and_reset_forgets_it() {
        let f = frame_bytes(b"payload");
        let mut acc = FrameAccumulator::new([0u8; 64]);
        assert_eq!(acc.feed(&f[..30]), Feed::Consumed);
        assert_eq!(acc.buffered(), 30);
        acc.reset();
        assert_eq!(acc.buffered(), 0);
        let (frames, errors) = run(&mut acc, &f, 3);
        assert_eq!(frames, [b"payload".to_vec()]);
        assert!(errors.is_empty());
    }

    #[test]
    fn finish_reports_what_the_input_ended_inside() {
        let f = frame_bytes(b"payload");
        let cases: [(&[u8], Result<(), StreamError>); 5] = [
            (&f, Ok(())),
            (
                &f[..10],
                Err(StreamError::Truncated {
                    needed: 28,
                    got: 10,
                }),
            ),
            (
                &f[..30],
                Err(StreamError::Truncated {
                    needed: 35,
                    got: 30,
                }),
            ),
            (b"xyz", Err(StreamError::Garbage { skipped: 3 })),
            (b"", Ok(())),
        ];
        for (input, expected) in cases {
            let mut acc = FrameAccumulator::new([0u8; 64]);
            acc.feed_all(input, |_| {});
            assert_eq!(acc.finish(), expected, "{input:?}");
            assert_eq!(acc.buffered(), 0);
            // The decoder is reset: a whole frame goes through again.
            let (frames, errors) = run(&mut acc, &f, 4);
            assert_eq!((frames.len(), errors.len()), (1, 0));
        }
        // Ending inside an oversized frame being skipped.
        let big = frame_bytes(&[1u8; 100]);
        let mut acc = FrameAccumulator::new([0u8; 64]);
        let (_, errors) = run(&mut acc, &big[..50], 7);
        assert_eq!(
            errors,
            [StreamError::FrameTooLarge {
                len: 128,
                capacity: 64
            }]
        );
        assert_eq!(
            acc.finish(),
            Err(StreamError::Truncated {
                needed: 128,
                got: 50
            })
        );
        // Bytes dropped while resynchronising belong to the header error.
        let mut bad = f.clone();
        bad[13] ^= 1;
        let mut acc = FrameAccumulator::new([0u8; 64]);
        let (_, errors) = run(&mut acc, &bad, 100);
        assert_eq!(
            errors,
            [StreamError::Header(FrameError::HeaderChecksumMismatch)]
        );
        assert_eq!(acc.finish(), Ok(()));
    }

    #[test]
    fn delivered_frame_is_held_until_the_next_feed() {
        let mut stream = frame_bytes(b"one");
        stream.extend(frame_bytes(b"two"));
        let mut acc = FrameAccumulator::new([0u8; 64]);
        assert_eq!(acc.delivered_frame(), None);
        let rest = match acc.feed(&stream) {
            Feed::Frame { remaining, .. } => remaining,
            other => panic!("{other:?}"),
        };
        let held = acc.delivered_frame().map(|f| f.to_vec()).unwrap();
        assert_eq!(
            frame::parse(&held).unwrap().payload(&mut []),
            Ok(&b"one"[..])
        );
        assert!(matches!(acc.feed(&rest[..5]), Feed::Consumed));
        assert_eq!(acc.delivered_frame(), None);
        assert!(matches!(acc.feed(&rest[5..]), Feed::Frame { .. }));
        let held = acc.delivered_frame().map(|f| f.to_vec()).unwrap();
        assert_eq!(
            frame::parse(&held).unwrap().payload(&mut []),
            Ok(&b"two"[..])
        );
        acc.reset();
        assert_eq!(acc.delivered_frame(), None);
    }

    #[test]
    fn a_buffer_smaller_than_a_header_skips_frames_in_step() {
        let mut stream = frame_bytes(b"a");
        stream.extend_from_slice(b"junk");
        stream.extend(frame_bytes(b"bc"));
        for chunk in [1, 5, 100] {
            let mut acc = FrameAccumulator::new([0u8; 8]);
            let (frames, errors) = run(&mut acc, &stream, chunk);
            assert!(frames.is_empty());
            assert_eq!(
                errors,
                [
                    StreamError::FrameTooLarge {
                        len: 29,
                        capacity: 8
                    },
                    StreamError::Garbage { skipped: 4 },
                    StreamError::FrameTooLarge {
                        len: 30,
                        capacity: 8
                    },
                ],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn works_with_a_borrowed_buffer() {
        let mut storage = [0u8; 40];
        let mut acc = FrameAccumulator::new(&mut storage[..]);
        assert_eq!(acc.capacity(), 40);
        let (frames, _) = run(&mut acc, &frame_bytes(b"hi"), 1);
        assert_eq!(frames, [b"hi".to_vec()]);
    }

    /// A blocking reader over a slice, a few bytes per call.
    struct Trickle<'a>(&'a [u8]);

    impl embedded_io::ErrorType for Trickle<'_> {
        type Error = ErrorKind;
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
            let n = buf.len().min(self.0.len()).min(5);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn blocking_reader_reads_frames_and_skips_oversized_ones() {
        let mut stream = frame_bytes(b"one");
        stream.extend(frame_bytes(&[9u8; 100]));
        stream.extend(frame_bytes(b"three"));
        let mut r = Trickle(&stream);
        let mut buf = [0u8; 64];
        let n = read_frame(&mut r, &mut buf).unwrap().unwrap();
        assert_eq!(
            frame::parse(&buf[..n]).unwrap().payload(&mut []).unwrap(),
            b"one"
        );
        assert_eq!(
            read_frame(&mut r, &mut buf),
            Err(StreamError::FrameTooLarge {
                len: 128,
                capacity: 64
            })
        );
        let n = read_frame(&mut r, &mut buf).unwrap().unwrap();
        assert_eq!(
            frame::parse(&buf[..n]).unwrap().payload(&mut []).unwrap(),
            b"three"
        );
        assert_eq!(read_frame(&mut r, &mut buf), Ok(None));
    }

    #[test]
    fn blocking_reader_reports_truncation_and_bad_headers() {
        let f = frame_bytes(b"payload");
        let mut buf = [0u8; 64];
        assert_eq!(
            read_frame(&mut Trickle(&f[..10]), &mut buf),
            Err(StreamError::Truncated {
                needed: 28,
                got: 10
            })
        );
        assert_eq!(
            read_frame(&mut Trickle(&f[..30]), &mut buf),
            Err(StreamError::Truncated {
                needed: 35,
                got: 30
            })
        );
        let mut bad = f.clone();
        bad[4] = 9;
        assert_eq!(
            read_frame(&mut Trickle(&bad), &mut buf),
            Err(StreamError::Header(FrameError::UnsupportedVersion(9)))
        );
        let mut tiny = [0u8; 0];
        assert_eq!(
            read_frame(&mut Trickle(&f), &mut tiny),
            Err(StreamError::FrameTooLarge {
                len: 35,
                capacity: 0
            })
        );
    }

    #[test]
    fn magic_candidate_finds_prefixes() {
        assert_eq!(magic_candidate(b"xxMOPF"), 2);
        assert_eq!(magic_candidate(b"xxMO"), 2);
        assert_eq!(magic_candidate(b"xxMOx"), 5);
        assert_eq!(magic_candidate(b"MMOPF"), 1);
        assert_eq!(magic_candidate(b""), 0);
    }
}
