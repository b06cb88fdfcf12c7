//! `mechops workspace --root DIR <command>`: the confined, crash-safe file
//! store of `mechops_std::workspace` from the command line.
//!
//! The root is created if it does not exist. Every path is relative to it;
//! the library refuses escaping paths, and this module maps its errors onto
//! the exit codes of the `output` module: a refused path, a missing file, a
//! file whose content fails its hash, a malformed batch line, a bad
//! duration or glob and a refused archive are bad input (exit code 2); any
//! other failure of the file system is an I/O failure (exit code 1), and so
//! is a `verify` that finds a problem (after printing what it found).
//!
//! `batch` reads and checks every line before running any operation, so a
//! malformed line changes nothing.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use base64::Engine as _;
use clap::{Args, Subcommand, ValueEnum};
use mechops_core::time::{MAX_RFC3339_LEN, Precision, Rfc3339Format, Timestamp};
use mechops_std::workspace::{
    ArchiveCompression, Backup, BatchOp, BatchOptions, Cleanup, CompressionPolicy, Durability,
    Error, FileInfo, Info, Options, Verification, Workspace,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::cmd::time::duration_arg;
use crate::output::{bad_input, input_error};

/// Arguments of `mechops workspace`.
#[derive(Debug, Args)]
pub(crate) struct WorkspaceArgs {
    /// The workspace's root directory (created if it does not exist).
    #[arg(long, value_name = "DIR")]
    root: PathBuf,
    #[command(subcommand)]
    command: WorkspaceCommand,
}

#[derive(Debug, Subcommand)]
enum WorkspaceCommand {
    /// Write a file atomically (durably unless `--no-sync`).
    Put(PutArgs),
    /// Print a file's original bytes.
    Get(GetArgs),
    /// List the files, one path per line, sorted.
    Ls(LsArgs),
    /// Remove a file.
    Rm(RmArgs),
    /// Counts, sizes, compression, ages, the largest files, cache figures.
    Info(JsonArgs),
    /// Run operations read as JSON lines; prints a result per operation.
    Batch(BatchArgs),
    /// Remove files older than a duration.
    Cleanup(CleanupArgs),
    /// Write the workspace (or the files matching a glob) to a tar archive.
    Backup(BackupArgs),
    /// Replace the workspace's content with a verified archive.
    Restore(RestoreArgs),
    /// Report modified, missing and unexpected files (exit code 1 if any).
    Verify(JsonArgs),
}

#[derive(Debug, Args)]
struct PutArgs {
    /// The file's path in the workspace.
    path: String,
    /// Read the content from this file instead of standard input.
    #[arg(short = 'i', long = "input", value_name = "FILE")]
    input: Option<PathBuf>,
    /// Whether to store the content compressed (`auto`: from 1024 bytes).
    #[arg(long, value_enum, default_value_t = CompressArg::Auto)]
    compress: CompressArg,
    /// Skip the `fsync`s: atomic against a crash of the process, not a power cut.
    #[arg(long)]
    no_sync: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CompressArg {
    /// Compress from 1024 bytes when that is smaller.
    Auto,
    /// Compress whenever that is smaller.
    Always,
    /// Store as it is.
    Never,
}

#[derive(Debug, Args)]
struct GetArgs {
    /// The file's path in the workspace.
    path: String,
    /// Write to this file (atomically) instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct LsArgs {
    /// Only the files beneath this directory.
    #[arg(default_value = "")]
    prefix: String,
    /// A JSON array of `{"path","size","stored_size","compressed","modified"}`.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct RmArgs {
    /// The file's path in the workspace.
    path: String,
}

#[derive(Debug, Args)]
struct JsonArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct BatchArgs {
    /// Read the operations from this file instead of standard input.
    #[arg(short = 'i', long = "input", value_name = "FILE")]
    input: Option<PathBuf>,
    /// All or nothing, also across a crash.
    #[arg(long)]
    atomic: bool,
    /// Print each result as a JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct CleanupArgs {
    /// Remove files last modified longer ago than this (`90s`, `24h`).
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    older_than: String,
    /// Only files whose path matches (`*` within a name, `**` across directories).
    #[arg(long, value_name = "PATTERN")]
    glob: Option<String>,
    /// List what would be removed, remove nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct BackupArgs {
    /// The archive to write (atomically).
    #[arg(short = 'o', long = "output", value_name = "ARCHIVE")]
    output: PathBuf,
    /// Only the files whose path matches.
    #[arg(long, value_name = "PATTERN")]
    glob: Option<String>,
    /// How the archive is compressed.
    #[arg(long, value_enum, default_value_t = CompressionArg::Zstd)]
    compression: CompressionArg,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CompressionArg {
    /// zstd.
    Zstd,
    /// gzip.
    Gzip,
    /// A plain tar archive.
    None,
}

#[derive(Debug, Args)]
struct RestoreArgs {
    /// The archive to read.
    #[arg(short = 'i', long = "input", value_name = "ARCHIVE")]
    input: PathBuf,
}

impl WorkspaceArgs {
    /// Whether the command's results go to standard output.
    pub(crate) fn writes_stdout(&self) -> bool {
        match &self.command {
            WorkspaceCommand::Put(_) | WorkspaceCommand::Rm(_) => false,
            WorkspaceCommand::Get(args) => args.output.is_none(),
            _ => true,
        }
    }
}

/// Runs `mechops workspace`.
pub(crate) fn run(args: WorkspaceArgs) -> anyhow::Result<()> {
    let root = args.root;
    // Opened by each command but `restore`, which swaps a fresh directory in
    // for the root.
    let open = || {
        Workspace::open(&root, Options::default())
            .map_err(|e| ws_error(e).context(format!("cannot open workspace {}", root.display())))
    };
    let mut out = BufWriter::new(io::stdout().lock());
    match args.command {
        WorkspaceCommand::Put(a) => put(&open()?, a)?,
        WorkspaceCommand::Get(a) => get(&open()?, a, &mut out)?,
        WorkspaceCommand::Ls(a) => ls(&open()?, &a, &mut out)?,
        WorkspaceCommand::Rm(a) => open()?.delete(&a.path).map_err(ws_error)?,
        WorkspaceCommand::Info(a) => info(&open()?, a.json, &mut out)?,
        WorkspaceCommand::Batch(a) => batch(&open()?, &a, &mut out)?,
        WorkspaceCommand::Cleanup(a) => cleanup(&open()?, &a, &mut out)?,
        WorkspaceCommand::Backup(a) => backup(&open()?, &a, &mut out)?,
        WorkspaceCommand::Restore(a) => restore(&root, &a, &mut out)?,
        WorkspaceCommand::Verify(a) => verify(&open()?, a.json, &mut out)?,
    }
    Ok(out.flush()?)
}

/// The library's errors about what the user asked for are bad input; the
/// rest (including kinds added later) are I/O failures.
fn ws_error(err: Error) -> anyhow::Error {
    if is_input(&err) {
        bad_input(err)
    } else {
        anyhow::Error::new(err)
    }
}

fn is_input(err: &Error) -> bool {
    match err {
        Error::InvalidPath { .. }
        | Error::Reserved { .. }
        | Error::Escapes { .. }
        | Error::Symlink { .. }
        | Error::NotFound { .. }
        | Error::WrongKind { .. }
        | Error::Corrupt { .. }
        | Error::Archive(_) => true,
        // A malformed glob.
        Error::Io { source, .. } => source.kind() == io::ErrorKind::InvalidInput,
        Error::Batch { source, .. } => is_input(source),
        _ => false,
    }
}

/// Reads all of `-i FILE` or standard input; a missing file is bad input.
fn read_input(path: Option<&Path>) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    match path {
        Some(path) => {
            let mut file = File::open(path).map_err(|e| {
                let err = anyhow::Error::new(e);
                let err = if err
                    .downcast_ref::<io::Error>()
                    .is_some_and(|e| e.kind() == io::ErrorKind::NotFound)
                {
                    input_error("no such file")
                } else {
                    err
                };
                err.context(format!("opening {}", path.display()))
            })?;
            file.read_to_end(&mut bytes)
                .with_context(|| format!("reading {}", path.display()))?;
        }
        None => {
            io::stdin()
                .lock()
                .read_to_end(&mut bytes)
                .context("reading stdin")?;
        }
    }
    Ok(bytes)
}

fn put(ws: &Workspace, args: PutArgs) -> anyhow::Result<()> {
    let content = read_input(args.input.as_deref())?;
    let mut options = ws.write_options();
    options.compression = match args.compress {
        CompressArg::Auto => options.compression,
        CompressArg::Always => CompressionPolicy::Always,
        CompressArg::Never => CompressionPolicy::Never,
    };
    if args.no_sync {
        options.durability = Durability::None;
    }
    ws.write_with(&args.path, &content, options)
        .map_err(ws_error)
}

fn get(ws: &Workspace, args: GetArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let content = ws.read_shared(&args.path).map_err(ws_error)?;
    match &args.output {
        Some(path) => mechops_std::durable::replace(path, &content)
            .with_context(|| format!("writing {}", path.display())),
        None => Ok(out.write_all(&content)?),
    }
}

/// RFC 3339 in UTC with as many fraction digits as the instant needs.
fn rfc3339(instant: Timestamp) -> String {
    let mut buf = [0u8; MAX_RFC3339_LEN];
    Rfc3339Format::new(Precision::minimal_for(instant))
        .format(instant, &mut buf)
        .map_or_else(
            |_| instant.to_string(),
            |n| String::from_utf8_lossy(&buf[..n]).into_owned(),
        )
}

fn file_json(file: &FileInfo) -> Value {
    json!({
        "path": file.path,
        "size": file.size,
        "stored_size": file.stored_size,
        "compressed": file.compressed,
        "modified": rfc3339(file.modified),
    })
}

fn ls(ws: &Workspace, args: &LsArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let files = ws.list(&args.prefix).map_err(ws_error)?;
    if args.json {
        let all: Vec<Value> = files.iter().map(file_json).collect();
        serde_json::to_writer(&mut *out, &all)?;
        writeln!(out)?;
    } else {
        for file in &files {
            writeln!(out, "{}", file.path)?;
        }
    }
    Ok(())
}

fn info_json(info: &Info) -> Value {
    let largest: Vec<Value> = info
        .largest
        .iter()
        .map(|(path, size)| json!({"path": path, "size": size}))
        .collect();
    json!({
        "files": info.files,
        "directories": info.directories,
        "logical_bytes": info.logical_bytes,
        "stored_bytes": info.stored_bytes,
        "disk_bytes": info.disk_bytes,
        "compressed_files": info.compressed_files,
        "ratio": info.ratio,
        "oldest": info.oldest.map(rfc3339),
        "newest": info.newest.map(rfc3339),
        "largest": largest,
        "cache": {
            "hits": info.cache.hits,
            "misses": info.cache.misses,
            "stale": info.cache.stale,
            "evictions": info.cache.evictions,
            "entries": info.cache.entries,
            "bytes": info.cache.bytes,
        },
    })
}

fn info(ws: &Workspace, as_json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    let info = ws.info().map_err(ws_error)?;
    if as_json {
        serde_json::to_writer(&mut *out, &info_json(&info))?;
        writeln!(out)?;
        return Ok(());
    }
    let when = |t: Option<Timestamp>| t.map_or_else(|| "-".to_owned(), rfc3339);
    writeln!(out, "files: {}", info.files)?;
    writeln!(out, "directories: {}", info.directories)?;
    writeln!(out, "logical bytes: {}", info.logical_bytes)?;
    writeln!(out, "stored bytes: {}", info.stored_bytes)?;
    writeln!(out, "disk bytes: {}", info.disk_bytes)?;
    writeln!(out, "compressed files: {}", info.compressed_files)?;
    writeln!(out, "ratio: {:.3}", info.ratio)?;
    writeln!(out, "oldest: {}", when(info.oldest))?;
    writeln!(out, "newest: {}", when(info.newest))?;
    for (path, size) in &info.largest {
        writeln!(out, "largest: {size} {path}")?;
    }
    let c = info.cache;
    writeln!(
        out,
        "cache: {} hits, {} misses, {} stale, {} evictions, {} entries, {} bytes",
        c.hits, c.misses, c.stale, c.evictions, c.entries, c.bytes
    )?;
    Ok(())
}

/// One line of `batch` input.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
enum Line {
    Write {
        path: String,
        content: Option<String>,
        content_base64: Option<String>,
    },
    Delete {
        path: String,
    },
    Rename {
        from: String,
        to: String,
    },
    Mkdir {
        path: String,
    },
}

impl Line {
    fn into_op(self) -> Result<BatchOp, String> {
        Ok(match self {
            Self::Write {
                path,
                content,
                content_base64,
            } => {
                let content = match (content, content_base64) {
                    (Some(text), None) => text.into_bytes(),
                    (None, Some(encoded)) => base64::engine::general_purpose::STANDARD
                        .decode(encoded.as_bytes())
                        .map_err(|e| format!("content_base64 is not base64: {e}"))?,
                    (Some(_), Some(_)) => {
                        return Err("give either content or content_base64, not both".into());
                    }
                    (None, None) => return Err("a write needs content or content_base64".into()),
                };
                BatchOp::Write { path, content }
            }
            Self::Delete { path } => BatchOp::Delete { path },
            Self::Rename { from, to } => BatchOp::Rename { from, to },
            Self::Mkdir { path } => BatchOp::Mkdir { path },
        })
    }
}

/// Parses every non-blank line; the first malformed one is bad input
/// naming its line number.
fn parse_batch(text: &str) -> anyhow::Result<Vec<BatchOp>> {
    let mut ops = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let op = serde_json::from_str::<Line>(line)
            .map_err(|e| e.to_string())
            .and_then(Line::into_op)
            .map_err(|e| input_error(format!("batch line {}: {e}", index + 1)))?;
        ops.push(op);
    }
    Ok(ops)
}

fn batch(ws: &Workspace, args: &BatchArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let bytes = read_input(args.input.as_deref())?;
    let text = String::from_utf8(bytes).map_err(|_| input_error("batch input is not UTF-8"))?;
    let ops = parse_batch(&text)?;
    let options = BatchOptions {
        atomic: args.atomic,
        ..BatchOptions::default()
    };
    let results = ws.batch(&ops, options).map_err(ws_error)?;
    let mut first_failure = None;
    for (index, result) in results.into_iter().enumerate() {
        match (&result, args.json) {
            (Ok(()), true) => {
                serde_json::to_writer(&mut *out, &json!({"index": index, "ok": true}))?
            }
            (Ok(()), false) => write!(out, "ok")?,
            (Err(e), true) => serde_json::to_writer(
                &mut *out,
                &json!({"index": index, "ok": false, "error": e.to_string()}),
            )?,
            (Err(e), false) => write!(out, "error: {e}")?,
        }
        writeln!(out)?;
        // In a rolled-back atomic batch the others only say "not applied":
        // the cause is the operation that failed.
        match result {
            Err(Error::RolledBack { .. }) | Ok(()) => {}
            Err(e) => {
                first_failure.get_or_insert((index, e));
            }
        }
    }
    match first_failure {
        None => Ok(()),
        Some((index, e)) => {
            out.flush()?;
            Err(ws_error(e).context(format!("batch operation {index} failed")))
        }
    }
}

fn cleanup(ws: &Workspace, args: &CleanupArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let age = duration_arg(&args.older_than, "--older-than")?;
    if age.is_negative() {
        return Err(input_error(format!(
            "--older-than {:?} is negative",
            args.older_than
        )));
    }
    let age = core::time::Duration::new(age.secs_floor().unsigned_abs(), age.subsec_nanos_floor());
    let mut rule = Cleanup::older_than(age).dry_run(args.dry_run);
    if let Some(pattern) = &args.glob {
        rule = rule.glob(pattern).map_err(ws_error)?;
    }
    let report = ws.cleanup(&rule).map_err(ws_error)?;
    if args.json {
        let value = json!({
            "dry_run": args.dry_run,
            "removed": report.removed,
            "removed_dirs": report.removed_dirs,
            "bytes_freed": report.bytes_freed,
        });
        serde_json::to_writer(&mut *out, &value)?;
        writeln!(out)?;
    } else {
        for path in &report.removed {
            writeln!(out, "{path}")?;
        }
    }
    Ok(())
}

fn backup(ws: &Workspace, args: &BackupArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let compression = match args.compression {
        CompressionArg::Zstd => ArchiveCompression::Zstd,
        CompressionArg::Gzip => ArchiveCompression::Gzip,
        CompressionArg::None => ArchiveCompression::None,
    };
    let mut rule = Backup::default().compression(compression);
    if let Some(pattern) = &args.glob {
        rule = rule.glob(pattern).map_err(ws_error)?;
    }
    let report = ws
        .backup(&args.output, &rule)
        .map_err(|e| ws_error(e).context(format!("cannot back up to {}", args.output.display())))?;
    writeln!(
        out,
        "backed up {} files ({} bytes) to {}",
        report.files.len(),
        report.bytes,
        args.output.display()
    )?;
    Ok(())
}

fn restore(root: &Path, args: &RestoreArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let (_, report) = Workspace::restore(root, &args.input, Options::default()).map_err(|e| {
        ws_error(e).context(format!("cannot restore from {}", args.input.display()))
    })?;
    writeln!(
        out,
        "restored {} files ({} bytes)",
        report.files.len(),
        report.bytes
    )?;
    Ok(())
}

fn verification_json(found: &Verification) -> Value {
    json!({
        "ok": found.is_ok(),
        "modified": found.modified,
        "missing": found.missing,
        "unexpected": found.unexpected,
    })
}

fn verify(ws: &Workspace, as_json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    let found = ws.verify().map_err(ws_error)?;
    if as_json {
        serde_json::to_writer(&mut *out, &verification_json(&found))?;
        writeln!(out)?;
    } else if found.is_ok() {
        writeln!(out, "ok")?;
    } else {
        for (what, paths) in [
            ("modified", &found.modified),
            ("missing", &found.missing),
            ("unexpected", &found.unexpected),
        ] {
            for path in paths {
                writeln!(out, "{what} {path}")?;
            }
        }
    }
    if found.is_ok() {
        return Ok(());
    }
    out.flush()?;
    Err(anyhow::anyhow!(
        "verify found {} modified, {} missing and {} unexpected files",
        found.modified.len(),
        found.missing.len(),
        found.unexpected.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_lines_parse_or_name_their_line() {
        let ops = parse_batch(
            "{\"op\":\"write\",\"path\":\"a\",\"content\":\"hi\"}\n\n\
             {\"op\":\"write\",\"path\":\"b\",\"content_base64\":\"AAE=\"}\n\
             {\"op\":\"rename\",\"from\":\"a\",\"to\":\"c\"}\n\
             {\"op\":\"delete\",\"path\":\"b\"}\n{\"op\":\"mkdir\",\"path\":\"d\"}\n",
        )
        .unwrap();
        assert_eq!(
            ops,
            vec![
                BatchOp::Write {
                    path: "a".into(),
                    content: b"hi".to_vec()
                },
                BatchOp::Write {
                    path: "b".into(),
                    content: vec![0, 1]
                },
                BatchOp::Rename {
                    from: "a".into(),
                    to: "c".into()
                },
                BatchOp::Delete { path: "b".into() },
                BatchOp::Mkdir { path: "d".into() },
            ]
        );
        for (text, needle) in [
            ("{\"op\":\"write\",\"path\":\"a\"}", "line 1"),
            ("\n{\"op\":\"chmod\",\"path\":\"a\"}", "line 2"),
            ("{\"op\":\"delete\"}", "path"),
            (
                "{\"op\":\"write\",\"path\":\"a\",\"content_base64\":\"!!\"}",
                "base64",
            ),
            (
                "{\"op\":\"write\",\"path\":\"a\",\"content\":\"x\",\"content_base64\":\"eA==\"}",
                "not both",
            ),
            ("not json", "line 1"),
        ] {
            let err = parse_batch(text).unwrap_err();
            assert!(
                err.chain().any(|c| c.is::<crate::output::InputError>()),
                "{text}"
            );
            let line = crate::output::one_line(&err);
            assert!(line.contains(needle), "{text}: {line}");
        }
    }

    #[test]
    fn refusals_are_input_and_other_failures_are_io() {
        let input = ws_error(Error::Escapes { path: "x".into() });
        assert!(input.chain().any(|c| c.is::<crate::output::InputError>()));
        let io_err = ws_error(Error::Io {
            op: "write",
            path: "x".into(),
            source: io::Error::other("disk full"),
        });
        assert!(!io_err.chain().any(|c| c.is::<crate::output::InputError>()));
        let nested = ws_error(Error::Batch {
            index: 3,
            source: Box::new(Error::NotFound { path: "y".into() }),
        });
        assert!(nested.chain().any(|c| c.is::<crate::output::InputError>()));
    }
}
