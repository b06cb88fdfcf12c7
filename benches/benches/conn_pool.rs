//! Connection pool benchmarks: mechops' `ConnectionPool` against deadpool
//! (managed) and bb8 in the same run, with `tokio::sync::Semaphore` as the
//! floor.
//!
//! No-op group: each pool hands out a `u64` "connection" from a no-op
//! manager (connect makes a number, recycle and checks do nothing, no
//! connection is ever broken). Each pool is filled to its size before
//! measuring, checkout checks are off for every pool (deadpool's recycle
//! is a no-op call, bb8's `test_on_check_out` is false, ours has no
//! `check_after_idle`), so the work is acquire plus release only. `T`
//! tasks on a two-worker tokio runtime each run `iters / T` cycles of
//! acquire, `black_box` on the value, release; the time is the whole
//! run's, so criterion's throughput is acquire+release per second across
//! all tasks. Settings (pool size / tasks): 8/8, 16/32, 32/32, 8/64.
//!
//! TCP group: the same line manager (`mechops_tokio::conn::line`) behind
//! ours and behind deadpool, 8 connections, 16 tasks each doing acquire,
//! `PING`, reply, release against the in-process line server.
#![allow(missing_docs)] // criterion's macros generate undocumented items

use core::hint::black_box;
use core::time::Duration;
use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mechops_tokio::conn::line::{LineConnection, LineEndpoint, LineError, LineManager};
use mechops_tokio::conn::line_server::LineServer;
use mechops_tokio::conn::noop::NoopManager;
use mechops_tokio::conn::{ConnectionPool, ConnectionPoolConfig, Manager};
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;

#[path = "support/conn_peers.rs"]
mod conn_peers;

use conn_peers::{Bb8Noop, DeadpoolNoop};

const SETTINGS: [(usize, usize); 4] = [(8, 8), (16, 32), (32, 32), (8, 64)];

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `iters` cycles of `cycle` split over `tasks` tasks; the wall time.
fn run_tasks<F, Fut>(rt: &Runtime, iters: u64, tasks: usize, cycle: F) -> Duration
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let per_task = iters.div_ceil(tasks as u64);
    rt.block_on(async {
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
            h.await.unwrap();
        }
        start.elapsed()
    })
}

/// Our pool, filled to `size` no-op connections.
fn mechops_noop(rt: &Runtime, size: usize) -> ConnectionPool<NoopManager> {
    rt.block_on(async {
        let mut config = ConnectionPoolConfig::sized(size, size);
        config.pool.check_after_idle = None;
        let pool = ConnectionPool::new("bench", NoopManager::new(), vec!["noop"], config).unwrap();
        let held: Vec<_> = futures_fill(&pool, size).await;
        drop(held);
        pool
    })
}

async fn futures_fill(
    pool: &ConnectionPool<NoopManager>,
    size: usize,
) -> Vec<mechops_tokio::conn::Pooled<NoopManager>> {
    let mut held = Vec::with_capacity(size);
    for _ in 0..size {
        held.push(pool.acquire().await.unwrap());
    }
    held
}

fn noop(c: &mut Criterion) {
    let rt = runtime();
    for (size, tasks) in SETTINGS {
        let mut group = c.benchmark_group(format!("conn_pool_noop_{size}_{tasks}"));
        group.throughput(Throughput::Elements(1));

        let ours = mechops_noop(&rt, size);
        group.bench_function("mechops", |b| {
            b.iter_custom(|iters| {
                let pool = ours.clone();
                run_tasks(&rt, iters, tasks, move || {
                    let pool = pool.clone();
                    async move {
                        let conn = pool.acquire().await.unwrap();
                        black_box(*conn);
                    }
                })
            });
        });

        let deadpool = rt.block_on(async {
            let pool: deadpool::managed::Pool<DeadpoolNoop> =
                deadpool::managed::Pool::builder(DeadpoolNoop)
                    .max_size(size)
                    .build()
                    .unwrap();
            let mut held = Vec::new();
            for _ in 0..size {
                held.push(pool.get().await.unwrap());
            }
            drop(held);
            pool
        });
        group.bench_function("deadpool", |b| {
            b.iter_custom(|iters| {
                let pool = deadpool.clone();
                run_tasks(&rt, iters, tasks, move || {
                    let pool = pool.clone();
                    async move {
                        let conn = pool.get().await.unwrap();
                        black_box(*conn);
                    }
                })
            });
        });

        let bb8 = rt.block_on(async {
            let pool = bb8::Pool::builder()
                .max_size(size as u32)
                .min_idle(Some(size as u32))
                .test_on_check_out(false)
                .build(Bb8Noop)
                .await
                .unwrap();
            let mut held = Vec::new();
            for _ in 0..size {
                held.push(pool.get_owned().await.unwrap());
            }
            drop(held);
            pool
        });
        group.bench_function("bb8", |b| {
            b.iter_custom(|iters| {
                let pool = bb8.clone();
                run_tasks(&rt, iters, tasks, move || {
                    let pool = pool.clone();
                    async move {
                        let conn = pool.get().await.unwrap();
                        black_box(*conn);
                    }
                })
            });
        });

        let semaphore = Arc::new(Semaphore::new(size));
        group.bench_function("semaphore_floor", |b| {
            b.iter_custom(|iters| {
                let semaphore = Arc::clone(&semaphore);
                run_tasks(&rt, iters, tasks, move || {
                    let semaphore = Arc::clone(&semaphore);
                    async move {
                        let permit = semaphore.acquire().await.unwrap();
                        black_box(&permit);
                    }
                })
            });
        });
        group.finish();
    }
}

struct DeadpoolLine {
    manager: LineManager,
    endpoint: LineEndpoint,
}

impl deadpool::managed::Manager for DeadpoolLine {
    type Type = LineConnection;
    type Error = LineError;

    async fn create(&self) -> Result<LineConnection, LineError> {
        self.manager.connect(&self.endpoint).await
    }

    async fn recycle(
        &self,
        conn: &mut LineConnection,
        _metrics: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<LineError> {
        if conn.is_broken() {
            return Err(deadpool::managed::RecycleError::message("broken"));
        }
        Ok(())
    }
}

fn tcp_ping(c: &mut Criterion) {
    const SIZE: usize = 8;
    const TASKS: usize = 16;
    let rt = runtime();
    let server = rt.block_on(LineServer::local()).unwrap();
    let endpoint: LineEndpoint = server.url().parse().unwrap();
    let manager = LineManager::new(Duration::from_secs(5), None);
    let mut group = c.benchmark_group("conn_pool_tcp_ping_8_16");
    group.throughput(Throughput::Elements(1));

    let ours = rt.block_on(async {
        let mut config = ConnectionPoolConfig::sized(SIZE, SIZE);
        config.pool.check_after_idle = None;
        ConnectionPool::new("bench", manager.clone(), vec![endpoint.clone()], config).unwrap()
    });
    group.bench_function("mechops", |b| {
        b.iter_custom(|iters| {
            let pool = ours.clone();
            run_tasks(&rt, iters, TASKS, move || {
                let pool = pool.clone();
                async move {
                    let mut conn = pool.acquire().await.unwrap();
                    black_box(conn.execute("PING").await.unwrap());
                }
            })
        });
    });

    let deadpool: deadpool::managed::Pool<DeadpoolLine> =
        deadpool::managed::Pool::builder(DeadpoolLine { manager, endpoint })
            .max_size(SIZE)
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .unwrap();
    group.bench_function("deadpool", |b| {
        b.iter_custom(|iters| {
            let pool = deadpool.clone();
            run_tasks(&rt, iters, TASKS, move || {
                let pool = pool.clone();
                async move {
                    let mut conn = pool.get().await.unwrap();
                    black_box(conn.execute("PING").await.unwrap());
                }
            })
        });
    });
    group.finish();
    drop(server);
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    targets = noop, tcp_ping
}
criterion_main!(benches);
