//! The incremental decoder against random chunking, garbage and corruption.

use mechops_core::codec::accumulator::{FrameAccumulator, StreamError};
use mechops_core::codec::aead::{Key, NonceSource};
use mechops_core::codec::frame::{self, Sealer};
use mechops_core::codec::header::Format;
use proptest::prelude::*;

fn frame_bytes(payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; payload.len() + 28];
    let n = frame::encode(Format::MessagePack, payload, &mut buf, None).unwrap();
    buf.truncate(n);
    buf
}

/// `stream` cut at `cuts` (taken modulo its length), in order.
fn pieces<'a>(stream: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut ends: Vec<usize> = cuts.iter().map(|&c| c % (stream.len() + 1)).collect();
    ends.push(stream.len());
    ends.sort_unstable();
    let mut start = 0;
    ends.into_iter()
        .map(|end| {
            let piece = &stream[start..end];
            start = end;
            piece
        })
        .collect()
}

/// Feeds `stream` cut at `cuts`; returns the payloads of frames that decode
/// and the errors reported.
fn run(stream: &[u8], cuts: &[usize], capacity: usize) -> (Vec<Vec<u8>>, Vec<StreamError>) {
    let mut acc = FrameAccumulator::new(vec![0u8; capacity]);
    let mut frames = Vec::new();
    let mut errors = Vec::new();
    for piece in pieces(stream, cuts) {
        acc.feed_all(piece, |event| match event {
            Ok(f) => {
                assert!(f.len() <= capacity);
                if let Ok(p) = frame::parse(f).and_then(|r| r.payload(&mut []).map(<[u8]>::to_vec))
                {
                    frames.push(p);
                }
            }
            Err(error) => errors.push(error),
        });
    }
    (frames, errors)
}

fn payloads() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..100), 1..8)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn random_chunking_delivers_every_frame_in_order(
        ps in payloads(),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
    ) {
        let stream: Vec<u8> = ps.iter().flat_map(|p| frame_bytes(p)).collect();
        let (frames, errors) = run(&stream, &cuts, 128);
        prop_assert!(errors.is_empty(), "{:?}", errors);
        prop_assert_eq!(frames, ps);
    }

    #[test]
    fn garbage_between_frames_is_reported_and_skipped(
        ps in payloads(),
        junk in prop::collection::vec(prop::collection::vec(any::<u8>().prop_filter("not M", |b| *b != b'M'), 0..20), 8),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
    ) {
        let mut stream = Vec::new();
        let mut junk_total = 0;
        for (p, j) in ps.iter().zip(&junk) {
            stream.extend_from_slice(j);
            junk_total += j.len();
            stream.extend(frame_bytes(p));
        }
        let (frames, errors) = run(&stream, &cuts, 128);
        prop_assert_eq!(frames, ps);
        let skipped: usize = errors.iter().map(|e| match e {
            StreamError::Garbage { skipped } => *skipped,
            _ => usize::MAX / 64,
        }).sum();
        prop_assert_eq!(skipped, junk_total);
    }

    #[test]
    fn a_corrupted_byte_costs_at_most_its_frame(
        ps in payloads(),
        at in any::<usize>(),
        flip in 1u8..=255,
        cuts in prop::collection::vec(any::<usize>(), 0..40),
    ) {
        let frames_bytes: Vec<Vec<u8>> = ps.iter().map(|p| frame_bytes(p)).collect();
        let mut stream: Vec<u8> = frames_bytes.concat();
        let at = at % stream.len();
        stream[at] ^= flip;
        // Which frame holds the corrupted byte.
        let mut hit = 0;
        let mut offset = 0;
        for (i, f) in frames_bytes.iter().enumerate() {
            if at < offset + f.len() { hit = i; break; }
            offset += f.len();
        }
        let (frames, _) = run(&stream, &cuts, 256);
        // Frames before the hit always arrive; a body corruption loses only
        // the hit frame, a header corruption may also swallow the frames
        // its resynchronisation scan passes while looking for the magic.
        prop_assert!(frames.len() >= hit);
        prop_assert_eq!(&frames[..hit], &ps[..hit]);
        for f in &frames {
            prop_assert!(ps.contains(f), "a corrupted frame was delivered as valid");
        }
        if at - offset >= 28 {
            let mut expected = ps.clone();
            expected.remove(hit);
            prop_assert_eq!(frames, expected);
        }
    }

    #[test]
    fn sealed_frames_decode_in_the_accumulator_buffer(
        ps in payloads(),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
    ) {
        let key = Key::from_bytes(&[0x77; 32]);
        let mut stream = Vec::new();
        for (i, p) in ps.iter().enumerate() {
            let mut buf = vec![0u8; p.len() + 72];
            let sealer = Sealer::new(&key, NonceSource::Explicit([i as u8; 24]));
            let n = frame::encode(Format::Cbor, p, &mut buf, Some(sealer)).unwrap();
            stream.extend_from_slice(&buf[..n]);
        }
        let mut acc = FrameAccumulator::new([0u8; 200]);
        let mut got = Vec::new();
        for piece in pieces(&stream, &cuts) {
            acc.feed_all(piece, |event| {
                // Decrypted in place, in the decoder's own buffer.
                let f = event.unwrap();
                got.push(frame::decode(f, Some(&key), &mut []).unwrap().payload.to_vec());
            });
        }
        prop_assert_eq!(got, ps);
    }

    #[test]
    fn arbitrary_input_never_panics_and_stays_bounded(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
        capacity in 0usize..300,
    ) {
        // Mix in real frame starts so headers get parsed.
        let mut stream = bytes;
        stream.splice(0..0, frame_bytes(b"seed"));
        let _ = run(&stream, &cuts, capacity);
    }
}
