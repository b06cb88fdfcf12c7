//! `mechops`: the command line over the mechops crates.
//!
//! Results go to stdout, one per line. Every failure is one line on stderr:
//! bad usage or input exits with code 2, an I/O failure with code 1 (see the
//! `output` module).

mod cmd;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Mechanical operations: identifiers, time, pools and codecs.
#[derive(Debug, Parser)]
#[command(name = "mechops", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate UUIDs, or inspect existing ones.
    Uuid(cmd::uuid::UuidArgs),
    /// Format, parse and compute with timestamps.
    Time(cmd::time::TimeArgs),
    /// Soak or ping a line server through a connection pool.
    Pool(cmd::pool::PoolArgs),
    /// Measure the library live and print the results beside the reference figures.
    Bench(cmd::bench::BenchArgs),
    /// Read JSON and write it as a mechops frame.
    Pack(cmd::codec::PackArgs),
    /// Read a mechops frame and write its value back as JSON (or its raw payload).
    Unpack(cmd::codec::UnpackArgs),
    /// Print a frame's header without decrypting it.
    Inspect(cmd::codec::InspectArgs),
    /// Write a new random encryption key file.
    Keygen(cmd::codec::KeygenArgs),
    /// Submit, run and inspect jobs of the durable job queue.
    Jobs(cmd::jobs::JobsArgs),
    /// A confined, crash-safe file store: put, get, ls, rm, batch, backup, verify.
    Workspace(cmd::workspace::WorkspaceArgs),
    /// List, show and validate a script registry; print its cache statistics.
    Registry(cmd::registry::RegistryArgs),
    /// Serve the script registry over HTTP: run scripts now or as jobs.
    Serve(cmd::serve::ServeArgs),
    /// Run one script of the registry now (or submit it as a job).
    Run(cmd::run::RunArgs),
}

impl Command {
    /// Whether the command's results go to standard output.
    fn writes_stdout(&self) -> bool {
        match self {
            Self::Keygen(_) => false,
            Self::Pack(args) => args.writes_stdout(),
            Self::Unpack(args) => args.writes_stdout(),
            Self::Workspace(args) => args.writes_stdout(),
            Self::Jobs(args) => cmd::jobs::writes_stdout(args),
            Self::Serve(_) | Self::Run(_) => true,
            Self::Uuid(_) | Self::Time(_) | Self::Bench(_) | Self::Inspect(_) | Self::Pool(_) => {
                true
            }
            Self::Registry(_) => true,
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return output::report_usage(&err),
    };
    if cli.command.writes_stdout() && output::stdout_was_closed() {
        return output::report(Err(output::closed_stdout_error()));
    }
    let result = match cli.command {
        // These read nothing, so a bare I/O error is their output's.
        Command::Uuid(args) => output::writing_stdout(cmd::uuid::run(args)),
        Command::Time(args) => output::writing_stdout(cmd::time::run(args)),
        Command::Bench(args) => output::writing_stdout(cmd::bench::run(args)),
        Command::Pool(args) => cmd::pool::run(args),
        Command::Pack(args) => cmd::codec::pack(args),
        Command::Unpack(args) => cmd::codec::unpack(args),
        Command::Inspect(args) => cmd::codec::inspect(args),
        Command::Keygen(args) => cmd::codec::keygen(args),
        Command::Jobs(args) => cmd::jobs::run(args),
        Command::Workspace(args) => cmd::workspace::run(args),
        Command::Registry(args) => cmd::registry::run(args),
        Command::Serve(args) => cmd::serve::run(args),
        Command::Run(args) => match cmd::run::run(args) {
            Ok(code) => return ExitCode::from(code),
            Err(e) => Err(e),
        },
    };
    output::report(result)
}
