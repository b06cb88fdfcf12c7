//! `mechops jobs`: the job queue from the command line.
//!
//! `mechops jobs [--store URL] <command>`; the store defaults to SQLite at
//! `$JOB_STORAGE_PATH/jobs.db` (or `./.mechops/jobs.db`). Bad input (an
//! unknown scheme, malformed arguments, an unknown job, a store file that
//! is damaged or not a job store) exits 2; I/O failures exit 1.

mod display;
mod handlers;

use core::time::Duration;
use std::io::{BufRead, Write};
use std::sync::Arc;

use anyhow::Context;
use mechops_alloc::job::{Job, JobId, JobPriority, JobSpec, Lifecycle, RunAt, StateKind};
use mechops_core::time::{SignedDuration, Timestamp};
use mechops_tokio::jobs::open::StoreUrl;
use mechops_tokio::jobs::runtime::{Queue, Worker, WorkerConfig};
use mechops_tokio::jobs::store::{PurgeFilter, StoreConfig, StoreError, StoreStats, Throughput};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::output::{bad_input, input_error};

/// Arguments of `mechops jobs`.
#[derive(Debug, clap::Args)]
pub(crate) struct JobsArgs {
    /// The store: sqlite://PATH (default $JOB_STORAGE_PATH/jobs.db or ./.mechops/jobs.db) or memory://.
    #[arg(long, global = true, value_name = "URL")]
    store: Option<String>,
    #[command(subcommand)]
    command: JobsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum JobsCommand {
    /// Submit a job; prints its ID.
    Submit(SubmitArgs),
    /// Submit one job per input line ({"handler","args","priority","delay_ms","max_attempts"}); prints one ID per line.
    SubmitBulk(SubmitBulkArgs),
    /// Run the built-in handlers on the store's jobs.
    Worker(WorkerArgs),
    /// Show one job.
    Status(StatusArgs),
    /// List jobs, oldest first.
    List(ListArgs),
    /// Show counts by state and wait times.
    Stats(JsonArg),
    /// Cancel a queued, delayed or running job.
    Cancel(IdArg),
    /// Queue a dead or retry-scheduled job again.
    Retry(IdArg),
    /// Remove finished jobs (completed, cancelled, dead).
    Purge(PurgeArgs),
}

#[derive(Debug, clap::Args)]
struct SubmitArgs {
    /// The handler's name.
    handler: String,
    /// The arguments, one JSON value.
    #[arg(long, default_value = "{}")]
    args: String,
    /// high, normal or low.
    #[arg(long, default_value = "normal")]
    priority: String,
    /// Run no earlier than this long from now (e.g. 90s, 1h30m).
    #[arg(long, value_name = "DURATION")]
    delay: Option<String>,
    /// Attempts before the job is dead.
    #[arg(long, default_value_t = JobSpec::DEFAULT_MAX_ATTEMPTS)]
    max_attempts: u32,
    /// Per-attempt timeout.
    #[arg(long, value_name = "DURATION")]
    timeout: Option<String>,
    /// Refuse the job while another pending job holds this key.
    #[arg(long, value_name = "KEY")]
    unique: Option<String>,
}

#[derive(Debug, clap::Args)]
struct SubmitBulkArgs {
    /// Read from this file instead of standard input.
    #[arg(short = 'i', long = "input", value_name = "FILE")]
    input: Option<std::path::PathBuf>,
}

#[derive(Debug, clap::Args)]
struct WorkerArgs {
    /// Jobs running at once (default $JOB_CONCURRENCY, else the number of CPUs).
    #[arg(long)]
    concurrency: Option<usize>,
    /// Exit 0 once nothing is queued, delayed, running or awaiting a retry.
    #[arg(long)]
    until_empty: bool,
    /// Lease length; heartbeats renew it every third of it.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    lease: String,
    /// After SIGTERM or Ctrl-C, how long running jobs may take to finish before they are stopped and released.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    grace: String,
    /// Lease expiries a job survives before it is dead (stalled too often).
    #[arg(long, default_value_t = 1)]
    max_stalls: u32,
    /// One JSON event per line instead of progress bars.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct StatusArgs {
    /// The job's ID.
    id: String,
    /// As one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct ListArgs {
    /// Only jobs in this state (queued, delayed, running, completed, retry_scheduled, dead, cancelled).
    #[arg(long)]
    state: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct JsonArg {
    /// As one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct IdArg {
    /// The job's ID.
    id: String,
}

#[derive(Debug, clap::Args)]
struct PurgeArgs {
    /// Only jobs in this state (completed, cancelled or dead).
    #[arg(long)]
    state: Option<String>,
    /// Only jobs that finished longer ago than this.
    #[arg(long, value_name = "DURATION")]
    older_than: Option<String>,
}

/// Whether the command's results go to standard output.
pub(crate) fn writes_stdout(_args: &JobsArgs) -> bool {
    true
}

fn store_err(e: StoreError) -> anyhow::Error {
    if e.is_bad_input() {
        bad_input(e)
    } else {
        anyhow::Error::new(e)
    }
}

fn duration(what: &str, text: &str) -> anyhow::Result<Duration> {
    let d = SignedDuration::parse(text.as_bytes())
        .map_err(|e| input_error(format!("{what} {text:?}: {e}")))?;
    if d.is_negative() {
        return Err(input_error(format!("{what} {text:?} is negative")));
    }
    Ok(Duration::from_nanos(
        u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
    ))
}

fn job_id(text: &str) -> anyhow::Result<JobId> {
    text.trim()
        .parse()
        .map(JobId::new)
        .map_err(|e| input_error(format!("job ID {text:?}: {e}")))
}

fn state(text: &str) -> anyhow::Result<StateKind> {
    text.parse().map_err(bad_input)
}

fn priority(text: &str) -> anyhow::Result<JobPriority> {
    text.parse().map_err(bad_input)
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Runs `mechops jobs`.
pub(crate) fn run(args: JobsArgs) -> anyhow::Result<()> {
    let url = match &args.store {
        Some(u) => StoreUrl::parse(u).map_err(store_err)?,
        None => StoreUrl::default_store(),
    };
    let mut config = StoreConfig::default();
    if let JobsCommand::Worker(w) = &args.command {
        config.lifecycle = Lifecycle {
            lease: duration("lease", &w.lease)?,
            max_stalls: w.max_stalls,
            ..Lifecycle::default()
        };
        if config.lifecycle.lease < Duration::from_millis(30) {
            return Err(input_error("lease must be at least 30ms"));
        }
    }
    let rt = runtime()?;
    rt.block_on(async move {
        let (store, clock) = url.open(config).map_err(store_err)?;
        let queue = Queue::new(Arc::clone(&store), clock);
        let result = command(args.command, &queue, config).await;
        let closed = store.close().await.map_err(store_err);
        result.and(closed)
    })
}

async fn command(cmd: JobsCommand, queue: &Queue, config: StoreConfig) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match cmd {
        JobsCommand::Submit(a) => {
            let mut spec = JobSpec::new(a.handler, a.args)
                .with_priority(priority(&a.priority)?)
                .with_max_attempts(a.max_attempts);
            if let Some(d) = a.delay {
                spec = spec.with_run_at(RunAt::After(duration("delay", &d)?));
            }
            if let Some(t) = a.timeout {
                spec = spec.with_timeout(duration("timeout", &t)?);
            }
            if let Some(k) = a.unique {
                spec = spec.with_unique_key(k);
            }
            spec.validate().map_err(bad_input)?;
            let id = queue.submit(spec).await.map_err(store_err)?;
            writeln!(out, "{id}")?;
        }
        JobsCommand::SubmitBulk(a) => submit_bulk(queue, a, &mut out).await?,
        JobsCommand::Worker(a) => {
            drop(out);
            worker(queue, a, config).await?;
        }
        JobsCommand::Status(a) => {
            let job = queue.status(job_id(&a.id)?).await.map_err(store_err)?;
            if a.json {
                writeln!(out, "{}", status_json(&job))?;
            } else {
                write_status(&mut out, &job)?;
            }
        }
        JobsCommand::List(a) => {
            let st = a.state.as_deref().map(state).transpose()?;
            let jobs = queue.store().list(st, a.limit).await.map_err(store_err)?;
            for job in &jobs {
                if a.json {
                    writeln!(out, "{}", status_json(job))?;
                } else {
                    writeln!(
                        out,
                        "{}  {:<15}  {:<6}  {}/{}  {}",
                        job.id(),
                        job.state().kind().as_str(),
                        job.spec().priority.as_str(),
                        job.attempts(),
                        job.spec().max_attempts,
                        job.spec().handler
                    )?;
                }
            }
        }
        JobsCommand::Stats(a) => {
            let s = queue.stats().await.map_err(store_err)?;
            let t = queue.throughput().await.map_err(store_err)?;
            let v = stats_json(&s, t.as_ref());
            if a.json {
                writeln!(out, "{v}")?;
            } else if let Value::Object(m) = v {
                for (k, v) in m {
                    writeln!(out, "{k:<18} {v}")?;
                }
            }
        }
        JobsCommand::Cancel(a) => {
            let st = queue.cancel(job_id(&a.id)?).await.map_err(store_err)?;
            let said = if st == StateKind::Running {
                "cancel requested (running; its worker stops it at its next heartbeat)"
            } else {
                "cancelled"
            };
            writeln!(out, "{said}")?;
        }
        JobsCommand::Retry(a) => {
            queue.retry(job_id(&a.id)?).await.map_err(store_err)?;
            writeln!(out, "queued")?;
        }
        JobsCommand::Purge(a) => {
            let filter = PurgeFilter {
                state: a.state.as_deref().map(state).transpose()?,
                finished_before: match a.older_than {
                    Some(d) => {
                        let d = duration("older-than", &d)?;
                        let now = queue.clock().now();
                        let nanos =
                            now.unix_nanos() - i128::try_from(d.as_nanos()).unwrap_or(i128::MAX);
                        Some(Timestamp::from_unix_nanos(nanos).unwrap_or(Timestamp::MIN))
                    }
                    None => None,
                },
            };
            let n = queue.store().purge(filter).await.map_err(store_err)?;
            writeln!(out, "{n}")?;
        }
    }
    Ok(())
}

/// Jobs submitted per store transaction by `submit-bulk`.
const BULK_CHUNK: usize = 1000;

async fn submit_bulk(queue: &Queue, a: SubmitBulkArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let reader: Box<dyn BufRead> = match &a.input {
        Some(p) => Box::new(std::io::BufReader::new(
            std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?,
        )),
        None => Box::new(std::io::stdin().lock()),
    };
    // Every line is checked before any job is submitted.
    let mut specs = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        let line = line.context("reading the job list")?;
        if line.trim().is_empty() {
            continue;
        }
        let spec = bulk_line(&line).map_err(|e| input_error(format!("line {}: {e}", n + 1)))?;
        specs.push(spec);
    }
    let mut refused = 0usize;
    while !specs.is_empty() {
        let rest = specs.split_off(specs.len().min(BULK_CHUNK));
        let chunk = core::mem::replace(&mut specs, rest);
        for r in queue.submit_bulk(chunk).await.map_err(store_err)? {
            match r {
                Ok(id) => writeln!(out, "{id}")?,
                Err(e) => {
                    refused += 1;
                    writeln!(out, "refused: {e}")?;
                }
            }
        }
    }
    if refused > 0 {
        return Err(input_error(format!("{refused} jobs were refused")));
    }
    Ok(())
}

fn bulk_line(line: &str) -> Result<JobSpec, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let o = v.as_object().ok_or("not a JSON object")?;
    for k in o.keys() {
        if !["handler", "args", "priority", "delay_ms", "max_attempts"].contains(&k.as_str()) {
            return Err(format!("unknown field {k:?}"));
        }
    }
    let handler = o
        .get("handler")
        .and_then(Value::as_str)
        .ok_or("\"handler\" must be a string")?;
    let args = o.get("args").cloned().unwrap_or_else(|| json!({}));
    let mut spec = JobSpec::new(handler, args.to_string());
    if let Some(p) = o.get("priority") {
        let p = p.as_str().ok_or("\"priority\" must be a string")?;
        spec = spec.with_priority(p.parse().map_err(|e| format!("{e}"))?);
    }
    if let Some(d) = o.get("delay_ms") {
        let d = d.as_u64().ok_or("\"delay_ms\" must be a whole number")?;
        spec = spec.with_run_at(RunAt::After(Duration::from_millis(d)));
    }
    if let Some(m) = o.get("max_attempts") {
        let m = m
            .as_u64()
            .and_then(|m| u32::try_from(m).ok())
            .ok_or("\"max_attempts\" must be a whole number")?;
        spec = spec.with_max_attempts(m);
    }
    spec.validate().map_err(|e| e.to_string())?;
    Ok(spec)
}

async fn worker(queue: &Queue, a: WorkerArgs, config: StoreConfig) -> anyhow::Result<()> {
    let mut wc = WorkerConfig::from_env().map_err(input_error)?;
    if let Some(c) = a.concurrency {
        if c == 0 {
            return Err(input_error("--concurrency must be at least 1"));
        }
        wc.concurrency = c;
    }
    wc.until_empty = a.until_empty;
    wc.grace = duration("grace", &a.grace)?;
    wc.heartbeat = config.lifecycle.lease / 3;
    let shutdown = CancellationToken::new();
    let signals = tokio::spawn(signal_shutdown(shutdown.clone()));
    let events = queue.subscribe();
    let total = queue.stats().await.map_err(store_err)?;
    let show = display::Display::start(queue.clone(), events, a.json, pending(&total));
    let result = Worker::new(queue.clone(), handlers::builtins(), wc)
        .run(shutdown)
        .await;
    signals.abort();
    let report = show.finish().await;
    let report_line = result.map_err(store_err)?;
    if !a.json {
        eprintln!(
            "worker stopped: {} started, {} completed, {} failed, {} released, {} fenced, {} leases recovered{}",
            report_line.started,
            report_line.completed,
            report_line.failed,
            report_line.released,
            report_line.fenced,
            report_line.recovered,
            report
        );
    }
    Ok(())
}

fn pending(s: &StoreStats) -> u64 {
    let c = &s.counts;
    (c.queue_size + c.delayed + c.running + c.retry_scheduled) as u64
}

pub(crate) async fn signal_shutdown(token: CancellationToken) {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => core::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
    token.cancel();
}

/// The `--json` form of a job's status.
pub(crate) fn status_json(job: &Job) -> Value {
    mechops_tokio::service::status::job_status_json(job)
}

fn write_status(out: &mut impl Write, job: &Job) -> std::io::Result<()> {
    if let Value::Object(m) = status_json(job) {
        for (k, v) in m {
            match v {
                Value::Null => writeln!(out, "{k:<13} -")?,
                Value::String(s) => writeln!(out, "{k:<13} {s}")?,
                v => writeln!(out, "{k:<13} {v}")?,
            }
        }
    }
    Ok(())
}

fn stats_json(s: &StoreStats, throughput: Option<&Throughput>) -> Value {
    mechops_tokio::service::status::queue_stats_json(s, throughput)
}
