//! `mechops time`: the current time, RFC 3339 formatting and parsing,
//! differences and ranges.
//!
//! Every input is checked before anything is written: a bad timestamp,
//! duration, offset, zone or out-of-range integer is one line on stderr with
//! exit code 2. Integers are Unix time in `--unit` (milliseconds unless
//! told otherwise); parsed timestamps convert back rounding toward negative
//! infinity, so `parse` of a pre-1970 instant with a fraction gives the
//! integer just below it.

use std::io::{self, BufWriter, Write};

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use mechops_core::time::{
    MAX_RFC3339_LEN, Offset, Precision, Rfc3339Format, SignedDuration, TimeRange, Timestamp,
    TimestampError, WallClock as _,
};
use mechops_std::clock::SystemClock;
use mechops_std::tz::Zone;
use serde::Serialize;

use crate::output::input_error;

/// Arguments of `mechops time`.
#[derive(Debug, Args)]
pub(crate) struct TimeArgs {
    #[command(subcommand)]
    command: TimeCommand,
}

#[derive(Debug, Subcommand)]
enum TimeCommand {
    /// Print the current time as RFC 3339.
    Now(NowArgs),
    /// Print an integer Unix time as RFC 3339.
    Format(FormatArgs),
    /// Print an RFC 3339 timestamp as an integer Unix time (rounded down).
    Parse(ParseArgs),
    /// Print the signed time from A to B (B minus A).
    Diff(DiffArgs),
    /// Print the start and end of a range, or every step through it.
    Range(RangeArgs),
}

/// A time unit as the command line spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum UnitArg {
    /// Seconds.
    S,
    /// Milliseconds.
    Ms,
    /// Microseconds.
    Us,
    /// Nanoseconds.
    Ns,
}

impl UnitArg {
    fn nanos(self) -> i128 {
        match self {
            Self::S => 1_000_000_000,
            Self::Ms => 1_000_000,
            Self::Us => 1_000,
            Self::Ns => 1,
        }
    }

    fn precision(self) -> Precision {
        match self {
            Self::S => Precision::Seconds,
            Self::Ms => Precision::Millis,
            Self::Us => Precision::Micros,
            Self::Ns => Precision::Nanos,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::S => "s",
            Self::Ms => "ms",
            Self::Us => "us",
            Self::Ns => "ns",
        }
    }
}

/// Where output timestamps are shown: `--offset` or `--tz` (UTC by default).
#[derive(Debug, Args)]
struct ZoneArgs {
    /// Write local time at this fixed offset, e.g. +05:30 or -08:00.
    #[arg(
        long,
        value_name = "+HH:MM",
        allow_hyphen_values = true,
        conflicts_with = "tz"
    )]
    offset: Option<String>,
    /// Write local time in this IANA zone, e.g. Europe/Paris.
    #[arg(long, value_name = "ZONE")]
    tz: Option<String>,
}

/// How output timestamps are written, resolved from [`ZoneArgs`].
enum Placement {
    Utc,
    Fixed(Offset),
    Zone(Zone),
}

impl ZoneArgs {
    fn resolve(&self) -> anyhow::Result<Placement> {
        if let Some(text) = &self.offset {
            let offset = Offset::parse(text.as_bytes())
                .map_err(|e| input_error(format!("--offset {text:?}: {e}")))?;
            return Ok(Placement::Fixed(offset));
        }
        if let Some(name) = &self.tz {
            let zone = Zone::get(name).map_err(|e| input_error(format!("--tz: {e}")))?;
            return Ok(Placement::Zone(zone));
        }
        Ok(Placement::Utc)
    }
}

impl Placement {
    fn write(
        &self,
        out: &mut impl Write,
        instant: Timestamp,
        precision: Precision,
    ) -> anyhow::Result<()> {
        let format = match self {
            Self::Utc => Rfc3339Format::new(precision),
            Self::Fixed(offset) => Rfc3339Format::new(precision).with_offset(*offset),
            Self::Zone(zone) => zone
                .rfc3339_format(instant, precision)
                .map_err(|e| input_error(e.to_string()))?,
        };
        let mut buf = [0u8; MAX_RFC3339_LEN + 1];
        let n = format
            .format(instant, &mut buf)
            .map_err(|e| input_error(format!("cannot write {instant}: {e}")))?;
        buf[n] = b'\n';
        out.write_all(&buf[..=n])?;
        Ok(())
    }
}

#[derive(Debug, Args)]
struct NowArgs {
    /// Fractional digits to write.
    #[arg(long, value_enum, default_value = "ms")]
    precision: UnitArg,
    #[command(flatten)]
    zone: ZoneArgs,
}

#[derive(Debug, Args)]
struct FormatArgs {
    /// Unix time as an integer in --unit.
    #[arg(allow_hyphen_values = true, value_name = "INTEGER")]
    value: String,
    /// Unit of the integer.
    #[arg(long, value_enum, default_value = "ms")]
    unit: UnitArg,
    /// Fractional digits to write (default: those of --unit).
    #[arg(long, value_enum)]
    precision: Option<UnitArg>,
    #[command(flatten)]
    zone: ZoneArgs,
}

#[derive(Debug, Args)]
struct ParseArgs {
    /// An RFC 3339 timestamp, e.g. 2024-05-06T07:08:09.123Z.
    #[arg(allow_hyphen_values = true, value_name = "RFC3339")]
    text: String,
    /// Unit of the integer printed.
    #[arg(long, value_enum, default_value = "ms")]
    unit: UnitArg,
}

#[derive(Debug, Args)]
struct DiffArgs {
    /// The start: RFC 3339 or an integer in --unit.
    #[arg(allow_hyphen_values = true)]
    a: String,
    /// The end: RFC 3339 or an integer in --unit.
    #[arg(allow_hyphen_values = true)]
    b: String,
    /// Unit of integer inputs.
    #[arg(long, value_enum, default_value = "ms")]
    unit: UnitArg,
    /// Print a JSON object with every component.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct RangeArgs {
    /// The first instant: RFC 3339 or an integer in --unit.
    #[arg(allow_hyphen_values = true)]
    start: String,
    /// How long the range lasts, e.g. 90s, 1h30m, 250ms.
    #[arg(allow_hyphen_values = true)]
    duration: String,
    /// Print every instant from the start at this step (before the end).
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    step: Option<String>,
    /// Unit of an integer start.
    #[arg(long, value_enum, default_value = "ms")]
    unit: UnitArg,
    /// Fractional digits to write (default: as many as the values need).
    #[arg(long, value_enum)]
    precision: Option<UnitArg>,
    #[command(flatten)]
    zone: ZoneArgs,
}

/// Runs `mechops time`.
pub(crate) fn run(args: TimeArgs) -> anyhow::Result<()> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match args.command {
        TimeCommand::Now(a) => now(a, &mut out)?,
        TimeCommand::Format(a) => format_integer(a, &mut out)?,
        TimeCommand::Parse(a) => parse(a, &mut out)?,
        TimeCommand::Diff(a) => diff(a, &mut out)?,
        TimeCommand::Range(a) => range(a, &mut out)?,
    }
    out.flush()?;
    Ok(())
}

fn now(args: NowArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let placement = args.zone.resolve()?;
    placement.write(out, SystemClock.now(), args.precision.precision())
}

fn format_integer(args: FormatArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let placement = args.zone.resolve()?;
    let instant = integer_instant(&args.value, args.unit)?
        .ok_or_else(|| input_error(format!("{:?} is not an integer", args.value)))?;
    let precision = args.precision.unwrap_or(args.unit).precision();
    placement.write(out, instant, precision)
}

fn parse(args: ParseArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let instant =
        Timestamp::parse_rfc3339(args.text.as_bytes()).map_err(|e| input_error(e.to_string()))?;
    let value = instant.unix_nanos().div_euclid(args.unit.nanos());
    writeln!(out, "{value}")?;
    Ok(())
}

/// The JSON form of `mechops time diff --json`.
#[derive(Serialize)]
struct DiffJson {
    from: String,
    to: String,
    duration: String,
    negative: bool,
    days: i64,
    hours: i64,
    minutes: i64,
    seconds: i64,
    milliseconds: i64,
    microseconds: i64,
    nanoseconds: i64,
    total_nanoseconds: i128,
}

fn diff(args: DiffArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let a = instant_arg(&args.a, args.unit, "A")?;
    let b = instant_arg(&args.b, args.unit, "B")?;
    let d = b.since(a);
    if args.json {
        let p = d.breakdown();
        let exact = |t: Timestamp| {
            let mut buf = [0u8; MAX_RFC3339_LEN];
            let format = Rfc3339Format::new(Precision::minimal_for(t));
            let n = format.format(t, &mut buf).unwrap_or(0);
            String::from_utf8_lossy(&buf[..n]).into_owned()
        };
        let json = DiffJson {
            from: exact(a),
            to: exact(b),
            duration: d.to_string(),
            negative: d.is_negative(),
            days: p.days,
            hours: p.hours,
            minutes: p.minutes,
            seconds: p.seconds,
            milliseconds: p.millis,
            microseconds: p.micros,
            nanoseconds: p.nanos,
            total_nanoseconds: d.as_nanos(),
        };
        // Rendered first so that a closed stdout stays an I/O error.
        let text = serde_json::to_string(&json).context("rendering JSON")?;
        writeln!(out, "{text}")?;
    } else {
        writeln!(out, "{d}")?;
    }
    Ok(())
}

fn range(args: RangeArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let placement = args.zone.resolve()?;
    let start = instant_arg(&args.start, args.unit, "START")?;
    let duration = duration_arg(&args.duration, "DURATION")?;
    let range = TimeRange::new(start, duration)
        .map_err(|e| input_error(format!("range {} + {duration}: {e}", args.start)))?;
    let step = args
        .step
        .as_deref()
        .map(|s| duration_arg(s, "--step"))
        .transpose()?;
    let precision = match args.precision {
        Some(p) => p.precision(),
        None => {
            // The fraction of every instant printed is fixed by the start and
            // the step (or the end), so these two choose the digits needed.
            let other = match step {
                // Only the step's fraction of a second matters.
                Some(step) => Timestamp::from_unix(0, step.subsec_nanos_floor())
                    .unwrap_or(Timestamp::UNIX_EPOCH),
                None => range.end(),
            };
            Precision::minimal_for(start).max(Precision::minimal_for(other))
        }
    };
    match step {
        None => {
            placement.write(out, range.start(), precision)?;
            placement.write(out, range.end(), precision)?;
        }
        Some(step) => {
            let iter = range
                .iter(step)
                .map_err(|e| input_error(format!("--step {step}: {e}")))?;
            for instant in iter {
                placement.write(out, instant, precision)?;
            }
        }
    }
    Ok(())
}

/// An instant given as RFC 3339 or as an integer in `unit`.
fn instant_arg(text: &str, unit: UnitArg, what: &str) -> anyhow::Result<Timestamp> {
    if let Some(instant) = integer_instant(text, unit)? {
        return Ok(instant);
    }
    Timestamp::parse_rfc3339(text.as_bytes()).map_err(|e| {
        input_error(format!(
            "{what} {text:?} is neither an integer in {} nor RFC 3339: {e}",
            unit.name()
        ))
    })
}

pub(crate) fn duration_arg(text: &str, what: &str) -> anyhow::Result<SignedDuration> {
    SignedDuration::parse(text.as_bytes()).map_err(|e| input_error(format!("{what} {text:?}: {e}")))
}

/// `Ok(None)` when `text` is not an integer at all; an error when it is one
/// but names an instant outside 0001..=9999.
fn integer_instant(text: &str, unit: UnitArg) -> anyhow::Result<Option<Timestamp>> {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let negative = text.starts_with('-');
    let out_of_range =
        |e: TimestampError| input_error(format!("{text} {} is out of range: {e}", unit.name()));
    let side = if negative {
        TimestampError::BeforeMin
    } else {
        TimestampError::AfterMax
    };
    let value: i128 = text.parse().map_err(|_| out_of_range(side))?;
    let nanos = value
        .checked_mul(unit.nanos())
        .ok_or_else(|| out_of_range(side))?;
    Timestamp::from_unix_nanos(nanos)
        .map(Some)
        .map_err(out_of_range)
}
