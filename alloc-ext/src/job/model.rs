//! What a job is: its identifier, its priority, and the submission that
//! describes it.
//!
//! Invariants: a [`JobSpec`] that passed [`JobSpec::validate`] has a
//! non-empty handler name, arguments that parse as one JSON value, and at
//! least one attempt; a [`Progress`] fraction is always within `0.0..=1.0`.

use alloc::string::String;
use core::fmt;
use core::str::FromStr;
use core::time::Duration;

use mechops_core::backoff::{Backoff, Jitter};
use mechops_core::queue::Priority;
use mechops_core::time::Timestamp;
use mechops_core::uuid::Uuid;

/// A job's identifier: a UUID the submitter generates (version 7, so that
/// identifiers sort by creation time), never reused.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct JobId(Uuid);

impl JobId {
    /// The job identified by `uuid`.
    pub const fn new(uuid: Uuid) -> Self {
        Self(uuid)
    }

    /// The UUID.
    pub const fn uuid(self) -> Uuid {
        self.0
    }
}

impl From<Uuid> for JobId {
    fn from(uuid: Uuid) -> Self {
        Self(uuid)
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A job's priority: the three levels the queue offers, mapped onto the
/// core's [`Priority`] so that its ordering rules apply unchanged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum JobPriority {
    /// Served before every normal and low job.
    High,
    /// The default.
    #[default]
    Normal,
    /// Served after every high and normal job.
    Low,
}

impl JobPriority {
    /// The core priority this level maps to.
    pub const fn priority(self) -> Priority {
        match self {
            Self::High => Priority::HIGH,
            Self::Normal => Priority::NORMAL,
            Self::Low => Priority::LOW,
        }
    }

    /// The lowercase name: `high`, `normal` or `low`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::High => "high",
            Self::Normal => "normal",
            Self::Low => "low",
        }
    }
}

impl From<JobPriority> for Priority {
    fn from(p: JobPriority) -> Self {
        p.priority()
    }
}

impl fmt::Display for JobPriority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A priority name that is not `high`, `normal` or `low`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParsePriorityError;

impl fmt::Display for ParsePriorityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("job priority must be high, normal or low")
    }
}

impl core::error::Error for ParsePriorityError {}

impl FromStr for JobPriority {
    type Err = ParsePriorityError;

    /// Parses `high`, `normal` or `low`, in any letter case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::High, Self::Normal, Self::Low]
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
            .ok_or(ParsePriorityError)
    }
}

/// When a submitted job becomes claimable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RunAt {
    /// At once.
    #[default]
    Now,
    /// This long after submission.
    After(Duration),
    /// At this instant (at once if it has passed).
    At(Timestamp),
}

impl RunAt {
    /// The instant a job submitted at `now` becomes claimable.
    pub fn resolve(self, now: Timestamp) -> Timestamp {
        match self {
            Self::Now => now,
            Self::After(d) => super::after(now, d),
            Self::At(t) => t.max(now),
        }
    }
}

/// The retry policy a job gets unless told otherwise: 1 s doubling up to
/// 5 minutes, equal jitter (at least half of each delay), and no retry limit
/// of its own, so that the job's `max_attempts` decides.
pub const DEFAULT_BACKOFF: Backoff =
    match Backoff::new(Duration::from_secs(1), Duration::from_secs(300), u32::MAX) {
        Ok(b) => b.with_jitter(Jitter::Equal),
        Err(_) => panic!("the default backoff policy is valid"),
    };

/// Everything a submitter says about a job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobSpec {
    /// The name of the handler that runs the job.
    pub handler: String,
    /// The arguments, one JSON value kept as text: the lifecycle never looks
    /// inside, only checks that it parses.
    pub args: String,
    /// The priority.
    pub priority: JobPriority,
    /// When the job becomes claimable.
    pub run_at: RunAt,
    /// How many times the job may be claimed and fail (default 3, at least 1).
    pub max_attempts: u32,
    /// How long one attempt may run; `None` for no limit.
    pub timeout: Option<Duration>,
    /// The delay between attempts. When the policy's own retry limit is
    /// lower than `max_attempts - 1`, it wins.
    pub backoff: Backoff,
    /// A key no other pending job (queued, delayed, running or awaiting a
    /// retry) may hold at the same time.
    pub unique_key: Option<String>,
}

impl JobSpec {
    /// The default number of attempts.
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

    /// A job for `handler` with JSON `args`, and every default: normal
    /// priority, ready at once, 3 attempts, no timeout, [`DEFAULT_BACKOFF`],
    /// no unique key.
    pub fn new(handler: impl Into<String>, args: impl Into<String>) -> Self {
        Self {
            handler: handler.into(),
            args: args.into(),
            priority: JobPriority::Normal,
            run_at: RunAt::Now,
            max_attempts: Self::DEFAULT_MAX_ATTEMPTS,
            timeout: None,
            backoff: DEFAULT_BACKOFF,
            unique_key: None,
        }
    }

    /// The same job with `priority`.
    #[must_use]
    pub fn with_priority(mut self, priority: JobPriority) -> Self {
        self.priority = priority;
        self
    }

    /// The same job, claimable at `run_at`.
    #[must_use]
    pub fn with_run_at(mut self, run_at: RunAt) -> Self {
        self.run_at = run_at;
        self
    }

    /// The same job with `max_attempts`.
    #[must_use]
    pub fn with_max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// The same job with a per-attempt timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The same job with another backoff policy.
    #[must_use]
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The same job with a unique key.
    #[must_use]
    pub fn with_unique_key(mut self, key: impl Into<String>) -> Self {
        self.unique_key = Some(key.into());
        self
    }

    /// Checks the handler name, the arguments and the attempt count.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.handler.trim().is_empty() {
            return Err(SpecError::EmptyHandler);
        }
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&self.args) {
            return Err(SpecError::InvalidArgs {
                line: e.line(),
                column: e.column(),
            });
        }
        if self.max_attempts == 0 {
            return Err(SpecError::ZeroMaxAttempts);
        }
        if self.timeout == Some(Duration::ZERO) {
            return Err(SpecError::ZeroTimeout);
        }
        if self.unique_key.as_deref() == Some("") {
            return Err(SpecError::EmptyUniqueKey);
        }
        Ok(())
    }
}

/// A job submission that cannot be accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpecError {
    /// The handler name was empty or blank.
    EmptyHandler,
    /// The arguments were not one JSON value; the position is 1-based.
    InvalidArgs {
        /// The line of the first error.
        line: usize,
        /// The column of the first error.
        column: usize,
    },
    /// `max_attempts` was zero.
    ZeroMaxAttempts,
    /// The per-attempt timeout was zero.
    ZeroTimeout,
    /// The unique key was the empty string.
    EmptyUniqueKey,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyHandler => f.write_str("job handler name is empty"),
            Self::InvalidArgs { line, column } => write!(
                f,
                "job arguments are not valid JSON (line {line}, column {column})"
            ),
            Self::ZeroMaxAttempts => f.write_str("job max_attempts must be at least 1"),
            Self::ZeroTimeout => f.write_str("job timeout must be longer than zero"),
            Self::EmptyUniqueKey => f.write_str("job unique key is empty"),
        }
    }
}

impl core::error::Error for SpecError {}

/// How far a running job has got, as its handler last reported.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    fraction: f64,
    message: String,
}

impl Progress {
    /// Progress `fraction` (from 0.0 to 1.0) with a message.
    pub fn new(fraction: f64, message: impl Into<String>) -> Result<Self, ProgressError> {
        if !(0.0..=1.0).contains(&fraction) {
            return Err(ProgressError);
        }
        Ok(Self {
            fraction,
            message: message.into(),
        })
    }

    /// From a percentage (0 to 100), as scripts report it.
    pub fn from_percent(percent: f64, message: impl Into<String>) -> Result<Self, ProgressError> {
        if !(0.0..=100.0).contains(&percent) {
            return Err(ProgressError);
        }
        Self::new(percent / 100.0, message)
    }

    /// The fraction done, within `0.0..=1.0`.
    pub fn fraction(&self) -> f64 {
        self.fraction
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// A progress value outside 0 to 1 (0 to 100 for a percentage), or NaN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProgressError;

impl fmt::Display for ProgressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("job progress must be a fraction from 0 to 1 (0 to 100 percent)")
    }
}

impl core::error::Error for ProgressError {}
