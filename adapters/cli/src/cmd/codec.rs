//! `mechops pack`, `unpack`, `inspect` and `keygen`.
//!
//! Every read is bounded before anything is allocated for it: `pack` reads
//! at most `--max-input` bytes of JSON; `unpack` reads the 28-byte header
//! first, refuses a frame that declares more than `--max-size` bytes, then
//! reads exactly the frame (at most that limit plus the header and the
//! encryption overhead); `inspect` decodes the header alone and counts the
//! rest of the frame without keeping it; key files are read up to 256 bytes.
//! A reader that finds one byte more than it may take stops and refuses the
//! input, so `mechops pack < /dev/zero` ends at the limit.
//!
//! Every command does its work in memory and writes its output only once
//! everything has been verified: a corrupt, truncated, tampered, oversized or
//! wrongly keyed frame produces no output at all, one line on stderr and exit
//! code 2. An `-o` file is written under a temporary name, synced and renamed
//! into place (see `mechops_std::durable`), so a failed write (a full disk)
//! leaves the old file or none, never a partial one, and exits with code 1.
//!
//! postcard is not self-describing, so `pack --format postcard` writes the
//! JSON as a [`Value`] tree (each node tagged with its kind) and `unpack`
//! reads postcard frames back as that tree. JSON, MessagePack and CBOR frames
//! hold the JSON value directly in their own data model.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use mechops_std::codec::{
    self, CompressionPolicy, DEFAULT_LEVEL, DEFAULT_MAX_DECODED_SIZE, DEFAULT_THRESHOLD, Format,
    FrameError, FrameHeader, FrameIoError, Key, KeyFileError, MAX_LEVEL, Options, Value,
};

use crate::output::{WRITING_STDOUT, bad_input, input_error};

/// The default `pack --max-input`: 64 MiB, the same as `unpack --max-size`.
const DEFAULT_MAX_INPUT: u64 = DEFAULT_MAX_DECODED_SIZE as u64;

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
    /// Refuse JSON input longer than this many bytes.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_INPUT)]
    max_input: u64,
    /// Read JSON from this file instead of stdin.
    #[arg(short, long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Write the frame to this file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

impl PackArgs {
    /// Whether the frame goes to standard output.
    pub(crate) fn writes_stdout(&self) -> bool {
        self.output.is_none()
    }
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
    /// Refuse frames whose payload would decode to more bytes than this,
    /// from the header, before the body is read.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_DECODED_SIZE)]
    max_size: usize,
    /// Read the frame from this file instead of stdin.
    #[arg(short, long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Write to this file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

impl UnpackArgs {
    /// Whether the result goes to standard output.
    pub(crate) fn writes_stdout(&self) -> bool {
        self.output.is_none()
    }
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
    // The key first: a key file problem is reported before any input is read.
    let mut options = Options::new(args.format.into())
        .compression(args.compress.into())
        .level(args.level);
    if let Some(path) = &args.key_file {
        options = options.key(load_key(path)?);
    }
    let input = read_json(args.input.as_deref(), args.max_input)?;
    let json: serde_json::Value = serde_json::from_slice(&input)
        .map_err(|err| bad_input(err).context("input is not valid JSON"))?;
    let packed = match options.format {
        Format::Postcard => codec::serialize(&Value::from(json), &options),
        _ => codec::serialize(&json, &options),
    }
    .map_err(|err| codec_error(err, "cannot pack"))?;
    write_output(args.output.as_deref(), &packed.data)
}

/// Runs `mechops unpack`.
pub(crate) fn unpack(args: UnpackArgs) -> anyhow::Result<()> {
    let mut options = Options::default().max_decoded_size(args.max_size);
    if let Some(path) = &args.key_file {
        options = options.key(load_key(path)?);
    }
    let input = read_frame(args.input.as_deref(), args.max_size)?;
    let (header, payload) =
        codec::open(&input, &options).map_err(|err| codec_error(err, "cannot unpack"))?;
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
    let header = read_header(args.input.as_deref())?;
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
    codec::write_key_file(&args.output, &key).map_err(key_file_error)
}

fn load_key(path: &Path) -> anyhow::Result<Key> {
    codec::read_key_file(path).map_err(key_file_error)
}

/// The OS failing to supply a nonce is an I/O failure; every other codec
/// error is about the input.
fn codec_error(err: codec::Error, what: &'static str) -> anyhow::Error {
    match err {
        codec::Error::NonceSourceFailed => anyhow::Error::new(err).context(what),
        _ => bad_input(err).context(what),
    }
}

/// A key file that cannot be opened, read or written is an I/O failure;
/// every other key file problem is bad input.
fn key_file_error(err: KeyFileError) -> anyhow::Error {
    match err {
        KeyFileError::Io { .. } => anyhow::Error::new(err),
        _ => bad_input(err),
    }
}

/// Where a command reads from, and its name for messages.
struct Input {
    reader: Box<dyn Read>,
    name: String,
}

impl Input {
    /// The `-i` file, or standard input.
    fn open(path: Option<&Path>) -> anyhow::Result<Self> {
        Ok(match path {
            Some(path) => Self {
                reader: Box::new(
                    File::open(path).with_context(|| format!("opening {}", path.display()))?,
                ),
                name: path.display().to_string(),
            },
            None => Self {
                reader: Box::new(io::stdin().lock()),
                name: String::from("stdin"),
            },
        })
    }

    fn io_context(&self, err: impl Into<anyhow::Error>) -> anyhow::Error {
        err.into().context(format!("reading {}", self.name))
    }

    /// Refuses the input if anything follows the `frame_len` bytes read.
    fn expect_end(&mut self, frame_len: usize, command: &str) -> anyhow::Result<()> {
        let mut more = Vec::with_capacity(1);
        let read = (&mut self.reader)
            .take(1)
            .read_to_end(&mut more)
            .map_err(|err| self.io_context(err))?;
        if read == 0 {
            return Ok(());
        }
        Err(input_error(format!(
            "cannot {command}: trailing bytes after the {frame_len}-byte frame"
        )))
    }
}

/// Reads at most `limit` bytes of JSON.
fn read_json(path: Option<&Path>, limit: u64) -> anyhow::Result<Vec<u8>> {
    let mut input = Input::open(path)?;
    let mut bytes = Vec::new();
    (&mut input.reader)
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|err| input.io_context(err))?;
    if bytes.len() as u64 > limit {
        return Err(input_error(format!(
            "{}: JSON input is longer than the limit of {limit} bytes (see --max-input)",
            input.name
        )));
    }
    Ok(bytes)
}

/// Reads one whole frame, refusing it from its header when it declares more
/// than `max_size` bytes, and refusing anything after it.
fn read_frame(path: Option<&Path>, max_size: usize) -> anyhow::Result<Vec<u8>> {
    let mut input = Input::open(path)?;
    let frame = match codec::read_frame(&mut input.reader, max_size) {
        Ok(Some(frame)) => frame,
        Ok(None) => {
            let empty = FrameError::Truncated {
                needed: FrameHeader::LEN,
            };
            return Err(bad_input(empty).context("cannot unpack"));
        }
        Err(FrameIoError::Io(err)) => return Err(input.io_context(err)),
        Err(err @ FrameIoError::Truncated { .. }) => {
            return Err(input_error(format!(
                "cannot unpack: frame truncated: {err}"
            )));
        }
        Err(err) => return Err(bad_input(err).context("cannot unpack")),
    };
    input.expect_end(frame.len(), "unpack")?;
    Ok(frame)
}

/// Decodes a frame's header from its first 28 bytes, then checks that the
/// input holds exactly the frame it declares, reading the body through a
/// small buffer that keeps none of it.
fn read_header(path: Option<&Path>) -> anyhow::Result<FrameHeader> {
    let mut input = Input::open(path)?;
    let mut bytes = Vec::with_capacity(FrameHeader::LEN);
    (&mut input.reader)
        .take(FrameHeader::LEN as u64)
        .read_to_end(&mut bytes)
        .map_err(|err| input.io_context(err))?;
    let header =
        FrameHeader::decode(&bytes).map_err(|err| bad_input(err).context("cannot inspect"))?;
    let body = (header.frame_len() - FrameHeader::LEN) as u64;
    let read = io::copy(&mut (&mut input.reader).take(body), &mut io::sink())
        .map_err(|err| input.io_context(err))?;
    if read < body {
        let cut = FrameError::Truncated {
            needed: header.frame_len(),
        };
        return Err(bad_input(cut).context("cannot inspect"));
    }
    input.expect_end(header.frame_len(), "inspect")?;
    Ok(header)
}

/// Writes `bytes` to the `-o` file (replaced whole or left as it was) or to
/// standard output.
fn write_output(path: Option<&Path>, bytes: &[u8]) -> anyhow::Result<()> {
    match path {
        Some(path) => mechops_std::durable::replace(path, bytes)
            .with_context(|| format!("writing {}", path.display())),
        None => {
            let mut out = io::stdout().lock();
            out.write_all(bytes)
                .and_then(|()| out.flush())
                .context(WRITING_STDOUT)
        }
    }
}
