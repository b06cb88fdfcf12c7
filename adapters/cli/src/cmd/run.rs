//! `mechops run`: one execution of a registry script from the command line.
//!
//! `mechops run SCRIPT_ID [--arg NAME=VALUE]...` checks the arguments
//! against the script's declarations (each value is read as the declared
//! type), runs it, copies its captured standard output and error to its
//! own, and exits with the script's exit code (1 for a failed run with
//! none: an HTTP error status, a failed query, a timeout). An unknown
//! script, invalid arguments or bad usage exit 2, before anything runs.
//! On a terminal, a progress bar on standard error shows the script's
//! progress reports. `--json` prints the outcome object instead.
//! `--async` submits a job to the store (the one `mechops serve` uses, by
//! default) and prints its ID; a running `mechops serve` on that store
//! runs it.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mechops_alloc::job::JobPriority;
use mechops_tokio::jobs::open::StoreUrl;
use mechops_tokio::service::{ServiceConfig, ToolService};

use super::serve::{registry_path, service_err};
use crate::output::bad_input;

/// Arguments of `mechops run`.
#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// The script's identifier.
    script_id: String,
    /// The registry file (default ./registry.json, else the repository's examples/registry.json).
    #[arg(long, value_name = "FILE")]
    registry: Option<PathBuf>,
    /// An argument, read as the type the script declares for it; repeatable.
    #[arg(long = "arg", value_name = "NAME=VALUE")]
    args: Vec<String>,
    /// Submit a job instead of running now; prints its ID.
    #[arg(long = "async")]
    run_async: bool,
    /// With --async, the job store (default $JOB_STORAGE_PATH/jobs.db or ./.mechops/jobs.db).
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// Print the outcome as one JSON object (with --async: {"id"}).
    #[arg(long)]
    json: bool,
}

/// Runs `mechops run`; returns the exit code.
pub(crate) fn run(args: RunArgs) -> anyhow::Result<u8> {
    let mut config = ServiceConfig::from_env(registry_path(args.registry)).map_err(service_err)?;
    if let Some(url) = &args.store {
        config.store = StoreUrl::parse(url).map_err(bad_input)?;
    }
    // This process only runs the one script, or submits it: the queue's
    // jobs are for `mechops serve`.
    config.worker = None;
    let rt = super::jobs::runtime()?;
    rt.block_on(async move {
        let service = ToolService::start(config).await.map_err(service_err)?;
        let result = one(
            &service,
            &args.script_id,
            &args.args,
            args.run_async,
            args.json,
        )
        .await;
        service.shutdown().await;
        result
    })
}

async fn one(
    service: &ToolService,
    id: &str,
    pairs: &[String],
    run_async: bool,
    json: bool,
) -> anyhow::Result<u8> {
    let arguments = service
        .cli_arguments(id, pairs)
        .await
        .map_err(service_err)?;
    let mut out = std::io::stdout().lock();
    if run_async {
        let job = service
            .execute_async(id, &arguments, JobPriority::Normal, None)
            .await
            .map_err(service_err)?;
        if json {
            writeln!(out, "{}", serde_json::json!({"id": job.to_string()}))?;
        } else {
            writeln!(out, "{job}")?;
        }
        return Ok(0);
    }
    let bar = (!json && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::with_draw_target(Some(100), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos:>3}% {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    });
    let shown = bar.clone();
    let outcome = service
        .execute_with_progress(id, &arguments, move |percent, message| {
            if let Some(bar) = &shown {
                bar.set_message(message.to_owned());
                // `percent` is within 0..=100.
                bar.set_position(percent as u64);
            }
        })
        .await
        .map_err(service_err)?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if json {
        let v = serde_json::to_value(&outcome).context("encoding the outcome")?;
        writeln!(out, "{v}")?;
    } else {
        out.write_all(outcome.stdout.as_bytes())?;
        out.flush()?;
        let mut err = std::io::stderr().lock();
        err.write_all(outcome.stderr.as_bytes())?;
        if !outcome.ok {
            let why = outcome.error.as_deref().unwrap_or("failed");
            writeln!(err, "mechops: script {id:?}: {why}")?;
        }
    }
    Ok(exit_code(&outcome))
}

fn exit_code(outcome: &mechops_tokio::exec::Outcome) -> u8 {
    match outcome.exit_code {
        Some(code) => u8::try_from(code).unwrap_or(1),
        None if outcome.ok => 0,
        None => 1,
    }
}
