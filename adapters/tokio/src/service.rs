//! The tool execution service: the script registry, the job queue, the
//! runners and the workspace put to work together.
//!
//! A [`ToolService`] holds
//! - the registry cache ([`mechops_std::registry`]): scripts looked up by
//!   identifier, reloaded when the file changes, with an optional Redis
//!   tier (`REDIS_URL`);
//! - the job queue ([`crate::jobs`]) on the store of
//!   [`ServiceConfig::store`] and a [`Worker`] running the `script`
//!   handler, so [`ToolService::execute_async`] runs a script later, with
//!   retries;
//! - the runners ([`crate::exec`]): commands in their own process group,
//!   one pooled HTTP client, and the registry's named PostgreSQL pools,
//!   created in the process-wide [`conn::registry`](crate::conn::registry)
//!   on first use;
//! - per-script execution statistics;
//! - the workspace, where each finished execution's outcome is written as
//!   `runs/<id>.json` (the job's ID for a job; a retry overwrites it with
//!   its own outcome).
//!
//! # Calling order
//!
//! [`ToolService::start`], then any calls from any task, then
//! [`ToolService::shutdown`], which stops the worker gracefully and closes
//! the store. Arguments are checked against the script's declarations
//! before anything runs or is queued: an unknown script
//! ([`ServiceError::UnknownScript`]) and invalid arguments
//! ([`ServiceError::InvalidArguments`]) are told apart.

pub mod error;
pub mod events;
mod execute;
mod metrics;
pub mod status;

use core::time::Duration;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use mechops_alloc::job::{JobId, JobPriority, JobSpec, RunAt, StateKind};
use serde_json::{Map, Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use error::ServiceError;

use crate::exec::Outcome;
use crate::jobs::open::StoreUrl;
use crate::jobs::runtime::{Handlers, JobError, Queue, Worker, WorkerConfig, WorkerReport};
use crate::jobs::store::{StoreConfig, StoreError};
use execute::Executor;

/// The job handler the service registers: arguments
/// `{"script_id","arguments"}`.
pub const SCRIPT_HANDLER: &str = "script";

/// Where the service keeps its state when nothing else is said.
pub const DEFAULT_STATE_DIR: &str = ".mechops";

/// A service's settings.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// The registry file.
    pub registry: PathBuf,
    /// The job store (default: SQLite at `$JOB_STORAGE_PATH/jobs.db`, else
    /// `./.mechops/jobs.db`, as `mechops jobs`).
    pub store: StoreUrl,
    /// The workspace directory (default `./.mechops/workspace`).
    pub workspace: PathBuf,
    /// The registry cache's settings (`CACHE_SIZE`, `CACHE_MEMORY_MB`).
    pub cache: mechops_std::registry::CacheConfig,
    /// The Redis server sharing parsed scripts between processes
    /// (`REDIS_URL`); `None` for none.
    pub redis_url: Option<String>,
    /// The registry's name in Redis; processes sharing it use the same
    /// name (default: the registry file's name without its extension).
    pub tier_name: Option<String>,
    /// The worker's settings (concurrency from `JOB_CONCURRENCY`); `None`
    /// runs no worker: jobs are submitted for other processes to run.
    pub worker: Option<WorkerConfig>,
    /// Bytes of standard output and of standard error kept per command
    /// (default 1 MiB each).
    pub output_limit: usize,
    /// How long a timed-out command's group has between SIGTERM and
    /// SIGKILL (default 2 s).
    pub kill_grace: Duration,
}

impl ServiceConfig {
    /// The defaults for `registry`, read from the environment:
    /// `JOB_STORAGE_PATH`, `JOB_CONCURRENCY`, `CACHE_SIZE`,
    /// `CACHE_MEMORY_MB`, `REDIS_URL`.
    ///
    /// # Errors
    /// [`ServiceError::Config`] naming a variable that is set but unusable.
    pub fn from_env(registry: impl Into<PathBuf>) -> Result<Self, ServiceError> {
        let worker = WorkerConfig::from_env().map_err(ServiceError::Config)?;
        let cache = mechops_std::registry::CacheConfig::from_env()
            .map_err(|e| ServiceError::Config(e.to_string()))?;
        Ok(Self {
            registry: registry.into(),
            store: StoreUrl::default_store(),
            workspace: PathBuf::from(DEFAULT_STATE_DIR).join("workspace"),
            cache,
            redis_url: std::env::var("REDIS_URL")
                .ok()
                .filter(|u| !u.trim().is_empty()),
            tier_name: None,
            worker: Some(worker),
            output_limit: 1 << 20,
            kill_grace: Duration::from_secs(2),
        })
    }
}

impl ServiceConfig {
    /// The registry's name in Redis: [`ServiceConfig::tier_name`], else
    /// the registry file's name without its extension.
    pub fn registry_name(&self) -> String {
        self.tier_name.clone().unwrap_or_else(|| {
            self.registry.file_stem().map_or_else(
                || "registry".to_owned(),
                |s| s.to_string_lossy().into_owned(),
            )
        })
    }
}

/// The tool execution service. See the [module docs](self).
pub struct ToolService {
    exec: Arc<Executor>,
    queue: Queue,
    stop: CancellationToken,
    worker: Mutex<Running>,
}

/// Whether the service still runs, and its worker if it has one.
enum Running {
    Worker(JoinHandle<Result<WorkerReport, StoreError>>),
    NoWorker,
    Closed,
}

impl core::fmt::Debug for ToolService {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ToolService")
            .field("queue", &self.queue)
            .finish_non_exhaustive()
    }
}

impl ToolService {
    /// Loads the registry, opens the store and the workspace, and starts
    /// the worker. Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// The registry does not load, or the store or workspace cannot be
    /// opened.
    pub async fn start(config: ServiceConfig) -> Result<Arc<Self>, ServiceError> {
        let exec = Arc::new(Executor::open(&config).await?);
        let url = config.store.clone();
        if let StoreUrl::Sqlite { path, .. } = &url {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    ServiceError::Config(format!("creating {}: {e}", dir.display()))
                })?;
            }
        }
        let (store, clock) = tokio::task::spawn_blocking(move || url.open(StoreConfig::default()))
            .await
            .map_err(|e| ServiceError::Config(format!("opening the job store: {e}")))??;
        let queue = Queue::new(store, clock);
        let mut handlers = Handlers::new();
        let for_jobs = Arc::clone(&exec);
        handlers.register(SCRIPT_HANDLER, move |ctx| {
            let exec = Arc::clone(&for_jobs);
            async move { exec.run_job(ctx).await }
        });
        let stop = CancellationToken::new();
        let worker = config
            .worker
            .clone()
            .map(|wc| tokio::spawn(Worker::new(queue.clone(), handlers, wc).run(stop.clone())));
        Ok(Arc::new(Self {
            exec,
            queue,
            stop,
            worker: Mutex::new(worker.map_or(Running::NoWorker, Running::Worker)),
        }))
    }

    /// The job queue.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// The registry file served.
    pub fn registry_path(&self) -> &std::path::Path {
        self.exec.registry_path()
    }

    /// `{"scripts":[...]}`: every script's public fields, by identifier.
    ///
    /// # Errors
    /// Never in practice; kept for a registry tier that may fail.
    pub fn scripts_json(&self) -> Result<Value, ServiceError> {
        Ok(json!({"scripts": self.exec.list()}))
    }

    /// One script's public fields as JSON text: one object, made once per
    /// parsed script and kept with it in the cache ([`Script::json`]).
    ///
    /// [`Script::json`]: mechops_std::registry::Script::json
    ///
    /// # Errors
    /// [`ServiceError::UnknownScript`].
    pub async fn script_json(&self, id: &str) -> Result<Arc<str>, ServiceError> {
        self.exec.script_json(id).await
    }

    /// Runs script `id` now with `arguments` and returns its outcome, once
    /// it is over. A script that runs and fails (an exit code other than
    /// 0, an HTTP error status, a failed query, a timeout) is an `Ok`
    /// outcome with `ok` false; the outcome is written to the workspace
    /// and counted in the statistics.
    ///
    /// Cancellation: dropping the future kills a command's process group
    /// and abandons an HTTP request or query; nothing is recorded.
    ///
    /// # Errors
    /// [`ServiceError::UnknownScript`], [`ServiceError::InvalidArguments`]
    /// (nothing ran), or [`ServiceError::Run`] when the script could not be
    /// started at all.
    pub async fn execute(
        &self,
        id: &str,
        arguments: &Map<String, Value>,
    ) -> Result<Outcome, ServiceError> {
        self.exec.execute(id, arguments, |_, _| {}).await
    }

    /// [`ToolService::execute`], calling `on_progress(percent, message)`
    /// for each progress report, in order.
    ///
    /// # Errors
    /// As [`ToolService::execute`].
    pub async fn execute_with_progress(
        &self,
        id: &str,
        arguments: &Map<String, Value>,
        on_progress: impl FnMut(f64, &str) + Send,
    ) -> Result<Outcome, ServiceError> {
        self.exec.execute(id, arguments, on_progress).await
    }

    /// Arguments given as `NAME=VALUE` texts (the command line's
    /// `--arg`), each read as the type script `id` declares for it.
    ///
    /// # Errors
    /// [`ServiceError::UnknownScript`], or
    /// [`ServiceError::InvalidArguments`] naming an undeclared argument or
    /// a value that is not of its type.
    pub async fn cli_arguments(
        &self,
        id: &str,
        pairs: &[String],
    ) -> Result<Map<String, Value>, ServiceError> {
        self.exec.cli_arguments(id, pairs).await
    }

    /// Checks `arguments` against script `id` and submits a job running it,
    /// with up to the script's `max_retries` (default 3) retries on the
    /// queue's backoff, at `priority`, no earlier than `delay` from now.
    ///
    /// Cancellation: dropping the future before the store answered leaves
    /// the job submitted or not; its ID is then unknown to the caller.
    ///
    /// # Errors
    /// [`ServiceError::UnknownScript`], [`ServiceError::InvalidArguments`]
    /// (nothing was queued), or the store failed.
    pub async fn execute_async(
        &self,
        id: &str,
        arguments: &Map<String, Value>,
        priority: JobPriority,
        delay: Option<Duration>,
    ) -> Result<JobId, ServiceError> {
        let script = self.exec.check(id, arguments).await?;
        let args = json!({"script_id": id, "arguments": arguments});
        let mut spec = JobSpec::new(SCRIPT_HANDLER, args.to_string())
            .with_priority(priority)
            .with_max_attempts(execute::max_retries(&script).saturating_add(1));
        if let Some(d) = delay.filter(|d| !d.is_zero()) {
            spec = spec.with_run_at(RunAt::After(d));
        }
        Ok(self.queue.submit(spec).await?)
    }

    /// The status of job `id`, as [`status::job_status_json`].
    ///
    /// # Errors
    /// [`ServiceError::BadRequest`] for an ID that is not a UUID,
    /// [`ServiceError::UnknownJob`], or the store failed.
    pub async fn job_status(&self, id: &str) -> Result<Value, ServiceError> {
        let job = self.queue.status(job_id(id)?).await?;
        Ok(status::job_status_json(&job))
    }

    /// Cancels job `id`; returns the state it was in (a running job is
    /// stopped by its worker at its next heartbeat).
    ///
    /// # Errors
    /// [`ServiceError::Conflict`] for a finished job, else as
    /// [`ToolService::job_status`].
    pub async fn cancel(&self, id: &str) -> Result<StateKind, ServiceError> {
        Ok(self.queue.cancel(job_id(id)?).await?)
    }

    /// The events of job `id` (see [`events`]), until it is over or `stop`
    /// is cancelled.
    ///
    /// # Errors
    /// As [`ToolService::job_status`].
    pub async fn events(
        &self,
        id: &str,
        stop: CancellationToken,
    ) -> Result<tokio::sync::mpsc::Receiver<events::JobEvent>, ServiceError> {
        Ok(events::job_events(&self.queue, job_id(id)?, stop).await?)
    }

    /// `{"cache":{...},"queue":{...},"executions":{SCRIPT_ID:{...}}}`.
    ///
    /// # Errors
    /// The store failed.
    pub async fn stats_json(&self) -> Result<Value, ServiceError> {
        let queue = self.queue.stats().await?;
        let throughput = self.queue.throughput().await?;
        Ok(json!({
            "cache": self.exec.cache_stats_json(),
            "queue": status::queue_stats_json(&queue, throughput.as_ref()),
            "executions": self.exec.executions_json(),
        }))
    }

    /// The statistics of [`ToolService::stats_json`] and every connection
    /// pool's metrics, in Prometheus text format.
    ///
    /// # Errors
    /// The store failed.
    pub async fn metrics_text(&self) -> Result<String, ServiceError> {
        let stats = self.queue.stats().await?;
        Ok(self.exec.prometheus(&stats))
    }

    /// Stops the worker gracefully (running jobs get its grace period, then
    /// are released to the queue), closes the store and the pools this
    /// service created. Later calls do nothing.
    ///
    /// Cancellation: dropping the future leaves the worker stopping on its
    /// own; the store stays open.
    pub async fn shutdown(&self) {
        let worker = {
            let mut w = self.worker.lock().unwrap_or_else(|e| e.into_inner());
            match &mut *w {
                Running::Closed => return,
                w => core::mem::replace(w, Running::Closed),
            }
        };
        self.stop.cancel();
        if let Running::Worker(worker) = worker {
            match worker.await {
                Ok(Ok(report)) => tracing::info!(?report, "worker stopped"),
                Ok(Err(e)) => tracing::warn!(error = %e, "worker stopped on a store failure"),
                Err(e) => tracing::warn!(error = %e, "worker task failed"),
            }
        }
        self.exec.close().await;
        if let Err(e) = self.queue.store().close().await {
            tracing::warn!(error = %e, "closing the job store failed");
        }
    }
}

fn job_id(text: &str) -> Result<JobId, ServiceError> {
    text.trim()
        .parse()
        .map(JobId::new)
        .map_err(|e| ServiceError::BadRequest(format!("job ID {text:?}: {e}")))
}

/// How a failed run is reported to the queue: retried, as attempts allow.
fn job_failure(outcome: &Outcome) -> JobError {
    JobError::Retryable(
        outcome
            .error
            .clone()
            .unwrap_or_else(|| "the script failed".to_owned()),
    )
}
