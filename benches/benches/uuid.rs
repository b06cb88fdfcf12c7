//! uuid benchmarks: mechops against its peers in the same run.
//!
//! Each group does identical work on both sides: one UUID per iteration from
//! a thread-local or process-wide generator (what a caller of either library
//! gets), the same input string, the same 36-byte output buffer.
#![allow(missing_docs)] // criterion's macros generate undocumented items

use core::hint::black_box;
use core::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mechops_core::uuid::{Case, FastV4, Uuid};
use mechops_std::uuid as ours;
use rand_core::SeedableRng;

const SAMPLE: &str = "67e55044-10b1-426f-9247-bb680e5fe0c8";

fn fast_v4(c: &mut Criterion) {
    let mut g = c.benchmark_group("uuid/fast_v4");
    g.throughput(Throughput::Elements(1));
    g.bench_function("mechops generate_fast_uuid", |b| {
        b.iter(|| black_box(ours::generate_fast_uuid()));
    });
    let mut local = FastV4::from_seed(rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1).state());
    g.bench_function("mechops FastV4::generate (owned)", |b| {
        b.iter(|| black_box(local.generate()));
    });
    g.bench_function("uuid new_v4 (fast-rng)", |b| {
        b.iter(|| black_box(uuid::Uuid::new_v4()));
    });
    g.bench_function("ulid Ulid::generate", |b| {
        b.iter(|| black_box(ulid::Ulid::generate()));
    });
    g.finish();

    // Bulk: per-UUID cost of filling 1024 at once (the CLI's path).
    let mut g = c.benchmark_group("uuid/fast_v4_bulk_1024");
    g.throughput(Throughput::Elements(1024));
    let mut buf = vec![Uuid::NIL; 1024];
    g.bench_function("mechops fill_fast_uuids", |b| {
        b.iter(|| {
            ours::fill_fast_uuids(black_box(&mut buf)).unwrap();
            black_box(&buf);
        });
    });
    let mut peer_buf = vec![uuid::Uuid::nil(); 1024];
    g.bench_function("uuid new_v4 (fast-rng) x1024", |b| {
        b.iter(|| {
            for slot in black_box(&mut peer_buf).iter_mut() {
                *slot = uuid::Uuid::new_v4();
            }
            black_box(&peer_buf);
        });
    });
    g.finish();
}

fn secure_v4(c: &mut Criterion) {
    let mut g = c.benchmark_group("uuid/secure_v4");
    g.throughput(Throughput::Elements(1));
    g.bench_function("mechops generate_secure_uuid", |b| {
        b.iter(|| black_box(ours::generate_secure_uuid()));
    });
    // uuid's default `new_v4` (without fast-rng): 16 bytes from getrandom.
    g.bench_function("uuid new_v4 (default, getrandom)", |b| {
        b.iter(|| {
            let mut bytes = [0u8; 16];
            getrandom::fill(&mut bytes).unwrap();
            black_box(uuid::Builder::from_random_bytes(bytes).into_uuid())
        });
    });
    g.finish();
}

fn v7(c: &mut Criterion) {
    let mut g = c.benchmark_group("uuid/v7");
    g.throughput(Throughput::Elements(1));
    // Both read the system clock on every call.
    g.bench_function("mechops generate_v7", |b| {
        b.iter(|| black_box(ours::generate_v7()));
    });
    g.bench_function("uuid now_v7", |b| {
        b.iter(|| black_box(uuid::Uuid::now_v7()));
    });
    g.finish();
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("uuid/encode_hyphenated");
    g.throughput(Throughput::Elements(1));
    let ours_value = Uuid::parse_str(SAMPLE).unwrap();
    let peer_value = uuid::Uuid::parse_str(SAMPLE).unwrap();
    let mut buf = [0u8; 36];
    g.bench_function("mechops encode_hyphenated", |b| {
        b.iter(|| {
            let s = black_box(&ours_value)
                .encode_hyphenated(Case::Lower, black_box(&mut buf))
                .unwrap();
            black_box(s.len());
        });
    });
    g.bench_function("uuid hyphenated().encode_lower", |b| {
        b.iter(|| {
            let s = black_box(&peer_value)
                .hyphenated()
                .encode_lower(black_box(&mut buf));
            black_box(s.len());
        });
    });
    g.finish();
}

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("uuid/parse_hyphenated");
    g.throughput(Throughput::Elements(1));
    g.bench_function("mechops Uuid::parse_str", |b| {
        b.iter(|| black_box(Uuid::parse_str(black_box(SAMPLE))));
    });
    g.bench_function("uuid Uuid::parse_str", |b| {
        b.iter(|| black_box(uuid::Uuid::parse_str(black_box(SAMPLE))));
    });
    g.finish();

    let simple = "67e5504410b1426f9247bb680e5fe0c8";
    let mut g = c.benchmark_group("uuid/parse_simple");
    g.throughput(Throughput::Elements(1));
    g.bench_function("mechops Uuid::parse_str", |b| {
        b.iter(|| black_box(Uuid::parse_str(black_box(simple))));
    });
    g.bench_function("uuid Uuid::parse_str", |b| {
        b.iter(|| black_box(uuid::Uuid::parse_str(black_box(simple))));
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
}

criterion_group! {
    name = group;
    config = config();
    targets = fast_v4, secure_v4, v7, encode, parse
}
criterion_main!(group);
