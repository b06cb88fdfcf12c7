//! Instructions per operation on the hot paths, mechops against its peers,
//! counted with `valgrind --tool=callgrind`.
//!
//! Criterion times move with the load of a shared machine; the number of
//! instructions an operation executes does not, and a change that adds some
//! shows at once. Each case below repeats one operation, doing the same work
//! as the matching criterion benchmark (same inputs, same buffers,
//! `black_box` on both sides). The harness runs every case twice under
//! callgrind, for `SHORT` and `LONG` repetitions, and reports
//! `(count(LONG) - count(SHORT)) / (LONG - SHORT)`: set-up, thread-local
//! initialisation and process start cancel out, what is left is one
//! operation plus its share of the loop.
//!
//! ```text
//! cargo bench -p mechops-benches --bench instructions            # every case
//! cargo bench -p mechops-benches --bench instructions -- pool    # groups containing "pool"
//! ```
//!
//! `-- --time` times the same cases instead (no valgrind): the fastest of
//! many short bursts, for checking a change on a loaded machine; criterion
//! stays the measure of record.
//!
//! A case runs alone with `<binary> --case <group>/<name> <repetitions>`, for
//! example under `valgrind --tool=callgrind` to annotate it. Each case is an
//! `#[inline(never)]` function named after it, which `objdump -d` finds.
#![allow(missing_docs)] // a benchmark binary, not a library

use core::hint::black_box;
use core::num::NonZeroUsize;
use core::sync::atomic::{AtomicU64, Ordering};
use std::process::{Command, ExitCode};
use std::time::Instant;

#[path = "support/conn_peers.rs"]
mod conn_peers;

use conn_peers::{Bb8Noop, DeadpoolNoop};
use mechops_core::lru::LruCache;
use mechops_core::pool::{Pool, ShardedPool};
use mechops_core::time::{MAX_RFC3339_LEN, Precision, Rfc3339Format, Timestamp};
use mechops_core::uuid::{Case as HexCase, FastV4, Uuid};
use mechops_std::pool::thread_shard_hint;
use mechops_std::uuid as ours;
use rand_core::SeedableRng;

/// Objects in each pool, as in the `pool` benchmark.
const OBJECTS: usize = 64;
/// UUIDs per bulk call, as in the `uuid` benchmark.
const BULK: usize = 1024;
/// Entries of each LRU cache, as in the `lru` benchmark.
const LRU_CAPACITY: usize = 1024;
/// Jobs per repetition of the job queue cases: one bulk submission and a
/// worker run until the store is idle.
const JOBS: usize = 1000;

const SAMPLE: &str = "67e55044-10b1-426f-9247-bb680e5fe0c8";
/// 2023-11-14T22:13:20.123Z, as in the `time` benchmark.
const SECS: i64 = 1_700_000_000;
const NANOS: u32 = 123_000_000;

/// One measured operation: `run(n)` repeats it `n` times; each repetition
/// stands for `items` operations (a bulk call of 1024 UUIDs counts 1024).
struct Case {
    group: &'static str,
    name: &'static str,
    items: u64,
    run: fn(u64),
}

/// The first case of each group is mechops; the others are compared with it.
const CASES: &[Case] = &[
    Case {
        group: "pool acquire+release",
        name: "mechops Pool",
        items: 1,
        run: pool_mechops,
    },
    Case {
        group: "pool acquire+release",
        name: "mechops ShardedPool (hinted)",
        items: 1,
        run: pool_mechops_sharded,
    },
    Case {
        group: "pool acquire+release",
        name: "two uncontended CAS (baseline)",
        items: 1,
        run: pool_baseline_two_cas,
    },
    Case {
        group: "pool acquire+release",
        name: "lockfree-object-pool linear",
        items: 1,
        run: pool_lockfree_linear,
    },
    Case {
        group: "uuid fast v4",
        name: "mechops generate_fast_uuid",
        items: 1,
        run: uuid_fast_thread_local,
    },
    Case {
        group: "uuid fast v4",
        name: "mechops FastV4::generate (owned)",
        items: 1,
        run: uuid_fast_owned,
    },
    Case {
        group: "uuid fast v4",
        name: "uuid new_v4 (fast-rng)",
        items: 1,
        run: uuid_peer_new_v4,
    },
    Case {
        group: "uuid fast v4 bulk (per UUID)",
        name: "mechops fill_fast_uuids",
        items: BULK as u64,
        run: uuid_fast_bulk,
    },
    Case {
        group: "uuid fast v4 bulk (per UUID)",
        name: "uuid new_v4 (fast-rng) x1024",
        items: BULK as u64,
        run: uuid_peer_new_v4_bulk,
    },
    Case {
        group: "uuid hyphenated encode",
        name: "mechops encode_hyphenated",
        items: 1,
        run: uuid_encode,
    },
    Case {
        group: "uuid hyphenated encode",
        name: "uuid encode_lower",
        items: 1,
        run: uuid_peer_encode,
    },
    Case {
        group: "uuid v7 (clock read included)",
        name: "mechops generate_v7",
        items: 1,
        run: uuid_v7,
    },
    Case {
        group: "uuid v7 (clock read included)",
        name: "uuid now_v7",
        items: 1,
        run: uuid_peer_v7,
    },
    Case {
        group: "uuid hyphenated parse",
        name: "mechops Uuid::parse_str",
        items: 1,
        run: uuid_parse,
    },
    Case {
        group: "uuid hyphenated parse",
        name: "uuid Uuid::parse_str",
        items: 1,
        run: uuid_peer_parse,
    },
    Case {
        group: "RFC 3339 format, ms, Z",
        name: "mechops format_rfc3339",
        items: 1,
        run: rfc3339_format,
    },
    Case {
        group: "RFC 3339 format, ms, Z",
        name: "time format_into(Rfc3339)",
        items: 1,
        run: rfc3339_peer_time_format,
    },
    Case {
        group: "RFC 3339 parse",
        name: "mechops Timestamp::parse_rfc3339",
        items: 1,
        run: rfc3339_parse,
    },
    Case {
        group: "RFC 3339 parse",
        name: "time OffsetDateTime::parse",
        items: 1,
        run: rfc3339_peer_time_parse,
    },
    Case {
        group: "LRU get-hit (1024 entries)",
        name: "mechops LruCache::get",
        items: 1,
        run: lru_get_hit,
    },
    Case {
        group: "LRU get-hit (1024 entries)",
        name: "lru LruCache::get",
        items: 1,
        run: lru_peer_get_hit,
    },
    Case {
        group: "conn pool acquire+release (1 task)",
        name: "mechops ConnectionPool",
        items: 1,
        run: conn_mechops,
    },
    Case {
        group: "conn pool acquire+release (1 task)",
        name: "deadpool managed",
        items: 1,
        run: conn_deadpool,
    },
    Case {
        group: "conn pool acquire+release (1 task)",
        name: "bb8",
        items: 1,
        run: conn_bb8,
    },
    Case {
        group: "conn pool acquire+release (1 task)",
        name: "tokio Semaphore (floor)",
        items: 1,
        run: conn_semaphore,
    },
    Case {
        group: "jobs memory end to end (per job)",
        name: "mechops memory store",
        items: JOBS as u64,
        run: jobs_memory,
    },
    Case {
        group: "jobs memory end to end (per job)",
        name: "tokio spawn+join",
        items: JOBS as u64,
        run: jobs_spawn_join,
    },
];

/// A one-thread runtime: the conn cases measure one task's acquire and
/// release, with no other thread to contend or to be woken.
fn conn_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// As in the `conn_pool` benchmark: filled to 8 no-op connections, no
/// checkout check.
#[inline(never)]
fn conn_mechops(n: u64) {
    use mechops_tokio::conn::noop::NoopManager;
    use mechops_tokio::conn::{ConnectionPool, ConnectionPoolConfig};
    conn_runtime().block_on(async {
        let mut config = ConnectionPoolConfig::sized(8, 8);
        config.pool.check_after_idle = None;
        let pool = ConnectionPool::new("bench", NoopManager::new(), vec!["noop"], config).unwrap();
        drop(pool.acquire().await.unwrap());
        for _ in 0..n {
            let conn = pool.acquire().await.unwrap();
            black_box(*conn);
        }
    });
}

#[inline(never)]
fn conn_deadpool(n: u64) {
    conn_runtime().block_on(async {
        let pool: deadpool::managed::Pool<DeadpoolNoop> =
            deadpool::managed::Pool::builder(DeadpoolNoop)
                .max_size(8)
                .build()
                .unwrap();
        drop(pool.get().await.unwrap());
        for _ in 0..n {
            let conn = pool.get().await.unwrap();
            black_box(*conn);
        }
    });
}

#[inline(never)]
fn conn_bb8(n: u64) {
    conn_runtime().block_on(async {
        let pool = bb8::Pool::builder()
            .max_size(8)
            .min_idle(Some(8))
            .test_on_check_out(false)
            .build(Bb8Noop)
            .await
            .unwrap();
        drop(pool.get().await.unwrap());
        for _ in 0..n {
            let conn = pool.get().await.unwrap();
            black_box(*conn);
        }
    });
}

#[inline(never)]
fn conn_semaphore(n: u64) {
    conn_runtime().block_on(async {
        let semaphore = tokio::sync::Semaphore::new(8);
        for _ in 0..n {
            let permit = semaphore.acquire().await.unwrap();
            black_box(&permit);
        }
    });
}

/// As in the `jobs` benchmark's `jobs_memory` group, on a one-thread
/// runtime: `JOBS` no-op jobs submitted in bulk, claimed, run and recorded
/// by a worker of 256 slots, `n` times.
#[inline(never)]
fn jobs_memory(n: u64) {
    use mechops_alloc::job::JobSpec;
    use mechops_tokio::jobs::memory::MemoryStore;
    use mechops_tokio::jobs::runtime::{Handlers, JobClock, Queue, Worker, WorkerConfig};
    use mechops_tokio::jobs::store::StoreConfig;
    conn_runtime().block_on(async {
        for _ in 0..n {
            let q = Queue::new(
                std::sync::Arc::new(MemoryStore::new(StoreConfig::default())),
                JobClock::anchored(),
            );
            let specs = (0..JOBS).map(|_| JobSpec::new("noop", "null")).collect();
            q.submit_bulk(specs).await.unwrap();
            let mut handlers = Handlers::new();
            handlers.register("noop", |_ctx| async { Ok(serde_json::Value::Null) });
            let mut config = WorkerConfig::new(256);
            config.until_empty = true;
            let report = Worker::new(q, handlers, config)
                .run(tokio_util::sync::CancellationToken::new())
                .await
                .unwrap();
            assert_eq!(black_box(report.completed), JOBS as u64);
        }
    });
}

/// The `jobs_memory` group's peer: `JOBS` no-op tasks spawned into a
/// `JoinSet` and joined, `n` times.
#[inline(never)]
fn jobs_spawn_join(n: u64) {
    conn_runtime().block_on(async {
        for _ in 0..n {
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..JOBS {
                set.spawn(async { Ok::<serde_json::Value, ()>(serde_json::Value::Null) });
            }
            while let Some(r) = set.join_next().await {
                black_box(r.unwrap().unwrap());
            }
        }
    });
}

#[inline(never)]
fn pool_mechops(n: u64) {
    let pool: Pool<u64, OBJECTS> = Pool::new([0; OBJECTS]);
    for _ in 0..n {
        let mut object = pool.try_acquire().unwrap();
        *object = black_box(*object + 1);
    }
}

#[inline(never)]
fn pool_mechops_sharded(n: u64) {
    let pool: ShardedPool<u64, OBJECTS, 2> = ShardedPool::new([0; OBJECTS]);
    for _ in 0..n {
        let mut object = pool.try_acquire_hinted(thread_shard_hint()).unwrap();
        *object = black_box(*object + 1);
    }
}

#[inline(never)]
fn pool_baseline_two_cas(n: u64) {
    let word = AtomicU64::new(0);
    for _ in 0..n {
        let taken = word.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed);
        black_box(taken).ok();
        let given = word.compare_exchange(1, 0, Ordering::Release, Ordering::Relaxed);
        black_box(given).ok();
    }
}

#[inline(never)]
fn pool_lockfree_linear(n: u64) {
    let pool = lockfree_object_pool::LinearObjectPool::<u64>::new(|| 0, |_| {});
    for _ in 0..n {
        let mut object = pool.pull();
        *object = black_box(*object + 1);
    }
}

#[inline(never)]
fn uuid_fast_thread_local(n: u64) {
    for _ in 0..n {
        black_box(ours::generate_fast_uuid());
    }
}

#[inline(never)]
fn uuid_fast_owned(n: u64) {
    let mut generator =
        FastV4::from_seed(rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1).state());
    for _ in 0..n {
        black_box(generator.generate());
    }
}

#[inline(never)]
fn uuid_peer_new_v4(n: u64) {
    for _ in 0..n {
        black_box(uuid::Uuid::new_v4());
    }
}

#[inline(never)]
fn uuid_fast_bulk(n: u64) {
    let mut buf = vec![Uuid::NIL; BULK];
    for _ in 0..n {
        ours::fill_fast_uuids(black_box(&mut buf)).unwrap();
        black_box(&buf);
    }
}

#[inline(never)]
fn uuid_peer_new_v4_bulk(n: u64) {
    let mut buf = vec![uuid::Uuid::nil(); BULK];
    for _ in 0..n {
        for slot in black_box(&mut buf).iter_mut() {
            *slot = uuid::Uuid::new_v4();
        }
        black_box(&buf);
    }
}

#[inline(never)]
fn uuid_encode(n: u64) {
    let value = Uuid::parse_str(SAMPLE).unwrap();
    let mut buf = [0u8; 36];
    for _ in 0..n {
        let s = black_box(&value)
            .encode_hyphenated(HexCase::Lower, black_box(&mut buf))
            .unwrap();
        black_box(s.len());
    }
}

#[inline(never)]
fn uuid_peer_encode(n: u64) {
    let value = uuid::Uuid::parse_str(SAMPLE).unwrap();
    let mut buf = [0u8; 36];
    for _ in 0..n {
        let s = black_box(&value)
            .hyphenated()
            .encode_lower(black_box(&mut buf));
        black_box(s.len());
    }
}

#[inline(never)]
fn uuid_v7(n: u64) {
    for _ in 0..n {
        black_box(ours::generate_v7());
    }
}

#[inline(never)]
fn uuid_peer_v7(n: u64) {
    for _ in 0..n {
        black_box(uuid::Uuid::now_v7());
    }
}

#[inline(never)]
fn uuid_parse(n: u64) {
    for _ in 0..n {
        black_box(Uuid::parse_str(black_box(SAMPLE))).ok();
    }
}

#[inline(never)]
fn uuid_peer_parse(n: u64) {
    for _ in 0..n {
        black_box(uuid::Uuid::parse_str(black_box(SAMPLE))).ok();
    }
}

#[inline(never)]
fn rfc3339_format(n: u64) {
    let ts = Timestamp::from_unix(SECS, NANOS).unwrap();
    let mut buf = [0u8; MAX_RFC3339_LEN];
    for _ in 0..n {
        let len = black_box(ts)
            .format_rfc3339(Rfc3339Format::new(Precision::Millis), &mut buf)
            .unwrap();
        black_box(&buf[..len]);
    }
}

#[inline(never)]
fn rfc3339_peer_time_format(n: u64) {
    let ts = time::OffsetDateTime::from_unix_timestamp_nanos(
        i128::from(SECS) * 1_000_000_000 + i128::from(NANOS),
    )
    .unwrap();
    let mut out = Vec::with_capacity(64);
    for _ in 0..n {
        out.clear();
        black_box(ts)
            .format_into(&mut out, &time::format_description::well_known::Rfc3339)
            .unwrap();
        black_box(&out);
    }
}

const TEXT: &str = "2023-11-14T22:13:20.123Z";

#[inline(never)]
fn rfc3339_parse(n: u64) {
    for _ in 0..n {
        black_box(Timestamp::parse_rfc3339(black_box(TEXT).as_bytes())).ok();
    }
}

#[inline(never)]
fn rfc3339_peer_time_parse(n: u64) {
    let format = &time::format_description::well_known::Rfc3339;
    for _ in 0..n {
        black_box(time::OffsetDateTime::parse(black_box(TEXT), format)).ok();
    }
}

/// The keys looked up, in an order that is neither insertion nor recency
/// order, so every hit moves an entry to the front: `7^i mod 1031` (1031 is
/// prime and 7 a primitive root of it) visits each of `1..1031` once per
/// period; keys are taken modulo the capacity.
fn lru_lookups() -> Vec<u64> {
    let mut x: u64 = 1;
    (0..4096)
        .map(|_| {
            x = x * 7 % 1031;
            x % LRU_CAPACITY as u64
        })
        .collect()
}

#[inline(never)]
fn lru_get_hit(n: u64) {
    let mut cache: Box<LruCache<u64, u64, LRU_CAPACITY>> = Box::new(LruCache::new());
    for k in 0..LRU_CAPACITY as u64 {
        cache.insert(k, k);
    }
    let lookups = lru_lookups();
    let mut found = 0u64;
    for key in black_box(&lookups).iter().cycle().take(n as usize) {
        found += cache.get(key).copied().unwrap_or(0);
    }
    black_box(found);
}

#[inline(never)]
fn lru_peer_get_hit(n: u64) {
    let mut cache = lru::LruCache::<u64, u64>::new(NonZeroUsize::new(LRU_CAPACITY).unwrap());
    for k in 0..LRU_CAPACITY as u64 {
        cache.put(k, k);
    }
    let lookups = lru_lookups();
    let mut found = 0u64;
    for key in black_box(&lookups).iter().cycle().take(n as usize) {
        found += cache.get(key).copied().unwrap_or(0);
    }
    black_box(found);
}

/// Operations in the two runs whose difference is counted: 10^5 apart, so
/// the per-operation figure is good to 0.01.
const SHORT: u64 = 20_000;
const LONG: u64 = 120_000;

fn full_name(case: &Case) -> String {
    format!("{}/{}", case.group, case.name)
}

/// Instructions callgrind counts for the whole run of `case` repeated `n`
/// times in a child process.
fn count(exe: &str, case: &Case, n: u64) -> Result<u64, String> {
    let output = Command::new("valgrind")
        .args([
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            exe,
            "--case",
        ])
        .arg(full_name(case))
        .arg(n.to_string())
        .output()
        .map_err(|e| format!("cannot run valgrind: {e}"))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!(
            "callgrind run of {} failed:\n{stderr}",
            full_name(case)
        ));
    }
    stderr
        .lines()
        .find_map(|line| {
            let (_, rest) = line.split_once("Collected :")?;
            rest.trim().parse().ok()
        })
        .ok_or_else(|| format!("no instruction count in callgrind's output:\n{stderr}"))
}

/// Bursts per case in `--time` mode.
const BURSTS: usize = 300;

/// The fastest of `BURSTS` runs of `case` repeated `n` times, in
/// nanoseconds: a burst that no other process interrupted.
fn fastest_burst(case: &Case, n: u64) -> f64 {
    (0..BURSTS)
        .map(|_| {
            let start = Instant::now();
            (case.run)(n);
            start.elapsed().as_nanos() as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// `--time`: nanoseconds per operation from the fastest bursts, the
/// difference of two burst lengths as for the instruction counts. A quick
/// check of a change on a loaded machine, where the fastest burst is one
/// that ran alone; the criterion benchmarks stay the figures of record.
fn time_cases(selected: &dyn Fn(&Case) -> bool) {
    println!("| operation | contender | ns per op (fastest burst) | / mechops |");
    println!("|---|---|---:|---:|");
    let mut first_of_group: Option<(&str, f64)> = None;
    for case in CASES.iter().filter(|c| selected(c)) {
        let (short, long) = (
            TIME_SHORT.div_ceil(case.items),
            TIME_LONG.div_ceil(case.items),
        );
        let per_op = (fastest_burst(case, long) - fastest_burst(case, short))
            / ((long - short) * case.items) as f64;
        print_row(case, per_op, &mut first_of_group, 2);
    }
}

/// Operations in the two bursts of `--time`.
const TIME_SHORT: u64 = 2_000;
const TIME_LONG: u64 = 12_000;

/// Prints one table row, with the ratio to the group's first case.
fn print_row<'a>(
    case: &'a Case,
    per_op: f64,
    first_of_group: &mut Option<(&'a str, f64)>,
    digits: usize,
) {
    let versus = match *first_of_group {
        Some((group, ours)) if group == case.group => format!("{:.2}", per_op / ours),
        _ => {
            *first_of_group = Some((case.group, per_op));
            "1".to_owned()
        }
    };
    println!(
        "| {} | {} | {per_op:.digits$} | {versus} |",
        case.group, case.name
    );
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, name, n] = args.as_slice()
        && flag == "--case"
    {
        let Some(case) = CASES.iter().find(|c| full_name(c) == *name) else {
            eprintln!("unknown case {name:?}");
            return ExitCode::FAILURE;
        };
        let Ok(n) = n.parse() else {
            eprintln!("repetitions must be a whole number, not {n:?}");
            return ExitCode::FAILURE;
        };
        (case.run)(n);
        return ExitCode::SUCCESS;
    }
    // `cargo bench` passes `--bench`; anything else not starting with `-`
    // selects the groups whose name contains it.
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let selected =
        |case: &Case| filters.is_empty() || filters.iter().any(|f| case.group.contains(f.as_str()));
    if args.iter().any(|a| a == "--time") {
        time_cases(&selected);
        return ExitCode::SUCCESS;
    }
    let exe = std::env::current_exe().expect("the path of this binary");
    let exe = exe.to_str().expect("a UTF-8 path");
    if let Err(e) = Command::new("valgrind").arg("--version").output() {
        eprintln!("instruction counts need valgrind on the PATH ({e}); nothing measured");
        return ExitCode::SUCCESS;
    }
    println!("| operation | contender | instructions per op | / mechops |");
    println!("|---|---|---:|---:|");
    let mut first_of_group: Option<(&str, f64)> = None;
    for case in CASES.iter().filter(|c| selected(c)) {
        // A bulk case repeats fewer calls, for the same number of items.
        let (short_reps, long_reps) = (SHORT.div_ceil(case.items), LONG.div_ceil(case.items));
        let (short, long) = match (count(exe, case, short_reps), count(exe, case, long_reps)) {
            (Ok(short), Ok(long)) => (short, long),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        };
        let per_op =
            long.saturating_sub(short) as f64 / ((long_reps - short_reps) * case.items) as f64;
        print_row(case, per_op, &mut first_of_group, 1);
    }
    ExitCode::SUCCESS
}
