//! `mechops pool`: soak a line server through a connection pool, ping one,
//! or measure the pool's timing clauses (`timing`, the table also printed
//! by `mechops bench`).
//!
//! `soak` runs `--tasks` tasks that each acquire a connection, send the
//! request line, read the reply and release, until `--duration` ends; it
//! prints the counts (as text, with the rate), acquire and request
//! percentiles, the most connections
//! the pool had open, and per endpoint the operations, errors, connections
//! opened and breaker state (with `--json`, as one object). A live progress
//! line goes to standard error when it is a terminal. Failed requests are
//! results, not failures: the command exits 0 once the run completed.

use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use mechops_core::metrics::{LocalHistogram, Quantile};
use mechops_core::time::SignedDuration;
use mechops_tokio::conn::line::{LineEndpoint, LineManager, LineTls};
use mechops_tokio::conn::{Balance, BreakerState, ConnectionPool, ConnectionPoolConfig, Manager};
use serde::Serialize;

use crate::output::{bad_input, input_error};

/// Arguments of `mechops pool`.
#[derive(Debug, clap::Args)]
pub(crate) struct PoolArgs {
    #[command(subcommand)]
    command: PoolCommand,
}

#[derive(Debug, clap::Subcommand)]
enum PoolCommand {
    /// Run concurrent request loops through a pool and report what happened.
    Soak(SoakArgs),
    /// Open one connection, send one PING, print the reply and round trip.
    Ping(PingArgs),
    /// Measure the timing clauses against an in-process line server: how
    /// long timed-out requests and acquires take against their settings,
    /// and how soon the pool serves again after its endpoint comes back.
    Timing,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum BalanceArg {
    RoundRobin,
    LeastConnections,
    Failover,
}

#[derive(Debug, clap::Args)]
struct SoakArgs {
    /// Endpoints, comma separated: tcp://HOST:PORT or tls://HOST:PORT.
    #[arg(long, value_delimiter = ',', required = true)]
    endpoint: Vec<String>,
    /// Connections kept open.
    #[arg(long, default_value_t = 1)]
    min: usize,
    /// Most connections open at once.
    #[arg(long, default_value_t = 10)]
    max: usize,
    /// Concurrent request loops.
    #[arg(long, default_value_t = 8)]
    tasks: usize,
    /// How long to run, e.g. 10s, 1m30s.
    #[arg(long, default_value = "10s")]
    duration: String,
    /// The request line.
    #[arg(long, default_value = "PING")]
    request: String,
    /// How long an acquire may wait.
    #[arg(long, default_value = "30s")]
    acquire_timeout: String,
    /// How long a request may wait for its reply.
    #[arg(long, default_value = "5s")]
    request_timeout: String,
    /// How new connections are spread over the endpoints.
    #[arg(long, value_enum, default_value_t = BalanceArg::RoundRobin)]
    balance: BalanceArg,
    /// CA certificates (PEM) to trust for tls:// endpoints, instead of the
    /// bundled roots.
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// The name to check the server certificate against, instead of the host.
    #[arg(long)]
    server_name: Option<String>,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct PingArgs {
    /// tcp://HOST:PORT or tls://HOST:PORT.
    url: String,
    /// CA certificates (PEM) to trust, instead of the bundled roots.
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// The name to check the server certificate against, instead of the host.
    #[arg(long)]
    server_name: Option<String>,
    /// How long the connect and the request may each take.
    #[arg(long, default_value = "5s")]
    timeout: String,
}

/// Runs `mechops pool`.
pub(crate) fn run(args: PoolArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match args.command {
        PoolCommand::Soak(args) => runtime.block_on(soak(args)),
        PoolCommand::Ping(args) => runtime.block_on(ping(args)),
        PoolCommand::Timing => {
            crate::cmd::bench::conn::timing_table(&mut std::io::stdout().lock(), &runtime)
        }
    }
}

fn duration_arg(text: &str, what: &str) -> anyhow::Result<Duration> {
    let d = SignedDuration::parse(text.as_bytes())
        .map_err(|e| input_error(format!("{what} {text:?}: {e}")))?;
    if !d.is_positive() {
        return Err(input_error(format!("{what} {text:?} must be above zero")));
    }
    let nanos = u64::try_from(d.as_nanos())
        .map_err(|_| input_error(format!("{what} {text:?} is too long")))?;
    Ok(Duration::from_nanos(nanos))
}

fn endpoint_arg(url: &str) -> anyhow::Result<LineEndpoint> {
    url.parse().map_err(bad_input)
}

fn tls_arg(
    endpoints: &[LineEndpoint],
    ca: Option<&PathBuf>,
    server_name: Option<String>,
) -> anyhow::Result<Option<LineTls>> {
    if !endpoints.iter().any(|e| e.tls) {
        return Ok(None);
    }
    LineTls::new(ca.map(PathBuf::as_path), None, server_name)
        .map(Some)
        .map_err(bad_input)
}

#[derive(Serialize)]
struct EndpointReport {
    ops: u64,
    errors: u64,
    opened: u64,
    breaker: &'static str,
}

#[derive(Serialize)]
struct SoakReport {
    ops: u64,
    errors: u64,
    timeouts: u64,
    acquire_p50_us: u64,
    acquire_p99_us: u64,
    request_p50_us: u64,
    request_p99_us: u64,
    max_open: usize,
    per_endpoint: BTreeMap<String, EndpointReport>,
}

#[derive(Default)]
struct Counters {
    ops: AtomicU64,
    errors: AtomicU64,
    timeouts: AtomicU64,
}

struct TaskResult {
    acquire: LocalHistogram,
    request: LocalHistogram,
    per_endpoint: Vec<(u64, u64)>,
}

async fn soak(args: SoakArgs) -> anyhow::Result<()> {
    let endpoints = args
        .endpoint
        .iter()
        .map(|e| endpoint_arg(e))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let duration = duration_arg(&args.duration, "--duration")?;
    let acquire_timeout = duration_arg(&args.acquire_timeout, "--acquire-timeout")?;
    let request_timeout = duration_arg(&args.request_timeout, "--request-timeout")?;
    if args.tasks == 0 {
        return Err(input_error("--tasks must be at least 1"));
    }
    if args.request.contains(['\n', '\r']) {
        return Err(input_error("--request must be one line"));
    }
    let tls = tls_arg(&endpoints, args.tls_ca.as_ref(), args.server_name.clone())?;
    let mut config = ConnectionPoolConfig::sized(args.min, args.max);
    config.pool.acquire_timeout = acquire_timeout;
    config.connect_timeout = request_timeout;
    config.pool.balance = match args.balance {
        BalanceArg::RoundRobin => Balance::RoundRobin,
        BalanceArg::LeastConnections => Balance::LeastConnections,
        BalanceArg::Failover => Balance::Failover,
    };
    let names: Vec<String> = endpoints.iter().map(ToString::to_string).collect();
    let manager = LineManager::new(request_timeout, tls);
    let pool = ConnectionPool::new("soak", manager, endpoints, config).map_err(bad_input)?;

    let counters = Arc::new(Counters::default());
    let started = tokio::time::Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..args.tasks)
        .map(|_| {
            let pool = pool.clone();
            let counters = Arc::clone(&counters);
            let request = args.request.clone();
            let n = names.len();
            tokio::spawn(async move { soak_task(pool, counters, request, deadline, n).await })
        })
        .collect();

    let progress = std::io::stderr().is_terminal();
    let mut max_open = 0;
    let mut last_progress = started;
    while tasks.iter().any(|t| !t.is_finished()) {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let m = pool.metrics();
        max_open = max_open.max(m.size + m.opening);
        if progress && last_progress.elapsed() >= Duration::from_millis(250) {
            last_progress = tokio::time::Instant::now();
            eprint!(
                "\r{:>6.1}s  ops {}  errors {}  open {}  waiting {}   ",
                started.elapsed().as_secs_f64(),
                counters.ops.load(Ordering::Relaxed),
                counters.errors.load(Ordering::Relaxed),
                m.size,
                m.waiters,
            );
            let _ = std::io::stderr().flush();
        }
    }
    if progress {
        eprint!("\r\x1b[2K");
    }
    let mut acquire = LocalHistogram::new();
    let mut request = LocalHistogram::new();
    let mut per_endpoint = vec![(0u64, 0u64); names.len()];
    for task in tasks {
        let result = task.await?;
        acquire.merge(&result.acquire);
        request.merge(&result.request);
        for (total, (ops, errors)) in per_endpoint.iter_mut().zip(result.per_endpoint) {
            total.0 += ops;
            total.1 += errors;
        }
    }
    let ran = started.elapsed();
    let m = pool.metrics();
    pool.close(Duration::from_secs(1)).await;
    let micros = |h: &LocalHistogram, q| h.quantile(q).unwrap_or(0) / 1000;
    let report = SoakReport {
        ops: counters.ops.load(Ordering::Relaxed),
        errors: counters.errors.load(Ordering::Relaxed),
        timeouts: counters.timeouts.load(Ordering::Relaxed),
        acquire_p50_us: micros(&acquire, Quantile::P50),
        acquire_p99_us: micros(&acquire, Quantile::P99),
        request_p50_us: micros(&request, Quantile::P50),
        request_p99_us: micros(&request, Quantile::P99),
        max_open,
        per_endpoint: names
            .iter()
            .zip(per_endpoint)
            .zip(&m.endpoints)
            .map(|((name, (ops, errors)), e)| {
                (
                    name.clone(),
                    EndpointReport {
                        ops,
                        errors,
                        opened: e.created,
                        breaker: match e.breaker {
                            BreakerState::Closed => "closed",
                            BreakerState::HalfOpen => "half_open",
                            BreakerState::Open => "open",
                        },
                    },
                )
            })
            .collect(),
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &report)?;
        writeln!(out)?;
    } else {
        writeln!(out, "ops            {}", report.ops)?;
        writeln!(
            out,
            "rate           {:.0} ops/s",
            report.ops as f64 / ran.as_secs_f64().max(1e-9)
        )?;
        writeln!(out, "errors         {}", report.errors)?;
        writeln!(out, "timeouts       {}", report.timeouts)?;
        writeln!(
            out,
            "acquire        p50 {} us, p99 {} us",
            report.acquire_p50_us, report.acquire_p99_us
        )?;
        writeln!(
            out,
            "request        p50 {} us, p99 {} us",
            report.request_p50_us, report.request_p99_us
        )?;
        writeln!(out, "max open       {}", report.max_open)?;
        for (name, e) in &report.per_endpoint {
            writeln!(
                out,
                "{name}  ops {}  errors {}  opened {}  breaker {}",
                e.ops, e.errors, e.opened, e.breaker
            )?;
        }
    }
    Ok(())
}

async fn soak_task(
    pool: ConnectionPool<LineManager>,
    counters: Arc<Counters>,
    request: String,
    deadline: tokio::time::Instant,
    endpoints: usize,
) -> TaskResult {
    let mut result = TaskResult {
        acquire: LocalHistogram::new(),
        request: LocalHistogram::new(),
        per_endpoint: vec![(0, 0); endpoints],
    };
    while tokio::time::Instant::now() < deadline {
        let t0 = tokio::time::Instant::now();
        let mut conn = match pool.acquire().await {
            Ok(conn) => conn,
            Err(e) => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
                if e.is_timeout() {
                    counters.timeouts.fetch_add(1, Ordering::Relaxed);
                }
                continue;
            }
        };
        let t1 = tokio::time::Instant::now();
        result.acquire.record(nanos(t1 - t0));
        let endpoint = conn.endpoint_index();
        match conn.execute(&request).await {
            Ok(_) => {
                result.request.record(nanos(t1.elapsed()));
                counters.ops.fetch_add(1, Ordering::Relaxed);
                result.per_endpoint[endpoint].0 += 1;
            }
            Err(_) => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
                result.per_endpoint[endpoint].1 += 1;
            }
        }
    }
    result
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

async fn ping(args: PingArgs) -> anyhow::Result<()> {
    let endpoint = endpoint_arg(&args.url)?;
    let timeout = duration_arg(&args.timeout, "--timeout")?;
    let tls = tls_arg(
        core::slice::from_ref(&endpoint),
        args.tls_ca.as_ref(),
        args.server_name,
    )?;
    let manager = LineManager::new(timeout, tls);
    let mut conn = match tokio::time::timeout(timeout, manager.connect(&endpoint)).await {
        Ok(conn) => conn.map_err(|e| anyhow::anyhow!("{endpoint}: {e}"))?,
        Err(_) => anyhow::bail!("{endpoint}: connect timed out after {timeout:?}"),
    };
    let start = tokio::time::Instant::now();
    let reply = conn
        .execute("PING")
        .await
        .map_err(|e| anyhow::anyhow!("{endpoint}: {e}"))?;
    let rtt = start.elapsed();
    manager.close(conn).await;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{reply} from {endpoint} in {} us", rtt.as_micros())?;
    Ok(())
}
