//! The connection pool table of `mechops bench`: acquire plus release per
//! second through `ConnectionPool` with a no-op manager, beside
//! `tokio::sync::Semaphore` acquire plus release (the floor), at each pool
//! size / task count of the benchmark notes, on a two-worker tokio runtime.
//! Live, best of a few rounds on a possibly busy machine; the peers
//! (deadpool, bb8) are measured only in `benches/benches/conn_pool.rs`.

use core::hint::black_box;
use core::time::Duration;
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use mechops_tokio::conn::noop::NoopManager;
use mechops_tokio::conn::{ConnectionPool, ConnectionPoolConfig};
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
    Ok(())
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
