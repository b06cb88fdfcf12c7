//! What an execution gives back: an [`Outcome`] when it ran (successfully
//! or not), an [`ExecError`] when it could not start.

use std::path::PathBuf;

use serde::Serialize;

/// One `::progress PERCENT [MESSAGE]` report of a running script.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProgressReport {
    /// From 0 to 100.
    pub percent: f64,
    /// The text after the percentage, if any.
    pub message: Option<String>,
}

/// Why a command ended before it exited by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stopped {
    /// Its timeout passed.
    TimedOut,
    /// Its cancellation token fired.
    Cancelled,
}

/// The result of one execution that ran.
///
/// Serialised with exactly the keys `ok`, `exit_code`, `stdout`, `stderr`,
/// `stdout_truncated`, `stderr_truncated`, `duration_ms`, `progress` and
/// `error`, plus `status`, `body` and `body_truncated` for an HTTP request
/// and `rows` and `rows_truncated` for an SQL query (absent otherwise).
/// Each `*_truncated` speaks of its own field only: an HTTP request or a
/// query writes no standard output, so its `stdout_truncated` is false. Output that is not UTF-8 is converted
/// lossily: each invalid sequence becomes U+FFFD.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Outcome {
    /// Whether it succeeded: exit code 0, a 2xx status, or a query that
    /// ran to the end.
    pub ok: bool,
    /// The command's exit code; `None` when a signal ended it or it was
    /// not a command.
    pub exit_code: Option<i32>,
    /// Captured standard output, up to its bound. For an HTTP request it
    /// stays empty (the response is in `body`).
    pub stdout: String,
    /// Captured standard error without the progress lines, up to its
    /// bound.
    pub stderr: String,
    /// Whether standard output went past its bound.
    pub stdout_truncated: bool,
    /// Whether standard error went past its bound.
    pub stderr_truncated: bool,
    /// Wall time from start to end, in milliseconds.
    pub duration_ms: u64,
    /// The progress reports, in the order they arrived.
    pub progress: Vec<ProgressReport>,
    /// Why it did not succeed, in one line; `None` when `ok`.
    pub error: Option<String>,
    /// The signal that ended the command (not serialised: `error` names
    /// it).
    #[serde(skip)]
    pub signal: Option<i32>,
    /// Whether the runner stopped it (not serialised: `error` says so).
    #[serde(skip)]
    pub stopped: Option<Stopped>,
    /// The HTTP status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The HTTP response body, up to its bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Whether the HTTP response body went past its bound (the rest was
    /// not fetched); set with `body`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_truncated: Option<bool>,
    /// The rows of an SQL query, one JSON object per row.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<Vec<serde_json::Map<String, serde_json::Value>>>,
    /// Whether the query returned more rows than were kept; set with
    /// `rows`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows_truncated: Option<bool>,
}

/// Why an execution could not start. A script that started and failed
/// gives an [`Outcome`] with `ok: false` instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecError {
    /// The program does not exist (or is not on `PATH`).
    #[error("program {program:?} not found")]
    ProgramNotFound {
        /// The program as given.
        program: PathBuf,
    },
    /// The program exists but may not be executed.
    #[error("program {program:?} is not executable (permission denied)")]
    NotExecutable {
        /// The program as given.
        program: PathBuf,
    },
    /// The working directory does not exist or is not a directory.
    #[error("working directory {workdir:?} does not exist or is not a directory")]
    WorkdirMissing {
        /// The directory as given.
        workdir: PathBuf,
    },
    /// Starting the program failed for another reason.
    #[error("cannot start {program:?}: {source}")]
    Spawn {
        /// The program as given.
        program: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// Waiting for the program failed.
    #[error("waiting for {program:?} failed: {source}")]
    Wait {
        /// The program as given.
        program: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The request is malformed (a method, URL, header or parameter that
    /// cannot be sent); the message names the part at fault.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(String),
    /// No database connection could be had from the pool.
    #[error("no database connection: {0}")]
    Pool(String),
}

impl ExecError {
    /// Whether trying again later may succeed (a pool without a free
    /// connection, a wait that failed), as opposed to a request that will
    /// never run as given.
    #[must_use]
    pub const fn is_transient(&self) -> bool {
        matches!(self, Self::Pool(_) | Self::Wait { .. })
    }
}

/// Milliseconds since `started`, for [`Outcome::duration_ms`].
pub(super) fn millis(started: tokio::time::Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_keys_are_exactly_the_documented_ones() {
        let plain = serde_json::to_value(Outcome::default()).unwrap();
        let mut keys: Vec<&str> = plain
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "duration_ms",
                "error",
                "exit_code",
                "ok",
                "progress",
                "stderr",
                "stderr_truncated",
                "stdout",
                "stdout_truncated"
            ]
        );
        let http = Outcome {
            status: Some(200),
            body: Some("hi".into()),
            body_truncated: Some(true),
            progress: vec![ProgressReport {
                percent: 40.0,
                message: Some("copying".into()),
            }],
            ..Outcome::default()
        };
        let v = serde_json::to_value(http).unwrap();
        assert_eq!(v["status"], 200);
        assert_eq!(v["body"], "hi");
        assert_eq!(v["body_truncated"], true);
        assert!(v.get("rows").is_none() && v.get("rows_truncated").is_none());
        assert_eq!(
            v["progress"],
            serde_json::json!([{"percent": 40.0, "message": "copying"}])
        );
        let sql = Outcome {
            rows: Some(vec![serde_json::Map::new()]),
            rows_truncated: Some(false),
            ..Outcome::default()
        };
        let v = serde_json::to_value(sql).unwrap();
        assert_eq!(v["rows"], serde_json::json!([{}]));
        assert_eq!(v["rows_truncated"], false);
        assert!(v.get("status").is_none() && v.get("body_truncated").is_none());
    }
}
