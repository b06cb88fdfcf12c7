//! The job runtime on the memory store, under tokio's paused time: every
//! duration below is virtual, so nothing here waits or depends on speed.

use core::sync::atomic::{AtomicUsize, Ordering};
use core::time::Duration;
use std::sync::{Arc, Mutex};

use mechops_alloc::job::{FailKind, JobPriority, JobSpec, Lifecycle, RunAt, StateKind};
use mechops_core::backoff::{Backoff, Jitter};
use mechops_tokio::jobs::memory::MemoryStore;
use mechops_tokio::jobs::runtime::{
    Handlers, JobClock, JobError, Queue, QueueEventKind, Worker, WorkerConfig, WorkerReport,
};
use mechops_tokio::jobs::store::{ClaimRequest, Store, StoreConfig, StoreError, WorkerId};
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

fn queue_with(lifecycle: Lifecycle) -> Queue {
    let config = StoreConfig {
        lifecycle,
        ..StoreConfig::default()
    };
    Queue::new(Arc::new(MemoryStore::new(config)), JobClock::anchored())
}

fn queue() -> Queue {
    queue_with(Lifecycle::default())
}

fn config(concurrency: usize) -> WorkerConfig {
    let mut c = WorkerConfig::new(concurrency);
    c.until_empty = true;
    c
}

async fn run(queue: &Queue, handlers: Handlers, config: WorkerConfig) -> WorkerReport {
    Worker::new(queue.clone(), handlers, config)
        .run(CancellationToken::new())
        .await
        .unwrap()
}

/// Retries 10 ms apart.
fn fast_backoff() -> Backoff {
    Backoff::new(
        Duration::from_millis(10),
        Duration::from_millis(10),
        u32::MAX,
    )
    .unwrap()
}

fn sleeper(ms: u64) -> Handlers {
    let mut h = Handlers::new();
    h.register("sleep", move |_ctx| async move {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(Value::Null)
    });
    h
}

#[tokio::test(start_paused = true)]
async fn strict_priority_order_with_one_slot() {
    let q = queue();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut ids = Vec::new();
    for (p, name) in [
        (JobPriority::Low, "low"),
        (JobPriority::Normal, "normal"),
        (JobPriority::High, "high"),
        (JobPriority::Normal, "normal2"),
    ] {
        let spec = JobSpec::new("rec", json!({ "name": name }).to_string()).with_priority(p);
        ids.push(q.submit(spec).await.unwrap());
    }
    let mut h = Handlers::new();
    let o = Arc::clone(&order);
    h.register("rec", move |ctx| {
        let o = Arc::clone(&o);
        async move {
            o.lock()
                .unwrap()
                .push(ctx.args()["name"].as_str().unwrap().to_owned());
            Ok(Value::Null)
        }
    });
    let report = run(&q, h, config(1)).await;
    assert_eq!(report.completed, 4);
    assert_eq!(*order.lock().unwrap(), ["high", "normal", "normal2", "low"]);
}

#[tokio::test(start_paused = true)]
async fn global_and_per_handler_limits_hold() {
    let q = queue();
    let live = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let peak = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let mut h = Handlers::new();
    for (i, name) in ["a", "b"].into_iter().enumerate() {
        let (live, peak) = (Arc::clone(&live), Arc::clone(&peak));
        h.register(name, move |_ctx| {
            let (live, peak) = (Arc::clone(&live), Arc::clone(&peak));
            async move {
                let n = live[i].fetch_add(1, Ordering::SeqCst) + 1;
                peak[i].fetch_max(n, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
                live[i].fetch_sub(1, Ordering::SeqCst);
                Ok(Value::Null)
            }
        });
    }
    for _ in 0..8 {
        q.submit(JobSpec::new("a", "{}")).await.unwrap();
        q.submit(JobSpec::new("b", "{}")).await.unwrap();
    }
    let mut c = config(3);
    c.handler_limits = vec![("a".into(), 1)];
    let report = run(&q, h, c).await;
    assert_eq!(report.completed, 16);
    assert_eq!(peak[0].load(Ordering::SeqCst), 1, "handler limit");
    // b takes the slots a may not: 2 of them.
    assert_eq!(
        peak[1].load(Ordering::SeqCst),
        2,
        "global limit minus a's one"
    );
}

#[tokio::test(start_paused = true)]
async fn retries_follow_the_backoff_spacing() {
    let q = queue();
    let starts = Arc::new(Mutex::new(Vec::new()));
    let mut h = Handlers::new();
    let s = Arc::clone(&starts);
    h.register("flaky", move |ctx| {
        let s = Arc::clone(&s);
        async move {
            s.lock().unwrap().push(Instant::now());
            if ctx.attempt() < 3 {
                Err(JobError::Retryable(format!("attempt {}", ctx.attempt())))
            } else {
                Ok(json!(ctx.attempt()))
            }
        }
    });
    let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60), u32::MAX)
        .unwrap()
        .with_jitter(Jitter::None);
    let id = q
        .submit(JobSpec::new("flaky", "{}").with_backoff(backoff))
        .await
        .unwrap();
    let report = run(&q, h, config(2)).await;
    assert_eq!((report.completed, report.failed), (1, 2));
    let job = q.status(id).await.unwrap();
    assert_eq!(job.state().kind(), StateKind::Completed);
    assert_eq!((job.attempts(), job.result()), (3, Some("3")));
    let t = starts.lock().unwrap().clone();
    assert_eq!(t.len(), 3);
    // 1 s, then 2 s (doubling, no jitter).
    assert_eq!(t[1] - t[0], Duration::from_secs(1));
    assert_eq!(t[2] - t[1], Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn last_attempt_failure_and_permanent_failure_make_dead_jobs() {
    let q = queue();
    let mut h = Handlers::new();
    h.register("always", |_ctx| async {
        Err(JobError::Retryable("nope".into()))
    });
    h.register("perm", |_ctx| async {
        Err(JobError::Permanent("bad input".into()))
    });
    let fast = fast_backoff();
    let a = q
        .submit(
            JobSpec::new("always", "{}")
                .with_max_attempts(2)
                .with_backoff(fast),
        )
        .await
        .unwrap();
    let p = q.submit(JobSpec::new("perm", "{}")).await.unwrap();
    let u = q
        .submit(JobSpec::new("no-such-handler", "{}"))
        .await
        .unwrap();
    run(&q, h, config(2)).await;
    let a = q.status(a).await.unwrap();
    assert_eq!((a.state().kind(), a.attempts()), (StateKind::Dead, 2));
    let p = q.status(p).await.unwrap();
    assert_eq!((p.state().kind(), p.attempts()), (StateKind::Dead, 1));
    assert_eq!(p.error(), Some("bad input"));
    let u = q.status(u).await.unwrap();
    assert_eq!(u.state().kind(), StateKind::Dead);
    assert!(
        u.error().unwrap().contains("no-such-handler"),
        "{:?}",
        u.error()
    );
}

#[tokio::test(start_paused = true)]
async fn a_delayed_job_starts_when_due() {
    let q = queue();
    let started = Arc::new(Mutex::new(None));
    let mut h = Handlers::new();
    let s = Arc::clone(&started);
    h.register("t", move |_ctx| {
        let s = Arc::clone(&s);
        async move {
            *s.lock().unwrap() = Some(Instant::now());
            Ok(Value::Null)
        }
    });
    let t0 = Instant::now();
    q.submit(JobSpec::new("t", "{}").with_run_at(RunAt::After(Duration::from_secs(5))))
        .await
        .unwrap();
    run(&q, h, config(1)).await;
    assert_eq!(
        started.lock().unwrap().unwrap() - t0,
        Duration::from_secs(5)
    );
}

#[tokio::test(start_paused = true)]
async fn cancel_stops_a_running_job_and_a_queued_one() {
    let q = queue();
    let mut h = Handlers::new();
    h.register("wait", |ctx| async move {
        ctx.cancel_token().cancelled().await;
        Err(JobError::Retryable("stopped".into()))
    });
    let running = q.submit(JobSpec::new("wait", "{}")).await.unwrap();
    let queued = q
        .submit(JobSpec::new("wait", "{}").with_run_at(RunAt::After(Duration::from_secs(60))))
        .await
        .unwrap();
    assert_eq!(q.cancel(queued).await.unwrap(), StateKind::Cancelled);
    let mut c = config(1);
    c.heartbeat = Duration::from_millis(100);
    let q2 = q.clone();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        q2.cancel(running).await.unwrap()
    });
    run(&q, h, c).await;
    assert_eq!(canceller.await.unwrap(), StateKind::Running);
    assert_eq!(
        q.status(running).await.unwrap().state().kind(),
        StateKind::Cancelled
    );
    assert!(matches!(
        q.cancel(running).await,
        Err(StoreError::Rejected { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn unique_keys_refuse_duplicates_while_pending() {
    let q = queue();
    let spec = || JobSpec::new("noop", "{}").with_unique_key("k");
    let first = q.submit(spec()).await.unwrap();
    match q.submit(spec()).await {
        Err(StoreError::DuplicateKey { key, existing }) => {
            assert_eq!((key.as_str(), existing), ("k", first));
        }
        other => panic!("expected a duplicate key, got {other:?}"),
    }
    let mut h = Handlers::new();
    h.register("noop", |_ctx| async { Ok(Value::Null) });
    run(&q, h, config(1)).await;
    // Finished: the key is free again.
    q.submit(spec()).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_expired_lease_is_recovered_and_the_late_worker_is_fenced() {
    let lifecycle = Lifecycle {
        lease: Duration::from_secs(1),
        max_stalls: 3,
        ..Lifecycle::default()
    };
    let q = queue_with(lifecycle);
    let runs = Arc::new(AtomicUsize::new(0));
    let mut h = Handlers::new();
    let r = Arc::clone(&runs);
    h.register("slow", move |ctx| {
        let r = Arc::clone(&r);
        async move {
            r.fetch_add(1, Ordering::SeqCst);
            // The first attempt outlives its lease (no heartbeat renews it).
            let ms = if ctx.attempt() == 1 { 3000 } else { 10 };
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(json!(ctx.attempt()))
        }
    });
    let id = q.submit(JobSpec::new("slow", "{}")).await.unwrap();
    let mut events = q.subscribe();
    let mut c = config(2);
    c.heartbeat = Duration::from_secs(3600);
    let report = run(&q, h, c).await;
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(
        (report.completed, report.fenced, report.recovered),
        (1, 1, 1)
    );
    let job = q.status(id).await.unwrap();
    assert_eq!(job.state().kind(), StateKind::Completed);
    assert_eq!(
        job.result(),
        Some("2"),
        "the newer attempt's outcome stands"
    );
    let mut fenced = false;
    while let Ok(e) = events.try_recv() {
        fenced |= e.id == id && matches!(e.kind, QueueEventKind::Fenced { .. });
    }
    assert!(fenced, "the fenced completion is an event");
}

#[tokio::test(start_paused = true)]
async fn fencing_at_the_store_rejects_a_stale_token_distinctly() {
    let lifecycle = Lifecycle {
        lease: Duration::from_secs(1),
        ..Lifecycle::default()
    };
    let clock = JobClock::anchored();
    let store = MemoryStore::new(StoreConfig {
        lifecycle,
        ..StoreConfig::default()
    });
    let id = mechops_alloc::job::JobId::new(mechops_std::uuid::generate_v7());
    store
        .submit(id, JobSpec::new("h", "{}"), clock.now())
        .await
        .unwrap();
    let req = ClaimRequest {
        worker: WorkerId("w".into()),
        max: 1,
        handler_limits: Arc::from([]),
    };
    let first = store.claim(&req, clock.now()).await.unwrap().remove(0);
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(store.recover_expired(clock.now(), 10, 1).await.unwrap(), 1);
    let second = store.claim(&req, clock.now()).await.unwrap().remove(0);
    assert!(second.token > first.token);
    let late = store
        .complete(id, first.token, "1".into(), clock.now())
        .await;
    assert!(matches!(late, Err(StoreError::Fenced { .. })), "{late:?}");
    let late = store
        .fail(
            id,
            first.token,
            "x".into(),
            FailKind::Retryable,
            clock.now(),
            0,
        )
        .await;
    assert!(matches!(late, Err(StoreError::Fenced { .. })), "{late:?}");
    store
        .complete(id, second.token, "2".into(), clock.now())
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn graceful_shutdown_finishes_within_grace_and_releases_the_rest() {
    let q = queue();
    let mut h = sleeper(500);
    h.register("long", |ctx| async move {
        ctx.cancel_token().cancelled().await;
        Err(JobError::Retryable("interrupted".into()))
    });
    let quick = q.submit(JobSpec::new("sleep", "{}")).await.unwrap();
    let long = q.submit(JobSpec::new("long", "{}")).await.unwrap();
    let mut c = WorkerConfig::new(2);
    c.grace = Duration::from_secs(1);
    let shutdown = CancellationToken::new();
    let worker = tokio::spawn(Worker::new(q.clone(), h, c).run(shutdown.clone()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    shutdown.cancel();
    let report = worker.await.unwrap().unwrap();
    assert_eq!((report.completed, report.released), (1, 1));
    assert_eq!(
        q.status(quick).await.unwrap().state().kind(),
        StateKind::Completed
    );
    let long = q.status(long).await.unwrap();
    assert_eq!(
        long.state().kind(),
        StateKind::Queued,
        "released, claimable at once"
    );
    assert_eq!(long.attempts(), 0, "a released attempt does not count");
}

#[tokio::test(start_paused = true)]
async fn progress_reaches_subscribers_and_the_store() {
    let q = queue();
    let mut h = Handlers::new();
    h.register("steps", |ctx| async move {
        for i in 1..=10 {
            ctx.progress(f64::from(i) / 10.0, format!("step {i}"))
                .unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(Value::Null)
    });
    let id = q.submit(JobSpec::new("steps", "{}")).await.unwrap();
    let mut events = q.subscribe();
    let watcher = tokio::spawn(async move {
        let mut seen = Vec::new();
        loop {
            let e = events.recv().await.unwrap();
            match e.kind {
                QueueEventKind::Progress { message, .. } => seen.push(message),
                QueueEventKind::Completed { .. } => return seen,
                _ => {}
            }
        }
    });
    run(&q, h, config(1)).await;
    let seen = watcher.await.unwrap();
    assert_eq!(seen.len(), 10, "{seen:?}");
    let job = q.status(id).await.unwrap();
    let p = job.progress().unwrap();
    assert_eq!(
        (p.fraction(), p.message()),
        (1.0, "step 10"),
        "the last value is written"
    );
}

#[tokio::test(start_paused = true)]
async fn a_panicking_handler_fails_its_attempt_and_the_worker_goes_on() {
    let q = queue();
    let mut h = Handlers::new();
    h.register("boom", |ctx| async move {
        if ctx.attempt() == 1 {
            tokio::task::yield_now().await;
            panic!("handler bug");
        }
        Ok(Value::Null)
    });
    let fast = fast_backoff();
    let id = q
        .submit(JobSpec::new("boom", "{}").with_backoff(fast))
        .await
        .unwrap();
    run(&q, h, config(1)).await;
    let job = q.status(id).await.unwrap();
    assert_eq!(
        (job.state().kind(), job.attempts()),
        (StateKind::Completed, 2)
    );
}

#[tokio::test(start_paused = true)]
async fn an_attempt_past_its_timeout_is_stopped_and_retried() {
    let q = queue();
    let mut h = sleeper(5_000);
    h.register("quick", |_ctx| async { Ok(Value::Null) });
    let fast = fast_backoff();
    let id = q
        .submit(
            JobSpec::new("sleep", "{}")
                .with_timeout(Duration::from_millis(100))
                .with_max_attempts(2)
                .with_backoff(fast),
        )
        .await
        .unwrap();
    run(&q, h, config(1)).await;
    let job = q.status(id).await.unwrap();
    assert_eq!((job.state().kind(), job.attempts()), (StateKind::Dead, 2));
    assert_eq!(job.error(), Some("attempt timed out"));
}

#[tokio::test]
async fn the_memory_store_keeps_pending_jobs_across_a_graceful_shutdown() {
    let dir = std::env::temp_dir().join(format!("mechops-jobs-mem-{}", std::process::id()));
    let file = dir.join("jobs.jsonl");
    let _ = std::fs::remove_file(&file);
    let config = StoreConfig::default();
    let store = Arc::new(MemoryStore::open(&file, config).unwrap());
    let q = Queue::new(store.clone(), JobClock::anchored());
    let a = q.submit(JobSpec::new("x", r#"{"n":1}"#)).await.unwrap();
    let b = q
        .submit(JobSpec::new("x", "{}").with_run_at(RunAt::After(Duration::from_secs(3600))))
        .await
        .unwrap();
    store.close().await.unwrap();
    assert!(matches!(q.status(a).await, Err(StoreError::Closed)));
    let again = MemoryStore::open(&file, config).unwrap();
    assert_eq!(again.status(a).await.unwrap().spec().args, r#"{"n":1}"#);
    assert_eq!(
        again.status(b).await.unwrap().state().kind(),
        StateKind::Delayed
    );
    std::fs::write(&file, "not a job file\n").unwrap();
    assert!(matches!(
        MemoryStore::open(&file, config),
        Err(StoreError::Corrupt(_))
    ));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a job file\n");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_instant_jobs_on_two_threads_all_complete() {
    // Few slots, many instant jobs: every claim fills all slots, and they
    // free while the loop is busy elsewhere.
    for _ in 0..10 {
        let q = queue();
        let specs = (0..5_000).map(|_| JobSpec::new("noop", "null")).collect();
        q.submit_bulk(specs).await.unwrap();
        let mut h = Handlers::new();
        h.register("noop", |_ctx| async { Ok(Value::Null) });
        let run = Worker::new(q.clone(), h, config(4)).run(CancellationToken::new());
        let Ok(report) = tokio::time::timeout(Duration::from_secs(20), run).await else {
            let st = q.stats().await.unwrap();
            let running = q.store().list(Some(StateKind::Running), 5).await.unwrap();
            let queued = q.store().list(Some(StateKind::Queued), 5).await.unwrap();
            panic!(
                "stuck: {st:?}\nrunning {running:?}\nqueued {queued:?}\nnext due {:?}",
                q.store().next_due().await
            );
        };
        let report = report.unwrap();
        assert_eq!(report.completed, 5_000);
        assert!(q.stats().await.unwrap().is_idle());
    }
}

#[tokio::test(start_paused = true)]
async fn the_worker_applies_retention_to_finished_jobs() {
    let config = StoreConfig {
        retention: mechops_alloc::job::Retention {
            max_age: Duration::from_secs(60),
            max_count: 3,
        },
        ..StoreConfig::default()
    };
    let q = Queue::new(Arc::new(MemoryStore::new(config)), JobClock::anchored());
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(q.submit(JobSpec::new("noop", "{}")).await.unwrap());
    }
    let dead = q.submit(JobSpec::new("nobody", "{}")).await.unwrap();
    let mut h = Handlers::new();
    h.register("noop", |_ctx| async { Ok(Value::Null) });
    let shutdown = CancellationToken::new();
    let worker =
        tokio::spawn(Worker::new(q.clone(), h, WorkerConfig::new(1)).run(shutdown.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    // At most three finished jobs are kept: the oldest two are gone.
    let s = q.stats().await.unwrap();
    assert_eq!(s.counts.completed, 3, "{s:?}");
    assert!(matches!(
        q.status(ids[0]).await,
        Err(StoreError::UnknownJob(_))
    ));
    tokio::time::sleep(Duration::from_secs(61)).await;
    assert_eq!(
        q.stats().await.unwrap().counts.completed,
        0,
        "past their age"
    );
    assert_eq!(
        q.status(dead).await.unwrap().state().kind(),
        StateKind::Dead,
        "dead jobs are kept"
    );
    shutdown.cancel();
    worker.await.unwrap().unwrap();
}

/// `{handler: n}`.
fn keyed(handler: &str, n: u64) -> Value {
    let mut m = serde_json::Map::new();
    m.insert(handler.to_owned(), json!(n));
    Value::Object(m)
}

#[tokio::test(start_paused = true)]
async fn handlers_done_at_once_and_pending_ones_share_a_batch() {
    // Instant handlers finish at their first poll and are recorded in the
    // worker's batch; a handler that returns Pending first continues in
    // its own task. Every job completes once, with its own result.
    let q = queue();
    let mut events = q.subscribe();
    let mut h = Handlers::new();
    h.register("instant", |ctx| {
        let n = ctx.args()["n"].clone();
        async move { Ok(json!({ "instant": n })) }
    });
    h.register("pending", |ctx| async move {
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        Ok(json!({ "pending": ctx.args()["n"].clone() }))
    });
    let mut ids = Vec::new();
    for n in 0..40u64 {
        let handler = if n % 3 == 0 { "pending" } else { "instant" };
        let spec = JobSpec::new(handler, json!({ "n": n }).to_string());
        ids.push((q.submit(spec).await.unwrap(), handler, n));
    }
    let report = run(&q, h, config(8)).await;
    assert_eq!((report.started, report.completed), (40, 40));
    for (id, handler, n) in &ids {
        let job = q.status(*id).await.unwrap();
        assert_eq!(job.state().kind(), StateKind::Completed);
        assert_eq!(job.attempts(), 1);
        let result: Value = serde_json::from_str(job.result().unwrap()).unwrap();
        assert_eq!(result, keyed(handler, *n), "{id}");
    }
    let mut completed = std::collections::HashMap::new();
    while let Ok(e) = events.try_recv() {
        if let QueueEventKind::Completed { result } = e.kind {
            assert!(completed.insert(e.id, result).is_none(), "once per job");
        }
    }
    assert_eq!(completed.len(), 40);
    for (id, handler, n) in &ids {
        assert_eq!(*completed[id], keyed(handler, *n));
    }
}

#[tokio::test(start_paused = true)]
async fn a_handler_panicking_before_its_first_await_fails_its_attempt() {
    // The first poll runs in the worker's own task: a panic there must
    // fail the attempt, not the worker.
    let q = queue();
    let mut h = Handlers::new();
    h.register("boom", |ctx| async move {
        if ctx.attempt() == 1 {
            panic!("handler bug at once");
        }
        Ok(Value::Null)
    });
    h.register("noop", |_ctx| async { Ok(Value::Null) });
    let fast = fast_backoff();
    let id = q
        .submit(JobSpec::new("boom", "{}").with_backoff(fast))
        .await
        .unwrap();
    let other = q.submit(JobSpec::new("noop", "{}")).await.unwrap();
    let report = run(&q, h, config(4)).await;
    assert_eq!((report.completed, report.failed), (2, 1));
    let job = q.status(id).await.unwrap();
    assert_eq!(
        (job.state().kind(), job.attempts()),
        (StateKind::Completed, 2)
    );
    assert_eq!(
        q.status(other).await.unwrap().state().kind(),
        StateKind::Completed
    );
}

#[tokio::test(start_paused = true)]
async fn throughput_counts_completions_of_the_last_minute() {
    let q = queue();
    for _ in 0..12 {
        q.submit(JobSpec::new("noop", "null")).await.unwrap();
    }
    let mut h = Handlers::new();
    h.register("noop", |_ctx| async { Ok(Value::Null) });
    run(&q, h, config(4)).await;
    let t = q.throughput().await.unwrap().unwrap();
    assert_eq!(t.completed, 12);
    assert_eq!(t.window, Duration::from_secs(60));
    assert!((t.per_second() - 0.2).abs() < 1e-9);
    tokio::time::advance(Duration::from_secs(61)).await;
    assert_eq!(q.throughput().await.unwrap().unwrap().completed, 0);
}
