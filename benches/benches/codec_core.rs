//! mechops-core codec benchmarks against postcard used directly: the cost of
//! the frame layer (header, CRC-32) on 1 KiB messages, and stream decoding
//! against postcard's COBS accumulator.
#![allow(missing_docs)] // criterion's macros generate undocumented items

use core::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mechops_core::codec::accumulator::FrameAccumulator;
use mechops_core::codec::postcard::{from_frame, to_frame};
use postcard::accumulator::{CobsAccumulator, FeedResult};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Message {
    device: u64,
    sequence: u32,
    status: String,
    readings: Vec<(u16, f32)>,
    tags: Vec<String>,
}

/// About 1 KiB of postcard.
fn message(sequence: u32) -> Message {
    Message {
        device: 0x0123_4567_89ab_cdef,
        sequence,
        status: "nominal: all channels within limits".into(),
        readings: (0..150u16).map(|i| (i, f32::from(i) * 0.37)).collect(),
        tags: (0..10).map(|i| format!("site-{i}/rack")).collect(),
    }
}

fn framing(c: &mut Criterion) {
    let msg = message(4242);
    let mut raw = vec![0u8; 4096];
    let raw_len = postcard::to_slice(&msg, &mut raw).unwrap().len();
    raw.truncate(raw_len);
    let mut framed = vec![0u8; 4096];
    let framed_len = to_frame(&msg, &mut framed, None).unwrap();
    framed.truncate(framed_len);

    let mut g = c.benchmark_group(format!("codec_core/framing_{raw_len}B"));
    g.throughput(Throughput::Bytes(raw_len as u64));
    let mut out = vec![0u8; 4096];
    g.bench_function("encode/postcard", |b| {
        b.iter(|| black_box(postcard::to_slice(black_box(&msg), &mut out).unwrap().len()));
    });
    g.bench_function("encode/mechops", |b| {
        b.iter(|| black_box(to_frame(black_box(&msg), &mut out, None).unwrap()));
    });
    g.bench_function("decode/postcard", |b| {
        b.iter(|| black_box(postcard::from_bytes::<Message>(black_box(&raw)).unwrap()));
    });
    let mut work = framed.clone();
    g.bench_function("decode/mechops", |b| {
        b.iter(|| {
            // Decoding a plain frame does not modify it, so no copy is needed.
            let (m, _) = from_frame::<Message>(black_box(&mut work), None, &mut []).unwrap();
            black_box(m)
        });
    });
    g.finish();
}

const MESSAGES: u32 = 64;
const CHUNK: usize = 64;

fn stream(c: &mut Criterion) {
    let mut cobs = Vec::new();
    let mut frames = Vec::new();
    let mut buf = vec![0u8; 4096];
    for i in 0..MESSAGES {
        let m = message(i);
        cobs.extend_from_slice(postcard::to_slice_cobs(&m, &mut buf).unwrap());
        let n = to_frame(&m, &mut buf, None).unwrap();
        frames.extend_from_slice(&buf[..n]);
    }
    let mut g = c.benchmark_group(format!("codec_core/stream_{MESSAGES}_messages"));
    g.throughput(Throughput::Elements(u64::from(MESSAGES)));
    g.bench_function("decode/postcard_cobs", |b| {
        let mut acc = CobsAccumulator::<2048>::new();
        b.iter(|| {
            let mut seen = 0u32;
            for chunk in black_box(&cobs).chunks(CHUNK) {
                let mut input = chunk;
                while !input.is_empty() {
                    input = match acc.feed::<Message>(input) {
                        FeedResult::Consumed => &[],
                        FeedResult::Success { data, remaining } => {
                            seen += data.sequence.min(1);
                            remaining
                        }
                        FeedResult::OverFull(r) | FeedResult::DeserError(r) => r,
                    };
                }
            }
            black_box(seen)
        });
    });
    g.bench_function("decode/mechops", |b| {
        let mut acc = FrameAccumulator::new([0u8; 2048]);
        b.iter(|| {
            let mut seen = 0u32;
            for chunk in black_box(&frames).chunks(CHUNK) {
                acc.feed_all(chunk, |event| {
                    if let Ok(frame) = event {
                        let (m, _) = from_frame::<Message>(frame, None, &mut []).unwrap();
                        seen += m.sequence.min(1);
                    }
                });
            }
            black_box(seen)
        });
    });
    g.finish();
}

criterion_group!(group, framing, stream);
criterion_main!(group);
