//! `mechops serve`: the tool execution service over HTTP.
//!
//! Serves the registry `--registry` (default `./registry.json`, else the
//! example registry this repository ships) on `--listen` (default
//! `127.0.0.1:7878`), with jobs in `--store` (default SQLite at
//! `$JOB_STORAGE_PATH/jobs.db` or `./.mechops/jobs.db`) and outcomes in the
//! workspace `--workspace` (default `./.mechops/workspace`). The first line
//! on standard output says which registry is served and where; SIGTERM or
//! Ctrl-C drains the server and stops the worker gracefully.

use core::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use mechops_tokio::http::{self, HttpConfig, ServeError};
use mechops_tokio::jobs::open::StoreUrl;
use mechops_tokio::service::{ServiceConfig, ServiceError, ToolService};
use tokio_util::sync::CancellationToken;

use crate::output::{bad_input, input_error};

/// Arguments of `mechops serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// The registry file (default ./registry.json, else the repository's examples/registry.json).
    #[arg(long, value_name = "FILE")]
    registry: Option<PathBuf>,
    /// The address to listen on; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = http::DEFAULT_LISTEN)]
    listen: String,
    /// The job store: sqlite://PATH (default $JOB_STORAGE_PATH/jobs.db or ./.mechops/jobs.db), memory:// or redis://.
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// The workspace directory outcomes are written to (default ./.mechops/workspace).
    #[arg(long, value_name = "DIR")]
    workspace: Option<PathBuf>,
    /// A file holding the bearer token (default: $MECHOPS_TOKEN, if set).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
}

/// The registry the repository ships, found from where this crate was built.
fn example_registry() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/registry.json")
}

/// `path`, else `./registry.json` when it exists, else the example registry.
pub(crate) fn registry_path(path: Option<PathBuf>) -> PathBuf {
    match path {
        Some(p) => p,
        None if Path::new("registry.json").exists() => PathBuf::from("registry.json"),
        None => {
            let example = example_registry();
            example.canonicalize().unwrap_or(example)
        }
    }
}

/// A service error as the command line reports it: the caller's input
/// (exit 2) or the environment's failure (exit 1).
pub(crate) fn service_err(e: ServiceError) -> anyhow::Error {
    use mechops_tokio::service::error::ErrorKind;
    match (&e, e.kind()) {
        (ServiceError::Config(_), _) | (_, ErrorKind::BadInput | ErrorKind::NotFound) => {
            bad_input(e)
        }
        _ => anyhow::Error::new(e),
    }
}

fn token(file: Option<&Path>) -> anyhow::Result<Option<String>> {
    let text = match file {
        Some(f) => Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("reading the token file {}", f.display()))?,
        ),
        None => std::env::var("MECHOPS_TOKEN").ok(),
    };
    match text.map(|t| t.trim().to_owned()) {
        Some(t) if t.is_empty() => Err(input_error("the token is empty")),
        t => Ok(t),
    }
}

/// Runs `mechops serve`.
pub(crate) fn run(args: ServeArgs) -> anyhow::Result<()> {
    let listen: SocketAddr = args
        .listen
        .parse()
        .map_err(|e| input_error(format!("--listen {:?}: {e}", args.listen)))?;
    let http_config = HttpConfig {
        token: token(args.token_file.as_deref())?,
        ..HttpConfig::default()
    };
    let registry = registry_path(args.registry);
    let mut config = ServiceConfig::from_env(&registry).map_err(service_err)?;
    if let Some(url) = &args.store {
        config.store = StoreUrl::parse(url).map_err(bad_input)?;
    }
    if let Some(dir) = args.workspace {
        config.workspace = dir;
    }
    let rt = super::jobs::runtime()?;
    rt.block_on(async move {
        let listener = http::bind(listen, &http_config)
            .await
            .map_err(|e| match e {
                ServeError::Io { .. } => anyhow::Error::new(e),
                e => bad_input(e),
            })?;
        let addr = listener.local_addr().context("reading the bound address")?;
        let service = ToolService::start(config).await.map_err(service_err)?;
        println!(
            "serving {} on http://{addr}",
            service.registry_path().display()
        );
        if http_config.token.is_some() {
            println!("every route but /healthz needs Authorization: Bearer TOKEN");
        }
        let shutdown = CancellationToken::new();
        let signals = tokio::spawn(super::jobs::signal_shutdown(shutdown.clone()));
        let served = http::serve(listener, Arc::clone(&service), &http_config, shutdown).await;
        signals.abort();
        served?;
        eprintln!("stopped");
        Ok(())
    })
}
