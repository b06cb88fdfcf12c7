//! Why the service refused or failed a call.

use crate::jobs::store::StoreError;

/// Why a [`ToolService`](super::ToolService) call failed. Each variant is
/// one kind of answer a client can act on; the HTTP API maps them to
/// status codes ([`ServiceError::kind`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// No script has this identifier.
    #[error("unknown script {0:?}")]
    UnknownScript(String),
    /// The arguments do not match the script's declarations; nothing ran.
    #[error("invalid arguments for script {script:?}: {detail}")]
    InvalidArguments {
        /// The script.
        script: String,
        /// What is wrong, naming the argument.
        detail: String,
    },
    /// The request is malformed (a job ID that is not a UUID, a priority
    /// that does not exist).
    #[error("{0}")]
    BadRequest(String),
    /// No job has this identifier.
    #[error("unknown job {0}")]
    UnknownJob(String),
    /// The job's state does not allow the request (cancelling a finished
    /// job).
    #[error("{0}")]
    Conflict(String),
    /// The service's settings are unusable (a registry that does not load,
    /// an environment variable out of range, a store URL).
    #[error("{0}")]
    Config(String),
    /// The script could not be started or run (its program is missing, a
    /// pool cannot connect).
    #[error("{0}")]
    Run(String),
    /// The job store failed.
    #[error("job store: {0}")]
    Store(StoreError),
    /// The workspace failed.
    #[error("workspace: {0}")]
    Workspace(#[from] mechops_std::workspace::Error),
}

/// The kinds of [`ServiceError`], each a status class for clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The caller's input is wrong.
    BadInput,
    /// What the caller named does not exist.
    NotFound,
    /// The target's state forbids it.
    Conflict,
    /// The service failed.
    Internal,
}

impl ServiceError {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidArguments { .. } | Self::BadRequest(_) => ErrorKind::BadInput,
            Self::UnknownScript(_) | Self::UnknownJob(_) => ErrorKind::NotFound,
            Self::Conflict(_) => ErrorKind::Conflict,
            Self::Config(_) | Self::Run(_) | Self::Store(_) | Self::Workspace(_) => {
                ErrorKind::Internal
            }
        }
    }

    /// A short machine-readable name (`unknown_script`, `invalid_arguments`,
    /// ...), the `error` key of the HTTP API's error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownScript(_) => "unknown_script",
            Self::InvalidArguments { .. } => "invalid_arguments",
            Self::BadRequest(_) => "bad_request",
            Self::UnknownJob(_) => "unknown_job",
            Self::Conflict(_) => "conflict",
            Self::Config(_) => "config",
            Self::Run(_) => "run_failed",
            Self::Store(_) => "store",
            Self::Workspace(_) => "workspace",
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UnknownJob(id) => Self::UnknownJob(id.to_string()),
            e @ StoreError::Rejected { .. } => Self::Conflict(e.to_string()),
            e @ (StoreError::Spec(_) | StoreError::DuplicateKey { .. }) => {
                Self::BadRequest(e.to_string())
            }
            e => Self::Store(e),
        }
    }
}
