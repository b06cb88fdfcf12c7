//! The script registry: a JSON file of scripts (`command`, `http`, `sql`)
//! and connection pools, specified in `docs/REGISTRY.md`.
//!
//! - [`Registry`] loads and validates a whole file at once.
//! - [`Script::bind`] checks a call's arguments against the declarations
//!   and [`Script::render`] substitutes them into the script's templates,
//!   giving a [`Rendered`] command, request or query.
//! - [`RegistryCache`] serves parsed scripts from a bounded LRU, parsing
//!   entries lazily from an index of the file and reloading it when it
//!   changes (see its docs for watching and invalidation).
//!
//! Invariants:
//!
//! - a [`Script`] that exists is valid: every rule of the format (ids,
//!   types, defaults, placeholders naming declared arguments, pools) was
//!   checked when it was parsed;
//! - a registry is valid as a whole or not at all: loading refuses a file
//!   with any invalid entry, and the cache keeps serving the last valid
//!   version of a file edited into an invalid state;
//! - input never panics: files larger than [`MAX_REGISTRY_BYTES`] are
//!   refused before parsing, every error names the line and column or the
//!   entry and field at fault.

mod args;
mod cache;
mod error;
mod index;
mod model;
mod render;
mod template;
mod watch;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use args::{BoundArgs, parse_cli_arg};
pub use cache::{
    CacheConfig, ConfigError, DEFAULT_CACHE_MEMORY_BYTES, DEFAULT_CACHE_SIZE, RegistryCache,
    RegistryStats, ReloadReport, ReloadSubscription, WatchMode,
};
pub use error::{ArgError, Location, LookupError, RegistryError};
pub use index::FORMAT_VERSION;
pub use model::{
    ArgSpec, ArgType, CommandSpec, DEFAULT_MAX_CONNECTIONS, DEFAULT_MIN_CONNECTIONS, HTTP_METHODS,
    HttpBody, HttpSpec, MAX_ID_LEN, PoolSpec, Script, ScriptKind, ScriptSummary, SqlSpec,
    is_valid_id,
};
pub use render::{
    MAX_ARG_BYTES, MAX_EXEC_BYTES, Rendered, RenderedCommand, RenderedHttp, RenderedSql,
    percent_encode,
};
pub use template::Template;

use index::RawIndex;

/// The largest registry file read, in bytes (16 MiB): a bigger one is
/// refused with [`RegistryError::TooLarge`] before any parsing, which
/// bounds the memory a registry can take.
pub const MAX_REGISTRY_BYTES: u64 = 16 << 20;

/// A whole registry, loaded and validated.
#[derive(Clone, Debug)]
pub struct Registry {
    base_dir: PathBuf,
    scripts: Vec<Arc<Script>>,
    by_id: HashMap<String, usize>,
    pools: BTreeMap<String, PoolSpec>,
}

impl Registry {
    /// Reads and validates the registry file at `path`; its folder becomes
    /// [`Registry::base_dir`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self, RegistryError> {
        let path = path.as_ref();
        let text = read_registry(path)?;
        Self::parse(&text, &base_dir_of(path))
    }

    /// Validates `text` as a registry whose relative paths resolve against
    /// `base_dir`.
    pub fn parse(text: &str, base_dir: &Path) -> Result<Self, RegistryError> {
        let index = RawIndex::build(Arc::from(text))?;
        let scripts = (0..index.entries().len())
            .map(|i| index.parse(i).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let by_id = scripts
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.clone(), i))
            .collect();
        Ok(Self {
            base_dir: base_dir.to_path_buf(),
            scripts,
            by_id,
            pools: index.pools().clone(),
        })
    }

    /// Reads the registry file at `path` and parses only the script `id`:
    /// the whole file's JSON syntax, `version`, `pools` and unique ids are
    /// checked, the other entries are not parsed. `Ok(None)` when no
    /// script has this id. For a one-off lookup; [`RegistryCache`] keeps
    /// the index between lookups.
    pub fn load_script(path: impl AsRef<Path>, id: &str) -> Result<Option<Script>, RegistryError> {
        let text = read_registry(path.as_ref())?;
        let index = RawIndex::build(Arc::from(text))?;
        index.position(id).map(|i| index.parse(i)).transpose()
    }

    /// The folder relative paths resolve against.
    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }

    /// The scripts in file order.
    pub fn scripts(&self) -> &[Arc<Script>] {
        &self.scripts
    }

    /// The script with this id.
    pub fn get(&self, id: &str) -> Option<&Arc<Script>> {
        self.by_id.get(id).map(|&i| &self.scripts[i])
    }

    /// The connection pools by name.
    pub fn pools(&self) -> &BTreeMap<String, PoolSpec> {
        &self.pools
    }
}

impl Script {
    /// Parses and validates one entry of `scripts` given as JSON text,
    /// against `pools` (for a `sql` script's pool): what a registry shared
    /// through another store hands over.
    pub fn parse_entry(
        text: &str,
        pools: &BTreeMap<String, PoolSpec>,
    ) -> Result<Self, RegistryError> {
        if text.len() as u64 > MAX_REGISTRY_BYTES {
            return Err(RegistryError::TooLarge {
                size: text.len() as u64,
                limit: MAX_REGISTRY_BYTES,
            });
        }
        model::parse_script(
            text,
            &Location::Script {
                index: 0,
                id: None,
                line: 1,
            },
            pools,
        )
    }
}

/// The folder of a registry file, for relative paths: its parent, made
/// absolute against the current directory when it is relative.
pub(crate) fn base_dir_of(path: &Path) -> PathBuf {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::path::absolute(&parent).unwrap_or(parent)
}

/// Reads a registry file, refusing one larger than [`MAX_REGISTRY_BYTES`]
/// without reading it all.
pub(crate) fn read_registry(path: &Path) -> Result<String, RegistryError> {
    use std::io::Read;
    let io = |source| RegistryError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    if size > MAX_REGISTRY_BYTES {
        return Err(RegistryError::TooLarge {
            size,
            limit: MAX_REGISTRY_BYTES,
        });
    }
    let mut text = String::with_capacity(usize::try_from(size).unwrap_or(0));
    // The file may grow between the stat and the read: read one byte past
    // the limit to see it.
    file.take(MAX_REGISTRY_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(io)?;
    if text.len() as u64 > MAX_REGISTRY_BYTES {
        return Err(RegistryError::TooLarge {
            size: text.len() as u64,
            limit: MAX_REGISTRY_BYTES,
        });
    }
    Ok(text)
}
