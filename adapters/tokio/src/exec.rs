//! Execution runners: a command ([`run_command`]), an HTTP request
//! ([`HttpClient::run`]), an SQL query ([`run_sql`]), per-script statistics
//! ([`ExecStats`]). Every runner gives back an [`Outcome`] when the work
//! ran, successfully or not, and an [`ExecError`] when it could not start.
//!
//! # Commands
//!
//! [`run_command`] starts the program of a [`CommandRequest`] directly,
//! never through a shell: each argument reaches it as exactly one argv
//! element, whatever it contains (`;`, `$(...)`, quotes, newlines, a
//! leading `-`). A bare program name is looked up on `PATH`; the
//! environment is inherited, with the request's variables added; standard
//! input is `/dev/null`.
//!
//! ```
//! use mechops_tokio::exec::{CommandRequest, run_command};
//! use tokio_util::sync::CancellationToken;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let script = "echo '::progress 50 half way' >&2; echo done";
//! let request = CommandRequest::new("sh", ["-c", script], ".");
//! let mut seen = Vec::new();
//! let outcome = run_command(&request, &mut |r| seen.push(r.percent), &CancellationToken::new())
//!     .await
//!     .unwrap();
//! assert!(outcome.ok);
//! assert_eq!((outcome.stdout.as_str(), outcome.stderr.as_str()), ("done\n", ""));
//! assert_eq!(seen, [50.0]);
//! # }
//! ```
//!
//! ## Progress protocol
//!
//! A line `::progress PERCENT [MESSAGE]` on standard error, with `PERCENT`
//! digits and an optional decimal fraction from 0 to 100 (`40`, `12.5`),
//! becomes a [`ProgressReport`]: it is handed to the caller's callback as
//! soon as it arrives, kept in order in [`Outcome::progress`], and left out
//! of the captured standard error. A line that starts with `::progress` but
//! does not parse (a percentage above 100, a sign, an exponent, a line
//! longer than [`MAX_PROGRESS_LINE`] bytes) is ordinary standard error.
//!
//! ## Bounds
//!
//! Standard output and standard error are kept up to
//! [`CommandRequest::stdout_limit`] and [`CommandRequest::stderr_limit`]
//! ([`DEFAULT_OUTPUT_LIMIT`], 1 MiB, each), with
//! [`Outcome::stdout_truncated`] and [`Outcome::stderr_truncated`] set when
//! more came. The pipes are read to their end all the same and the excess
//! is dropped, so a program writing gigabytes neither blocks on a full pipe
//! nor grows the runner's memory: a run holds at most its two bounds, two
//! 64 KiB read buffers and one [`MAX_PROGRESS_LINE`]. Output that is not
//! UTF-8 is converted lossily (each invalid sequence becomes U+FFFD); a
//! character cut in two by the bound is dropped.
//!
//! ## Kill semantics
//!
//! The program starts as the leader of a new process group
//! (`process_group(0)`), which everything it starts joins unless it leaves
//! on purpose (`setsid`, `setpgid`). When the timeout passes or the
//! cancellation token fires, the whole group gets SIGTERM; once it is empty
//! (its members reaped) the run ends, and after
//! [`CommandRequest::kill_grace`] (default 2 s) whatever is left gets
//! SIGKILL. The leader is always reaped. When the leader exits by itself
//! and leaves members in its group, they get the same SIGTERM, grace,
//! SIGKILL: nothing a command started outlives it. Dropping the runner's
//! future instead sends SIGKILL to the group at once (tokio's
//! `kill_on_drop` would reach the direct child only). A process that left
//! the group is out of reach; if it keeps the output pipes open, they are
//! given up `kill_grace` after the group is done.
//!
//! # HTTP requests
//!
//! [`HttpClient`] holds one pooled `reqwest` client (rustls on ring with
//! the Mozilla roots, no OpenSSL; HTTP/1.1 with keep-alive), shared by all
//! the calls made through it and its clones, so connections are reused.
//! [`HttpClient::run`] sends an [`HttpRequest`]: `ok` means a 2xx status;
//! the outcome carries `status` and `body`, the body kept up to
//! [`HttpRequest::body_limit`] (1 MiB by default; `body_truncated` says
//! it was cut, and the rest is not fetched). A connection error or a 5xx
//! status is retried with the core's [`Backoff`](mechops_core::backoff::Backoff)
//! ([`DEFAULT_HTTP_BACKOFF`]: 3 retries from 100 ms) for the idempotent
//! methods `GET`, `HEAD`, `PUT`, `DELETE` and `OPTIONS` only; other methods
//! are sent once. The request's timeout covers the whole call, retries and
//! their waits included.
//!
//! # SQL queries
//!
//! [`run_sql`] runs an [`SqlRequest`] on a connection of a
//! [`ConnectionPool`](crate::conn::ConnectionPool) of the
//! [`PostgresManager`](crate::conn::postgres::PostgresManager). The
//! parameters are bound, never written into the query text, each with the
//! type its JSON value gives: a string as `text`, an integer as `int8`,
//! another number as `float8`, a boolean as `bool`, an array or object as
//! `jsonb`, and `null` as an untyped NULL that takes the type its place
//! needs (cast a parameter in the query, `$1::int4`, where another type is
//! wanted). The statement is not prepared separately: one round trip.
//!
//! The rows come back as JSON objects, column name to value: `int2`,
//! `int4`, `int8` and `oid` as numbers; `float4` and `float8` as numbers
//! (`"NaN"`, `"Infinity"`, `"-Infinity"` as strings); `numeric` as a
//! string with every digit; `text`, `varchar`, `char`, `name` (and other
//! text types) as strings; `bool`; `json` and `jsonb` as JSON; `timestamptz`
//! as RFC 3339 in UTC with microseconds (`2024-01-02T03:04:05.123456Z`),
//! `timestamp` the same without the `Z`, `date` as `YYYY-MM-DD`; `uuid`
//! hyphenated; `bytea` as PostgreSQL's hex text (`\x01ff`); NULL as
//! `null`. Another type gives an error naming the column: cast it in the
//! query (`addr::text`). At most [`SqlRequest::row_limit`] rows are kept
//! ([`DEFAULT_ROW_LIMIT`], 10,000); `rows_truncated` says the query
//! returned more (the rest is read from the server and dropped).
//!
//! # Statistics
//!
//! [`ExecStats`] counts executions and failures per script ID, with the
//! mean and the p50, p95 and p99 of execution times and the last error.
//!
//! # Through the job queue
//!
//! Run as a job, an execution is at least once: a worker that dies after
//! starting a command but before recording its result leaves the job to
//! be claimed again when its lease expires, and the command runs again.
//! Scripts run that way should be idempotent, or check for their own
//! earlier effects.

mod command;
mod http;
mod outcome;
mod output;
mod sql;
mod stats;

pub use command::{CommandRequest, DEFAULT_KILL_GRACE, DEFAULT_OUTPUT_LIMIT, run_command};
pub use http::{CONNECT_TIMEOUT, DEFAULT_HTTP_BACKOFF, HttpClient, HttpRequest};
pub use outcome::{ExecError, Outcome, ProgressReport, Stopped};
pub use output::MAX_PROGRESS_LINE;
pub use sql::{DEFAULT_ROW_LIMIT, SqlRequest, run_sql};
pub use stats::{ExecStats, ScriptStats};
