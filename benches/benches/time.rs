//! time benchmarks: mechops against its peers in the same run.
//!
//! Every contender produces the same bytes (checked before measuring):
//! RFC 3339 with milliseconds and `Z`. Each writes into a buffer it reuses
//! across iterations (its cheapest equivalent of our caller-owned buffer);
//! chrono has no API that writes RFC 3339 into a caller's buffer, so it
//! returns a fresh `String` from `to_rfc3339_opts`, its fastest path.
//! `time`'s well-known `Rfc3339` drops trailing zeros of the fraction, so it
//! matches only for instants whose millisecond does not end in 0: the single
//! instant is chosen that way, and the stream (whose milliseconds vary) uses
//! `time`'s format description with exactly three fraction digits.
#![allow(missing_docs)] // criterion's macros generate undocumented items

use core::hint::black_box;

use chrono::{DateTime, SecondsFormat, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jiff::fmt::temporal::{DateTimeParser, DateTimePrinter};
use mechops_core::time::{MAX_RFC3339_LEN, Precision, Rfc3339Cache, Rfc3339Format, Timestamp};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// 2023-11-14T22:13:20.123Z: a whole number of milliseconds, so every
/// library's millisecond output is the same text.
const SECS: i64 = 1_700_000_000;
const NANOS: u32 = 123_000_000;
const TEXT: &str = "2023-11-14T22:13:20.123Z";

/// A log-like stream: 1024 instants 1.234 ms apart (about 1.3 s in all).
const STREAM_LEN: usize = 1024;
const STREAM_STEP_NANOS: i128 = 1_234_000;

fn ours(secs: i64, nanos: u32) -> Timestamp {
    Timestamp::from_unix(secs, nanos).unwrap()
}

fn jiff_ts(secs: i64, nanos: u32) -> jiff::Timestamp {
    jiff::Timestamp::new(secs, nanos as i32).unwrap()
}

fn chrono_ts(secs: i64, nanos: u32) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, nanos).unwrap()
}

fn time_ts(secs: i64, nanos: u32) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(secs) * 1_000_000_000 + i128::from(nanos))
        .unwrap()
}

fn stream() -> Vec<(i64, u32)> {
    let start = i128::from(SECS) * 1_000_000_000 + i128::from(NANOS);
    (0..STREAM_LEN as i128)
        .map(|i| {
            let n = start + i * STREAM_STEP_NANOS;
            (
                n.div_euclid(1_000_000_000) as i64,
                n.rem_euclid(1_000_000_000) as u32,
            )
        })
        .collect()
}

/// `time`'s description of RFC 3339 with exactly three fraction digits.
fn time_ms_description() -> Vec<time::format_description::BorrowedFormatItem<'static>> {
    time::format_description::parse_borrowed::<1>(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z",
    )
    .unwrap()
}

fn jiff_printer() -> DateTimePrinter {
    DateTimePrinter::new().precision(Some(3))
}

/// Checks that every contender writes the same text for the whole stream.
fn assert_identical_output() {
    let format = Rfc3339Format::new(Precision::Millis);
    let mut cache = Rfc3339Cache::new(format);
    let printer = jiff_printer();
    let description = time_ms_description();
    for (s, n) in stream() {
        let mut buf = [0u8; MAX_RFC3339_LEN];
        let len = format.format(ours(s, n), &mut buf).unwrap();
        let expected = core::str::from_utf8(&buf[..len]).unwrap().to_owned();
        let len = cache.format(ours(s, n), &mut buf).unwrap();
        assert_eq!(core::str::from_utf8(&buf[..len]).unwrap(), expected);
        let mut jiff_out = String::new();
        printer
            .print_timestamp(&jiff_ts(s, n), &mut jiff_out)
            .unwrap();
        assert_eq!(jiff_out, expected);
        assert_eq!(
            chrono_ts(s, n).to_rfc3339_opts(SecondsFormat::Millis, true),
            expected
        );
        let mut time_out = Vec::new();
        time_ts(s, n)
            .format_into(&mut time_out, &description)
            .unwrap();
        assert_eq!(String::from_utf8(time_out).unwrap(), expected);
    }
    let mut time_out = Vec::new();
    time_ts(SECS, NANOS)
        .format_into(&mut time_out, &Rfc3339)
        .unwrap();
    assert_eq!(String::from_utf8(time_out).unwrap(), TEXT);
    assert_eq!(
        Timestamp::parse_rfc3339(TEXT.as_bytes()).unwrap(),
        ours(SECS, NANOS)
    );
}

fn format_one(c: &mut Criterion) {
    let mut g = c.benchmark_group("rfc3339_format_ms_z");
    g.throughput(Throughput::Elements(1));

    let ts = ours(SECS, NANOS);
    let mut buf = [0u8; MAX_RFC3339_LEN];
    // The options are written at the call, as chrono's `SecondsFormat` and
    // time's `Rfc3339` are, so they are as constant as theirs.
    g.bench_function("mechops", |b| {
        b.iter(|| {
            let n = black_box(ts)
                .format_rfc3339(Rfc3339Format::new(Precision::Millis), &mut buf)
                .unwrap();
            black_box(&buf[..n]);
        })
    });
    // The same with the options read at run time (a captured value the
    // compiler does not fold), which picks the layout by a jump.
    let format = Rfc3339Format::new(Precision::Millis);
    g.bench_function("mechops_runtime_options", |b| {
        b.iter(|| {
            let n = black_box(format).format(black_box(ts), &mut buf).unwrap();
            black_box(&buf[..n]);
        })
    });

    let jts = jiff_ts(SECS, NANOS);
    let printer = jiff_printer();
    let mut out = String::with_capacity(64);
    g.bench_function("jiff", |b| {
        b.iter(|| {
            out.clear();
            printer.print_timestamp(black_box(&jts), &mut out).unwrap();
            black_box(&out);
        })
    });

    let cts = chrono_ts(SECS, NANOS);
    g.bench_function("chrono", |b| {
        b.iter(|| black_box(black_box(cts).to_rfc3339_opts(SecondsFormat::Millis, true)))
    });

    let tts = time_ts(SECS, NANOS);
    let mut out = Vec::with_capacity(64);
    g.bench_function("time", |b| {
        b.iter(|| {
            out.clear();
            black_box(tts).format_into(&mut out, &Rfc3339).unwrap();
            black_box(&out);
        })
    });
    let description = time_ms_description();
    g.bench_function("time_description", |b| {
        b.iter(|| {
            out.clear();
            black_box(tts).format_into(&mut out, &description).unwrap();
            black_box(&out);
        })
    });
    g.finish();
}

fn format_stream(c: &mut Criterion) {
    let mut g = c.benchmark_group("rfc3339_format_stream_1024");
    g.throughput(Throughput::Elements(STREAM_LEN as u64));
    let instants = stream();
    let format = Rfc3339Format::new(Precision::Millis);

    let ts: Vec<Timestamp> = instants.iter().map(|&(s, n)| ours(s, n)).collect();
    let mut buf = [0u8; MAX_RFC3339_LEN];
    g.bench_function("mechops_cached", |b| {
        b.iter(|| {
            // A fresh cache per pass, so its first fill is measured too.
            let mut cache = Rfc3339Cache::new(format);
            for &t in black_box(&ts) {
                let n = cache.format(t, &mut buf).unwrap();
                black_box(&buf[..n]);
            }
        })
    });
    g.bench_function("mechops_uncached", |b| {
        b.iter(|| {
            for &t in black_box(&ts) {
                let n = format.format(t, &mut buf).unwrap();
                black_box(&buf[..n]);
            }
        })
    });

    let jts: Vec<jiff::Timestamp> = instants.iter().map(|&(s, n)| jiff_ts(s, n)).collect();
    let printer = jiff_printer();
    let mut out = String::with_capacity(64);
    g.bench_function("jiff", |b| {
        b.iter(|| {
            for t in black_box(&jts) {
                out.clear();
                printer.print_timestamp(t, &mut out).unwrap();
                black_box(&out);
            }
        })
    });

    let cts: Vec<DateTime<Utc>> = instants.iter().map(|&(s, n)| chrono_ts(s, n)).collect();
    g.bench_function("chrono", |b| {
        b.iter(|| {
            for t in black_box(&cts) {
                black_box(t.to_rfc3339_opts(SecondsFormat::Millis, true));
            }
        })
    });

    let tts: Vec<OffsetDateTime> = instants.iter().map(|&(s, n)| time_ts(s, n)).collect();
    let description = time_ms_description();
    let mut out = Vec::with_capacity(64);
    g.bench_function("time", |b| {
        b.iter(|| {
            for t in black_box(&tts) {
                out.clear();
                t.format_into(&mut out, &description).unwrap();
                black_box(&out);
            }
        })
    });
    g.finish();
}

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("rfc3339_parse");
    g.throughput(Throughput::Elements(1));
    g.bench_function("mechops", |b| {
        b.iter(|| black_box(Timestamp::parse_rfc3339(black_box(TEXT).as_bytes()).unwrap()))
    });
    let parser = DateTimeParser::new();
    g.bench_function("jiff", |b| {
        b.iter(|| black_box(parser.parse_timestamp(black_box(TEXT)).unwrap()))
    });
    g.bench_function("chrono", |b| {
        b.iter(|| black_box(DateTime::parse_from_rfc3339(black_box(TEXT)).unwrap()))
    });
    g.bench_function("time", |b| {
        b.iter(|| black_box(OffsetDateTime::parse(black_box(TEXT), &Rfc3339).unwrap()))
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    assert_identical_output();
    format_one(c);
    format_stream(c);
    parse(c);
}

criterion_group!(group, benches);
criterion_main!(group);
