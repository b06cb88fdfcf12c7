//! The Redis job store end to end: submit no-op jobs in bulk chunks while
//! workers claim them, run a no-op handler and record each completion,
//! against a `redis-server` of the benchmark's own with `appendfsync
//! everysec`. The peer, BullMQ doing the same work on the same kind of
//! server, runs from `benches/peers/bullmq` (see docs/BENCHMARKS.md); this
//! benchmark prints the command with the port of its server, so both can
//! use one server in the same run.
//!
//! `cargo bench -p mechops-benches --bench jobs_redis -- --quick`

#[path = "../../adapters/tokio/tests/support/redis_server.rs"]
mod redis_server;

use core::time::Duration;
use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mechops_alloc::job::{JobId, JobSpec};
use mechops_tokio::jobs::redis_store::{RedisConfig, RedisStore};
use mechops_tokio::jobs::store::{ClaimRequest, Store, WorkerId};
use redis_server::{AppendFsync, Persistence, RedisServer};

/// Jobs per measured iteration.
const JOBS: usize = 20_000;
/// Jobs per bulk submission.
const CHUNK: usize = 500;
/// Worker tasks, and jobs each claims at once: 64 in flight, as BullMQ's
/// worker concurrency in the peer script.
const WORKERS: usize = 4;
const CLAIM: usize = 16;

async fn worker(store: RedisStore, name: usize) -> usize {
    let request = ClaimRequest {
        worker: WorkerId(format!("bench-{name}")),
        max: CLAIM,
        handler_limits: Arc::from(Vec::new()),
    };
    let mut done = 0;
    let mut idle = 0;
    loop {
        let claimed = store
            .claim(&request, mechops_std::clock::now())
            .await
            .expect("claim");
        if claimed.is_empty() {
            let stats = store.stats().await.expect("stats");
            if stats.counts.completed_total >= JOBS as u64 {
                return done;
            }
            idle += 1;
            tokio::time::sleep(Duration::from_micros(200 * idle.min(5))).await;
            continue;
        }
        idle = 0;
        let mut running = tokio::task::JoinSet::new();
        for job in claimed {
            let store = store.clone();
            running.spawn(async move {
                // The no-op handler.
                let result = core::hint::black_box(String::from("null"));
                store
                    .complete(job.id, job.token, result, mechops_std::clock::now())
                    .await
                    .expect("complete");
            });
        }
        while let Some(r) = running.join_next().await {
            r.expect("completion task");
            done += 1;
        }
    }
}

async fn round(url: &str, n: usize) {
    let prefix = format!("bench:{n}:");
    let config = RedisConfig::new(url).with_prefix(prefix);
    let store = RedisStore::connect(config).await.expect("connect");
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| tokio::spawn(worker(store.clone(), w)))
        .collect();
    for chunk in 0..JOBS.div_ceil(CHUNK) {
        let jobs = (0..CHUNK.min(JOBS - chunk * CHUNK))
            .map(|_| {
                let id = JobId::new(mechops_std::uuid::generate_v7());
                (id, JobSpec::new("noop", "null"))
            })
            .collect();
        let results = store
            .submit_bulk(jobs, mechops_std::clock::now())
            .await
            .expect("submit");
        assert!(results.iter().all(Result::is_ok));
    }
    let mut ran = 0;
    for w in workers {
        ran += w.await.expect("worker");
    }
    assert_eq!(ran, JOBS);
    store.clear().await.expect("clear");
}

fn benches(c: &mut Criterion) {
    let server = RedisServer::start(
        Path::new(env!("CARGO_TARGET_TMPDIR")),
        Persistence::Aof(AppendFsync::EverySec),
    )
    .expect("redis-server is needed for this benchmark");
    let url = server.url();
    eprintln!(
        "peer on the same server: (cd benches/peers/bullmq && npm ci && REDIS_URL={url} JOBS={JOBS} node bench.mjs)"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut group = c.benchmark_group("jobs_redis");
    group.throughput(Throughput::Elements(JOBS as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    let mut n = 0;
    group.bench_function("end_to_end_noop_everysec", |b| {
        b.iter(|| {
            n += 1;
            rt.block_on(round(&url, n));
        });
    });
    group.finish();
    if let Ok(wait) = std::env::var("MECHOPS_BENCH_HOLD_REDIS_SECS") {
        // Keeps the server up so the peer can run against it.
        let secs = wait.parse().unwrap_or(0);
        eprintln!("holding redis-server at {url} for {secs} s");
        std::thread::sleep(Duration::from_secs(secs));
    }
}

criterion_group!(group, benches);
criterion_main!(group);
