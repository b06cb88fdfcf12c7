//! The registry's errors: loading ([`RegistryError`]), arguments
//! ([`ArgError`]) and lookups through the cache ([`LookupError`]).

use std::path::PathBuf;

/// Where in the registry a semantic error sits.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location {
    /// A top-level field (`version`, `scripts`, `pools`).
    Top,
    /// The script at this index of `scripts`, with its id when it has one
    /// and the line of the file where the entry starts.
    Script {
        /// The index in `scripts`.
        index: usize,
        /// The entry's `id`, when it has a string one.
        id: Option<String>,
        /// The line (from 1) where the entry starts.
        line: usize,
    },
    /// The pool of this name in `pools`.
    Pool {
        /// The pool's name.
        name: String,
    },
}

impl core::fmt::Display for Location {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Top => f.write_str("registry"),
            Self::Script {
                index,
                id: Some(id),
                line,
            } => write!(f, "scripts[{index}] {id:?} (line {line})"),
            Self::Script {
                index,
                id: None,
                line,
            } => write!(f, "scripts[{index}] (line {line})"),
            Self::Pool { name } => write!(f, "pools {name:?}"),
        }
    }
}

/// Why a registry could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The file could not be read.
    #[error("cannot read registry {path:?}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_REGISTRY_BYTES`](super::MAX_REGISTRY_BYTES).
    #[error("registry is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge {
        /// Its size in bytes.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The text is not JSON, or its top level has the wrong shape.
    #[error("line {line}, column {column}: {message}")]
    Syntax {
        /// The line (from 1).
        line: usize,
        /// The column (from 1).
        column: usize,
        /// What is wrong there.
        message: String,
    },
    /// An entry or one of its fields breaks a rule of `docs/REGISTRY.md`.
    #[error("{at}: field {field:?}: {message}")]
    Field {
        /// The entry.
        at: Location,
        /// The field at fault (a path such as `command[2]` or
        /// `arguments.width.default`).
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// Two scripts have the same id.
    #[error("{at}: field \"id\": duplicate id {id:?}, already used by scripts[{first}]")]
    DuplicateId {
        /// The second entry.
        at: Location,
        /// The id.
        id: String,
        /// The index of the first entry with it.
        first: usize,
    },
}

impl RegistryError {
    pub(crate) fn field(
        at: &Location,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::Field {
            at: at.clone(),
            field: field.into(),
            message: message.into(),
        }
    }

    pub(crate) fn syntax(err: &serde_json::Error) -> Self {
        // serde_json's message ends in " at line L column C"; the position is
        // carried separately.
        let text = err.to_string();
        let message = match text.rfind(" at line ") {
            Some(cut) => text[..cut].to_owned(),
            None => text,
        };
        Self::Syntax {
            line: err.line(),
            column: err.column(),
            message,
        }
    }
}

/// Why a call's arguments were refused, or could not be rendered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArgError {
    /// A required argument was not given.
    #[error("argument {name:?} is required")]
    Missing {
        /// The argument.
        name: String,
    },
    /// An argument the script does not declare.
    #[error("unknown argument {name:?} (declared: {declared})")]
    Unknown {
        /// The argument.
        name: String,
        /// The declared names, comma separated.
        declared: String,
    },
    /// A value of the wrong type.
    #[error("argument {name:?}: expected {expected}, got {got}")]
    Type {
        /// The argument.
        name: String,
        /// The declared type.
        expected: &'static str,
        /// What was given.
        got: String,
    },
    /// A value that cannot be used where the template puts it.
    #[error("argument {name:?}: {reason}")]
    Invalid {
        /// The argument.
        name: String,
        /// Why.
        reason: String,
    },
}

/// Why a lookup through the cache failed.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LookupError {
    /// No script has this id in the current registry.
    #[error("unknown script {id:?}")]
    UnknownScript {
        /// The id asked for.
        id: String,
    },
    /// The entry could not be parsed (only possible when the file changed
    /// between its validation and the lookup; the message says how).
    #[error("script {id:?}: {message}")]
    Invalid {
        /// The id asked for.
        id: String,
        /// The error.
        message: String,
    },
}
