//! Frames over `std::io`, through the embedded-io adapters.
//!
//! Frames are self-delimiting (the header gives the body length), so a
//! stream is simply frames back to back. The reader validates each header
//! before touching the body, refuses bodies whose declared sizes exceed the
//! caller's limit before allocating, and distinguishes a clean end of stream
//! (no byte of a next frame) from a frame cut short. The body's contents are
//! checked later by `open`/`deserialize`.

use embedded_io::{Read as _, ReadExactError, Write as _};
use embedded_io_adapters::std::FromStd;

use super::{Error, FrameError, FrameHeader};

/// Why a frame could not be read from or written to a stream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameIoError {
    /// The underlying reader or writer failed (the cause is the source).
    #[error("stream I/O failed")]
    Io(#[from] std::io::Error),
    /// The stream ended inside a frame after `read` of its bytes.
    #[error("stream ended inside a frame after {read} bytes")]
    Truncated {
        /// Bytes of the frame that were read.
        read: usize,
    },
    /// The header is invalid, or declares more than the limit.
    #[error(transparent)]
    Frame(#[from] Error),
}

/// Writes one complete frame.
///
/// # Errors
/// [`FrameIoError::Io`].
pub fn write_frame<W: std::io::Write>(writer: W, frame: &[u8]) -> Result<(), FrameIoError> {
    let mut writer = FromStd::new(writer);
    writer.write_all(frame)?;
    writer.flush()?;
    Ok(())
}

/// Reads the next frame, `Ok(None)` at a clean end of stream.
///
/// The returned bytes are one whole frame, ready for `open` or
/// `deserialize` with the same limit.
///
/// # Errors
/// [`FrameIoError::Truncated`] when the stream ends inside a frame,
/// [`FrameIoError::Frame`] for an invalid header or sizes above
/// `max_decoded_size`, [`FrameIoError::Io`].
pub fn read_frame<R: std::io::Read>(
    reader: R,
    max_decoded_size: usize,
) -> Result<Option<Vec<u8>>, FrameIoError> {
    let mut reader = FromStd::new(reader);
    let mut header = [0u8; FrameHeader::LEN];
    // The first read distinguishes "no next frame" from "frame cut short".
    let mut filled = 0;
    while filled < header.len() {
        match reader.read(&mut header[filled..])? {
            0 if filled == 0 => return Ok(None),
            0 => return Err(FrameIoError::Truncated { read: filled }),
            n => filled += n,
        }
    }
    let parsed = FrameHeader::decode(&header).map_err(Error::from)?;
    let declared = u64::from(parsed.original_size()).max(parsed.stored_len() as u64);
    if declared > max_decoded_size as u64 {
        return Err(Error::TooLarge {
            declared,
            limit: max_decoded_size,
        }
        .into());
    }
    let mut frame = vec![0u8; parsed.frame_len()];
    frame[..FrameHeader::LEN].copy_from_slice(&header);
    match reader.read_exact(&mut frame[FrameHeader::LEN..]) {
        Ok(()) => Ok(Some(frame)),
        Err(ReadExactError::UnexpectedEof) => Err(FrameIoError::Truncated {
            read: FrameHeader::LEN,
        }),
        Err(ReadExactError::Other(err)) => Err(err.into()),
    }
}

impl From<FrameError> for FrameIoError {
    fn from(err: FrameError) -> Self {
        Self::Frame(Error::Frame(err))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Format, Options, deserialize, serialize};
    use super::*;

    #[test]
    fn frames_back_to_back_then_clean_end() {
        let mut wire = Vec::new();
        for i in 0..3u32 {
            let frame = serialize(&i, &Options::new(Format::Cbor)).unwrap();
            write_frame(&mut wire, &frame.data).unwrap();
        }
        let mut reader = wire.as_slice();
        for i in 0..3u32 {
            let frame = read_frame(&mut reader, 1 << 20).unwrap().unwrap();
            assert_eq!(deserialize::<u32>(&frame, &Options::default()).unwrap(), i);
        }
        assert!(read_frame(&mut reader, 1 << 20).unwrap().is_none());
    }

    #[test]
    fn cut_streams_and_oversized_headers_are_refused() {
        let frame = serialize(&vec![1u8; 100], &Options::default())
            .unwrap()
            .data;
        for cut in 1..frame.len() {
            let err = read_frame(&frame[..cut], 1 << 20).unwrap_err();
            assert!(
                matches!(err, FrameIoError::Truncated { .. }),
                "cut {cut}: {err}"
            );
        }
        let err = read_frame(frame.as_slice(), 50).unwrap_err();
        assert!(
            matches!(err, FrameIoError::Frame(Error::TooLarge { limit: 50, .. })),
            "{err}"
        );
        let mut bad = frame.clone();
        bad[0] = b'X';
        let err = read_frame(bad.as_slice(), 1 << 20).unwrap_err();
        assert!(matches!(
            err,
            FrameIoError::Frame(Error::Frame(FrameError::BadMagic))
        ));
    }
}
