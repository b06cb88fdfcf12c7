//! Turning outcomes into exit codes and one-line messages.

use std::io::{self, Write};
use std::process::ExitCode;

/// Exit code for bad usage or bad input.
pub(crate) const EXIT_INPUT: u8 = 2;
/// Exit code for an I/O failure that is not the reader going away.
pub(crate) const EXIT_IO: u8 = 1;

/// An error that is the caller's input, not the environment: exit code 2.
#[derive(Debug)]
pub(crate) struct InputError(pub(crate) String);

impl core::fmt::Display for InputError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

impl core::error::Error for InputError {}

/// Shorthand for returning an input error from a command.
pub(crate) fn input_error(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(InputError(message.into()))
}

/// Reports a command-line parsing failure: help and version go to stdout with
/// exit code 0, anything else is one line on stderr with exit code 2.
pub(crate) fn report_usage(err: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match err.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                ExitCode::from(EXIT_INPUT)
            } else {
                ExitCode::SUCCESS
            }
        }
        _ => {
            let rendered = err.to_string();
            let first = rendered
                .lines()
                .find(|line| !line.trim().is_empty())
                .unwrap_or("invalid usage");
            let _ = writeln!(
                io::stderr(),
                "mechops: {}",
                first.trim_start_matches("error: ")
            );
            ExitCode::from(EXIT_INPUT)
        }
    }
}

/// Reports a command's outcome. A closed stdout (for example `| head`) is not a
/// failure; any other I/O error exits with 1; everything else is input (2).
pub(crate) fn report(result: anyhow::Result<()>) -> ExitCode {
    let Err(err) = result else {
        return ExitCode::SUCCESS;
    };
    if let Some(io_err) = err.downcast_ref::<io::Error>() {
        if io_err.kind() == io::ErrorKind::BrokenPipe {
            return ExitCode::SUCCESS;
        }
        let _ = writeln!(io::stderr(), "mechops: {err:#}");
        return ExitCode::from(EXIT_IO);
    }
    let line = format!("{err:#}").replace('\n', " ");
    let _ = writeln!(io::stderr(), "mechops: {line}");
    ExitCode::from(EXIT_INPUT)
}
