//! The Redis job store end to end, against a `redis-server` of the
//! benchmark's own with `appendfsync everysec`, with BullMQ (the peer,
//! `benches/peers/bullmq`) on the same server in the same run.
//!
//! - Throughput: submit no-op jobs in bulk chunks while workers claim
//!   them, run a no-op handler and record each completion. Measured by
//!   criterion, and in alternating rounds with BullMQ doing the same work
//!   when its node modules are installed (`npm ci` in its directory);
//!   each pair of rounds prints both rates and their ratio.
//! - Redis commands per job: one round with the server's `INFO
//!   commandstats` reset before and read after (commands run inside the
//!   scripts included), with the microseconds Redis spent in each.
//! - Latency: submit to handler start on an idle worker (the runtime's
//!   `Worker` on a store of its own, as in another process), p50 and p99
//!   over 1,000 jobs submitted one at a time; BullMQ's the same way.
//!
//! `cargo bench -p mechops-benches --bench jobs_redis -- --quick`

#[path = "../../adapters/tokio/tests/support/redis_server.rs"]
mod redis_server;

use core::time::Duration;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mechops_alloc::job::{JobId, JobSpec};
use mechops_tokio::jobs::redis_store::{RedisConfig, RedisStore};
use mechops_tokio::jobs::runtime::{Handlers, JobClock, Queue, Worker, WorkerConfig};
use mechops_tokio::jobs::store::{ClaimRequest, Store, WorkerId};
use redis_server::{AppendFsync, Persistence, RedisServer};
use tokio_util::sync::CancellationToken;

/// Jobs per measured round.
const JOBS: usize = 20_000;
/// Jobs per bulk submission.
const CHUNK: usize = 500;
/// Worker tasks, and jobs each claims at once: 64 in flight, as BullMQ's
/// worker concurrency in the peer script.
const WORKERS: usize = 4;
const CLAIM: usize = 16;
/// Rounds of each side in the same-run comparison.
const PAIRED_ROUNDS: usize = 3;
/// Latency samples.
const SAMPLES: usize = 1_000;

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

async fn redis(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to the benchmark's server")
}

/// The CPU time the server has used, in seconds (`INFO cpu`): user plus
/// system, of all its threads. Unlike wall time, it does not grow when
/// other processes take the cores.
async fn redis_cpu(conn: &mut redis::aio::MultiplexedConnection) -> f64 {
    let info: String = redis::cmd("INFO")
        .arg("cpu")
        .query_async(conn)
        .await
        .expect("INFO cpu");
    info.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            matches!(k, "used_cpu_user" | "used_cpu_sys").then(|| v.trim().parse::<f64>().ok())?
        })
        .sum()
}

/// The CPU time this process has used, in seconds (`/proc/self/stat`,
/// user plus system, in clock ticks of 10 ms).
fn own_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name, which ends with the last ')'.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 here.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// One round with the server's command statistics reset before it; prints
/// the calls and Redis's time per job by command.
async fn commands_per_job(url: &str, n: usize) {
    let mut conn = redis(url).await;
    let () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut conn)
        .await
        .expect("CONFIG RESETSTAT");
    let (server_before, client_before) = (redis_cpu(&mut conn).await, own_cpu());
    round(url, n).await;
    let (server_after, client_after) = (redis_cpu(&mut conn).await, own_cpu());
    eprintln!(
        "cpu per job: redis-server {:.1} us, this process (client) {:.1} us",
        (server_after - server_before) * 1e6 / JOBS as f64,
        (client_after - client_before) * 1e6 / JOBS as f64,
    );
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .expect("INFO commandstats");
    // Lines like `cmdstat_hset:calls=40000,usec=31000,...`.
    let mut stats = BTreeMap::new();
    for line in info.lines() {
        let Some((name, rest)) = line
            .strip_prefix("cmdstat_")
            .and_then(|l| l.split_once(':'))
        else {
            continue;
        };
        let field = |key: &str| {
            rest.split(',')
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        stats.insert(name.to_owned(), (field("calls"), field("usec")));
    }
    // The round's own SCAN and DEL of its keys, and these two calls, are
    // not a job's work.
    for skip in ["scan", "del", "config", "info"] {
        stats.remove(skip);
    }
    let jobs = JOBS as f64;
    let calls: f64 = stats.values().map(|(c, _)| c).sum();
    let usec: f64 = stats.values().map(|(_, u)| u).sum();
    eprintln!(
        "redis commands per job: {:.2} calls, {:.2} us of Redis time (of which {:.3} client round trips: evalsha)",
        calls / jobs,
        usec / jobs,
        stats.get("evalsha").map_or(0.0, |(c, _)| c / jobs),
    );
    for (name, (c, u)) in &stats {
        eprintln!(
            "  {name:>16}: {:.3} calls/job, {:.2} us/job",
            c / jobs,
            u / jobs
        );
    }
}

/// Submit to handler start on an idle worker: the worker runs on a store
/// of its own (its own connections, as in another process); jobs go in
/// one at a time, each after the worker went idle again.
async fn latency(url: &str) {
    let prefix = "latency:";
    let config = RedisConfig::new(url).with_prefix(prefix);
    let submitter = RedisStore::connect(config.clone()).await.expect("connect");
    let worker_store: Arc<dyn Store> =
        Arc::new(RedisStore::connect(config).await.expect("connect"));
    let (started, mut starts) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let mut handlers = Handlers::new();
    handlers.register("noop", move |_ctx| {
        let _ = started.send(Instant::now());
        async { Ok(serde_json::Value::Null) }
    });
    let shutdown = CancellationToken::new();
    let worker = Worker::new(
        Queue::new(worker_store, JobClock::System),
        handlers,
        WorkerConfig::new(4),
    );
    let running = tokio::spawn(worker.run(shutdown.clone()));
    let queue = Queue::new(Arc::new(submitter.clone()), JobClock::System);
    let warmup = 20;
    let mut samples = Vec::with_capacity(SAMPLES);
    for n in 0..SAMPLES + warmup {
        let t0 = Instant::now();
        queue
            .submit(JobSpec::new("noop", "null"))
            .await
            .expect("submit");
        let t1 = starts.recv().await.expect("the handler started");
        if n >= warmup {
            samples.push(t1.duration_since(t0));
        }
        // Let the worker finish the job and go idle again.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    shutdown.cancel();
    running.await.expect("worker task").expect("worker");
    submitter.clear().await.expect("clear");
    samples.sort();
    let at = |q: f64| samples[((q * samples.len() as f64) as usize).min(samples.len() - 1)];
    eprintln!(
        "mechops latency: p50 {} us, p99 {} us, max {} us ({SAMPLES} samples)",
        at(0.5).as_micros(),
        at(0.99).as_micros(),
        samples[samples.len() - 1].as_micros()
    );
}

/// The peer's directory, if its node modules are installed.
fn bullmq_dir() -> Option<&'static Path> {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/peers/bullmq"));
    dir.join("node_modules/bullmq").is_dir().then_some(dir)
}

/// Runs the peer script with `env`; its last line of output.
fn bullmq(dir: &Path, url: &str, env: &[(&str, String)]) -> Option<String> {
    let out = Command::new("node")
        .arg("bench.mjs")
        .current_dir(dir)
        .env("REDIS_URL", url)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "bullmq peer failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    String::from_utf8(out.stdout)
        .ok()?
        .lines()
        .last()
        .map(str::to_owned)
}

/// Alternating rounds of ours and BullMQ's on the same server.
fn paired(rt: &tokio::runtime::Runtime, url: &str, dir: &Path) {
    let mut ratios = Vec::new();
    let mut conn = rt.block_on(redis(url));
    let per_job = |cpu: f64| cpu * 1e6 / JOBS as f64;
    for n in 0..PAIRED_ROUNDS {
        let cpu0 = rt.block_on(redis_cpu(&mut conn));
        let started = Instant::now();
        rt.block_on(round(url, 1_000_000 + n));
        let ours = JOBS as f64 / started.elapsed().as_secs_f64();
        let cpu1 = rt.block_on(redis_cpu(&mut conn));
        let env = [("JOBS", JOBS.to_string()), ("ROUNDS", "1".to_owned())];
        let Some(line) = bullmq(dir, url, &env) else {
            return;
        };
        // Includes the peer's own setup and obliteration of its queue.
        let cpu2 = rt.block_on(redis_cpu(&mut conn));
        eprintln!(
            "paired round {}: redis-server cpu per job: mechops {:.1} us, bullmq {:.1} us",
            n + 1,
            per_job(cpu1 - cpu0),
            per_job(cpu2 - cpu1)
        );
        // "bullmq: N jobs/s (...)"
        let peer: f64 = line
            .strip_prefix("bullmq: ")
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(f64::NAN);
        ratios.push(ours / peer);
        eprintln!(
            "paired round {}: mechops {ours:.0} jobs/s, bullmq {peer:.0} jobs/s, ratio {:.2}x",
            n + 1,
            ours / peer
        );
    }
    ratios.sort_by(f64::total_cmp);
    eprintln!(
        "paired rounds: median ratio {:.2}x (mechops / bullmq)",
        ratios[ratios.len() / 2]
    );
}

fn benches(c: &mut Criterion) {
    let server = RedisServer::start(
        Path::new(env!("CARGO_TARGET_TMPDIR")),
        Persistence::Aof(AppendFsync::EverySec),
    )
    .expect("redis-server is needed for this benchmark");
    let url = server.url();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(commands_per_job(&url, 0));
    rt.block_on(latency(&url));
    match bullmq_dir() {
        Some(dir) => {
            paired(&rt, &url, dir);
            let env = [
                ("MODE", "latency".to_owned()),
                ("SAMPLES", SAMPLES.to_string()),
            ];
            if let Some(line) = bullmq(dir, &url, &env) {
                eprintln!("{line}");
            }
        }
        None => eprintln!(
            "the BullMQ peer is not installed: (cd benches/peers/bullmq && npm ci) to compare"
        ),
    }
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
}

criterion_group!(group, benches);
criterion_main!(group);
