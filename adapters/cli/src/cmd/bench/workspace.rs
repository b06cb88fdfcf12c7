//! The workspace table of `mechops bench`: 4 KiB files in a scratch
//! workspace under the system temporary directory.
//!
//! Each row is the median of a few timed runs, interleaved with the row it
//! is compared to so that both see the same load: a durable write beside the
//! bare floor with std (`write` + `fsync` + `rename` + directory `fsync`),
//! cache hits beside `std::fs::read` of the same page-cached file, a durable
//! batch of ten beside one durable write. The ratio column is the target's
//! ratio; the reference column is the published figure of the original
//! workspace manager, for orientation. Live single-run figures on a possibly
//! busy machine, not criterion medians (see `docs/BENCHMARKS.md`).

use core::hint::black_box;
use core::time::Duration;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use mechops_std::workspace::{BatchOp, BatchOptions, Options, Workspace};

const SIZE: usize = 4096;
/// Timed runs of each durable row (each is a few milliseconds).
const DURABLE_RUNS: usize = 9;
/// Timed runs of each read row, and reads per run.
const READ_RUNS: usize = 15;
const READS_PER_RUN: u32 = 2000;

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Incompressible bytes (SplitMix64), like most real content.
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

fn time(mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<Duration> {
    let t0 = Instant::now();
    f()?;
    Ok(t0.elapsed())
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

/// Medians of `a` and `b`, run alternately `runs` times.
fn paired(
    runs: usize,
    mut a: impl FnMut() -> anyhow::Result<()>,
    mut b: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<(Duration, Duration)> {
    let (mut ta, mut tb) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for _ in 0..runs {
        ta.push(time(&mut a)?);
        tb.push(time(&mut b)?);
    }
    Ok((median(ta), median(tb)))
}

/// `f` run [`READS_PER_RUN`] times, as one timed run.
fn reads(f: &dyn Fn() -> anyhow::Result<()>) -> impl FnMut() -> anyhow::Result<()> + '_ {
    move || {
        for _ in 0..READS_PER_RUN {
            f()?;
        }
        Ok(())
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Measures and prints the workspace table.
pub(crate) fn table(out: &mut impl Write) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("mechops-bench-ws-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("floor"))?;
    let scratch = Scratch(dir);
    let floor_dir = scratch.0.join("floor");
    let floor_target = floor_dir.join("file");
    let ws = Workspace::open(scratch.0.join("ws"), Options::default())?;
    let trusted = Workspace::open(scratch.0.join("ws"), Options::default().trusted_cache(true))?;
    let data = content(1);

    writeln!(
        out,
        "workspace, 4 KiB files (live, median of interleaved runs; reference = published figures)"
    )?;
    writeln!(
        out,
        "{:<36} {:>10} {:>8}  {:<22} {:>10}",
        "operation", "time", "ratio", "target", "reference"
    )?;

    let (floor, write) = paired(
        DURABLE_RUNS,
        || Ok(floor_write(&floor_dir, &floor_target, &data)?),
        || Ok(ws.write("file", &data)?),
    )?;
    writeln!(
        out,
        "{:<36} {:>7.2} ms {:>8}  {:<22} {:>10}",
        "durable write, floor (std)",
        ms(floor),
        "",
        "",
        ""
    )?;
    writeln!(
        out,
        "{:<36} {:>7.2} ms {:>7.2}x  {:<22} {:>7.1} ms",
        "durable write",
        ms(write),
        write.as_secs_f64() / floor.as_secs_f64(),
        "<= 1.1x floor",
        4.8
    )?;

    ws.write("page", &data)?;
    let page = scratch.0.join("ws").join("page");
    let fs_read = || -> anyhow::Result<()> {
        black_box(std::fs::read(black_box(&page))?);
        Ok(())
    };
    let validated = || -> anyhow::Result<()> {
        black_box(ws.read(black_box("page"))?);
        Ok(())
    };
    let trusted_hit = || -> anyhow::Result<()> {
        black_box(trusted.read(black_box("page"))?);
        Ok(())
    };
    validated()?;
    trusted_hit()?;
    let (base, hit) = paired(READ_RUNS, reads(&fs_read), reads(&validated))?;
    let (base2, trusted_time) = paired(READ_RUNS, reads(&fs_read), reads(&trusted_hit))?;
    let per = |d: Duration| d.as_secs_f64() * 1e6 / f64::from(READS_PER_RUN);
    writeln!(
        out,
        "{:<36} {:>7.2} us {:>8}  {:<22} {:>7.1} ms",
        "std::fs::read (page cache)",
        per(base),
        "",
        "",
        5.2
    )?;
    writeln!(
        out,
        "{:<36} {:>7.2} us {:>7.1}x  {:<22} {:>7.1} ms",
        "validated cache hit",
        per(hit),
        base.as_secs_f64() / hit.as_secs_f64(),
        ">= 3x fs::read",
        0.1
    )?;
    writeln!(
        out,
        "{:<36} {:>7.2} us {:>7.1}x  >= 20x fs::read",
        "trusted cache hit",
        per(trusted_time),
        base2.as_secs_f64() / trusted_time.as_secs_f64(),
    )?;

    let ops: Vec<BatchOp> = (0..10)
        .map(|i| BatchOp::Write {
            path: format!("batch/f{i}"),
            content: content(10 + i),
        })
        .collect();
    let (one, batch) = paired(
        DURABLE_RUNS,
        || Ok(ws.write("batch/one", &data)?),
        || {
            for result in ws.batch(&ops, BatchOptions::default())? {
                result?;
            }
            Ok(())
        },
    )?;
    writeln!(
        out,
        "{:<36} {:>7.2} ms {:>7.2}x  {:<22} {:>7.1} ms",
        "durable batch of 10",
        ms(batch),
        batch.as_secs_f64() / one.as_secs_f64(),
        "<= 3x one write",
        12.3
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_every_row_and_cleans_up() {
        let mut out = Vec::new();
        table(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let rows: Vec<&str> = text.lines().skip(2).collect();
        assert_eq!(rows.len(), 6, "{text}");
        for label in [
            "durable write, floor",
            "durable write ",
            "std::fs::read",
            "validated cache hit",
            "trusted cache hit",
            "durable batch of 10",
        ] {
            assert!(rows.iter().any(|r| r.starts_with(label)), "{label}: {text}");
        }
        let dir = std::env::temp_dir().join(format!("mechops-bench-ws-{}", std::process::id()));
        assert!(!dir.exists());
    }
}
