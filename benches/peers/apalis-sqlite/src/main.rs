//! The apalis peer of `cargo bench -p mechops-benches --bench jobs`: runs
//! `JOBS` no-op jobs end to end on apalis's SQLite storage (a file
//! database in WAL mode with `synchronous=FULL`, as the mechops SQLite
//! store runs) and prints one JSON line with the rate.
//!
//! The work matches the mechops measurement: all jobs are pushed in one
//! bulk call, then one worker runs them with `CONCURRENCY` in flight
//! (fetching `CONCURRENCY` per batch), until every job is recorded done.
//! The time covers the push and the run, not the schema set-up.
//!
//! `cargo run --release -- DB_PATH` (environment: `JOBS`, default 5000;
//! `CONCURRENCY`, default 256).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use apalis::layers::WorkerBuilderExt;
use apalis::prelude::*;
use apalis_sqlite::{Config, SqliteStorage};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};

/// Handler calls that have returned.
static RAN: AtomicUsize = AtomicUsize::new(0);

async fn noop(_job: u64) -> Result<(), BoxDynError> {
    RAN.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

fn env_usize(name: &str, default: usize) -> Result<usize, String> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .map_err(|_| format!("{name}={v:?} is not a number")),
        Err(_) => Ok(default),
    }
}

async fn done(pool: &SqlitePool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM Jobs WHERE status = 'Done'")
        .fetch_one(pool)
        .await
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), BoxDynError> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: apalis-sqlite-peer DB_PATH")?;
    let jobs = env_usize("JOBS", 5000)?;
    let concurrency = env_usize("CONCURRENCY", 256)?.max(1);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full);
    // apalis's set-up turns `synchronous` off on the connection it runs
    // on: it gets a pool of its own, closed before the measured one opens.
    let setup = SqlitePool::connect_with(options.clone()).await?;
    SqliteStorage::setup(&setup).await?;
    setup.close().await;
    let pool = SqlitePool::connect_with(options).await?;
    let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(&pool)
        .await?;
    if sync != 2 {
        return Err(format!("synchronous is {sync}, not FULL (2)").into());
    }

    let started = Instant::now();
    let config = Config::default().queue("noop").batch_size(concurrency);
    let mut backend = SqliteStorage::new(&pool).with_config(config);
    backend.push_bulk((0..jobs as u64).collect()).await?;
    let worker = WorkerBuilder::new("peer")
        .backend(backend)
        .concurrency(concurrency)
        .build(noop);
    let watch = pool.clone();
    worker
        .run_with_ctx(move |ctx| {
            let watch = watch.clone();
            async move {
                // The handlers have run; wait for their acknowledgements.
                while RAN.load(Ordering::Relaxed) < jobs {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                loop {
                    match done(&watch).await {
                        Ok(n) if n as usize >= jobs => break,
                        Ok(_) => tokio::time::sleep(Duration::from_millis(1)).await,
                        Err(e) => return Err(WorkerError::from(std::io::Error::other(e))),
                    }
                }
                ctx.stop()
            }
        })
        .await?;
    let secs = started.elapsed().as_secs_f64();
    let done = done(&pool).await?;
    if done as usize != jobs {
        return Err(format!("{done} of {jobs} jobs done").into());
    }
    pool.close().await;
    println!(
        "{{\"peer\":\"apalis-sqlite\",\"jobs\":{jobs},\"concurrency\":{concurrency},\"seconds\":{secs:.4},\"jobs_per_s\":{:.1}}}",
        jobs as f64 / secs
    );
    Ok(())
}
