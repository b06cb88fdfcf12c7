//! Every error that carries a cause says it once along its `source()` chain:
//! either in its own message or as its source, never both, so a printer of
//! the chain (`anyhow`'s `{:#}`, the CLI) writes each cause once.

use core::error::Error;
use std::io;

use mechops_alloc::pool::ConfigError;
use mechops_alloc::pool::SessionError;
use mechops_core::codec::accumulator::StreamError as AccumulatorError;
use mechops_core::codec::header::FrameError;
use mechops_core::codec::inflate::InflateError;
use mechops_core::uuid::V7Error;
use mechops_std::codec::{self, FrameIoError, KeyFileError};
use mechops_std::pool::SessionPoolError;

/// The messages of `err` and its sources, outermost first.
fn chain(err: &(dyn Error + 'static)) -> Vec<String> {
    let mut messages = vec![err.to_string()];
    let mut next = err.source();
    while let Some(cause) = next {
        messages.push(cause.to_string());
        next = cause.source();
    }
    messages
}

/// Asserts that no message of the chain repeats its source's, and that the
/// innermost cause, `cause`, is said exactly once when the chain is printed.
fn assert_said_once(err: &(dyn Error + 'static), cause: &str) {
    let messages = chain(err);
    for pair in messages.windows(2) {
        assert!(
            !pair[0].contains(&pair[1]),
            "{:?} repeats its source {:?}",
            pair[0],
            pair[1]
        );
    }
    let printed = messages.join(": ");
    assert_eq!(printed.matches(cause).count(), 1, "{printed}");
}

#[test]
fn core_and_alloc_errors_carry_the_cause_in_their_message() {
    let inflate = InflateError::Truncated.to_string();
    let frame = FrameError::Inflate(InflateError::Truncated);
    assert_said_once(&frame, &inflate);
    let magic = FrameError::BadMagic.to_string();
    assert_said_once(&AccumulatorError::Header(FrameError::BadMagic), &magic);
    let exhausted = V7Error::Exhausted.to_string();
    assert_said_once(&SessionError::Id(V7Error::Exhausted), &exhausted);
    assert_said_once(&codec::Error::Frame(frame), &inflate);
}

#[test]
fn std_errors_leave_the_cause_to_source() {
    let disk = "disk on fire";
    let keyfile = KeyFileError::Io {
        path: "k".into(),
        source: io::Error::other(disk),
    };
    assert_said_once(&keyfile, disk);
    assert_eq!(keyfile.to_string(), "key file k");
    assert_said_once(&FrameIoError::Io(io::Error::other(disk)), disk);
    let config = ConfigError::ZeroMaximum;
    assert_said_once(&SessionPoolError::Config(config), &config.to_string());
}
