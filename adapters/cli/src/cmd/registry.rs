//! `mechops registry`: list, show, validate a script registry and print
//! its cache statistics.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use mechops_std::registry::{Registry, RegistryCache, RegistryError, WatchMode};

use crate::output::{bad_input, input_error};

#[derive(Debug, clap::Args)]
pub(crate) struct RegistryArgs {
    /// The registry file [default: ./registry.json, else the repository's
    /// examples/registry.json].
    #[arg(long, value_name = "FILE", global = true)]
    registry: Option<PathBuf>,
    #[command(subcommand)]
    command: RegistryCommand,
}

#[derive(Debug, clap::Subcommand)]
enum RegistryCommand {
    /// List the scripts: id, kind, name and tags.
    List {
        /// One JSON array of summaries instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show one script as JSON.
    Get {
        /// The script's id.
        id: String,
        /// Compact JSON on one line instead of indented.
        #[arg(long)]
        json: bool,
    },
    /// Check the file; exit 2 naming the line and column or the entry and
    /// field at fault.
    Validate {
        /// A JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Open the cache as the service does (`CACHE_SIZE`, `CACHE_MEMORY_MB`),
    /// look every script up `--rounds` times and print the cache statistics.
    Stats {
        /// Lookups of every script.
        #[arg(long, default_value_t = 2)]
        rounds: u32,
        /// A JSON object with the keys of `/stats`'s `cache`.
        #[arg(long)]
        json: bool,
    },
}

/// The registry used when none is named: `./registry.json` when it exists,
/// else the example registry of the repository this binary was built from.
pub(crate) fn default_registry_path() -> PathBuf {
    let local = PathBuf::from("registry.json");
    if local.exists() {
        return local;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/registry.json")
}

/// Runs `mechops registry`.
pub(crate) fn run(args: RegistryArgs) -> anyhow::Result<()> {
    let path = args.registry.unwrap_or_else(default_registry_path);
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match args.command {
        RegistryCommand::List { json } => {
            let reg = load(&path)?;
            let summaries: Vec<_> = reg.scripts().iter().map(|s| s.summary()).collect();
            if json {
                writeln!(out, "{}", serde_json::to_string(&summaries)?)?;
            } else {
                for s in summaries {
                    writeln!(
                        out,
                        "{}\t{}\t{}\t{}",
                        s.id,
                        s.kind,
                        s.name,
                        s.tags.join(",")
                    )?;
                }
            }
        }
        RegistryCommand::Get { id, json } => {
            let reg = load(&path)?;
            let script = reg
                .get(&id)
                .ok_or_else(|| input_error(format!("{}: unknown script {id:?}", path.display())))?;
            let text = if json {
                serde_json::to_string(&**script)?
            } else {
                serde_json::to_string_pretty(&**script)?
            };
            writeln!(out, "{text}")?;
        }
        RegistryCommand::Validate { json } => {
            let reg = load(&path)?;
            if json {
                let v = serde_json::json!({
                    "valid": true,
                    "scripts": reg.scripts().len(),
                    "pools": reg.pools().len(),
                });
                writeln!(out, "{v}")?;
            } else {
                writeln!(
                    out,
                    "{}: valid, {} scripts, {} pools",
                    path.display(),
                    reg.scripts().len(),
                    reg.pools().len()
                )?;
            }
        }
        RegistryCommand::Stats { rounds, json } => {
            let config = RegistryCache::config_from_env()
                .map_err(bad_input)?
                .with_watch(WatchMode::Off);
            let cache = RegistryCache::open(&path, config).map_err(|e| classify(&path, e))?;
            for _ in 0..rounds {
                for id in cache.ids() {
                    cache
                        .get(&id)
                        .map_err(|e| input_error(format!("{}: {e}", path.display())))?;
                }
            }
            let stats = cache.stats();
            if json {
                writeln!(out, "{}", serde_json::to_string(&stats)?)?;
            } else if let serde_json::Value::Object(m) = serde_json::to_value(stats)? {
                for (k, v) in m {
                    writeln!(out, "{k}={v}")?;
                }
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// Loads the registry; a file that cannot be read is an I/O failure, one
/// that is not a valid registry is bad input.
fn load(path: &Path) -> anyhow::Result<Registry> {
    Registry::load(path).map_err(|e| classify(path, e))
}

/// An I/O error keeps exit code 1; a bad registry is exit code 2.
pub(crate) fn classify(path: &Path, e: RegistryError) -> anyhow::Error {
    match e {
        RegistryError::Io { .. } => anyhow::Error::new(e),
        other => bad_input(other).context(format!("{}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_falls_back_to_the_example() {
        let p = default_registry_path();
        assert!(p.ends_with("registry.json"), "{}", p.display());
    }

    #[test]
    fn bad_files_are_input_errors() {
        let e = classify(
            Path::new("r.json"),
            RegistryError::Syntax {
                line: 1,
                column: 2,
                message: "x".into(),
            },
        );
        assert!(e.chain().any(|c| c.is::<crate::output::InputError>()));
    }
}
