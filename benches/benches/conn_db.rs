//! Pooled PostgreSQL `SELECT 1` and Redis `PING`: mechops' `ConnectionPool`
//! with its PostgreSQL and Redis managers against deadpool-postgres and
//! deadpool-redis, in the same run, against the same servers (started here
//! by the test harnesses of `mechops-tokio`, on loopback).
//!
//! 8 connections, 16 tasks on a two-worker tokio runtime; each task runs
//! `iters / 16` cycles of acquire, one round trip, release, and the time is
//! the whole run's, so criterion's throughput is requests per second across
//! all tasks. Pools are filled before measuring. The work per cycle is the
//! same on both sides:
//!
//! - PostgreSQL, `fast`: `simple_query("SELECT 1")`; no check on checkout
//!   and no reset (deadpool's `RecyclingMethod::Fast` only tests
//!   `is_closed`, as our `is_broken` does).
//! - PostgreSQL, `clean`: the same, plus a session reset per cycle: ours
//!   on release, deadpool's `RecyclingMethod::Clean` on checkout (the same
//!   statements; ours adds a guard against an open transaction).
//! - Redis: `PING`, plus a health check per checkout on both sides (ours
//!   `PING` with `check_after_idle = 0`, deadpool-redis `UNWATCH` + `PING`
//!   in one pipeline on every recycle).
#![allow(missing_docs)] // criterion's macros generate undocumented items

#[path = "../../adapters/tokio/tests/support/postgres_server.rs"]
mod postgres_server;
#[path = "../../adapters/tokio/tests/support/redis_server.rs"]
mod redis_server;

use core::str::FromStr;
use core::time::Duration;
use std::path::Path;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mechops_tokio::conn::postgres::{PostgresEndpoint, PostgresManager, PostgresTls};
use mechops_tokio::conn::redis::{RedisEndpoint, RedisManager};
use mechops_tokio::conn::{ConnectionPool, ConnectionPoolConfig};
use postgres_server::PostgresServer;
use redis_server::{Persistence, RedisServer};
use tokio::runtime::Runtime;

const SIZE: usize = 8;
const TASKS: u64 = 16;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Runs `op` `iters` times in all over [`TASKS`] tasks; the elapsed time.
async fn spread<F, Fut>(iters: u64, op: F) -> Duration
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let per_task = iters.div_ceil(TASKS);
    let started = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let op = op.clone();
            tokio::spawn(async move {
                for _ in 0..per_task {
                    op().await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a benchmark task");
    }
    started.elapsed()
}

fn our_config(check_on_checkout: bool) -> ConnectionPoolConfig {
    let mut config = ConnectionPoolConfig::sized(SIZE, SIZE);
    config.pool.idle_timeout = None;
    config.pool.max_lifetime = None;
    config.pool.lifetime_jitter = Duration::ZERO;
    config.pool.check_after_idle = check_on_checkout.then_some(Duration::ZERO);
    config
}

/// Checks out `SIZE` connections at once so a pool holds that many (a
/// macro: deadpool-postgres and deadpool-redis use different deadpool
/// versions).
macro_rules! fill_deadpool {
    ($pool:expr) => {{
        let mut held = Vec::new();
        for _ in 0..SIZE {
            held.push($pool.get().await.expect("fill the pool"));
        }
    }};
}

/// Checks out `SIZE` connections at once so the pool holds that many.
async fn fill_ours<M: mechops_tokio::conn::Manager>(pool: &ConnectionPool<M>) {
    let mut held = Vec::new();
    for _ in 0..SIZE {
        held.push(pool.acquire().await.expect("fill the pool"));
    }
}

fn postgres(c: &mut Criterion) {
    let Some(server) = PostgresServer::start(Path::new(env!("CARGO_TARGET_TMPDIR"))) else {
        return;
    };
    let rt = runtime();
    let mut group = c.benchmark_group(format!("conn_postgres_select1_{SIZE}x{TASKS}"));
    group.throughput(Throughput::Elements(1));

    for clean in [false, true] {
        let name = if clean { "clean" } else { "fast" };
        let ours = rt.block_on(async {
            let manager = PostgresManager::new(PostgresTls::None).with_reset(clean);
            let endpoint = PostgresEndpoint::parse(&server.url()).expect("the server's URL");
            let pool = ConnectionPool::new("bench", manager, vec![endpoint], our_config(false))
                .expect("a pool");
            fill_ours(&pool).await;
            pool
        });
        group.bench_function(format!("mechops/{name}"), |b| {
            b.iter_custom(|iters| {
                let pool = ours.clone();
                rt.block_on(spread(iters, move || {
                    let pool = pool.clone();
                    async move {
                        let conn = pool.acquire().await.expect("acquire");
                        conn.simple_query("SELECT 1").await.expect("SELECT 1");
                    }
                }))
            });
        });

        let theirs = rt.block_on(async {
            let recycling_method = if clean {
                deadpool_postgres::RecyclingMethod::Clean
            } else {
                deadpool_postgres::RecyclingMethod::Fast
            };
            let manager = deadpool_postgres::Manager::from_config(
                tokio_postgres::Config::from_str(&server.url()).expect("the server's URL"),
                tokio_postgres::NoTls,
                deadpool_postgres::ManagerConfig { recycling_method },
            );
            let pool = deadpool_postgres::Pool::builder(manager)
                .max_size(SIZE)
                .build()
                .expect("a pool");
            fill_deadpool!(pool);
            pool
        });
        group.bench_function(format!("deadpool-postgres/{name}"), |b| {
            b.iter_custom(|iters| {
                let pool = theirs.clone();
                rt.block_on(spread(iters, move || {
                    let pool = pool.clone();
                    async move {
                        let conn = pool.get().await.expect("acquire");
                        conn.simple_query("SELECT 1").await.expect("SELECT 1");
                    }
                }))
            });
        });
    }
    group.finish();
}

fn redis_ping(c: &mut Criterion) {
    let Some(server) =
        RedisServer::start(Path::new(env!("CARGO_TARGET_TMPDIR")), Persistence::None)
    else {
        return;
    };
    let rt = runtime();
    let mut group = c.benchmark_group(format!("conn_redis_ping_{SIZE}x{TASKS}"));
    group.throughput(Throughput::Elements(1));

    let ours = rt.block_on(async {
        let endpoint = RedisEndpoint::parse(&server.url()).expect("the server's URL");
        let pool = ConnectionPool::new(
            "bench",
            RedisManager::new(),
            vec![endpoint],
            our_config(true),
        )
        .expect("a pool");
        fill_ours(&pool).await;
        pool
    });
    group.bench_function("mechops", |b| {
        b.iter_custom(|iters| {
            let pool = ours.clone();
            rt.block_on(spread(iters, move || {
                let pool = pool.clone();
                async move {
                    let mut conn = pool.acquire().await.expect("acquire");
                    let pong: String = redis::cmd("PING")
                        .query_async(&mut *conn)
                        .await
                        .expect("PING");
                    core::hint::black_box(pong);
                }
            }))
        });
    });

    let theirs = rt.block_on(async {
        let mut config = deadpool_redis::Config::from_url(server.url());
        config.pool = Some(deadpool_redis::PoolConfig::new(SIZE));
        let pool = config
            .create_pool(Some(deadpool_redis::Runtime::Tokio1))
            .expect("a pool");
        fill_deadpool!(pool);
        pool
    });
    group.bench_function("deadpool-redis", |b| {
        b.iter_custom(|iters| {
            let pool = theirs.clone();
            rt.block_on(spread(iters, move || {
                let pool = pool.clone();
                async move {
                    let mut conn = pool.get().await.expect("acquire");
                    let pong: String = redis::cmd("PING")
                        .query_async(&mut *conn)
                        .await
                        .expect("PING");
                    core::hint::black_box(pong);
                }
            }))
        });
    });
    group.finish();
}

criterion_group!(benches, postgres, redis_ping);
criterion_main!(benches);
