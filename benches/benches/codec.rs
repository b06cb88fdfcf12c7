//! codec benchmarks: mechops against its peers in the same run.
//!
//! Inputs are the standard JSON documents in `benches/data/` parsed into
//! `serde_json::Value` (postcard, which cannot carry `Value`, gets the same
//! document as `mechops_alloc::serialize::Value`). Every pair does identical
//! work: same input, same level, fresh output `Vec` per iteration on both
//! sides unless noted.
#![allow(missing_docs)] // criterion's macros generate undocumented items

use core::hint::black_box;
use core::time::Duration;
use std::io::{Read, Write};

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use mechops_core::codec::aead::{Key, NonceSource};
use mechops_core::codec::frame::{self, Sealer};
use mechops_std::codec::{
    Cbor, CompressionPolicy, Format, Json, MessagePack, Options, PayloadCodec, Postcard, Value,
    compress, deserialize, serialize, std_deflate,
};
use serde::{Deserialize, Serialize};

const TWITTER: &[u8] = include_bytes!("../data/twitter.json");
const CITM: &[u8] = include_bytes!("../data/citm_catalog.json");

fn documents() -> [(&'static str, serde_json::Value); 2] {
    [
        ("twitter", serde_json::from_slice(TWITTER).unwrap()),
        ("citm", serde_json::from_slice(CITM).unwrap()),
    ]
}

/// Short warm-up and measurement windows: the file's `--quick` run has about
/// ninety benchmarks and should stay near a minute.
fn brisk<M: criterion::measurement::Measurement>(g: &mut criterion::BenchmarkGroup<'_, M>) {
    g.warm_up_time(Duration::from_millis(150));
    g.measurement_time(Duration::from_millis(400));
}

/// A ~1 KiB telemetry message, the kind the frame carries on a serial link.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
struct Message {
    device: u64,
    sequence: u32,
    status: String,
    readings: Vec<(u16, f32)>,
    tags: Vec<String>,
}

fn message() -> Message {
    Message {
        device: 0x0123_4567_89ab_cdef,
        sequence: 4242,
        status: "nominal: all channels within limits".into(),
        readings: (0..150u16).map(|i| (i, f32::from(i) * 0.37)).collect(),
        tags: (0..10).map(|i| format!("site-{i}/rack")).collect(),
    }
}

/// Framing overhead: raw postcard against a postcard frame, no compression.
fn framing(c: &mut Criterion) {
    let msg = message();
    let raw = postcard::to_allocvec(&msg).unwrap();
    let options = Options::new(Format::Postcard).compression(CompressionPolicy::Never);
    let framed = serialize(&msg, &options).unwrap().data;
    let mut g = c.benchmark_group(format!("codec/framing_{}B", raw.len()));
    brisk(&mut g);
    g.throughput(Throughput::Bytes(raw.len() as u64));
    g.bench_function("encode/postcard", |b| {
        b.iter(|| black_box(postcard::to_allocvec(black_box(&msg)).unwrap()));
    });
    g.bench_function("encode/mechops", |b| {
        b.iter(|| black_box(serialize(black_box(&msg), &options).unwrap()));
    });
    g.bench_function("decode/postcard", |b| {
        b.iter(|| black_box(postcard::from_bytes::<Message>(black_box(&raw)).unwrap()));
    });
    g.bench_function("decode/mechops", |b| {
        b.iter(|| black_box(deserialize::<Message>(black_box(&framed), &options).unwrap()));
    });
    g.finish();
}

/// Each format through the frame (no compression) against its serde crate.
fn formats(c: &mut Criterion) {
    for (name, doc) in documents() {
        let tree = Value::from(doc.clone());
        let mut g = c.benchmark_group(format!("codec/format_{name}"));
        brisk(&mut g);
        g.sample_size(20);
        let never = |format| Options::new(format).compression(CompressionPolicy::Never);
        g.bench_function("json/serde_json", |b| {
            b.iter(|| black_box(serde_json::to_vec(black_box(&doc)).unwrap()));
        });
        g.bench_function("json/mechops", |b| {
            b.iter(|| black_box(serialize(black_box(&doc), &never(Format::Json)).unwrap()));
        });
        g.bench_function("msgpack/rmp_serde", |b| {
            b.iter(|| black_box(rmp_serde::to_vec_named(black_box(&doc)).unwrap()));
        });
        g.bench_function("msgpack/mechops", |b| {
            b.iter(|| black_box(serialize(black_box(&doc), &never(Format::MessagePack)).unwrap()));
        });
        g.bench_function("cbor/ciborium", |b| {
            b.iter(|| {
                let mut out = Vec::new();
                ciborium::into_writer(black_box(&doc), &mut out).unwrap();
                black_box(out)
            });
        });
        g.bench_function("cbor/mechops", |b| {
            b.iter(|| black_box(serialize(black_box(&doc), &never(Format::Cbor)).unwrap()));
        });
        g.bench_function("postcard/postcard", |b| {
            b.iter(|| black_box(postcard::to_allocvec(black_box(&tree)).unwrap()));
        });
        g.bench_function("postcard/mechops", |b| {
            b.iter(|| black_box(serialize(black_box(&tree), &never(Format::Postcard)).unwrap()));
        });
        // Decoding the payload bytes directly against decoding the frame.
        let json = serde_json::to_vec(&doc).unwrap();
        let json_frame = serialize(&doc, &never(Format::Json)).unwrap().data;
        g.bench_function("json_decode/serde_json", |b| {
            b.iter(|| {
                black_box(serde_json::from_slice::<serde_json::Value>(black_box(&json)).unwrap())
            });
        });
        g.bench_function("json_decode/mechops", |b| {
            b.iter(|| {
                black_box(
                    deserialize::<serde_json::Value>(black_box(&json_frame), &Options::default())
                        .unwrap(),
                )
            });
        });
        let mp = rmp_serde::to_vec_named(&doc).unwrap();
        let mp_frame = serialize(&doc, &never(Format::MessagePack)).unwrap().data;
        g.bench_function("msgpack_decode/rmp_serde", |b| {
            b.iter(|| {
                black_box(rmp_serde::from_slice::<serde_json::Value>(black_box(&mp)).unwrap())
            });
        });
        g.bench_function("msgpack_decode/mechops", |b| {
            b.iter(|| {
                black_box(
                    deserialize::<serde_json::Value>(black_box(&mp_frame), &Options::default())
                        .unwrap(),
                )
            });
        });
        g.finish();
        // Keep the trait in use so both codecs stay comparable by construction.
        let _ = (
            Json::FORMAT,
            MessagePack::FORMAT,
            Cbor::FORMAT,
            Postcard::FORMAT,
        );
    }
}

fn zlib_rs_deflate(input: &[u8], level: i32) -> Vec<u8> {
    let config = zlib_rs::DeflateConfig {
        level,
        window_bits: -15,
        ..zlib_rs::DeflateConfig::default()
    };
    let mut out = vec![0u8; zlib_rs::compress_bound(input.len())];
    let (written, rc) = zlib_rs::compress_slice(&mut out, input, config);
    assert_eq!(rc, zlib_rs::ReturnCode::Ok);
    let len = written.len();
    out.truncate(len);
    out
}

fn flate2_deflate(input: &[u8], level: u32) -> Vec<u8> {
    let mut encoder = flate2::write::DeflateEncoder::new(
        Vec::with_capacity(input.len() / 4),
        flate2::Compression::new(level),
    );
    encoder.write_all(input).unwrap();
    encoder.finish().unwrap()
}

/// DEFLATE on the serde_json bytes of each document.
fn deflate(c: &mut Criterion) {
    for (name, doc) in documents() {
        let text = serde_json::to_vec(&doc).unwrap();
        let mut g = c.benchmark_group(format!("codec/deflate_{name}"));
        brisk(&mut g);
        g.sample_size(10);
        g.throughput(Throughput::Bytes(text.len() as u64));
        for level in [1u8, 6] {
            g.bench_with_input(
                BenchmarkId::new("compress/mechops", level),
                &level,
                |b, &level| {
                    b.iter(|| {
                        black_box(
                            compress(black_box(&text), CompressionPolicy::Always, level).unwrap(),
                        )
                    });
                },
            );
            g.bench_with_input(
                BenchmarkId::new("compress/mechops_std", level),
                &level,
                |b, &level| {
                    b.iter(|| black_box(std_deflate(black_box(&text), level)));
                },
            );
            g.bench_with_input(
                BenchmarkId::new("compress/flate2", level),
                &level,
                |b, &level| {
                    b.iter(|| black_box(flate2_deflate(black_box(&text), u32::from(level))));
                },
            );
            g.bench_with_input(
                BenchmarkId::new("compress/zlib_rs", level),
                &level,
                |b, &level| {
                    b.iter(|| black_box(zlib_rs_deflate(black_box(&text), i32::from(level))));
                },
            );
            let packed = compress(&text, CompressionPolicy::Always, level)
                .unwrap()
                .unwrap();
            g.bench_with_input(
                BenchmarkId::new("decompress/mechops", level),
                &level,
                |b, _| {
                    b.iter(|| {
                        let mut out = vec![0u8; text.len()];
                        let n = mechops_core::codec::inflate::inflate(black_box(&packed), &mut out)
                            .unwrap();
                        black_box((n, out))
                    });
                },
            );
            g.bench_with_input(
                BenchmarkId::new("decompress/flate2", level),
                &level,
                |b, _| {
                    b.iter(|| {
                        let mut out = Vec::with_capacity(text.len());
                        flate2::read::DeflateDecoder::new(black_box(packed.as_slice()))
                            .read_to_end(&mut out)
                            .unwrap();
                        black_box(out)
                    });
                },
            );
            g.bench_with_input(
                BenchmarkId::new("decompress/zlib_rs", level),
                &level,
                |b, _| {
                    b.iter(|| {
                        let mut out = vec![0u8; text.len()];
                        let config = zlib_rs::InflateConfig { window_bits: -15 };
                        let (n, rc) =
                            zlib_rs::decompress_slice(&mut out, black_box(&packed), config);
                        assert_eq!(rc, zlib_rs::ReturnCode::Ok);
                        let n = n.len();
                        black_box((n, out))
                    });
                },
            );
        }
        g.finish();
    }
}

/// Encryption through the frame against chacha20poly1305 on the same bytes.
fn encryption(c: &mut Criterion) {
    let text = serde_json::to_vec(&documents()[0].1).unwrap();
    let key_bytes = [0x17; 32];
    let key = Key::from_bytes(&key_bytes);
    let cipher = XChaCha20Poly1305::new((&key_bytes).into());
    let nonce = [0x29; 24];
    let mut g = c.benchmark_group("codec/encrypt_twitter");
    brisk(&mut g);
    g.sample_size(20);
    g.throughput(Throughput::Bytes(text.len() as u64));
    let frame_len = text.len() + 28 + 44;
    g.bench_function("seal/chacha20poly1305", |b| {
        let mut buf = vec![0u8; frame_len];
        b.iter(|| {
            buf[..text.len()].copy_from_slice(black_box(&text));
            let tag = cipher
                .encrypt_inout_detached(
                    &XNonce::from(nonce),
                    b"header",
                    (&mut buf[..text.len()]).into(),
                )
                .unwrap();
            black_box(tag)
        });
    });
    g.bench_function("seal/mechops_frame", |b| {
        let mut buf = vec![0u8; frame_len];
        b.iter(|| {
            let sealer = Sealer::new(&key, NonceSource::Explicit(nonce));
            black_box(
                frame::encode(Format::Json, black_box(&text), &mut buf, Some(sealer)).unwrap(),
            )
        });
    });
    let mut sealed = vec![0u8; frame_len];
    let n = frame::encode(
        Format::Json,
        &text,
        &mut sealed,
        Some(Sealer::new(&key, NonceSource::Explicit(nonce))),
    )
    .unwrap();
    sealed.truncate(n);
    let mut direct = text.clone();
    let direct_tag = cipher
        .encrypt_inout_detached(
            &XNonce::from(nonce),
            b"header",
            direct.as_mut_slice().into(),
        )
        .unwrap();
    g.bench_function("open/chacha20poly1305", |b| {
        let mut buf = direct.clone();
        b.iter(|| {
            buf.copy_from_slice(black_box(&direct));
            cipher
                .decrypt_inout_detached(
                    &XNonce::from(nonce),
                    b"header",
                    buf.as_mut_slice().into(),
                    &direct_tag,
                )
                .unwrap();
            black_box(&buf);
        });
    });
    g.bench_function("open/mechops_frame", |b| {
        let mut buf = sealed.clone();
        b.iter(|| {
            buf.copy_from_slice(black_box(&sealed));
            let decoded = frame::decode(&mut buf, Some(&key), &mut []).unwrap();
            black_box(decoded.payload.len());
        });
    });
    g.finish();
}

/// The whole pack and unpack path against serde crate + flate2 at the same level.
fn pack_unpack(c: &mut Criterion) {
    for (name, doc) in documents() {
        let mut g = c.benchmark_group(format!("codec/pack_{name}"));
        brisk(&mut g);
        g.sample_size(10);
        for level in [1u8, 6] {
            let options = |format| {
                Options::new(format)
                    .compression(CompressionPolicy::Always)
                    .level(level)
            };
            let id = |what: &str| BenchmarkId::new(what, level);
            g.bench_function(id("json_pack/serde_json+flate2"), |b| {
                b.iter(|| {
                    black_box(flate2_deflate(
                        &serde_json::to_vec(black_box(&doc)).unwrap(),
                        u32::from(level),
                    ))
                });
            });
            g.bench_function(id("json_pack/mechops"), |b| {
                b.iter(|| black_box(serialize(black_box(&doc), &options(Format::Json)).unwrap()));
            });
            g.bench_function(id("msgpack_pack/rmp_serde+flate2"), |b| {
                b.iter(|| {
                    black_box(flate2_deflate(
                        &rmp_serde::to_vec_named(black_box(&doc)).unwrap(),
                        u32::from(level),
                    ))
                });
            });
            g.bench_function(id("msgpack_pack/mechops"), |b| {
                b.iter(|| {
                    black_box(serialize(black_box(&doc), &options(Format::MessagePack)).unwrap())
                });
            });
            let json_z = flate2_deflate(&serde_json::to_vec(&doc).unwrap(), u32::from(level));
            let json_frame = serialize(&doc, &options(Format::Json)).unwrap().data;
            g.bench_function(id("json_unpack/serde_json+flate2"), |b| {
                b.iter(|| {
                    let mut text = Vec::new();
                    flate2::read::DeflateDecoder::new(black_box(json_z.as_slice()))
                        .read_to_end(&mut text)
                        .unwrap();
                    black_box(serde_json::from_slice::<serde_json::Value>(&text).unwrap())
                });
            });
            g.bench_function(id("json_unpack/mechops"), |b| {
                b.iter(|| {
                    black_box(
                        deserialize::<serde_json::Value>(
                            black_box(&json_frame),
                            &Options::default(),
                        )
                        .unwrap(),
                    )
                });
            });
            let mp_z = flate2_deflate(&rmp_serde::to_vec_named(&doc).unwrap(), u32::from(level));
            let mp_frame = serialize(&doc, &options(Format::MessagePack)).unwrap().data;
            g.bench_function(id("msgpack_unpack/rmp_serde+flate2"), |b| {
                b.iter(|| {
                    let mut bytes = Vec::new();
                    flate2::read::DeflateDecoder::new(black_box(mp_z.as_slice()))
                        .read_to_end(&mut bytes)
                        .unwrap();
                    black_box(rmp_serde::from_slice::<serde_json::Value>(&bytes).unwrap())
                });
            });
            g.bench_function(id("msgpack_unpack/mechops"), |b| {
                b.iter(|| {
                    black_box(
                        deserialize::<serde_json::Value>(black_box(&mp_frame), &Options::default())
                            .unwrap(),
                    )
                });
            });
        }
        g.finish();
    }
}

/// Output sizes are not timings: printed once so the run records them.
fn sizes(_c: &mut Criterion) {
    for (name, doc) in documents() {
        let text = serde_json::to_vec(&doc).unwrap();
        let mp = rmp_serde::to_vec_named(&doc).unwrap();
        for level in [1u8, 6, 9] {
            let ours = compress(&text, CompressionPolicy::Always, level)
                .unwrap()
                .unwrap()
                .len();
            let flate2 = flate2_deflate(&text, u32::from(level)).len();
            let zlib = zlib_rs_deflate(&text, i32::from(level)).len();
            let mp_ours = compress(&mp, CompressionPolicy::Always, level)
                .unwrap()
                .unwrap()
                .len();
            println!(
                "size {name} level {level}: json {} -> mechops {ours} flate2 {flate2} zlib-rs {zlib} \
                 (mechops/flate2 {:.4}, mechops/zlib-rs {:.4}); msgpack {} -> mechops {mp_ours}",
                text.len(),
                ours as f64 / flate2 as f64,
                ours as f64 / zlib as f64,
                mp.len(),
            );
        }
    }
}

criterion_group!(
    group,
    sizes,
    framing,
    formats,
    deflate,
    encryption,
    pack_unpack
);

/// Runs one framing operation `count` times and nothing else, for counting
/// instructions under callgrind, which the shared, noisy build machines do
/// not disturb: `MECHOPS_CODEC_ICOUNT=decode/mechops:20000 valgrind
/// --tool=callgrind <bench binary>`. The difference between two counts
/// divided by the difference in `count` is the cost of one operation.
fn icount(spec: &str) {
    let (op, count) = spec.split_once(':').expect("op:count");
    let count: usize = count.parse().expect("count");
    let msg = message();
    let raw = postcard::to_allocvec(&msg).unwrap();
    let options = Options::new(Format::Postcard).compression(CompressionPolicy::Never);
    let framed = serialize(&msg, &options).unwrap().data;
    for _ in 0..count {
        match op {
            "encode/postcard" => drop(black_box(postcard::to_allocvec(black_box(&msg)).unwrap())),
            "encode/mechops" => drop(black_box(serialize(black_box(&msg), &options).unwrap())),
            "decode/postcard" => drop(black_box(
                postcard::from_bytes::<Message>(black_box(&raw)).unwrap(),
            )),
            "decode/mechops" => drop(black_box(
                deserialize::<Message>(black_box(&framed), &options).unwrap(),
            )),
            other => panic!("unknown operation {other}"),
        }
    }
}

fn main() {
    if let Ok(spec) = std::env::var("MECHOPS_CODEC_ICOUNT") {
        icount(&spec);
        return;
    }
    group();
    Criterion::default().configure_from_args().final_summary();
}
