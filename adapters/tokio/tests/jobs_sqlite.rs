//! The SQLite store: the store contract (shared with the memory store),
//! group commit under concurrent callers, two workers on one file, and
//! refusal of files that are not job stores.

use core::time::Duration;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use mechops_alloc::job::{
    FailKind, FencingToken, JobId, JobSpec, JobState, Lifecycle, Progress, RunAt, StateKind,
};
use mechops_core::backoff::Backoff;
use mechops_tokio::jobs::memory::MemoryStore;
use mechops_tokio::jobs::open::StoreUrl;
use mechops_tokio::jobs::runtime::{Handlers, JobClock, Queue, Worker, WorkerConfig};
use mechops_tokio::jobs::sqlite::{SqliteStore, Synchronous};
use mechops_tokio::jobs::store::{
    ClaimRequest, Completion, PurgeFilter, Store, StoreConfig, StoreError, SubmitRefused, WorkerId,
};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "mechops-jobs-{name}-{}-{}",
            std::process::id(),
            mechops_std::uuid::generate_v7()
        ));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn id() -> JobId {
    JobId::new(mechops_std::uuid::generate_v7())
}

fn short_lease() -> StoreConfig {
    StoreConfig {
        lifecycle: Lifecycle {
            lease: Duration::from_millis(100),
            max_stalls: 5,
            ..Lifecycle::default()
        },
        ..StoreConfig::default()
    }
}

fn req(max: usize) -> ClaimRequest {
    ClaimRequest {
        worker: WorkerId("t".into()),
        max,
        handler_limits: Arc::from([]),
    }
}

/// The contract every store keeps, driven with the system clock.
async fn contract(store: Arc<dyn Store>) {
    // The contract's own clock: the wall clock at the start plus what the
    // test advances, so a slow machine cannot expire a lease between calls.
    let start = mechops_std::clock::now();
    let elapsed = Mutex::new(Duration::ZERO);
    let now = || {
        start
            .checked_add((*elapsed.lock().unwrap()).into())
            .unwrap()
    };
    // Submission, unique keys, bulk refusals.
    let a = id();
    store
        .submit(a, JobSpec::new("h", "1").with_unique_key("k"), now())
        .await
        .unwrap();
    assert!(matches!(
        store.submit(id(), JobSpec::new("h", "2").with_unique_key("k"), now()).await,
        Err(StoreError::DuplicateKey { existing, .. }) if existing == a
    ));
    assert!(matches!(
        store.submit(a, JobSpec::new("h", "2"), now()).await,
        Err(StoreError::DuplicateId(_))
    ));
    let bulk = store
        .submit_bulk(
            vec![
                (
                    id(),
                    JobSpec::new("h", "3").with_priority(mechops_alloc::job::JobPriority::High),
                ),
                (id(), JobSpec::new("h", "4").with_unique_key("k")),
                (id(), JobSpec::new("h", "not json")),
                (id(), JobSpec::new("lim", "5")),
                (id(), JobSpec::new("lim", "6")),
            ],
            now(),
        )
        .await
        .unwrap();
    assert!(bulk[0].is_ok());
    assert!(matches!(bulk[1], Err(SubmitRefused::DuplicateKey { existing }) if existing == a));
    assert!(matches!(bulk[2], Err(SubmitRefused::Spec(_))));
    assert!(bulk[3].is_ok() && bulk[4].is_ok());
    let s = store.stats().await.unwrap();
    assert_eq!(s.counts.queue_size, 4);

    // Claim order (high first) and a store-wide handler limit.
    let limited = ClaimRequest {
        handler_limits: Arc::from([("lim".to_owned(), 1)]),
        ..req(10)
    };
    let claimed = store.claim(&limited, now()).await.unwrap();
    let args: Vec<&str> = claimed.iter().map(|c| c.args.as_str()).collect();
    assert_eq!(
        args,
        ["3", "1", "5"],
        "high first, then submission order, lim once"
    );
    assert!(store.claim(&limited, now()).await.unwrap().is_empty());

    // Heartbeat, progress, completion; a stale token is fenced.
    let first = &claimed[0];
    let lease = store.heartbeat(first.id, first.token, now()).await.unwrap();
    assert!(!lease.cancel_requested);
    store
        .progress(
            first.id,
            first.token,
            Progress::new(0.5, "half").unwrap(),
            now(),
        )
        .await
        .unwrap();
    store
        .complete(first.id, first.token, "\"ok\"".into(), now())
        .await
        .unwrap();
    assert!(matches!(
        store
            .complete(first.id, first.token, "1".into(), now())
            .await,
        Err(StoreError::Fenced { .. })
    ));
    let done = store.status(first.id).await.unwrap();
    assert_eq!(done.result(), Some("\"ok\""));
    assert_eq!(done.progress().unwrap().message(), "half");

    // A permanent failure makes a dead job; retry queues it again.
    let second = &claimed[1];
    let st = store
        .fail(
            second.id,
            second.token,
            "bad".into(),
            FailKind::Permanent,
            now(),
            7,
        )
        .await
        .unwrap();
    assert!(matches!(st, JobState::Dead { .. }));
    // The dead job freed its key; a new holder takes it, so retrying the
    // dead one is refused.
    let holder = id();
    store
        .submit(holder, JobSpec::new("h", "7").with_unique_key("k"), now())
        .await
        .unwrap();
    assert!(matches!(
        store.retry(second.id, now()).await,
        Err(StoreError::DuplicateKey { .. })
    ));
    assert!(matches!(
        store.cancel(second.id, now()).await,
        Err(StoreError::Rejected { .. })
    ));
    assert_eq!(
        store.cancel(holder, now()).await.unwrap(),
        StateKind::Cancelled
    );
    store.retry(second.id, now()).await.unwrap();
    assert_eq!(
        store.status(second.id).await.unwrap().state().kind(),
        StateKind::Queued
    );

    // A running job's cancel is requested through its heartbeat.
    let third = &claimed[2];
    assert_eq!(
        store.cancel(third.id, now()).await.unwrap(),
        StateKind::Running
    );
    let lease = store.heartbeat(third.id, third.token, now()).await.unwrap();
    assert!(lease.cancel_requested);
    store
        .ack_cancel(third.id, third.token, now())
        .await
        .unwrap();

    // Lease expiry: recovered in batches, the old token fenced.
    let next = store.claim(&req(10), now()).await.unwrap();
    assert_eq!(next.len(), 2, "{next:?}");
    assert!(store.next_due().await.unwrap().is_some());
    *elapsed.lock().unwrap() += Duration::from_millis(150);
    assert_eq!(store.recover_expired(now(), 1, 3).await.unwrap(), 1);
    assert_eq!(store.recover_expired(now(), 10, 3).await.unwrap(), 1);
    let again = store.claim(&req(10), now()).await.unwrap();
    assert_eq!(again.len(), 2);
    for old in &next {
        assert!(matches!(
            store.heartbeat(old.id, old.token, now()).await,
            Err(StoreError::Fenced { .. })
        ));
    }
    for c in &again {
        store.release(c.id, c.token, now()).await.unwrap();
        assert_eq!(
            store.status(c.id).await.unwrap().attempts(),
            1,
            "release gives the attempt back"
        );
    }

    // Delayed jobs are not claimable before their time.
    let later = id();
    store
        .submit(
            later,
            JobSpec::new("h", "8").with_run_at(RunAt::After(Duration::from_secs(3600))),
            now(),
        )
        .await
        .unwrap();
    let claimable = store.claim(&req(100), now()).await.unwrap();
    assert!(claimable.iter().all(|c| c.id != later));

    // Listing and purging.
    let dead = store.list(Some(StateKind::Completed), 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert!(matches!(
        store
            .purge(PurgeFilter {
                state: Some(StateKind::Queued),
                ..PurgeFilter::default()
            })
            .await,
        Err(StoreError::PurgePending(_))
    ));
    let purged = store.purge(PurgeFilter::default()).await.unwrap();
    assert_eq!(purged, 3, "completed, cancelled and cancelled");
    assert!(matches!(
        store.status(first.id).await,
        Err(StoreError::UnknownJob(_))
    ));
    let all = store.list(None, 100).await.unwrap();
    assert!(
        all.windows(2)
            .all(|w| w[0].created_at() <= w[1].created_at())
    );
}

#[tokio::test]
async fn the_memory_store_keeps_the_contract() {
    contract(Arc::new(MemoryStore::new(short_lease()))).await;
}

#[tokio::test]
async fn the_sqlite_store_keeps_the_contract() {
    let dir = TempDir::new("contract");
    let store =
        SqliteStore::open(&dir.0.join("jobs.db"), Synchronous::Full, short_lease()).unwrap();
    contract(Arc::new(store)).await;
}

#[tokio::test]
async fn sqlite_jobs_survive_a_reopen_and_concurrent_callers_share_commits() {
    let dir = TempDir::new("reopen");
    let path = dir.0.join("jobs.db");
    let store =
        Arc::new(SqliteStore::open(&path, Synchronous::Full, StoreConfig::default()).unwrap());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let s = Arc::clone(&store);
        tasks.spawn(async move {
            let id = id();
            s.submit(id, JobSpec::new("h", "{}"), mechops_std::clock::now())
                .await
                .unwrap();
            id
        });
    }
    let ids: Vec<JobId> = tasks.join_all().await;
    store.close().await.unwrap();
    assert!(matches!(store.stats().await, Err(StoreError::Closed)));
    let again = SqliteStore::open(&path, Synchronous::Full, StoreConfig::default()).unwrap();
    for id in ids {
        assert_eq!(
            again.status(id).await.unwrap().state().kind(),
            StateKind::Queued
        );
    }
    assert_eq!(again.stats().await.unwrap().counts.queue_size, 64);
}

#[test]
fn files_that_are_not_job_stores_are_refused_and_left_untouched() {
    let dir = TempDir::new("refuse");
    let text = dir.0.join("notes.db");
    std::fs::write(&text, b"just some text, not a database at all").unwrap();
    let err = SqliteStore::open(&text, Synchronous::Full, StoreConfig::default()).unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt(ref m) if m.contains("not a job store")),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&text).unwrap(),
        b"just some text, not a database at all"
    );

    let other = dir.0.join("other.db");
    {
        let c = rusqlite::Connection::open(&other).unwrap();
        c.execute_batch("CREATE TABLE accounts (id INTEGER)")
            .unwrap();
    }
    let before = std::fs::read(&other).unwrap();
    let err = SqliteStore::open(&other, Synchronous::Full, StoreConfig::default()).unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt(ref m) if m.contains("another application")),
        "{err}"
    );
    assert_eq!(std::fs::read(&other).unwrap(), before);

    let newer = dir.0.join("newer.db");
    drop(SqliteStore::open(&newer, Synchronous::Full, StoreConfig::default()).unwrap());
    {
        let c = rusqlite::Connection::open(&newer).unwrap();
        c.execute_batch("PRAGMA user_version = 99").unwrap();
    }
    let err = SqliteStore::open(&newer, Synchronous::Full, StoreConfig::default()).unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt(ref m) if m.contains("newer")),
        "{err}"
    );

    // A damaged page: the header says SQLite, the rest is noise.
    let damaged = dir.0.join("damaged.db");
    let mut bytes = b"SQLite format 3\0".to_vec();
    bytes.extend((0..8192u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    std::fs::write(&damaged, &bytes).unwrap();
    let err = SqliteStore::open(&damaged, Synchronous::Full, StoreConfig::default()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    assert_eq!(std::fs::read(&damaged).unwrap(), bytes);
}

#[test]
fn store_urls_parse_and_unknown_schemes_are_refused() {
    assert!(matches!(
        StoreUrl::parse("sqlite:///tmp/x.db?synchronous=normal").unwrap(),
        StoreUrl::Sqlite {
            sync: Synchronous::Normal,
            ..
        }
    ));
    assert_eq!(
        StoreUrl::parse("memory:///tmp/m.jsonl").unwrap(),
        StoreUrl::Memory(Some(PathBuf::from("/tmp/m.jsonl")))
    );
    for bad in ["ftp://x", "jobs.db", "sqlite://", "sqlite://x?fast=1"] {
        let e = StoreUrl::parse(bad).unwrap_err();
        assert!(matches!(e, StoreError::Config(_)), "{bad}: {e}");
    }
}

/// Two workers, each with its own connection and writer (as two processes
/// have), on one file: every job runs exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_on_one_file_never_run_a_job_twice() {
    let dir = TempDir::new("two");
    let path = dir.0.join("jobs.db");
    let runs: Arc<Mutex<HashMap<JobId, u32>>> = Arc::default();
    let submit = SqliteStore::open(&path, Synchronous::Normal, StoreConfig::default()).unwrap();
    let q = Queue::new(Arc::new(submit), JobClock::System);
    let specs = (0..600)
        .map(|i| JobSpec::new("count", i.to_string()))
        .collect();
    let ids: Vec<JobId> = q
        .submit_bulk(specs)
        .await
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let mut workers = Vec::new();
    for _ in 0..2 {
        let store = SqliteStore::open(&path, Synchronous::Normal, StoreConfig::default()).unwrap();
        let wq = Queue::new(Arc::new(store), JobClock::System);
        let mut h = Handlers::new();
        let r = Arc::clone(&runs);
        h.register("count", move |ctx| {
            let r = Arc::clone(&r);
            async move {
                *r.lock().unwrap().entry(ctx.id()).or_default() += 1;
                tokio::task::yield_now().await;
                Ok(Value::Null)
            }
        });
        let mut c = WorkerConfig::new(4);
        c.until_empty = true;
        workers.push(tokio::spawn(
            Worker::new(wq, h, c).run(CancellationToken::new()),
        ));
    }
    let mut started = 0;
    for w in workers {
        started += w.await.unwrap().unwrap().started;
    }
    assert_eq!(started, 600);
    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 600);
    assert!(runs.values().all(|&n| n == 1));
    for id in ids {
        assert_eq!(
            q.status(id).await.unwrap().state().kind(),
            StateKind::Completed
        );
    }
}

#[tokio::test]
async fn retries_and_dead_jobs_through_the_runtime_on_sqlite() {
    let dir = TempDir::new("rt");
    let store = SqliteStore::open(
        &dir.0.join("jobs.db"),
        Synchronous::Full,
        StoreConfig::default(),
    )
    .unwrap();
    let q = Queue::new(Arc::new(store), JobClock::System);
    let fast = Backoff::new(Duration::from_millis(5), Duration::from_millis(5), u32::MAX).unwrap();
    let flaky = q
        .submit(JobSpec::new("flaky", "{}").with_backoff(fast))
        .await
        .unwrap();
    let unknown = q.submit(JobSpec::new("nobody", "{}")).await.unwrap();
    let mut h = Handlers::new();
    h.register("flaky", |ctx| async move {
        if ctx.attempt() < 3 {
            Err(mechops_tokio::jobs::runtime::JobError::Retryable(
                "again".into(),
            ))
        } else {
            Ok(Value::from(ctx.attempt()))
        }
    });
    let mut c = WorkerConfig::new(2);
    c.until_empty = true;
    Worker::new(q.clone(), h, c)
        .run(CancellationToken::new())
        .await
        .unwrap();
    let f = q.status(flaky).await.unwrap();
    assert_eq!(
        (f.state().kind(), f.attempts(), f.result()),
        (StateKind::Completed, 3, Some("3"))
    );
    let u = q.status(unknown).await.unwrap();
    assert_eq!(u.state().kind(), StateKind::Dead);
    assert!(u.error().unwrap().contains("nobody"));
}

/// A batch of completions answers each item on its own.
async fn complete_batch_answers_each_item(store: Arc<dyn Store>) {
    let now = mechops_std::clock::now();
    for _ in 0..4 {
        store
            .submit(id(), JobSpec::new("h", "1"), now)
            .await
            .unwrap();
    }
    let claimed = store.claim(&req(4), now).await.unwrap();
    assert_eq!(claimed.len(), 4);
    let mut items: Vec<Completion> = claimed
        .iter()
        .map(|c| Completion {
            id: c.id,
            token: c.token,
            result: format!("\"{}\"", c.id),
        })
        .collect();
    // A stale token, and a job that does not exist.
    items[1].token = FencingToken::new(items[1].token.get() + 7);
    items.push(Completion {
        id: id(),
        token: FencingToken::new(1),
        result: "0".into(),
    });
    let answers = store.complete_batch(items, now).await.unwrap();
    assert_eq!(answers.len(), 5);
    assert!(answers[0].is_ok() && answers[2].is_ok() && answers[3].is_ok());
    assert!(matches!(answers[1], Err(StoreError::Fenced { .. })));
    assert!(matches!(answers[4], Err(StoreError::UnknownJob(_))));
    let done = store.status(claimed[2].id).await.unwrap();
    assert_eq!(
        done.result(),
        Some(format!("\"{}\"", claimed[2].id).as_str())
    );
    assert_eq!(
        store.status(claimed[1].id).await.unwrap().state().kind(),
        StateKind::Running,
        "the fenced report changed nothing"
    );
    let s = store.stats().await.unwrap();
    let c = s.counts;
    assert_eq!(
        (c.completed, c.completed_total, c.running, c.fenced),
        (3, 3, 1, 1)
    );
    let t = store.throughput(now).await.unwrap().unwrap();
    assert_eq!(t.completed, 3);
    let later = now.checked_add(Duration::from_secs(61).into()).unwrap();
    assert_eq!(store.throughput(later).await.unwrap().unwrap().completed, 0);
}

#[tokio::test]
async fn complete_batch_on_the_memory_store() {
    complete_batch_answers_each_item(Arc::new(MemoryStore::new(StoreConfig::default()))).await;
}

#[tokio::test]
async fn complete_batch_on_the_sqlite_store() {
    let dir = TempDir::new("batch");
    let store = SqliteStore::open(
        &dir.0.join("jobs.db"),
        Synchronous::Full,
        StoreConfig::default(),
    )
    .unwrap();
    complete_batch_answers_each_item(Arc::new(store)).await;
}

#[tokio::test]
async fn sqlite_counters_and_throughput_count_every_store_on_the_file() {
    // Two stores on one file stand for two processes: each has its own
    // writer and connection.
    let dir = TempDir::new("counters");
    let path = dir.0.join("jobs.db");
    let a = SqliteStore::open(&path, Synchronous::Full, StoreConfig::default()).unwrap();
    let b = SqliteStore::open(&path, Synchronous::Full, StoreConfig::default()).unwrap();
    let now = mechops_std::clock::now();
    for store in [&a, &b] {
        for _ in 0..3 {
            store
                .submit(id(), JobSpec::new("h", "1"), now)
                .await
                .unwrap();
        }
        for c in store.claim(&req(2), now).await.unwrap() {
            store
                .complete(c.id, c.token, "1".into(), now)
                .await
                .unwrap();
        }
    }
    let stale = a.claim(&req(1), now).await.unwrap();
    assert!(matches!(
        b.complete(
            stale[0].id,
            FencingToken::new(stale[0].token.get() + 1),
            "1".into(),
            now
        )
        .await,
        Err(StoreError::Fenced { .. })
    ));
    for store in [&a, &b] {
        let s = store.stats().await.unwrap();
        assert_eq!((s.counts.completed_total, s.counts.fenced), (4, 1));
        assert_eq!(store.throughput(now).await.unwrap().unwrap().completed, 4);
    }
    a.close().await.unwrap();
    b.close().await.unwrap();
    // The counters are in the file: a reopened store reads them.
    let c = SqliteStore::open(&path, Synchronous::Full, StoreConfig::default()).unwrap();
    assert_eq!(c.stats().await.unwrap().counts.completed_total, 4);
    c.close().await.unwrap();
}

#[tokio::test]
async fn a_parked_claim_is_answered_by_the_submission_that_makes_work() {
    let dir = TempDir::new("parked");
    let store = SqliteStore::open(
        &dir.0.join("jobs.db"),
        Synchronous::Full,
        StoreConfig::default(),
    )
    .unwrap();
    let now = mechops_std::clock::now();
    // Withdrawn before any work: it claims nothing, then or later.
    let early = store.park_claim(&req(1)).unwrap();
    assert!(early.withdraw().await.unwrap().is_empty());
    // Parked, then a submission: claimed inside the submission's commit.
    let mut parked = store.park_claim(&req(2)).unwrap();
    let job = id();
    store
        .submit(job, JobSpec::new("h", "1"), now)
        .await
        .unwrap();
    let claimed = parked.claimed().await.unwrap();
    assert_eq!(claimed.iter().map(|c| c.id).collect::<Vec<_>>(), [job]);
    assert_eq!(
        store.status(job).await.unwrap().state().kind(),
        StateKind::Running
    );
    drop(parked);
    // A dropped parked claim takes nothing.
    drop(store.park_claim(&req(1)).unwrap());
    let later = id();
    store
        .submit(later, JobSpec::new("h", "2"), now)
        .await
        .unwrap();
    assert_eq!(
        store.status(later).await.unwrap().state().kind(),
        StateKind::Queued,
        "nobody claimed it"
    );
    store.close().await.unwrap();
}

/// The schema of version 2, as that version wrote it.
const V2_SCHEMA: &str = r"
PRAGMA journal_mode=WAL;
CREATE TABLE jobs (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    handler TEXT NOT NULL,
    priority INTEGER NOT NULL,
    state TEXT NOT NULL,
    ready_at INTEGER,
    expires_at INTEGER,
    finished_at INTEGER,
    pending_key TEXT,
    worker TEXT,
    record TEXT NOT NULL
);
CREATE INDEX jobs_ready ON jobs(priority, seq) WHERE ready_at IS NOT NULL;
CREATE INDEX jobs_due ON jobs(ready_at) WHERE state IN ('delayed', 'retry_scheduled');
CREATE INDEX jobs_lease ON jobs(expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX jobs_state ON jobs(state, seq);
CREATE INDEX jobs_finished ON jobs(finished_at) WHERE state IN ('completed', 'cancelled');
CREATE UNIQUE INDEX jobs_pending_key ON jobs(pending_key) WHERE pending_key IS NOT NULL;
CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE completions (second INTEGER PRIMARY KEY, count INTEGER NOT NULL);
INSERT INTO counters (name, value) VALUES ('completed_total', 1);
PRAGMA application_id = 1296715586;
PRAGMA user_version = 2;
";

/// Writes a version 2 file holding `rows` (state, worker, record text).
fn write_v2(path: &std::path::Path, rows: &[(&str, Option<&str>, String)]) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(V2_SCHEMA).unwrap();
    for (state, worker, record) in rows {
        let v: Value = serde_json::from_str(record).unwrap();
        c.execute(
            "INSERT INTO jobs (id, handler, priority, state, worker, record) \
             VALUES (?1, ?2, 1, ?3, ?4, ?5)",
            rusqlite::params![
                v["id"].as_str(),
                v["handler"].as_str(),
                state,
                worker,
                record
            ],
        )
        .unwrap();
    }
}

#[tokio::test]
async fn a_version_2_file_is_migrated_with_every_job_and_lease() {
    use mechops_alloc::job::{Event, Job};
    use mechops_tokio::jobs::record::encode_text;
    let dir = TempDir::new("migrate");
    let path = dir.0.join("jobs.db");
    let lc = Lifecycle::default();
    let now = mechops_std::clock::now();
    let queued = Job::submit(id(), JobSpec::new("h", r#"{"n":1}"#), now, &lc)
        .unwrap()
        .0;
    let mut running = Job::submit(id(), JobSpec::new("h", r#"{"n":2}"#), now, &lc)
        .unwrap()
        .0;
    running.handle(Event::Claim, now, 0, &lc).unwrap();
    let JobState::Running { lease, .. } = *running.state() else {
        panic!("not running: {:?}", running.state());
    };
    let mut done = Job::submit(id(), JobSpec::new("h", "null"), now, &lc)
        .unwrap()
        .0;
    done.handle(Event::Claim, now, 0, &lc).unwrap();
    let token = done.state().lease().unwrap().token;
    done.handle(
        Event::Complete {
            token,
            result: "7".into(),
        },
        now,
        0,
        &lc,
    )
    .unwrap();
    write_v2(
        &path,
        &[
            ("queued", None, encode_text(&queued)),
            ("running", Some("w1"), encode_text(&running)),
            ("completed", None, encode_text(&done)),
        ],
    );

    let store = SqliteStore::open(&path, Synchronous::Full, StoreConfig::default()).unwrap();
    let s = store.stats().await.unwrap().counts;
    assert_eq!(
        (s.queue_size, s.running, s.completed, s.completed_total),
        (1, 1, 1, 1)
    );
    for job in [&queued, &running, &done] {
        let got = store.status(job.id()).await.unwrap();
        assert_eq!(got.to_parts(), job.to_parts(), "{}", job.id());
    }
    // The migrated lease still fences and completes.
    let stale = FencingToken::new(lease.token.get() + 1);
    assert!(matches!(
        store.complete(running.id(), stale, "1".into(), now).await,
        Err(StoreError::Fenced { .. })
    ));
    store
        .complete(running.id(), lease.token, "2".into(), now)
        .await
        .unwrap();
    let claimed = store.claim(&req(8), now).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        (claimed[0].id, claimed[0].args.as_str()),
        (queued.id(), r#"{"n":1}"#)
    );
    store.close().await.unwrap();

    let c = rusqlite::Connection::open(&path).unwrap();
    let version: i32 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 3);
    let old: i64 = c
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'jobs_v2'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(old, 0);
}

#[test]
fn a_version_2_file_with_a_damaged_record_is_refused_and_left_as_it_was() {
    let dir = TempDir::new("migrate-damaged");
    let path = dir.0.join("jobs.db");
    let lc = Lifecycle::default();
    let good = mechops_alloc::job::Job::submit(
        id(),
        JobSpec::new("h", "null"),
        mechops_std::clock::now(),
        &lc,
    )
    .unwrap()
    .0;
    let mut bad: Value =
        serde_json::from_str(&mechops_tokio::jobs::record::encode_text(&good)).unwrap();
    bad["id"] = Value::from(id().to_string());
    bad["attempts"] = Value::from("three");
    write_v2(
        &path,
        &[
            (
                "queued",
                None,
                mechops_tokio::jobs::record::encode_text(&good),
            ),
            ("queued", None, bad.to_string()),
        ],
    );
    let before = std::fs::read(&path).unwrap();
    let err = SqliteStore::open(&path, Synchronous::Full, StoreConfig::default()).unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt(ref m) if m.contains("row 2")),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let c = rusqlite::Connection::open(&path).unwrap();
    let version: i32 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 2);
}
