//! `mechops uuid`: generate UUIDs in bulk, or inspect existing ones.
//!
//! Generation encodes whole batches into one large buffer and writes each
//! batch with a single call, so ten million UUIDs cost a few hundred writes.
//! Inspection validates every argument before printing anything, so a bad
//! argument leaves no partial output.

use std::io::{self, Write};

use mechops_core::time::{Precision, Rfc3339Format, Timestamp};
use mechops_core::uuid::{Case, Format, Uuid, Variant};
use mechops_std::uuid as generators;

use crate::output::input_error;

/// Arguments of `mechops uuid`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct UuidArgs {
    #[command(subcommand)]
    command: Option<UuidCommand>,
    #[command(flatten)]
    generate: GenerateArgs,
}

#[derive(Debug, clap::Subcommand)]
enum UuidCommand {
    /// Print the version, variant and (for v7) embedded time of UUIDs.
    Inspect(InspectArgs),
}

#[derive(Debug, clap::Args)]
struct GenerateArgs {
    /// How many UUIDs to print.
    #[arg(short = 'n', long = "count", default_value_t = 1)]
    count: u64,
    /// Which generator to use.
    #[arg(long, value_enum, default_value_t = Kind::Secure)]
    kind: Kind,
    /// The text form.
    #[arg(long, value_enum, default_value_t = FormatArg::Hyphenated)]
    format: FormatArg,
    /// Uppercase hex digits.
    #[arg(long)]
    upper: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Kind {
    /// v4 from xoshiro256++ seeded by the OS: unique, not unguessable.
    Fast,
    /// v4 with every random bit from the OS.
    Secure,
    /// v7: Unix milliseconds, then a counter, then random bits; increasing.
    V7,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum FormatArg {
    /// 8-4-4-4-12 hex digits.
    Hyphenated,
    /// 32 hex digits.
    Simple,
    /// urn:uuid: and the hyphenated form.
    Urn,
    /// The hyphenated form in braces.
    Braced,
}

impl From<FormatArg> for Format {
    fn from(arg: FormatArg) -> Self {
        match arg {
            FormatArg::Hyphenated => Self::Hyphenated,
            FormatArg::Simple => Self::Simple,
            FormatArg::Urn => Self::Urn,
            FormatArg::Braced => Self::Braced,
        }
    }
}

#[derive(Debug, clap::Args)]
struct InspectArgs {
    /// UUIDs in any of the four forms, either case.
    #[arg(value_name = "UUID")]
    uuids: Vec<String>,
    /// One JSON object per line instead of `key=value` text.
    #[arg(long)]
    json: bool,
}

/// Runs `mechops uuid`.
pub(crate) fn run(args: UuidArgs) -> anyhow::Result<()> {
    match args.command {
        Some(UuidCommand::Inspect(inspect_args)) => inspect(&inspect_args),
        None => generate(&args.generate),
    }
}

/// UUIDs generated and encoded per write.
const BATCH: usize = 16 * 1024;

fn generate(args: &GenerateArgs) -> anyhow::Result<()> {
    let format = Format::from(args.format);
    let case = if args.upper { Case::Upper } else { Case::Lower };
    let line = format.encoded_len() + 1;
    let mut ids = vec![Uuid::NIL; BATCH];
    let mut text = vec![0u8; BATCH * line];
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut left = args.count;
    while left > 0 {
        let n = usize::try_from(left.min(BATCH as u64)).unwrap_or(BATCH);
        let batch = &mut ids[..n];
        match args.kind {
            Kind::Fast => generators::fill_fast_uuids(batch)?,
            Kind::Secure => generators::fill_secure_uuids(batch)?,
            Kind::V7 => {
                for slot in batch.iter_mut() {
                    *slot = generators::try_generate_v7()?;
                }
            }
        }
        for (uuid, dst) in batch.iter().zip(text.chunks_exact_mut(line)) {
            // `dst` is exactly one line long, so encoding cannot fail.
            uuid.encode(format, case, dst)?;
            dst[line - 1] = b'\n';
        }
        out.write_all(&text[..n * line])?;
        left -= n as u64;
    }
    out.flush()?;
    Ok(())
}

/// What `inspect` reports about one UUID.
struct Report {
    uuid: Uuid,
    unix_ms: Option<u64>,
    /// RFC 3339 with milliseconds, when the v7 time is within 0001-9999.
    time: Option<String>,
}

impl Report {
    fn new(uuid: Uuid) -> Self {
        let unix_ms = uuid.unix_millis();
        let time = unix_ms.and_then(|ms| {
            let ts = Timestamp::from_unix_millis(i64::try_from(ms).ok()?).ok()?;
            let mut buf = [0u8; 40];
            let n = ts
                .format_rfc3339(Rfc3339Format::new(Precision::Millis), &mut buf)
                .ok()?;
            String::from_utf8(buf[..n].to_vec()).ok()
        });
        Self {
            uuid,
            unix_ms,
            time,
        }
    }

    fn variant(&self) -> &'static str {
        match self.uuid.variant() {
            Variant::Ncs => "ncs",
            Variant::Rfc9562 => "rfc9562",
            Variant::Microsoft => "microsoft",
            _ => "future",
        }
    }

    fn text(&self) -> String {
        let mut line = format!(
            "uuid={} version={} variant={}",
            self.uuid,
            self.uuid.version().number(),
            self.variant()
        );
        if let Some(ms) = self.unix_ms {
            line.push_str(&format!(" unix_ms={ms}"));
            match &self.time {
                Some(time) => line.push_str(&format!(" time={time}")),
                None => line.push_str(" time=beyond-9999"),
            }
        }
        line
    }

    fn json(&self) -> serde_json::Value {
        let mut value = serde_json::json!({
            "uuid": self.uuid.to_string(),
            "version": self.uuid.version().number(),
            "variant": self.variant(),
        });
        if let (Some(ms), Some(map)) = (self.unix_ms, value.as_object_mut()) {
            map.insert("unix_ms".into(), ms.into());
            map.insert(
                "time".into(),
                self.time
                    .clone()
                    .map_or(serde_json::Value::Null, serde_json::Value::String),
            );
        }
        value
    }
}

fn inspect(args: &InspectArgs) -> anyhow::Result<()> {
    if args.uuids.is_empty() {
        return Err(input_error(
            "uuid inspect: give at least one UUID to inspect",
        ));
    }
    let reports = args
        .uuids
        .iter()
        .map(|arg| {
            Uuid::parse_str(arg)
                .map(Report::new)
                .map_err(|err| input_error(format!("{}: {err}", arg.escape_debug())))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    for report in &reports {
        if args.json {
            writeln!(out, "{}", report.json())?;
        } else {
            writeln!(out, "{}", report.text())?;
        }
    }
    out.flush()?;
    Ok(())
}
