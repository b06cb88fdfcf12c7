//! Frames (`docs/FORMAT.md`) over tokio's `AsyncRead` and `AsyncWrite`:
//! [`FrameReader`] drives the core's [`FrameAccumulator`] with the bytes it
//! reads, [`FrameWriter`] writes whole frames and nothing else.
//!
//! Frames are self-delimiting, so a stream is frames back to back. The
//! reader decides nothing itself: which bytes form a frame, what is garbage,
//! when a header is bad and how to find the next frame are the
//! accumulator's, tested in the core without a runtime.
//!
//! Invariants:
//!
//! - **bounded memory**: a reader holds its accumulator's buffer (the
//!   largest frame it accepts, `max_frame_len`) and one read buffer of
//!   [`READ_CHUNK`] bytes; a writer holds at most the unwritten rest of one
//!   frame, no more than its `max_frame_len`. A frame announcing more is
//!   skipped by the reader and refused by the writer, with an error naming
//!   both sizes;
//! - **every byte is accounted for**: it comes out in a frame, waits in the
//!   reader for the rest of its frame, or is reported in an error; after an
//!   error the reader has already resynchronised on the next frame;
//! - **the wire stays aligned**: the writer never starts a frame before the
//!   previous one is entirely written, whatever futures were dropped;
//! - **bodies are not checked here**: a delivered frame has a valid header;
//!   its body is checked when the caller decodes it (it may need a key), for
//!   example with `mechops_core::codec::frame::decode` or
//!   `mechops_std::codec::deserialize`.
//!
//! Cancellation: both types keep all their progress in themselves, never in
//! a future, so dropping a [`FrameReader::read_frame`],
//! [`FrameWriter::write_frame`], [`FrameWriter::flush`] or
//! [`FrameWriter::shutdown`] future (a timeout, a `select!` branch not
//! taken, an aborted task) loses no byte; each method says where the next
//! call resumes.
//!
//! ```
//! use mechops_core::codec::{frame, header::Format};
//! use mechops_tokio::frame_io::{FrameReader, FrameWriter};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (client, server) = tokio::io::duplex(64);
//! let mut writer = FrameWriter::new(client, 1024);
//! let mut reader = FrameReader::new(server, 1024);
//!
//! let mut buf = [0u8; 64];
//! let n = frame::encode(Format::Json, br#"{"job":7}"#, &mut buf, None)?;
//! writer.write_frame(&buf[..n]).await?;
//! drop(writer); // end of stream
//!
//! let got = reader.read_frame().await?.expect("one frame");
//! assert_eq!(frame::parse(got)?.payload(&mut [])?, br#"{"job":7}"#);
//! assert!(reader.read_frame().await?.is_none());
//! # Ok(())
//! # }
//! ```

use core::fmt;
use core::future::poll_fn;
use core::pin::Pin;
use core::task::Poll;
use std::io;

use mechops_core::codec::accumulator::{Feed, FrameAccumulator, StreamError};
use mechops_core::codec::header::{FrameError, FrameHeader, MAX_FRAME_LEN};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bytes a [`FrameReader`] asks its reader for at once.
pub const READ_CHUNK: usize = 8 * 1024;

/// Why [`FrameReader::read_frame`] returned no frame.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameReadError {
    /// The reader failed; the bytes read before are kept, and a later call
    /// reads on if the reader recovers.
    #[error("frame stream read failed: {0}")]
    Io(#[from] io::Error),
    /// Bytes were dropped (garbage, a bad header, a frame over the limit, a
    /// frame cut short by the end of the stream); the reader has
    /// resynchronised, and the next call returns the next frame.
    #[error(transparent)]
    Stream(#[from] StreamError),
}

/// Why [`FrameWriter`] refused a frame or could not write it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameWriteError {
    /// The writer failed. Bytes not yet written stay pending.
    #[error("frame stream write failed: {0}")]
    Io(#[from] io::Error),
    /// The frame is longer than the writer's limit; nothing was written.
    #[error("frame of {len} bytes exceeds the frame writer's limit of {limit} bytes")]
    TooLarge {
        /// The frame's length.
        len: usize,
        /// The writer's `max_frame_len`.
        limit: usize,
    },
    /// The bytes do not start with a valid frame header; nothing was
    /// written.
    #[error("not a frame: {0}")]
    Header(#[from] FrameError),
    /// The bytes are not exactly one frame; nothing was written.
    #[error("{len} bytes are not one frame: the header announces {declared}")]
    NotOneFrame {
        /// Bytes given.
        len: usize,
        /// The frame length the header announces.
        declared: usize,
    },
}

/// Reads frames from an `AsyncRead`, one at a time, in at most
/// `max_frame_len` + [`READ_CHUNK`] bytes of memory.
///
/// Calling order: call [`read_frame`](Self::read_frame) until it returns
/// `Ok(None)` (the end of the stream). An `Err(FrameReadError::Stream(_))`
/// reports dropped bytes and may be followed by more frames; whether to go
/// on (a serial link) or to drop the peer (a TCP client sending garbage) is
/// the caller's choice.
pub struct FrameReader<R> {
    io: R,
    acc: FrameAccumulator<Box<[u8]>>,
    /// Bytes read; `chunk[pos..end]` is not yet fed to `acc`.
    chunk: Box<[u8]>,
    pos: usize,
    end: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader delivering frames of up to `max_frame_len` bytes from `io`
    /// (at most [`MAX_FRAME_LEN`], the format's own limit).
    ///
    /// Both buffers are allocated here, zeroed, so pages of a large limit
    /// are only touched when frames that large arrive.
    pub fn new(io: R, max_frame_len: usize) -> Self {
        let max_frame_len = max_frame_len.min(MAX_FRAME_LEN);
        Self {
            io,
            acc: FrameAccumulator::new(vec![0; max_frame_len].into_boxed_slice()),
            chunk: vec![0; READ_CHUNK].into_boxed_slice(),
            pos: 0,
            end: 0,
        }
    }

    /// The largest frame this reader delivers.
    pub fn max_frame_len(&self) -> usize {
        self.acc.capacity()
    }

    /// Bytes read from `io` and not yet delivered: a frame in progress and
    /// what was read after it.
    pub fn buffered(&self) -> usize {
        self.acc.buffered() + (self.end - self.pos)
    }

    /// The underlying reader.
    pub fn get_ref(&self) -> &R {
        &self.io
    }

    /// The underlying reader; reading from it directly takes bytes from
    /// the middle of the frame stream.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.io
    }

    /// Gives the reader back; the [`buffered`](Self::buffered) bytes are
    /// lost.
    pub fn into_inner(self) -> R {
        self.io
    }

    /// The next frame (header validated, body unchecked), or `Ok(None)` at
    /// the end of the stream. The frame lives in the reader's buffer, and is
    /// mutable so that it can be decrypted in place.
    ///
    /// Cancellation: the only `.await` is one read from `io` into the
    /// reader's own buffer, and tokio's `read` is cancellation-safe; the
    /// partial frame lives in the reader, not in the future. A future
    /// dropped mid-frame loses nothing, and the next call carries on with
    /// the same frame.
    ///
    /// # Errors
    /// [`FrameReadError::Stream`] when bytes were dropped, including
    /// [`StreamError::Truncated`] when the stream ends inside a frame (the
    /// next call then returns `Ok(None)`); [`FrameReadError::Io`].
    pub async fn read_frame(&mut self) -> Result<Option<&mut [u8]>, FrameReadError> {
        loop {
            if self.pos == self.end {
                let n = self.io.read(&mut self.chunk).await?;
                if n == 0 {
                    self.acc.finish()?;
                    return Ok(None);
                }
                (self.pos, self.end) = (0, n);
            }
            match self.acc.feed(&self.chunk[self.pos..self.end]) {
                Feed::Consumed => self.pos = self.end,
                Feed::Frame { remaining, .. } => {
                    self.pos = self.end - remaining.len();
                    break;
                }
                Feed::Error { error, remaining } => {
                    self.pos = self.end - remaining.len();
                    return Err(error.into());
                }
            }
        }
        // Taken again after the loop: a borrow returned from inside it would
        // hold `self.acc` for every later iteration.
        Ok(self.acc.delivered_frame())
    }
}

// Debug by hand: the buffers can be megabytes; their fill level says enough.
impl<R: fmt::Debug> fmt::Debug for FrameReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameReader")
            .field("io", &self.io)
            .field("max_frame_len", &self.acc.capacity())
            .field("buffered", &(self.acc.buffered() + (self.end - self.pos)))
            .finish()
    }
}

/// Writes whole frames to an `AsyncWrite`, each checked to be one frame
/// within `max_frame_len` bytes before any of it is written.
///
/// Calling order: [`write_frame`](Self::write_frame) for each frame,
/// [`shutdown`](Self::shutdown) at the end (or [`flush`](Self::flush) to
/// finish a frame whose write was cancelled, without writing another).
pub struct FrameWriter<W> {
    io: W,
    max_frame_len: usize,
    /// The unwritten rest of the last accepted frame is `pending[sent..]`.
    pending: Vec<u8>,
    sent: usize,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    /// A writer of frames of up to `max_frame_len` bytes to `io`.
    pub fn new(io: W, max_frame_len: usize) -> Self {
        Self {
            io,
            max_frame_len,
            pending: Vec::new(),
            sent: 0,
        }
    }

    /// The largest frame this writer accepts.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// Bytes of an accepted frame not yet handed to `io` (after a
    /// cancelled or failed write); the next `write_frame`, `flush` or
    /// `shutdown` writes them first.
    pub fn pending(&self) -> usize {
        self.pending.len() - self.sent
    }

    /// The underlying writer.
    pub fn get_ref(&self) -> &W {
        &self.io
    }

    /// The underlying writer; writing to it directly while
    /// [`pending`](Self::pending) is not zero cuts a frame in two.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.io
    }

    /// Gives the writer back; [`pending`](Self::pending) bytes are lost.
    pub fn into_inner(self) -> W {
        self.io
    }

    /// Writes `frame`, which must be exactly one frame, and flushes.
    ///
    /// Cancellation, by where the future is dropped:
    /// - while the rest of an earlier frame is written: `frame` is not
    ///   accepted, and [`pending`](Self::pending) still counts the earlier
    ///   frame's rest;
    /// - after that: `frame` is accepted whole; what `io` has not taken is
    ///   kept in the writer ([`pending`](Self::pending)) and written before
    ///   anything else by the next call.
    ///
    /// Either way the stream holds only whole frames once the next call
    /// completes. To know whether this frame was accepted, finish any
    /// pending rest with [`flush`](Self::flush) first: a `write_frame`
    /// polled once with nothing pending has accepted its frame.
    ///
    /// # Errors
    /// [`FrameWriteError::TooLarge`], [`FrameWriteError::Header`],
    /// [`FrameWriteError::NotOneFrame`] (nothing written);
    /// [`FrameWriteError::Io`].
    pub async fn write_frame(&mut self, frame: &[u8]) -> Result<(), FrameWriteError> {
        self.check(frame)?;
        self.write_pending().await?;
        // Try `io` straight from the caller's slice first, so a writer with
        // room (the usual socket) copies nothing; only what it does not take
        // at once is copied, because the future may be dropped from here on.
        let taken = poll_fn(|cx| {
            Poll::Ready(match Pin::new(&mut self.io).poll_write(cx, frame) {
                Poll::Ready(result) => result,
                Poll::Pending => Ok(0),
            })
        })
        .await?;
        self.pending.clear();
        self.sent = 0;
        self.pending.extend_from_slice(&frame[taken..]);
        self.flush().await
    }

    /// Writes the rest of a frame whose write was cancelled, if any, and
    /// flushes `io`.
    ///
    /// Cancellation: progress is kept in the writer; the next call resumes.
    ///
    /// # Errors
    /// [`FrameWriteError::Io`].
    pub async fn flush(&mut self) -> Result<(), FrameWriteError> {
        self.write_pending().await?;
        self.io.flush().await?;
        Ok(())
    }

    /// Finishes any pending frame, then shuts `io` down for writing (the
    /// peer's reader sees the end of the stream).
    ///
    /// Cancellation: as [`flush`](Self::flush); shutting down again is
    /// harmless.
    ///
    /// # Errors
    /// [`FrameWriteError::Io`].
    pub async fn shutdown(&mut self) -> Result<(), FrameWriteError> {
        self.write_pending().await?;
        self.io.shutdown().await?;
        Ok(())
    }

    /// Refuses anything but one frame within the limit.
    fn check(&self, frame: &[u8]) -> Result<(), FrameWriteError> {
        if frame.len() > self.max_frame_len {
            return Err(FrameWriteError::TooLarge {
                len: frame.len(),
                limit: self.max_frame_len,
            });
        }
        let declared = FrameHeader::decode(frame)?.frame_len();
        if declared != frame.len() {
            return Err(FrameWriteError::NotOneFrame {
                len: frame.len(),
                declared,
            });
        }
        Ok(())
    }

    /// Writes `pending[sent..]`; each `write` is cancellation-safe and
    /// `sent` advances after each, so a dropped future resumes here.
    async fn write_pending(&mut self) -> io::Result<()> {
        while self.sent < self.pending.len() {
            let n = self.io.write(&self.pending[self.sent..]).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.sent += n;
        }
        self.pending.clear();
        self.sent = 0;
        Ok(())
    }
}

impl<W: fmt::Debug> fmt::Debug for FrameWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameWriter")
            .field("io", &self.io)
            .field("max_frame_len", &self.max_frame_len)
            .field("pending", &(self.pending.len() - self.sent))
            .finish()
    }
}
