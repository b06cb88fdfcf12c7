//! workspace benchmarks: durable writes, cache hits and batches of 4 KiB
//! files, beside the bare floor and the peer crates in the same run.
//!
//! - write: one durable replacement of a 4 KiB file (pseudo-random bytes,
//!   so compression is tried and dropped, as for most real content). The
//!   floor is what any durable replacement must do with std: create a
//!   temporary, `write_all`, `sync_all`, `rename`, open the directory and
//!   `sync_all` it. `tempfile`'s `persist` does not sync, so its row adds the
//!   same two syncs (file before, directory after); `atomicwrites` syncs
//!   both itself. The workspace also hashes the content, tries DEFLATE and
//!   sets the record's extended attribute.
//! - read: the same page-cached 4 KiB file read with `std::fs::read` and
//!   through the workspace's cache (validated: one `fstatat`; trusted: no
//!   system call), each returning a fresh `Vec<u8>`; `read_shared` rows
//!   return the cache's shared `Arc<[u8]>` instead, without the copy.
//! - batch: ten durable 4 KiB writes as one batch, beside one durable write
//!   and a loop of ten.
//!
//! Files live under the system temporary directory (its file system decides
//! what an `fsync` costs, so ratios matter, not times).
#![allow(missing_docs)] // criterion's macros generate undocumented items

use core::hint::black_box;
use core::time::Duration;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use mechops_std::workspace::{BatchOp, BatchOptions, Options, Workspace};

const SIZE: usize = 4096;

/// Pseudo-random bytes (SplitMix64), incompressible like most content.
fn content(seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(SIZE);
    while out.len() < SIZE {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out
}

/// A fresh directory for one group, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("mechops-bench-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("bench directory");
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The floor: a durable replacement with std alone.
fn floor_write(dir: &Path, target: &Path, data: &[u8]) -> std::io::Result<()> {
    let temp = dir.join(".floor.tmp");
    let mut file = File::create(&temp)?;
    file.write_all(data)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temp, target)?;
    File::open(dir)?.sync_all()
}

fn write_4k(c: &mut Criterion) {
    let scratch = Scratch::new("write");
    let dir = scratch.0.as_path();
    let data = content(1);
    let ws = Workspace::open(dir.join("ws"), Options::default()).expect("workspace");
    let floor_dir = dir.join("floor");
    let tempfile_dir = dir.join("tempfile");
    let atomic_dir = dir.join("atomicwrites");
    for d in [&floor_dir, &tempfile_dir, &atomic_dir] {
        std::fs::create_dir_all(d).expect("bench directory");
    }

    let mut group = c.benchmark_group("workspace write 4KiB durable");
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(4));
    let floor_target = floor_dir.join("file");
    group.bench_function("floor (std write+fsync+rename+dir fsync)", |b| {
        b.iter(|| floor_write(&floor_dir, &floor_target, black_box(&data)).expect("floor"));
    });
    group.bench_function("mechops Workspace::write", |b| {
        b.iter(|| ws.write("file", black_box(&data)).expect("write"));
    });
    let tempfile_target = tempfile_dir.join("file");
    group.bench_function("tempfile persist + file and dir fsync", |b| {
        b.iter(|| {
            let mut temp = tempfile::NamedTempFile::new_in(&tempfile_dir).expect("temp");
            temp.write_all(black_box(&data)).expect("write");
            temp.as_file().sync_all().expect("fsync");
            temp.persist(&tempfile_target).expect("persist");
            File::open(&tempfile_dir)
                .and_then(|d| d.sync_all())
                .expect("dir fsync");
        });
    });
    let atomic_target = atomic_dir.join("file");
    group.bench_function("atomicwrites AtomicFile::write", |b| {
        b.iter(|| {
            atomicwrites::AtomicFile::new(
                &atomic_target,
                atomicwrites::OverwriteBehavior::AllowOverwrite,
            )
            .write(|f| f.write_all(black_box(&data)))
            .expect("atomicwrites");
        });
    });
    group.finish();
}

fn read_4k(c: &mut Criterion) {
    let scratch = Scratch::new("read");
    let root = scratch.0.join("ws");
    let data = content(2);
    let validated = Workspace::open(&root, Options::default()).expect("workspace");
    let trusted =
        Workspace::open(&root, Options::default().trusted_cache(true)).expect("workspace");
    validated.write("page", &data).expect("write");
    // Random bytes are stored as they are: `fs::read` returns the same bytes.
    let file = root.join("page");
    assert_eq!(std::fs::read(&file).expect("read"), data);
    assert_eq!(validated.read("page").expect("read"), data);
    assert_eq!(trusted.read("page").expect("read"), data);

    let mut group = c.benchmark_group("workspace read 4KiB");
    group.bench_function("std::fs::read (page cache)", |b| {
        b.iter(|| black_box(std::fs::read(black_box(&file)).expect("read")));
    });
    group.bench_function("mechops read, validated cache hit", |b| {
        b.iter(|| black_box(validated.read(black_box("page")).expect("read")));
    });
    group.bench_function("mechops read, trusted cache hit", |b| {
        b.iter(|| black_box(trusted.read(black_box("page")).expect("read")));
    });
    group.bench_function("mechops read_shared, validated cache hit", |b| {
        b.iter(|| black_box(validated.read_shared(black_box("page")).expect("read")));
    });
    group.bench_function("mechops read_shared, trusted cache hit", |b| {
        b.iter(|| black_box(trusted.read_shared(black_box("page")).expect("read")));
    });
    group.finish();
}

fn batch_10(c: &mut Criterion) {
    let scratch = Scratch::new("batch");
    let ws = Workspace::open(scratch.0.join("ws"), Options::default()).expect("workspace");
    let files: Vec<(String, Vec<u8>)> = (0..10)
        .map(|i| (format!("batch/f{i}"), content(10 + i)))
        .collect();
    let ops: Vec<BatchOp> = files
        .iter()
        .map(|(path, data)| BatchOp::Write {
            path: path.clone(),
            content: data.clone(),
        })
        .collect();

    let mut group = c.benchmark_group("workspace batch of 10 4KiB durable");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("one durable write", |b| {
        b.iter(|| ws.write("batch/f0", black_box(&files[0].1)).expect("write"));
    });
    group.bench_function("batch of 10", |b| {
        b.iter(|| {
            let results = ws
                .batch(black_box(&ops), BatchOptions::default())
                .expect("batch");
            assert!(results.iter().all(Result::is_ok));
        });
    });
    group.bench_function("atomic batch of 10", |b| {
        b.iter(|| {
            let results = ws
                .batch(black_box(&ops), BatchOptions::atomic())
                .expect("batch");
            assert!(results.iter().all(Result::is_ok));
        });
    });
    group.bench_function("loop of 10 durable writes", |b| {
        b.iter(|| {
            for (path, data) in &files {
                ws.write(path, black_box(data)).expect("write");
            }
        });
    });
    group.finish();
}

criterion_group!(benches, write_4k, read_4k, batch_10);
criterion_main!(benches);
