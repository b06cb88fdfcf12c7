//! Turning outcomes into exit codes and one-line messages.
//!
//! Exit codes (the README's "The command line" states the same contract):
//! - 0: success, or standard output closed by its reader (`| head`);
//! - 1: an I/O failure: a file that cannot be opened, read or written, a
//!   full disk, standard output closed before the command started, no OS
//!   entropy;
//! - 2: bad usage or bad input: the command line, or what was read (JSON, a
//!   frame, a key file's text, type or permissions, input above a size
//!   limit), or an output that must not exist but does.
//!
//! A failure is bad input exactly when its cause chain holds an
//! [`InputError`]; everything else is an I/O failure, so a new kind of
//! environment failure can never pass for a user mistake.

use std::io::{self, Write};
use std::process::ExitCode;

/// Exit code for bad usage or bad input.
pub(crate) const EXIT_INPUT: u8 = 2;
/// Exit code for an I/O failure that is not the reader going away.
pub(crate) const EXIT_IO: u8 = 1;

/// Marks a failure as the caller's input, not the environment: exit code 2.
///
/// Transparent: it shows the wrapped error's message and sources as its own,
/// so marking adds nothing to the printed line.
#[derive(Debug)]
pub(crate) struct InputError(Box<dyn core::error::Error + Send + Sync>);

impl core::fmt::Display for InputError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Display::fmt(&self.0, f)
    }
}

impl core::error::Error for InputError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        self.0.source()
    }
}

/// An input error with this message.
pub(crate) fn input_error(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(InputError(message.into().into()))
}

/// Marks `err` as bad input, keeping its sources for the printed chain.
pub(crate) fn bad_input(err: impl core::error::Error + Send + Sync + 'static) -> anyhow::Error {
    anyhow::Error::new(InputError(Box::new(err)))
}

/// Whether standard output was closed when the process started (`>&-`).
///
/// Rust's runtime reopens a closed descriptor 1 on `/dev/null` before `main`,
/// after which every write "succeeds" and the output is lost without a word;
/// on Linux a constructor records the descriptor's state before that happens.
pub(crate) fn stdout_was_closed() -> bool {
    closed_stdout::was_closed()
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod closed_stdout {
    use core::sync::atomic::{AtomicBool, Ordering};

    static CLOSED: AtomicBool = AtomicBool::new(false);

    extern "C" fn record() {
        // SAFETY: `F_GETFD` only queries the descriptor table; it fails (with
        // EBADF) exactly when descriptor 1 is not open.
        let flags = unsafe { libc::fcntl(libc::STDOUT_FILENO, libc::F_GETFD) };
        CLOSED.store(flags == -1, Ordering::Relaxed);
    }

    // `.init_array` entries run before the C `main` that starts Rust's
    // runtime, so `record` sees the descriptors as the parent left them.
    #[used]
    // SAFETY: `.init_array` holds pointers to functions the loader calls with
    // (argc, argv, envp) before `main`; `record` takes no arguments, which the
    // C calling convention allows, touches only an atomic and does not panic.
    #[unsafe(link_section = ".init_array")]
    static RECORD: extern "C" fn() = record;

    pub(super) fn was_closed() -> bool {
        CLOSED.load(Ordering::Relaxed)
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod closed_stdout {
    /// Without an early constructor the state is lost: report "open".
    pub(super) fn was_closed() -> bool {
        false
    }
}

/// The error for a command that would write to a standard output that was
/// closed before it started.
pub(crate) fn closed_stdout_error() -> anyhow::Error {
    anyhow::Error::new(ClosedStdout)
}

/// How a failed write to standard output is introduced.
pub(crate) const WRITING_STDOUT: &str = "writing stdout";

/// Names standard output as the place of a bare I/O error, for a command
/// whose only I/O is writing its results there.
pub(crate) fn writing_stdout(result: anyhow::Result<()>) -> anyhow::Result<()> {
    result.map_err(|err| {
        if err.is::<io::Error>() {
            err.context(WRITING_STDOUT)
        } else {
            err
        }
    })
}

/// Standard output was closed when the process started.
#[derive(Debug)]
struct ClosedStdout;

impl core::fmt::Display for ClosedStdout {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("standard output is closed: nothing could be written")
    }
}

impl core::error::Error for ClosedStdout {}

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

/// Reports a command's outcome with the exit codes of the module docs.
pub(crate) fn report(result: anyhow::Result<()>) -> ExitCode {
    let Err(err) = result else {
        return ExitCode::SUCCESS;
    };
    let input = err.chain().any(|cause| cause.is::<InputError>());
    if !input && is_reader_gone(&err) {
        return ExitCode::SUCCESS;
    }
    let _ = writeln!(io::stderr(), "mechops: {}", one_line(&err));
    ExitCode::from(if input { EXIT_INPUT } else { EXIT_IO })
}

/// A write to standard output failed because its reader went away, which is
/// how `mechops uuid -n 1000000 | head` ends, not a failure.
fn is_reader_gone(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io_err| io_err.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// The error and its causes on one line, `: `-separated. A cause whose text
/// its parent already printed (an error that both shows its source and
/// returns it from `source()`) is left out, so nothing is said twice.
pub(crate) fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    let mut previous = String::new();
    for cause in err.chain() {
        let text = cause.to_string().replace('\n', " ");
        if !previous.is_empty() && previous.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
        previous = text;
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Shows(io::Error);

    impl core::fmt::Display for Shows {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            write!(f, "outer: {}", self.0)
        }
    }

    impl core::error::Error for Shows {
        fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_cause_is_printed_once() {
        let err = anyhow::Error::new(Shows(io::Error::other("disk on fire"))).context("writing x");
        assert_eq!(one_line(&err), "writing x: outer: disk on fire");
        let err = anyhow::Error::new(io::Error::other("gone")).context("reading y");
        assert_eq!(one_line(&err), "reading y: gone");
    }

    #[test]
    fn input_marking_is_transparent_and_found_through_context() {
        let err = bad_input(Shows(io::Error::other("bad"))).context("cannot pack");
        assert_eq!(one_line(&err), "cannot pack: outer: bad");
        assert!(err.chain().any(|cause| cause.is::<InputError>()));
        let err = anyhow::Error::new(io::Error::other("bad")).context("cannot pack");
        assert!(!err.chain().any(|cause| cause.is::<InputError>()));
    }

    #[test]
    fn a_closed_stdout_is_not_a_reader_going_away() {
        assert!(!is_reader_gone(&closed_stdout_error()));
        let gone = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(is_reader_gone(&gone.context("writing")));
    }
}
