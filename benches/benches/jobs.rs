//! The job queue end to end: submit, claim, run a no-op handler, record
//! the completion; on the memory store beside bare `tokio::spawn` plus join
//! of the same no-op, and on SQLite (`synchronous=FULL`) beside one rusqlite
//! transaction per job. Then the scheduling latency: submit to handler
//! start on an idle worker (one that has recorded the previous job and
//! waits for work), whose p99 is printed before the criterion figures. It
//! is measured twice: submitted from outside the runtime (`block_on`'s
//! thread, so a parked runtime thread must be woken), and submitted from a
//! task on the runtime, as the service's HTTP handlers submit (the woken
//! worker task runs on the submitter's thread when the submitter awaits).
//!
//! `apalis` with its SQLite storage runs as a program of its own
//! (`benches/peers/apalis-sqlite`: apalis-sqlite uses sqlx, whose
//! `libsqlite3-sys` cannot link beside rusqlite's bundled SQLite in one
//! binary), built and run by this benchmark in alternating rounds with the
//! mechops SQLite queue; the rates and their ratio are printed first.
//!
//! `cargo bench -p mechops-benches --bench jobs`

use core::time::Duration;
use std::path::PathBuf;
use std::sync::Arc;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mechops_alloc::job::{JobSpec, Lifecycle, StateKind};
use mechops_core::metrics::{LocalHistogram, Quantile};
use mechops_tokio::jobs::memory::MemoryStore;
use mechops_tokio::jobs::runtime::{Handlers, JobClock, Queue, Worker, WorkerConfig};
use mechops_tokio::jobs::sqlite::{SqliteStore, Synchronous};
use mechops_tokio::jobs::store::{Store, StoreConfig};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

const JOBS: usize = 20_000;
const SQLITE_JOBS: usize = 5_000;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn noop() -> Handlers {
    let mut h = Handlers::new();
    h.register("noop", |_ctx| async { Ok(Value::Null) });
    h
}

fn config() -> StoreConfig {
    StoreConfig {
        lifecycle: Lifecycle::default(),
        ..StoreConfig::default()
    }
}

/// Submits `n` no-op jobs in bulk and runs a worker until the store is idle.
async fn end_to_end(store: Arc<dyn Store>, clock: JobClock, n: usize, concurrency: usize) {
    let q = Queue::new(store, clock);
    let specs = (0..n).map(|_| JobSpec::new("noop", "null")).collect();
    q.submit_bulk(specs).await.unwrap();
    let mut c = WorkerConfig::new(concurrency);
    c.until_empty = true;
    let r = Worker::new(q, noop(), c)
        .run(CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(r.completed, n as u64);
}

/// This run's folder of databases, removed at the end ([`remove_run_dir`]).
fn run_dir() -> PathBuf {
    std::env::temp_dir().join(format!("mechops-bench-jobs-{}", std::process::id()))
}

fn temp_db(name: &str) -> PathBuf {
    let dir = run_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(format!("{name}.db"));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", p.display()));
    }
    p
}

fn memory(c: &mut Criterion) {
    let rt = rt();
    let mut g = c.benchmark_group("jobs_memory");
    g.throughput(Throughput::Elements(JOBS as u64));
    g.bench_function(BenchmarkId::new("mechops_queue", JOBS), |b| {
        b.iter(|| {
            rt.block_on(end_to_end(
                Arc::new(MemoryStore::new(config())),
                JobClock::anchored(),
                JOBS,
                256,
            ));
        });
    });
    g.bench_function(BenchmarkId::new("tokio_spawn_join", JOBS), |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut set = tokio::task::JoinSet::new();
                for _ in 0..JOBS {
                    set.spawn(async { Ok::<Value, ()>(Value::Null) });
                }
                while let Some(r) = set.join_next().await {
                    r.unwrap().unwrap();
                }
            });
        });
    });
    g.finish();
}

fn sqlite(c: &mut Criterion) {
    let rt = rt();
    let mut g = c.benchmark_group("jobs_sqlite_full");
    g.throughput(Throughput::Elements(SQLITE_JOBS as u64));
    g.sample_size(10);
    // Creating the file (its schema, the switch to WAL: seven `fsync`s)
    // is the setup, as it is once in a program's life; the close, which
    // checkpoints what the jobs wrote into the database file, is timed.
    g.bench_function(BenchmarkId::new("mechops_queue", SQLITE_JOBS), |b| {
        b.iter_batched(
            || SqliteStore::open(&temp_db("queue"), Synchronous::Full, config()).unwrap(),
            |store| {
                rt.block_on(async {
                    let store: Arc<dyn Store> = Arc::new(store);
                    end_to_end(Arc::clone(&store), JobClock::System, SQLITE_JOBS, 256).await;
                    store.close().await.unwrap();
                });
            },
            BatchSize::PerIteration,
        );
    });
    // A tenth of the jobs: each costs a full fsync.
    g.throughput(Throughput::Elements((SQLITE_JOBS / 10) as u64));
    g.bench_function(
        BenchmarkId::new("rusqlite_txn_per_job", SQLITE_JOBS / 10),
        |b| {
            b.iter(|| {
                let path = temp_db("txn");
                let conn = rusqlite::Connection::open(&path).unwrap();
                conn.execute_batch(
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; \
                 CREATE TABLE jobs (id INTEGER PRIMARY KEY, handler TEXT, state TEXT, result TEXT)",
                )
                .unwrap();
                for _ in 0..SQLITE_JOBS / 10 {
                    let tx = conn.unchecked_transaction().unwrap();
                    tx.execute(
                        "INSERT INTO jobs (handler, state) VALUES ('noop', 'queued')",
                        [],
                    )
                    .unwrap();
                    let id: i64 = tx
                        .query_row(
                            "SELECT id FROM jobs WHERE state = 'queued' ORDER BY id LIMIT 1",
                            [],
                            |r| r.get(0),
                        )
                        .unwrap();
                    tx.execute("UPDATE jobs SET state = 'running' WHERE id = ?1", [id])
                        .unwrap();
                    tx.execute(
                        "UPDATE jobs SET state = 'completed', result = 'null' WHERE id = ?1",
                        [id],
                    )
                    .unwrap();
                    tx.commit().unwrap();
                }
            });
        },
    );
    g.finish();
}

/// Submit to handler start on an idle worker, `samples` times; returns the
/// latencies' histogram in nanoseconds.
async fn latencies(store: Arc<dyn Store>, clock: JobClock, samples: usize) -> LocalHistogram {
    let q = Queue::new(Arc::clone(&store), clock);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<std::time::Instant>();
    let mut h = Handlers::new();
    h.register("mark", move |_ctx| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(std::time::Instant::now());
            Ok(Value::Null)
        }
    });
    let stop = CancellationToken::new();
    let worker = tokio::spawn(Worker::new(q.clone(), h, WorkerConfig::new(4)).run(stop.clone()));
    let mut hist = LocalHistogram::new();
    for _ in 0..samples {
        let t0 = std::time::Instant::now();
        let id = q.submit(JobSpec::new("mark", "null")).await.unwrap();
        let started = rx.recv().await.unwrap();
        hist.record(u64::try_from(started.duration_since(t0).as_nanos()).unwrap_or(u64::MAX));
        // Let the worker go idle: the job's completion is recorded (on
        // SQLite, an fsync), and the worker is back waiting for work.
        while q.status(id).await.unwrap().state().kind() != StateKind::Completed {
            tokio::time::sleep(Duration::from_micros(100)).await;
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    stop.cancel();
    worker.await.unwrap().unwrap();
    hist
}

/// A fresh store and the clock its queue reads.
type StoreMaker = fn() -> (Arc<dyn Store>, JobClock);

/// [`latencies`] with the submitter on `block_on`'s thread, or in a task
/// spawned on the runtime.
fn measure(
    rt: &tokio::runtime::Runtime,
    (store, clock): (Arc<dyn Store>, JobClock),
    samples: usize,
    in_runtime: bool,
) -> LocalHistogram {
    if in_runtime {
        rt.block_on(async {
            tokio::spawn(latencies(store, clock, samples))
                .await
                .unwrap()
        })
    } else {
        rt.block_on(latencies(store, clock, samples))
    }
}

fn latency(c: &mut Criterion) {
    let rt = rt();
    let mut g = c.benchmark_group("jobs_latency_p99");
    g.sample_size(10);
    let stores: [(&str, StoreMaker); 2] = [
        ("memory", || {
            (
                Arc::new(MemoryStore::new(config())) as Arc<dyn Store>,
                JobClock::anchored(),
            )
        }),
        ("sqlite_full", || {
            let s = SqliteStore::open(&temp_db("latency"), Synchronous::Full, config()).unwrap();
            (Arc::new(s) as Arc<dyn Store>, JobClock::System)
        }),
    ];
    for (store_name, make) in stores {
        for (submitter, in_runtime) in [("outside", false), ("in_runtime", true)] {
            let name = format!("{store_name}_{submitter}");
            let hist = measure(&rt, make(), 2000, in_runtime);
            println!(
                "jobs scheduling latency {name}: p50 {:.1} us, p99 {:.1} us ({} samples)",
                hist.quantile(Quantile::P50).unwrap_or(0) as f64 / 1000.0,
                hist.quantile(Quantile::P99).unwrap_or(0) as f64 / 1000.0,
                hist.count()
            );
            g.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    let n = usize::try_from(iters).unwrap_or(usize::MAX).max(1);
                    let h = measure(&rt, make(), n, in_runtime);
                    Duration::from_nanos(
                        h.quantile(Quantile::P99).unwrap_or(0).saturating_mul(iters),
                    )
                });
            });
        }
    }
    g.finish();
}

/// The apalis SQLite peer: its own Cargo project, built on first use.
mod apalis_peer {
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::sync::Arc;
    use std::time::Instant;

    use mechops_tokio::jobs::runtime::JobClock;
    use mechops_tokio::jobs::sqlite::{SqliteStore, Synchronous};
    use mechops_tokio::jobs::store::Store;

    use super::{SQLITE_JOBS, config, end_to_end, rt, temp_db};

    /// Alternating rounds of ours and the peer's.
    const ROUNDS: usize = 3;
    /// Jobs in flight on both sides (and the peer's fetch batch).
    const CONCURRENCY: usize = 256;

    fn manifest() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/apalis-sqlite/Cargo.toml")
    }

    /// Builds the peer in release mode; its binary, or why it could not be
    /// built.
    fn build() -> Result<PathBuf, String> {
        let manifest = manifest();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let out = Command::new(cargo)
            .args(["build", "--release", "--quiet", "--manifest-path"])
            .arg(&manifest)
            .output()
            .map_err(|e| format!("cargo could not be run: {e}"))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = err.lines().rev().take(5).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(format!(
                "`cargo build --release --manifest-path {}` failed (offline without its crates cached?): {}",
                manifest.display(),
                tail.join(" | ")
            ));
        }
        let bin = manifest.with_file_name("target/release/apalis-sqlite-peer");
        if bin.is_file() {
            Ok(bin)
        } else {
            Err(format!("the peer built, but {} is missing", bin.display()))
        }
    }

    /// One run of the peer: its jobs per second.
    fn run(bin: &Path) -> Result<f64, String> {
        let db = temp_db("apalis");
        let out = Command::new(bin)
            .arg(&db)
            .env("JOBS", SQLITE_JOBS.to_string())
            .env("CONCURRENCY", CONCURRENCY.to_string())
            .output()
            .map_err(|e| format!("{} could not be run: {e}", bin.display()))?;
        if !out.status.success() {
            return Err(format!(
                "the apalis peer failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let line = String::from_utf8_lossy(&out.stdout);
        let v: serde_json::Value = serde_json::from_str(line.trim())
            .map_err(|e| format!("the apalis peer printed {line:?}: {e}"))?;
        v["jobs_per_s"]
            .as_f64()
            .ok_or_else(|| format!("the apalis peer printed no jobs_per_s: {line:?}"))
    }

    /// One run of ours on the same work: jobs per second, timed from the
    /// bulk submission to the last recorded completion (the store's
    /// opening, like the peer's schema set-up, is not timed).
    fn ours(rt: &tokio::runtime::Runtime) -> f64 {
        let store =
            SqliteStore::open(&temp_db("apalis-ours"), Synchronous::Full, config()).unwrap();
        rt.block_on(async {
            let store: Arc<dyn Store> = Arc::new(store);
            let started = Instant::now();
            end_to_end(
                Arc::clone(&store),
                JobClock::System,
                SQLITE_JOBS,
                CONCURRENCY,
            )
            .await;
            let rate = SQLITE_JOBS as f64 / started.elapsed().as_secs_f64();
            store.close().await.unwrap();
            rate
        })
    }

    /// Builds the peer and prints alternating rounds with their ratios
    /// (ours / apalis), or why the peer is skipped.
    pub(super) fn paired(_c: &mut criterion::Criterion) {
        let bin = match build() {
            Ok(bin) => bin,
            Err(why) => {
                eprintln!("apalis SQLite peer skipped: {why}");
                return;
            }
        };
        let rt = rt();
        let mut ratios = Vec::with_capacity(ROUNDS);
        for round in 1..=ROUNDS {
            let mechops = ours(&rt);
            let apalis = match run(&bin) {
                Ok(rate) => rate,
                Err(why) => {
                    eprintln!("apalis SQLite peer skipped: {why}");
                    return;
                }
            };
            ratios.push(mechops / apalis);
            eprintln!(
                "jobs sqlite_full round {round}: mechops {mechops:.0} jobs/s, apalis-sqlite {apalis:.0} jobs/s, ratio {:.2}x ({SQLITE_JOBS} no-op jobs, {CONCURRENCY} in flight)",
                mechops / apalis
            );
        }
        ratios.sort_by(f64::total_cmp);
        eprintln!(
            "jobs sqlite_full: median ratio {:.2}x (mechops / apalis-sqlite)",
            ratios[ratios.len() / 2]
        );
    }
}

/// Runs last: removes the databases of the run, which nothing else reads.
fn remove_run_dir(_c: &mut Criterion) {
    let dir = run_dir();
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            eprintln!("could not remove {}: {e}", dir.display());
        }
        _ => {}
    }
}

criterion_group!(
    benches,
    memory,
    sqlite,
    latency,
    apalis_peer::paired,
    remove_run_dir
);
criterion_main!(benches);
