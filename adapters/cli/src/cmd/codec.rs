//! `mechops pack`, `unpack`, `inspect` and `keygen`.
//!
//! Every command reads its whole input, does all of its work in memory and
//! writes its output only once everything has been verified: a corrupt,
//! truncated, tampered, oversized or wrongly keyed frame produces no output at
//! all, one line on stderr and exit code 2.
//!
//! postcard is not self-describing, so `pack --format postcard` writes the
//! JSON as a [`Value`] tree (each node tagged with its kind) and `unpack`
//! reads postcard frames back as that tree. JSON, MessagePack and CBOR frames
//! hold the JSON value directly in their own data model.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use mechops_std::codec::{
    self, CompressionPolicy, DEFAULT_LEVEL, DEFAULT_MAX_DECODED_SIZE, DEFAULT_THRESHOLD, Format,
    FrameHeader, Key, MAX_LEVEL, Options, Value,
};

use crate::output::input_error;

/// A payload format on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum FormatArg {
    /// postcard, carrying the JSON as a self-describing value tree.
    Postcard,
    /// JSON text.
    Json,
    /// MessagePack.
    Msgpack,
    /// CBOR.
    Cbor,
}

impl From<FormatArg> for Format {
    fn from(arg: FormatArg) -> Self {
        match arg {
            FormatArg::Postcard => Self::Postcard,
            FormatArg::Json => Self::Json,
            FormatArg::Msgpack => Self::MessagePack,
            FormatArg::Cbor => Self::Cbor,
        }
    }
}

/// A compression policy on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum CompressArg {
    /// Compress payloads of 1024 bytes or more when that shrinks them.
    Auto,
    /// Compress whenever that shrinks the payload.
    Always,
    /// Never compress.
    Never,
}

impl From<CompressArg> for CompressionPolicy {
    fn from(arg: CompressArg) -> Self {
        match arg {
            CompressArg::Auto => Self::Auto {
                threshold: DEFAULT_THRESHOLD,
            },
            CompressArg::Always => Self::Always,
            CompressArg::Never => Self::Never,
        }
    }
}

/// Arguments of `mechops pack`.
#[derive(Debug, clap::Args)]
pub(crate) struct PackArgs {
    /// Payload format inside the frame.
    #[arg(long, value_enum, default_value_t = FormatArg::Postcard)]
    format: FormatArg,
    /// When to compress the payload with raw DEFLATE.
    #[arg(long, value_enum, default_value_t = CompressArg::Auto)]
    compress: CompressArg,
    /// DEFLATE level, 0 (store) to 10 (smallest, slowest).
    #[arg(long, default_value_t = DEFAULT_LEVEL,
          value_parser = clap::value_parser!(u8).range(0..=i64::from(MAX_LEVEL)))]
    level: u8,
    /// Encrypt with the key in this file (see `mechops keygen`).
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// Read JSON from this file instead of stdin.
    #[arg(short, long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Write the frame to this file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Arguments of `mechops unpack`.
#[derive(Debug, clap::Args)]
pub(crate) struct UnpackArgs {
    /// Decrypt with the key in this file.
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// Write the inner payload exactly as serialized, decrypted and decompressed.
    #[arg(long)]
    raw: bool,
    /// Refuse frames whose payload would decode to more bytes than this.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_DECODED_SIZE)]
    max_size: usize,
    /// Read the frame from this file instead of stdin.
    #[arg(short, long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Write to this file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Arguments of `mechops inspect`.
#[derive(Debug, clap::Args)]
pub(crate) struct InspectArgs {
    /// Print the header as one JSON object.
    #[arg(long)]
    json: bool,
    /// Read the frame from this file instead of stdin.
    #[arg(short, long, value_name = "FILE")]
    input: Option<PathBuf>,
}

/// Arguments of `mechops keygen`.
#[derive(Debug, clap::Args)]
pub(crate) struct KeygenArgs {
    /// The key file to create (it must not exist yet).
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
}

/// Runs `mechops pack`.
pub(crate) fn pack(args: PackArgs) -> anyhow::Result<()> {
    let input = read_input(args.input.as_deref())?;
    let json: serde_json::Value = serde_json::from_slice(&input)
        .map_err(|err| input_error(format!("input is not valid JSON: {err}")))?;
    let mut options = Options::new(args.format.into())
        .compression(args.compress.into())
        .level(args.level);
    if let Some(path) = &args.key_file {
        options = options.key(load_key(path)?);
    }
    let packed = match options.format {
        Format::Postcard => codec::serialize(&Value::from(json), &options),
        _ => codec::serialize(&json, &options),
    }
    .map_err(|err| input_error(format!("cannot pack: {err}")))?;
    write_output(args.output.as_deref(), &packed.data)
}

/// Runs `mechops unpack`.
pub(crate) fn unpack(args: UnpackArgs) -> anyhow::Result<()> {
    let input = read_input(args.input.as_deref())?;
    let mut options = Options::default().max_decoded_size(args.max_size);
    if let Some(path) = &args.key_file {
        options = options.key(load_key(path)?);
    }
    let (header, payload) = codec::open(&input, &options)
        .map_err(|err| input_error(format!("cannot unpack: {err}")))?;
    if args.raw {
        return write_output(args.output.as_deref(), &payload);
    }
    let json = decode_json(header.format(), &payload)
        .map_err(|err| input_error(format!("cannot unpack: {err}")))?;
    let mut text = serde_json::to_vec(&json).context("rendering JSON")?;
    text.push(b'\n');
    write_output(args.output.as_deref(), &text)
}

/// Decodes a verified payload into a JSON value, whatever its format.
fn decode_json(format: Format, payload: &[u8]) -> Result<serde_json::Value, String> {
    use mechops_std::codec::{Cbor, Json, MessagePack, PayloadCodec, Postcard};
    let decoded = match format {
        Format::Postcard => {
            Value::check_postcard(payload).map_err(|err| format!("postcard payload: {err}"))?;
            let tree: Value = Postcard::decode(payload).map_err(|err| err.to_string())?;
            return serde_json::Value::try_from(tree).map_err(|err| err.to_string());
        }
        Format::Json => Json::decode(payload),
        Format::MessagePack => MessagePack::decode(payload),
        Format::Cbor => Cbor::decode(payload),
        other => return Err(format!("format {other} cannot be shown as JSON")),
    };
    decoded.map_err(|err| err.to_string())
}

/// Runs `mechops inspect`.
pub(crate) fn inspect(args: InspectArgs) -> anyhow::Result<()> {
    let input = read_input(args.input.as_deref())?;
    let header =
        codec::inspect(&input).map_err(|err| input_error(format!("cannot inspect: {err}")))?;
    let mut text = if args.json {
        let mut text = serde_json::to_string(&header_json(&header)).context("rendering JSON")?;
        text.push('\n');
        text
    } else {
        header_text(&header)
    };
    if text.is_empty() {
        text.push('\n');
    }
    write_output(None, text.as_bytes())
}

fn header_json(header: &FrameHeader) -> serde_json::Value {
    serde_json::json!({
        "version": mechops_std::codec::VERSION,
        "format": header.format().name(),
        "compression": header.compression().name(),
        "encryption": header.encryption().name(),
        "original_size": header.original_size(),
        "stored_size": header.stored_len(),
        "frame_size": header.frame_len(),
        "ratio": header.ratio(),
        "checksum": header.checksum().map(|c| format!("{c:#010x}")),
    })
}

fn header_text(header: &FrameHeader) -> String {
    let checksum = header.checksum().map_or_else(
        || String::from("sealed inside the ciphertext"),
        |c| format!("{c:#010x}"),
    );
    format!(
        "version      {}\nformat       {}\ncompression  {}\nencryption   {}\n\
         original     {} bytes\nstored       {} bytes\nframe        {} bytes\n\
         ratio        {:.4}\nchecksum     {}\n",
        mechops_std::codec::VERSION,
        header.format(),
        header.compression(),
        header.encryption(),
        header.original_size(),
        header.stored_len(),
        header.frame_len(),
        header.ratio(),
        checksum,
    )
}

/// Runs `mechops keygen`.
pub(crate) fn keygen(args: KeygenArgs) -> anyhow::Result<()> {
    let key = codec::generate_key_bytes().context("reading OS entropy")?;
    codec::write_key_file(&args.output, &key).map_err(|err| input_error(err.to_string()))
}

fn load_key(path: &Path) -> anyhow::Result<Key> {
    codec::read_key_file(path).map_err(|err| input_error(err.to_string()))
}

fn read_input(path: Option<&Path>) -> anyhow::Result<Vec<u8>> {
    match path {
        Some(path) => {
            fs::read(path).map_err(|err| input_error(format!("{}: {err}", path.display())))
        }
        None => {
            let mut bytes = Vec::new();
            io::stdin()
                .lock()
                .read_to_end(&mut bytes)
                .context("reading stdin")?;
            Ok(bytes)
        }
    }
}

fn write_output(path: Option<&Path>, bytes: &[u8]) -> anyhow::Result<()> {
    match path {
        Some(path) => fs::write(path, bytes).with_context(|| format!("writing {}", path.display())),
        None => {
            let mut out = io::stdout().lock();
            out.write_all(bytes)?;
            out.flush()?;
            Ok(())
        }
    }
}
