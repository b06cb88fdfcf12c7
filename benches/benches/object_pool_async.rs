//! object_pool_async benchmarks: mechops' async object pool against
//! deadpool's unmanaged pool, in the same run.
//!
//! Both pools hold 4 `Vec<u8>` buffers of capacity 64, made up front, and
//! 16 tasks on a 2-worker tokio runtime share them: each task does
//! `ROUNDS` acquires, clears the buffer (deadpool has no reset hook; ours
//! runs the same `clear` as its reset), yields once while holding it (so
//! the other tasks queue) and releases it. One criterion iteration is the
//! whole batch of `TASKS * ROUNDS` acquire+release pairs.
#![allow(missing_docs)] // criterion's macros generate undocumented items

use core::hint::black_box;
use core::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mechops_tokio::object_pool::AsyncObjectPool;

const SIZE: usize = 4;
const TASKS: usize = 16;
const ROUNDS: usize = 64;

fn buffer() -> Vec<u8> {
    Vec::with_capacity(64)
}

/// Runs `TASKS` copies of `task`, each with its own handle to `pool`, and
/// waits for all of them.
fn run_tasks<P, F, Fut>(rt: &tokio::runtime::Runtime, pool: &P, task: F)
where
    P: Clone,
    F: Fn(P) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    rt.block_on(async {
        let handles: Vec<_> = (0..TASKS)
            .map(|_| tokio::spawn(task(pool.clone())))
            .collect();
        for h in handles {
            h.await.expect("task");
        }
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("tokio runtime")
}

fn tasks_above_size(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("object_pool_async/acquire_release_16_tasks_4_objects");
    g.throughput(Throughput::Elements((TASKS * ROUNDS) as u64));
    g.measurement_time(Duration::from_secs(5));

    let ours = AsyncObjectPool::builder(SIZE, || async {
        Ok::<_, core::convert::Infallible>(buffer())
    })
    .initial_size(SIZE)
    .reset(|v: &mut Vec<u8>| v.clear())
    .build()
    .expect("valid config");
    rt.block_on(ours.maintain());
    assert_eq!(ours.stats().idle, SIZE as u64);
    g.bench_function("mechops_async_object_pool", |b| {
        b.iter(|| {
            run_tasks(&rt, &ours, |pool| async move {
                for _ in 0..ROUNDS {
                    let mut v = pool.acquire().await.expect("no timeout set");
                    v.push(1);
                    black_box(&mut *v);
                    tokio::task::yield_now().await;
                }
            })
        })
    });

    let peer = deadpool::unmanaged::Pool::from((0..SIZE).map(|_| buffer()).collect::<Vec<_>>());
    g.bench_function("deadpool_unmanaged", |b| {
        b.iter(|| {
            run_tasks(&rt, &peer, |pool| async move {
                for _ in 0..ROUNDS {
                    let mut v = pool.get().await.expect("no timeout set");
                    v.clear();
                    v.push(1);
                    black_box(&mut *v);
                    tokio::task::yield_now().await;
                }
            })
        })
    });
    g.finish();
}

criterion_group!(group, tasks_above_size);
criterion_main!(group);
