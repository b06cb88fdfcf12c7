//! Choosing a store by URL.
//!
//! - `sqlite://PATH[?synchronous=full|normal|off]`: the default, at
//!   `$JOB_STORAGE_PATH/jobs.db`, or `./.mechops/jobs.db` when the variable
//!   is unset;
//! - `memory://[PATH]`: in memory, saved at a graceful shutdown to `PATH`,
//!   or to `$JOB_STORAGE_PATH/memory-jobs.jsonl` when no path is given and
//!   the variable is set (not saved otherwise);
//! - `redis://HOST:PORT[/DB]`: a Redis server shared by many workers;
//!   `redis://` alone takes the URL from `$REDIS_URL`.
//!
//! Any other scheme is refused with an error naming the known ones.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::memory::MemoryStore;
use super::runtime::JobClock;
use super::sqlite::{SqliteStore, Synchronous};
use super::store::{Store, StoreConfig, StoreError};

/// A parsed store URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreUrl {
    /// `memory://`, with the file it is saved to, if any.
    Memory(Option<PathBuf>),
    /// `sqlite://PATH`.
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// `PRAGMA synchronous`.
        sync: Synchronous,
    },
    /// `redis://HOST:PORT[/DB]`.
    Redis(String),
}

/// The directory `JOB_STORAGE_PATH` names, if set and not empty.
pub fn storage_dir() -> Option<PathBuf> {
    std::env::var_os("JOB_STORAGE_PATH")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

impl StoreUrl {
    /// The default store: SQLite at `$JOB_STORAGE_PATH/jobs.db`, else
    /// `./.mechops/jobs.db`.
    pub fn default_store() -> Self {
        let dir = storage_dir().unwrap_or_else(|| Path::new(".mechops").to_owned());
        Self::Sqlite {
            path: dir.join("jobs.db"),
            sync: Synchronous::Full,
        }
    }

    /// Parses a store URL.
    ///
    /// # Errors
    /// [`StoreError::Config`] naming what is wrong: an unknown scheme, an
    /// empty SQLite path, an unknown option.
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(StoreError::Config(format!(
                "job store URL {url:?} has no scheme (use sqlite://PATH or memory://)"
            )));
        };
        match scheme {
            "memory" => Ok(Self::Memory(if rest.is_empty() {
                storage_dir().map(|d| d.join("memory-jobs.jsonl"))
            } else {
                Some(PathBuf::from(rest))
            })),
            "sqlite" => {
                let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
                if path.is_empty() {
                    return Err(StoreError::Config(
                        "sqlite job store URL needs a path: sqlite://PATH".into(),
                    ));
                }
                let mut sync = Synchronous::Full;
                for opt in query.split('&').filter(|o| !o.is_empty()) {
                    match opt.split_once('=') {
                        Some(("synchronous", v)) => sync = Synchronous::parse(v)?,
                        _ => {
                            return Err(StoreError::Config(format!(
                                "unknown sqlite job store option {opt:?} (known: synchronous)"
                            )));
                        }
                    }
                }
                Ok(Self::Sqlite {
                    path: PathBuf::from(path),
                    sync,
                })
            }
            "redis" if rest.is_empty() => match std::env::var("REDIS_URL") {
                Ok(env) if env.starts_with("redis://") && env.len() > "redis://".len() => {
                    Ok(Self::Redis(env))
                }
                _ => Err(StoreError::Config(
                    "redis:// needs HOST:PORT, or REDIS_URL set to redis://HOST:PORT".into(),
                )),
            },
            "redis" => Ok(Self::Redis(url.to_owned())),
            other => Err(StoreError::Config(format!(
                "unknown job store scheme {other:?} (known: sqlite, memory, redis)"
            ))),
        }
    }

    /// Opens the store, with the clock its times should come from: the
    /// system clock for a store other processes share, an anchored clock
    /// for the memory store. Blocking (a SQLite file is opened and
    /// migrated).
    ///
    /// # Errors
    /// As the store's own `open`.
    pub fn open(&self, config: StoreConfig) -> Result<(Arc<dyn Store>, JobClock), StoreError> {
        match self {
            Self::Memory(None) => Ok((Arc::new(MemoryStore::new(config)), JobClock::anchored())),
            Self::Memory(Some(file)) => Ok((
                Arc::new(MemoryStore::open(file, config)?),
                JobClock::anchored(),
            )),
            Self::Sqlite { path, sync } => Ok((
                Arc::new(SqliteStore::open(path, *sync, config)?),
                JobClock::System,
            )),
            Self::Redis(url) => {
                let config = super::redis_store::RedisConfig::new(url).with_store(config);
                Ok((
                    Arc::new(super::redis_store::RedisStore::open(config)?),
                    JobClock::System,
                ))
            }
        }
    }
}
