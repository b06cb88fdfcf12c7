//! The connection pool table of `mechops bench`: acquire plus release per
//! second through `ConnectionPool` with a no-op manager, beside
//! `tokio::sync::Semaphore` acquire plus release (the floor), at each pool
//! size / task count of the benchmark notes, on a two-worker tokio runtime.
//! Live, best of a few rounds on a possibly busy machine; the peers
//! (deadpool, bb8) are measured only in `benches/benches/conn_pool.rs`.
//!
//! Then the timing clauses, measured rather than asserted (the tests check
//! only that timeouts and recovery happen): how long a request to a line
//! server that never answers takes to time out, and an acquire from an
//! exhausted pool, each over [`TIMED`] tries at 50 ms and 200 ms settings
//! (median, 99th percentile, worst, and the worst's distance from the
//! setting); and how long after a killed endpoint comes back the pool
//! serves again, against the breaker's backoff cap.

use core::hint::black_box;
use core::time::Duration;
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use mechops_core::backoff::Backoff;
use mechops_tokio::conn::line::{LineEndpoint, LineError, LineManager};
use mechops_tokio::conn::line_server::LineServer;
use mechops_tokio::conn::noop::NoopManager;
use mechops_tokio::conn::{BreakerConfig, ConnectionPool, ConnectionPoolConfig};
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;

/// Acquire+release cycles per round, over all tasks.
const OPS: u64 = 200_000;
/// Rounds per row; the fastest is printed.
const ROUNDS: u32 = 3;
/// Pool size / tasks, as in the benchmark notes.
const SETTINGS: [(usize, usize); 4] = [(8, 8), (16, 32), (32, 32), (8, 64)];

/// Measures and prints the connection pool table.
pub(crate) fn table(out: &mut impl Write) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    writeln!(
        out,
        "connection pool, no-op manager (live, best of {ROUNDS} rounds of {OPS} acquire+release)"
    )?;
    writeln!(
        out,
        "{:<12} {:>12} {:>12} {:>10}  target",
        "size/tasks", "ours M/s", "floor M/s", "floor/ours"
    )?;
    for (size, tasks) in SETTINGS {
        let pool = rt.block_on(async {
            let mut config = ConnectionPoolConfig::sized(size, size);
            config.pool.check_after_idle = None;
            let pool = ConnectionPool::new("bench", NoopManager::new(), vec!["noop"], config)?;
            let mut held = Vec::with_capacity(size);
            for _ in 0..size {
                held.push(pool.acquire().await?);
            }
            drop(held);
            anyhow::Ok(pool)
        })?;
        let ours = best(&rt, tasks, {
            let pool = pool.clone();
            move || {
                let pool = pool.clone();
                async move {
                    if let Ok(conn) = pool.acquire().await {
                        black_box(*conn);
                    }
                }
            }
        });
        let semaphore = Arc::new(Semaphore::new(size));
        let floor = best(&rt, tasks, move || {
            let semaphore = Arc::clone(&semaphore);
            async move {
                if let Ok(permit) = semaphore.acquire().await {
                    black_box(&permit);
                }
            }
        });
        writeln!(
            out,
            "{:<12} {:>12.2} {:>12.2} {:>10.2}  >= 1.5x max(deadpool, bb8) or >= floor/1.1",
            format!("{size}/{tasks}"),
            ours / 1e6,
            floor / 1e6,
            floor / ours,
        )?;
        rt.block_on(pool.close(Duration::from_secs(1)));
    }
    timing_table(out, &rt)
}

/// Timed tries per setting: [`TIMED_TASKS`] tasks of [`TIMED`] /
/// [`TIMED_TASKS`] tries each.
const TIMED: usize = 200;
/// Concurrent tasks of the timing rows.
const TIMED_TASKS: usize = 20;
/// Timeout settings of the timing rows.
const TIMEOUTS: [Duration; 2] = [Duration::from_millis(50), Duration::from_millis(200)];
/// Kill and restart cycles of the recovery row.
const RECOVERIES: usize = 5;

/// Measures and prints the timing clauses: request timeout, acquire timeout
/// and recovery after an endpoint comes back.
pub(crate) fn timing_table(out: &mut impl Write, rt: &Runtime) -> anyhow::Result<()> {
    writeln!(
        out,
        "\nconnection pool timing ({TIMED} tries per row, {TIMED_TASKS} at a time)"
    )?;
    writeln!(
        out,
        "{:<28} {:>12} {:>10} {:>10} {:>10} {:>9}  target",
        "clause", "setting", "p50", "p99", "worst", "worst +%"
    )?;
    for timeout in TIMEOUTS {
        let taken = rt.block_on(request_timeouts(timeout))?;
        timing_row(out, "request timeout (black hole)", timeout, &taken)?;
    }
    for timeout in TIMEOUTS {
        let taken = rt.block_on(acquire_timeouts(timeout))?;
        timing_row(out, "acquire timeout (exhausted)", timeout, &taken)?;
    }
    let cap = Duration::from_millis(200);
    let taken = rt.block_on(recoveries(cap))?;
    let worst = taken.iter().max().copied().unwrap_or_default();
    writeln!(
        out,
        "{:<28} {:>12} {:>10} {:>10} {:>10} {:>9}  <= backoff cap",
        "recovery after restart",
        format!("cap {}", millis(cap)),
        millis(quantile(&taken, 0.5)),
        "-",
        millis(worst),
        format!("{:+.0}", percent_over(worst, cap)),
    )?;
    Ok(())
}

fn timing_row(
    out: &mut impl Write,
    clause: &str,
    setting: Duration,
    taken: &[Duration],
) -> anyhow::Result<()> {
    let worst = taken.iter().max().copied().unwrap_or_default();
    writeln!(
        out,
        "{:<28} {:>12} {:>10} {:>10} {:>10} {:>9}  within 10 %",
        clause,
        millis(setting),
        millis(quantile(taken, 0.5)),
        millis(quantile(taken, 0.99)),
        millis(worst),
        format!("{:+.1}", percent_over(worst, setting)),
    )?;
    Ok(())
}

/// The `q` quantile of `taken`, exactly (nearest rank).
fn quantile(taken: &[Duration], q: f64) -> Duration {
    let mut sorted = taken.to_vec();
    sorted.sort_unstable();
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).copied().unwrap_or_default()
}

fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn percent_over(taken: Duration, setting: Duration) -> f64 {
    (taken.as_secs_f64() / setting.as_secs_f64() - 1.0) * 100.0
}

/// Runs `tries` on [`TIMED_TASKS`] tasks, [`TIMED`] in all, and collects
/// what each returned.
async fn timed<F, Fut>(tries: F) -> anyhow::Result<Vec<Duration>>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = anyhow::Result<Duration>> + Send,
{
    let tasks: Vec<_> = (0..TIMED_TASKS)
        .map(|_| {
            let tries = tries.clone();
            tokio::spawn(async move {
                let mut taken = Vec::with_capacity(TIMED / TIMED_TASKS);
                for _ in 0..TIMED / TIMED_TASKS {
                    taken.push(tries().await?);
                }
                anyhow::Ok(taken)
            })
        })
        .collect();
    let mut all = Vec::with_capacity(TIMED);
    for task in tasks {
        all.extend(task.await??);
    }
    Ok(all)
}

/// How long requests to a line server that reads but never answers take to
/// fail, with the request timeout at `timeout`.
async fn request_timeouts(timeout: Duration) -> anyhow::Result<Vec<Duration>> {
    let server = LineServer::local().await?;
    let endpoint: LineEndpoint = server.url().parse()?;
    let mut config = ConnectionPoolConfig::sized(0, TIMED_TASKS);
    config.pool.check_after_idle = None;
    let pool = ConnectionPool::new(
        "timing",
        LineManager::new(timeout, None),
        vec![endpoint],
        config,
    )?;
    server.set_black_hole(true);
    let taken = timed(move || {
        let pool = pool.clone();
        async move {
            let mut conn = pool.acquire().await?;
            let start = Instant::now();
            match conn.execute("PING").await {
                Err(LineError::Timeout(_)) => Ok(start.elapsed()),
                other => anyhow::bail!("a black-holed request ended otherwise: {other:?}"),
            }
        }
    })
    .await;
    drop(server);
    taken
}

/// How long acquires from a pool whose one connection is held take to
/// fail, with the acquire timeout at `timeout`.
async fn acquire_timeouts(timeout: Duration) -> anyhow::Result<Vec<Duration>> {
    let mut config = ConnectionPoolConfig::sized(1, 1);
    config.pool.check_after_idle = None;
    config.pool.acquire_timeout = timeout;
    let pool = ConnectionPool::new("timing", NoopManager::new(), vec!["noop"], config)?;
    let held = pool.acquire().await?;
    let taken = timed(move || {
        let pool = pool.clone();
        async move {
            let start = Instant::now();
            match pool.acquire().await {
                Err(e) if e.is_timeout() => Ok(start.elapsed()),
                Err(e) => anyhow::bail!("an exhausted acquire failed otherwise: {e}"),
                Ok(_) => anyhow::bail!("an exhausted pool handed out a connection"),
            }
        }
    })
    .await;
    drop(held);
    taken
}

/// How long after a killed line server listens again the pool serves a
/// request, [`RECOVERIES`] times, with the breaker's backoff capped at
/// `cap`. Each outage lasts long enough for the backoff to reach its cap.
async fn recoveries(cap: Duration) -> anyhow::Result<Vec<Duration>> {
    let mut server = LineServer::local().await?;
    let endpoint: LineEndpoint = server.url().parse()?;
    let mut config = ConnectionPoolConfig::sized(1, 4);
    config.pool.check_after_idle = None;
    config.pool.acquire_timeout = Duration::from_millis(100);
    config.connect_timeout = Duration::from_secs(1);
    config.pool.breaker = BreakerConfig {
        failure_threshold: 1,
        backoff: Backoff::new(Duration::from_millis(20), cap, 32)?,
    };
    let pool = ConnectionPool::new(
        "timing",
        LineManager::new(Duration::from_millis(100), None),
        vec![endpoint],
        config,
    )?;
    let mut taken = Vec::with_capacity(RECOVERIES);
    for _ in 0..RECOVERIES {
        let mut conn = pool.acquire().await?;
        conn.execute("PING").await?;
        drop(conn);
        server.kill().await;
        // Down for ten caps: the pool keeps trying its minimum, and the
        // backoff reaches the cap.
        let down = Instant::now();
        while down.elapsed() < cap * 10 {
            if let Ok(mut conn) = pool.acquire().await {
                let _ = conn.execute("PING").await;
            }
        }
        server.restart().await?;
        let back = Instant::now();
        loop {
            anyhow::ensure!(
                back.elapsed() < cap * 20,
                "the pool did not recover within 20 backoff caps"
            );
            if let Ok(mut conn) = pool.acquire().await
                && conn.execute("PING").await.is_ok()
            {
                break;
            }
        }
        taken.push(back.elapsed());
    }
    Ok(taken)
}

/// The best rate (cycles per second) of `ROUNDS` rounds of `OPS` cycles
/// split over `tasks` tasks.
fn best<F, Fut>(rt: &Runtime, tasks: usize, cycle: F) -> f64
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let per_task = OPS / tasks as u64;
    let mut best = 0f64;
    for _ in 0..ROUNDS {
        let elapsed = rt.block_on(async {
            let start = Instant::now();
            let handles: Vec<_> = (0..tasks)
                .map(|_| {
                    let cycle = cycle.clone();
                    tokio::spawn(async move {
                        for _ in 0..per_task {
                            cycle().await;
                        }
                    })
                })
                .collect();
            for h in handles {
                let _ = h.await;
            }
            start.elapsed()
        });
        best = best.max((per_task * tasks as u64) as f64 / elapsed.as_secs_f64());
    }
    best
}
