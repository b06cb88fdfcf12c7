//! Running one script: look it up, bind its arguments, render it, hand it
//! to its runner, count it and write its outcome to the workspace.

use core::time::Duration;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use mechops_std::registry::{
    LookupError, PoolSpec, RegistryCache, Rendered, RenderedCommand, RenderedHttp, RenderedSql,
    Script, parse_cli_arg,
};
use mechops_std::workspace::Options;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::{ServiceConfig, ServiceError, job_failure};
use crate::conn::postgres::{PostgresEndpoint, PostgresManager, PostgresTls};
use crate::conn::{ConnectionPool, ConnectionPoolConfig};
use crate::exec::{
    CommandRequest, ExecStats, HttpClient, HttpRequest, Outcome, ProgressReport, SqlRequest,
    run_sql,
};
use crate::jobs::runtime::{JobContext, JobError};
use crate::jobs::store::StoreStats;
use crate::registry_tier::{RegistryTier, TierConfig, TierError};
use crate::workspace::AsyncWorkspace;

/// The retries a script gets when its entry has no `max_retries`.
pub(crate) const DEFAULT_MAX_RETRIES: u32 = 3;

/// The retries `script` allows: its entry's `max_retries`, else 3.
pub(crate) fn max_retries(script: &Script) -> u32 {
    script
        .extra
        .get("max_retries")
        .and_then(Value::as_u64)
        .map_or(DEFAULT_MAX_RETRIES, |n| {
            u32::try_from(n).unwrap_or(u32::MAX)
        })
}

pub(crate) struct Executor {
    registry_path: PathBuf,
    cache: Arc<RegistryCache>,
    /// The Redis tier in front of `cache`, when `REDIS_URL` is set.
    tier: Option<Arc<RegistryTier>>,
    /// One pooled client for every `http` script.
    http: HttpClient,
    /// The registry's PostgreSQL pools this service created, by name.
    pools: Mutex<BTreeMap<String, ConnectionPool<PostgresManager>>>,
    stats: ExecStats,
    workspace: AsyncWorkspace,
    output_limit: usize,
    kill_grace: Duration,
}

fn lookup_err(e: LookupError) -> ServiceError {
    match e {
        LookupError::UnknownScript { id } => ServiceError::UnknownScript(id),
        e => ServiceError::Config(e.to_string()),
    }
}

impl Executor {
    pub(crate) async fn open(config: &ServiceConfig) -> Result<Self, ServiceError> {
        let path = config.registry.clone();
        let cache_config = config.cache.clone();
        let cache = tokio::task::spawn_blocking(move || RegistryCache::open(&path, cache_config))
            .await
            .map_err(|e| ServiceError::Config(format!("loading the registry: {e}")))?
            .map_err(|e| {
                ServiceError::Config(format!("registry {}: {e}", config.registry.display()))
            })?;
        let tier = match &config.redis_url {
            Some(url) => {
                let name = config.registry_name();
                let tier = RegistryTier::connect(Arc::clone(&cache), TierConfig::new(url, name))
                    .await
                    .map_err(|e| ServiceError::Config(e.to_string()))?;
                Some(tier)
            }
            None => None,
        };
        let workspace = AsyncWorkspace::open(&config.workspace, Options::default()).await?;
        Ok(Self {
            tier,
            registry_path: config.registry.clone(),
            cache,
            http: HttpClient::new().map_err(|e| ServiceError::Config(e.to_string()))?,
            pools: Mutex::new(BTreeMap::new()),
            stats: ExecStats::new(),
            workspace,
            output_limit: config.output_limit,
            kill_grace: config.kill_grace,
        })
    }

    pub(crate) fn registry_path(&self) -> &Path {
        &self.registry_path
    }

    pub(crate) fn list(&self) -> Vec<Value> {
        self.cache
            .list()
            .iter()
            .map(|s| serde_json::to_value(s).unwrap_or(Value::Null))
            .collect()
    }

    /// The script `id`: through the Redis tier when there is one (its
    /// near cache, the shared entries, then the local cache), else from the
    /// local cache. A Redis failure falls back to the local cache.
    pub(crate) async fn script(&self, id: &str) -> Result<Arc<Script>, ServiceError> {
        if let Some(tier) = &self.tier {
            match tier.get(id).await {
                Ok(s) => return Ok(s),
                Err(TierError::Lookup(e)) => return Err(lookup_err(e)),
                Err(e) => tracing::warn!(error = %e, "registry tier failed; using the local cache"),
            }
        }
        self.cache.get(id).map_err(lookup_err)
    }

    pub(crate) async fn script_json(&self, id: &str) -> Result<Arc<str>, ServiceError> {
        Ok(self.script(id).await?.json())
    }

    /// Looks the script up and checks `arguments` against it, rendering
    /// too: a value its template cannot hold is refused now, not at run.
    pub(crate) async fn check(
        &self,
        id: &str,
        arguments: &Map<String, Value>,
    ) -> Result<Arc<Script>, ServiceError> {
        self.render(id, arguments).await.map(|(script, _)| script)
    }

    pub(crate) async fn cli_arguments(
        &self,
        id: &str,
        pairs: &[String],
    ) -> Result<Map<String, Value>, ServiceError> {
        let script = self.script(id).await?;
        let mut args = Map::new();
        for pair in pairs {
            let (name, value) =
                parse_cli_arg(&script, pair).map_err(|e| ServiceError::InvalidArguments {
                    script: id.to_owned(),
                    detail: e.to_string(),
                })?;
            args.insert(name, value);
        }
        Ok(args)
    }

    async fn render(
        &self,
        id: &str,
        arguments: &Map<String, Value>,
    ) -> Result<(Arc<Script>, Rendered), ServiceError> {
        let script = self.script(id).await?;
        let invalid = |e: mechops_std::registry::ArgError| ServiceError::InvalidArguments {
            script: id.to_owned(),
            detail: e.to_string(),
        };
        let bound = script.bind(arguments).map_err(invalid)?;
        let rendered = script
            .render(&bound, self.cache.base_dir())
            .map_err(invalid)?;
        Ok((script, rendered))
    }

    /// Runs script `id` now; see [`super::ToolService::execute`].
    pub(crate) async fn execute(
        &self,
        id: &str,
        arguments: &Map<String, Value>,
        mut on_progress: impl FnMut(f64, &str) + Send,
    ) -> Result<Outcome, ServiceError> {
        let (_, rendered) = self.render(id, arguments).await?;
        let cancel = CancellationToken::new();
        // Dropping this future drops the runner's, which kills a command's
        // group; the guard makes that explicit for runners that watch the
        // token.
        let _guard = cancel.clone().drop_guard();
        let mut progress =
            |p: &ProgressReport| on_progress(p.percent, p.message.as_deref().unwrap_or(""));
        let outcome = self.run(id, rendered, &mut progress, cancel).await?;
        let run_id = mechops_std::uuid::generate_v7().to_string();
        self.record(&run_id, id, 1, &outcome).await;
        Ok(outcome)
    }

    /// The `script` job handler.
    pub(crate) async fn run_job(&self, ctx: JobContext) -> Result<Value, JobError> {
        let args = ctx.args();
        let id = args
            .get("script_id")
            .and_then(Value::as_str)
            .ok_or_else(|| JobError::Permanent("job arguments lack \"script_id\"".into()))?
            .to_owned();
        let arguments = match args.get("arguments") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => {
                return Err(JobError::Permanent(
                    "job \"arguments\" must be a JSON object".into(),
                ));
            }
        };
        let (_, rendered) = self
            .render(&id, &arguments)
            .await
            .map_err(|e| match e.kind() {
                super::error::ErrorKind::Internal => JobError::Retryable(e.to_string()),
                _ => JobError::Permanent(e.to_string()),
            })?;
        let mut progress = |p: &ProgressReport| {
            // A runner's percent is within 0..=100.
            let message = p.message.clone().unwrap_or_default();
            if let Err(e) = ctx.progress(p.percent / 100.0, message) {
                tracing::debug!(error = %e, "progress out of range");
            }
        };
        let outcome = self
            .run(&id, rendered, &mut progress, ctx.cancel_token().clone())
            .await
            .map_err(|e| JobError::Retryable(e.to_string()))?;
        self.record(&ctx.id().to_string(), &id, ctx.attempt(), &outcome)
            .await;
        if outcome.ok {
            Ok(serde_json::to_value(&outcome).unwrap_or(Value::Null))
        } else {
            Err(job_failure(&outcome))
        }
    }

    async fn run(
        &self,
        id: &str,
        rendered: Rendered,
        progress: &mut (dyn FnMut(&ProgressReport) + Send),
        cancel: CancellationToken,
    ) -> Result<Outcome, ServiceError> {
        let outcome = match rendered {
            Rendered::Command(c) => {
                let RenderedCommand {
                    program,
                    args,
                    env,
                    workdir,
                    timeout,
                } = c;
                let req = CommandRequest {
                    program,
                    args,
                    env,
                    workdir,
                    timeout,
                    kill_grace: self.kill_grace,
                    stdout_limit: self.output_limit,
                    stderr_limit: self.output_limit,
                };
                crate::exec::run_command(&req, progress, &cancel).await
            }
            Rendered::Http(h) => {
                let RenderedHttp {
                    method,
                    url,
                    headers,
                    body,
                    timeout,
                } = h;
                let req = HttpRequest {
                    method,
                    url,
                    headers,
                    body,
                    timeout,
                    body_limit: self.output_limit,
                };
                self.http.run(&req, &cancel).await
            }
            Rendered::Sql(q) => {
                let RenderedSql {
                    pool,
                    query,
                    params,
                    timeout,
                } = q;
                let pool = self.pool(&pool)?;
                let mut req = SqlRequest::new(query, params);
                req.timeout = timeout;
                run_sql(&pool, &req, &cancel).await
            }
        };
        let outcome = outcome.map_err(|e| ServiceError::Run(e.to_string()))?;
        self.stats.record(
            id,
            Duration::from_millis(outcome.duration_ms),
            outcome.ok,
            outcome.error.as_deref(),
        );
        Ok(outcome)
    }

    /// The registry's pool `name`, created in the process-wide registry on
    /// first use.
    fn pool(&self, name: &str) -> Result<ConnectionPool<PostgresManager>, ServiceError> {
        let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = pools.get(name) {
            return Ok(p.clone());
        }
        let spec: PoolSpec =
            self.cache.pools().get(name).cloned().ok_or_else(|| {
                ServiceError::Run(format!("no pool named {name:?} in the registry"))
            })?;
        let registry = crate::conn::registry();
        let pool = match registry.get::<PostgresManager>(name) {
            Some(p) => p,
            None => {
                let endpoint = PostgresEndpoint::parse(&spec.url)
                    .map_err(|e| ServiceError::Run(format!("pool {name:?}: {e}")))?;
                let config = ConnectionPoolConfig::sized(
                    spec.min_connections as usize,
                    spec.max_connections as usize,
                );
                registry
                    .create(
                        name,
                        PostgresManager::new(PostgresTls::None),
                        vec![endpoint],
                        config,
                    )
                    .map_err(|e| ServiceError::Run(e.to_string()))?
            }
        };
        pools.insert(name.to_owned(), pool.clone());
        Ok(pool)
    }

    /// Writes the outcome to `runs/<run_id>.json`; a failure to write is
    /// logged, not the run's failure.
    async fn record(&self, run_id: &str, script_id: &str, attempt: u32, outcome: &Outcome) {
        let mut v = serde_json::to_value(outcome).unwrap_or_else(|_| json!({}));
        if let Value::Object(m) = &mut v {
            m.insert("id".into(), run_id.into());
            m.insert("script_id".into(), script_id.into());
            m.insert("attempt".into(), attempt.into());
        }
        let path = format!("runs/{run_id}.json");
        if let Err(e) = self.workspace.write(path, v.to_string()).await {
            tracing::warn!(run = run_id, error = %e, "writing the outcome to the workspace failed");
        }
    }

    pub(crate) fn cache_stats_json(&self) -> Value {
        let s = self.cache.stats();
        json!({
            "hits": s.hits,
            "misses": s.misses,
            "evictions": s.evictions,
            "hit_rate": s.hit_rate,
            "memory_usage": s.memory_usage,
            "entries": self.cache.cached_len(),
            "reloads": s.reloads,
            "reload_errors": s.reload_errors,
            "last_error": self.cache.last_error(),
            "tier": self.tier.as_ref().map(|t| {
                let t = t.stats();
                json!({
                    "near_hits": t.near_hits,
                    "shared_hits": t.shared_hits,
                    "local_lookups": t.local_lookups,
                    "invalidations": t.invalidations,
                })
            }),
        })
    }

    pub(crate) fn executions_json(&self) -> Value {
        serde_json::to_value(self.stats.snapshot()).unwrap_or_else(|_| json!({}))
    }

    pub(crate) fn prometheus(&self, queue: &StoreStats) -> String {
        super::metrics::render(
            &self.cache.stats(),
            queue,
            &self.stats.snapshot(),
            &crate::conn::registry().prometheus(),
        )
    }

    pub(crate) async fn close(&self) {
        let pools: Vec<_> =
            core::mem::take(&mut *self.pools.lock().unwrap_or_else(|e| e.into_inner()))
                .into_keys()
                .collect();
        let registry = crate::conn::registry();
        for name in pools {
            if let Some(p) = registry.remove(&name) {
                p.close(Duration::from_secs(5)).await;
            }
        }
    }
}
