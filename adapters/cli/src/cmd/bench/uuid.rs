//! The uuid table of `mechops bench`: the reference UUID generation table,
//! measured live beside its reference figures.
//!
//! Each strategy calls the process-wide single-UUID function the library
//! offers (`mechops_std::uuid`), one UUID per call, as the reference figures do.
//! The figure is the median of several timed samples, so one preempted
//! sample on a shared machine does not skew it. Total time stays under about
//! 1.5 seconds.

use core::hint::black_box;
use core::time::Duration;
use std::io::Write;
use std::time::Instant;

use mechops_core::uuid::Uuid;
use mechops_std::uuid as generators;

/// Timed samples per strategy; the median is reported.
const SAMPLES: usize = 5;
/// Target length of one sample.
const SAMPLE_TIME: Duration = Duration::from_millis(60);
/// Calls between clock reads, so reading the clock costs nothing measurable.
const CHUNK: u32 = 1_000;

/// One row: a strategy, how to call it, and the reference figures for it.
struct Row {
    name: &'static str,
    generate: fn() -> Uuid,
    /// The reference throughput (UUIDs per ms), where it gives one.
    reference_per_ms: Option<f64>,
    /// The reference latency (ms per UUID), where it gives one.
    reference_latency_ms: Option<f64>,
    secure: &'static str,
}

fn hybrid_fast_mode() -> Uuid {
    generators::generate_uuid()
}

/// Nanoseconds per call of `generate`: the median over [`SAMPLES`] samples.
fn measure(generate: fn() -> Uuid) -> f64 {
    // Warm up: seeds thread-locals, fills buffers, faults pages in.
    for _ in 0..CHUNK {
        black_box(generate());
    }
    let mut samples = [0f64; SAMPLES];
    for sample in &mut samples {
        let start = Instant::now();
        let mut calls = 0u64;
        loop {
            for _ in 0..CHUNK {
                black_box(generate());
            }
            calls += u64::from(CHUNK);
            if start.elapsed() >= SAMPLE_TIME {
                break;
            }
        }
        *sample = start.elapsed().as_nanos() as f64 / calls as f64;
    }
    samples.sort_by(f64::total_cmp);
    samples[SAMPLES / 2]
}

/// Formats with thousands separators and no decimals.
fn grouped(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Measures and prints the uuid table.
pub(crate) fn table(out: &mut impl Write) -> anyhow::Result<()> {
    let rows = [
        Row {
            name: "Fast",
            generate: generators::generate_fast_uuid,
            reference_per_ms: Some(5_000.0),
            reference_latency_ms: Some(0.0002),
            secure: "no",
        },
        Row {
            name: "Secure",
            generate: generators::generate_secure_uuid,
            reference_per_ms: Some(50.0),
            reference_latency_ms: Some(0.02),
            secure: "yes",
        },
        Row {
            name: "Hybrid (fast mode)",
            generate: hybrid_fast_mode,
            reference_per_ms: Some(2_500.0),
            reference_latency_ms: Some(0.0004),
            secure: "switchable",
        },
        Row {
            name: "V7 (monotonic, shared)",
            generate: generators::generate_v7,
            reference_per_ms: None,
            reference_latency_ms: None,
            secure: "random bits yes",
        },
    ];

    let previous_mode = generators::hybrid_mode();
    generators::set_use_fast_mode(true);
    let measured: Vec<f64> = rows.iter().map(|row| measure(row.generate)).collect();
    generators::set_use_fast_mode(matches!(previous_mode, mechops_core::uuid::Mode::Fast));

    writeln!(
        out,
        "UUID generation (live, one UUID per call, median of {SAMPLES} samples)"
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "| Strategy               | UUIDs/ms (measured) | ns/UUID | latency ms | UUIDs/ms (reference) | latency ms (reference) | speedup | Cryptographically secure |"
    )?;
    writeln!(
        out,
        "|------------------------|--------------------:|--------:|-----------:|---------------------:|-----------------------:|--------:|--------------------------|"
    )?;
    for (row, &ns) in rows.iter().zip(&measured) {
        let per_ms = 1e6 / ns;
        let reference = row
            .reference_per_ms
            .map_or_else(|| "-".to_owned(), |r| format!("~{}", grouped(r)));
        let reference_latency = row
            .reference_latency_ms
            .map_or_else(|| "-".to_owned(), |l| format!("{l}"));
        let speedup = row
            .reference_per_ms
            .map_or_else(|| "-".to_owned(), |r| format!("{:.0}x", per_ms / r));
        writeln!(
            out,
            "| {:<22} | {:>19} | {:>7.1} | {:>10.7} | {:>20} | {:>22} | {:>7} | {:<24} |",
            row.name,
            grouped(per_ms),
            ns,
            ns / 1e6,
            reference,
            reference_latency,
            speedup,
            row.secure,
        )?;
    }
    writeln!(out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping_thousands() {
        assert_eq!(grouped(0.4), "0");
        assert_eq!(grouped(999.0), "999");
        assert_eq!(grouped(1_000.0), "1,000");
        assert_eq!(grouped(1_234_567.0), "1,234,567");
    }
}
