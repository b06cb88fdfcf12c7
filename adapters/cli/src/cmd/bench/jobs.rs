//! The jobs table of `mechops bench`: the job queue end to end (submit,
//! claim, run a no-op handler, record completion) on the memory and SQLite
//! stores, beside bare `tokio::spawn` plus join, with the targets of the
//! job-queue issue; and the p99 scheduling latency (submit to handler
//! start on an idle worker). Takes a few seconds: the SQLite store writes
//! a temporary file with `synchronous=FULL`.

use core::time::Duration;
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use mechops_alloc::job::{JobSpec, StateKind};
use mechops_core::metrics::{LocalHistogram, Quantile};
use mechops_tokio::jobs::memory::MemoryStore;
use mechops_tokio::jobs::runtime::{Handlers, JobClock, Queue, Worker, WorkerConfig};
use mechops_tokio::jobs::sqlite::{SqliteStore, Synchronous};
use mechops_tokio::jobs::store::{Store, StoreConfig};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

fn noop() -> Handlers {
    let mut h = Handlers::new();
    h.register("noop", |_ctx| async { Ok(Value::Null) });
    h
}

/// Jobs per second, end to end, for `n` no-op jobs submitted in bulk.
async fn throughput(store: Arc<dyn Store>, clock: JobClock, n: usize) -> anyhow::Result<f64> {
    let q = Queue::new(store, clock);
    let start = Instant::now();
    let specs = (0..n).map(|_| JobSpec::new("noop", "null")).collect();
    q.submit_bulk(specs).await?;
    let mut c = WorkerConfig::new(256);
    c.until_empty = true;
    Worker::new(q, noop(), c)
        .run(CancellationToken::new())
        .await?;
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

async fn spawn_join(n: usize) -> f64 {
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        set.spawn(async { Value::Null });
    }
    while set.join_next().await.is_some() {}
    n as f64 / start.elapsed().as_secs_f64()
}

/// p99 microseconds from submission to handler start on an idle worker.
async fn latency_p99(
    store: Arc<dyn Store>,
    clock: JobClock,
    samples: usize,
) -> anyhow::Result<f64> {
    let q = Queue::new(store, clock);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let mut h = Handlers::new();
    h.register("mark", move |_ctx| {
        let tx = tx.clone();
        async move {
            // The receiver outlives the worker.
            let _ = tx.send(Instant::now());
            Ok(Value::Null)
        }
    });
    let stop = CancellationToken::new();
    let worker = tokio::spawn(Worker::new(q.clone(), h, WorkerConfig::new(4)).run(stop.clone()));
    let mut hist: LocalHistogram = LocalHistogram::new();
    for _ in 0..samples {
        let t0 = Instant::now();
        let id = q.submit(JobSpec::new("mark", "null")).await?;
        let Some(started) = rx.recv().await else {
            break;
        };
        hist.record(u64::try_from(started.duration_since(t0).as_nanos()).unwrap_or(u64::MAX));
        // Idle again: the job's completion is recorded and the worker
        // waits for work.
        while q.status(id).await?.state().kind() != StateKind::Completed {
            tokio::time::sleep(Duration::from_micros(100)).await;
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    stop.cancel();
    worker.await??;
    Ok(hist.quantile(Quantile::P99).unwrap_or(0) as f64 / 1000.0)
}

/// Prints the table.
pub(crate) fn table(out: &mut impl Write) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let dir = std::env::temp_dir().join(format!("mechops-bench-jobs-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = rt.block_on(async {
        let mem = || {
            (
                Arc::new(MemoryStore::new(StoreConfig::default())) as Arc<dyn Store>,
                JobClock::anchored(),
            )
        };
        let sqlite = |name: &str| -> anyhow::Result<(Arc<dyn Store>, JobClock)> {
            let s = SqliteStore::open(&dir.join(name), Synchronous::Full, StoreConfig::default())?;
            Ok((Arc::new(s), JobClock::System))
        };
        let n = 50_000;
        let (s, c) = mem();
        let memory = throughput(s, c, n).await?;
        let tokio = spawn_join(n).await;
        let (s, c) = sqlite("throughput.db")?;
        let lite = throughput(Arc::clone(&s), c, 5_000).await?;
        s.close().await?;
        let (s, c) = mem();
        let mem_p99 = latency_p99(s, c, 500).await?;
        let (s, c) = sqlite("latency.db")?;
        let lite_p99 = latency_p99(Arc::clone(&s), c, 200).await?;
        s.close().await?;
        anyhow::Ok((memory, tokio, lite, mem_p99, lite_p99))
    });
    // The temporary files are ours; failing to remove them is harmless.
    let _ = std::fs::remove_dir_all(&dir);
    let (memory, tokio, lite, mem_p99, lite_p99) = result?;
    writeln!(
        out,
        "Job queue (live, end to end: submit, claim, run a no-op, record completion)"
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "| Store                   | jobs/s (measured) | target jobs/s | p99 submit→start µs | target p99 µs |"
    )?;
    writeln!(
        out,
        "|-------------------------|------------------:|--------------:|--------------------:|--------------:|"
    )?;
    writeln!(
        out,
        "| memory                  | {memory:>17.0} | {:>13} | {mem_p99:>19.1} | {:>13} |",
        "1,000,000", "50"
    )?;
    writeln!(
        out,
        "| tokio::spawn + join     | {tokio:>17.0} | {:>13} | {:>19} | {:>13} |",
        "-", "-", "-"
    )?;
    writeln!(
        out,
        "| sqlite synchronous=FULL | {lite:>17.0} | {:>13} | {lite_p99:>19.1} | {:>13} |",
        "50,000", "2,000"
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "memory / tokio::spawn: {:.2}x slower (target: within 1.3x)",
        tokio / memory
    )?;
    writeln!(out)?;
    Ok(())
}
