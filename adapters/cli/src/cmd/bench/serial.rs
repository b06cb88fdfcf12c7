//! The serial table of `mechops bench`: size, time and ratio per format.
//!
//! Each row serializes one standard JSON document (parsed once into
//! `serde_json::Value`; postcard gets the same tree as a self-describing
//! `Value`) through `mechops_std::codec::serialize`, frame included, and
//! reports the frame size, the median time of several runs and the size
//! relative to the plain JSON frame. The reference columns are the published
//! figures, for its own data, shown beside ours for orientation.

use core::hint::black_box;
use core::time::Duration;
use std::io::Write;
use std::time::Instant;

use mechops_std::codec::{CompressionPolicy, DEFAULT_LEVEL, Format, Options, Value, serialize};
use serde::Serialize;

const TWITTER: &[u8] = include_bytes!("../../../../../benches/data/twitter.json");
const CITM: &[u8] = include_bytes!("../../../../../benches/data/citm_catalog.json");

/// Time spent measuring one row, at most.
const ROW_BUDGET: Duration = Duration::from_millis(80);
/// Runs per row, at most.
const MAX_RUNS: usize = 25;

struct Row {
    label: &'static str,
    format: Format,
    deflate: bool,
    /// The reference size in KB, time in ms and ratio, where it has the row.
    reference: Option<(u32, f64, f64)>,
}

const ROWS: [Row; 6] = [
    Row {
        label: "JSON",
        format: Format::Json,
        deflate: false,
        reference: Some((1024, 0.5, 1.0)),
    },
    Row {
        label: "JSON+deflate",
        format: Format::Json,
        deflate: true,
        reference: Some((245, 2.1, 0.24)),
    },
    Row {
        label: "MessagePack",
        format: Format::MessagePack,
        deflate: false,
        reference: Some((687, 0.3, 0.67)),
    },
    Row {
        label: "MessagePack+deflate",
        format: Format::MessagePack,
        deflate: true,
        reference: Some((168, 1.8, 0.16)),
    },
    Row {
        label: "postcard",
        format: Format::Postcard,
        deflate: false,
        reference: None,
    },
    Row {
        label: "CBOR",
        format: Format::Cbor,
        deflate: false,
        reference: None,
    },
];

/// Measures and prints the serial table.
pub(crate) fn table(out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(
        out,
        "serialization: mechops frames, deflate level {DEFAULT_LEVEL}; reference = published figures (their own data, gzip)"
    )?;
    writeln!(
        out,
        "{:<9} {:<20} {:>9} {:>9} {:>6}   {:>9} {:>8} {:>6}",
        "document", "format", "size KB", "time ms", "ratio", "ref KB", "ref ms", "ratio"
    )?;
    for (name, bytes) in [("twitter", TWITTER), ("citm", CITM)] {
        let json: serde_json::Value = serde_json::from_slice(bytes)?;
        let tree = Value::from(json.clone());
        let mut json_size = None;
        for row in &ROWS {
            let options =
                Options::new(row.format)
                    .level(DEFAULT_LEVEL)
                    .compression(if row.deflate {
                        CompressionPolicy::Always
                    } else {
                        CompressionPolicy::Never
                    });
            let (size, time) = match row.format {
                Format::Postcard => measure(&tree, &options)?,
                _ => measure(&json, &options)?,
            };
            let base = *json_size.get_or_insert(size);
            let ratio = size as f64 / base as f64;
            write!(
                out,
                "{name:<9} {:<20} {:>9.1} {:>9.3} {:>6.2}",
                row.label,
                size as f64 / 1024.0,
                time.as_secs_f64() * 1e3,
                ratio
            )?;
            match row.reference {
                Some((kb, ms, r)) => writeln!(out, "   {kb:>9} {ms:>8.1} {r:>6.2}")?,
                None => writeln!(out, "   {:>9} {:>8} {:>6}", "-", "-", "-")?,
            }
        }
    }
    Ok(())
}

/// Frame size and median serialize time of `value` under `options`.
fn measure<T: Serialize>(value: &T, options: &Options) -> anyhow::Result<(usize, Duration)> {
    let mut times = Vec::with_capacity(MAX_RUNS);
    let started = Instant::now();
    let mut size = 0;
    while times.len() < MAX_RUNS && (times.len() < 3 || started.elapsed() < ROW_BUDGET) {
        let t0 = Instant::now();
        let frame = black_box(serialize(black_box(value), options)?);
        times.push(t0.elapsed());
        size = frame.final_size;
    }
    times.sort_unstable();
    Ok((size, times[times.len() / 2]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_every_row_and_deflate_shrinks() {
        let mut out = Vec::new();
        table(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2 + 2 * ROWS.len(), "{text}");
        let size_of = |doc: &str, label: &str| -> f64 {
            let line = lines
                .iter()
                .find(|l| {
                    let mut cols = l.split_whitespace();
                    cols.next() == Some(doc) && cols.next() == Some(label)
                })
                .unwrap_or_else(|| panic!("no row {doc} {label}"));
            line.split_whitespace().nth(2).unwrap().parse().unwrap()
        };
        for doc in ["twitter", "citm"] {
            // Sizes, not times: deterministic for a given level.
            assert!(size_of(doc, "JSON+deflate") < size_of(doc, "JSON") / 3.0);
            assert!(size_of(doc, "MessagePack+deflate") < size_of(doc, "JSON+deflate"));
            assert!(size_of(doc, "MessagePack") < size_of(doc, "JSON"));
        }
    }
}
