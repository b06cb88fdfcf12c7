//! The incremental decoder under random chunking of arbitrary bytes mixed
//! with valid frames: never a panic, never a frame larger than its buffer,
//! every valid frame that is not disturbed comes out intact.
#![no_main]

#[path = "support/trickle.rs"]
mod trickle;

use mechops_core::codec::accumulator::{FrameAccumulator, StreamError, read_frame};
use mechops_core::codec::frame;
use mechops_core::codec::header::Format;
use trickle::Trickle;

const CAPACITY: usize = 256;

/// The blocking path over the same bytes: frames come out whole and within
/// the buffer until the stream ends or a bad header leaves it unaligned.
fn blocking(stream: &[u8], step: usize) {
    let mut reader = Trickle { data: stream, step };
    let mut buf = [0u8; CAPACITY];
    loop {
        match read_frame(&mut reader, &mut buf) {
            Ok(Some(n)) => {
                assert!(n <= CAPACITY);
                let r = frame::parse(&buf[..n]).expect("a read frame has a valid header");
                assert_eq!(r.frame_len(), n);
            }
            Ok(None) => break,
            Err(StreamError::FrameTooLarge { len, capacity }) => assert!(len > capacity),
            Err(_) => break,
        }
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    // data[0]: chunk size seed; data[1]: where to splice a valid frame.
    let chunk = usize::from(data[0] % 64) + 1;
    let body = &data[2..];
    let splice = usize::from(data[1]) * body.len() / 256;
    let mut valid = [0u8; 64];
    let n = frame::encode(Format::Postcard, b"fuzz", &mut valid, None).unwrap();
    let mut stream = Vec::with_capacity(body.len() + 2 * n);
    stream.extend_from_slice(&body[..splice]);
    stream.extend_from_slice(&valid[..n]);
    stream.extend_from_slice(&body[splice..]);
    // A final frame after everything: whatever precedes it, a decoder that
    // resynchronises must deliver it once the garbage is behind it, unless
    // the garbage announced a large frame that swallows it.
    stream.extend_from_slice(&valid[..n]);

    let mut acc = FrameAccumulator::new([0u8; CAPACITY]);
    let mut delivered = 0usize;
    for piece in stream.chunks(chunk) {
        acc.feed_all(piece, |event| {
            let Ok(f) = event else { return };
            assert!(f.len() <= CAPACITY && f.len() >= 28);
            let r = frame::parse(f).expect("a delivered frame has a valid header");
            assert_eq!(r.frame_len(), f.len());
            if r.payload(&mut [0u8; 512]).is_ok_and(|p| p == b"fuzz") {
                delivered += 1;
            }
        });
        assert!(acc.buffered() <= CAPACITY);
    }
    // The end of input accounts for the rest; with no garbage the final
    // frame is whole, so nothing is left cut short.
    let end = acc.finish();
    assert_eq!(acc.buffered(), 0);
    if body.is_empty() {
        assert_eq!(end, Ok(()));
        assert_eq!(delivered, 2);
    }
    blocking(&stream, chunk);
});
