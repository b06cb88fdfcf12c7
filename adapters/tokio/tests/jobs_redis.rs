//! The Redis job store against a real `redis-server` of each test's own:
//! the store contract, two workers, a server restart, and workers killed
//! with `SIGKILL`.

mod support;

use core::time::Duration;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use mechops_alloc::job::{
    FailKind, FencingToken, JobId, JobPriority, JobSpec, JobState, Lifecycle, Progress, Retention,
    RunAt, StateKind,
};
use mechops_core::backoff::{Backoff, Jitter};
use mechops_core::time::Timestamp;
use mechops_tokio::jobs::redis_store::{RedisConfig, RedisStore};
use mechops_tokio::jobs::store::{
    ClaimRequest, PurgeFilter, Store, StoreConfig, StoreError, SubmitRefused, Throughput, WorkerId,
};
use support::redis_server::{AppendFsync, Persistence, RedisServer};

fn base() -> &'static Path {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
}

fn at(ms: i64) -> Timestamp {
    Timestamp::from_unix_millis(ms).unwrap()
}

/// A fixed origin well after 1970, so that ages and delays stay positive.
const T0: i64 = 1_800_000_000_000;

fn id() -> JobId {
    JobId::new(mechops_std::uuid::generate_v7())
}

fn request(max: usize) -> ClaimRequest {
    ClaimRequest {
        worker: WorkerId("test".into()),
        max,
        handler_limits: Arc::from(Vec::new()),
    }
}

fn lifecycle() -> Lifecycle {
    Lifecycle {
        lease: Duration::from_secs(10),
        ..Lifecycle::default()
    }
}

async fn open(server: &RedisServer, store: StoreConfig) -> RedisStore {
    let config = RedisConfig::new(server.url()).with_store(store);
    RedisStore::connect(config).await.unwrap()
}

async fn default_store(server: &RedisServer) -> RedisStore {
    open(
        server,
        StoreConfig {
            lifecycle: lifecycle(),
            retention: Retention::default(),
        },
    )
    .await
}

/// A server of the test's own without persistence, and a store on it.
async fn fresh() -> Option<(RedisServer, RedisStore)> {
    let server = RedisServer::start(base(), Persistence::None)?;
    let store = default_store(&server).await;
    Some((server, store))
}

/// Submits a no-op job at `t` and claims it at `t`.
async fn running(store: &RedisStore, t: i64) -> (JobId, FencingToken) {
    let job = id();
    store
        .submit(job, JobSpec::new("noop", "null"), at(t))
        .await
        .unwrap();
    let c = store.claim(&request(1), at(t)).await.unwrap().remove(0);
    assert_eq!(c.id, job);
    (job, c.token)
}

#[tokio::test]
async fn submit_claim_complete_and_status() {
    let Some((_server, store)) = fresh().await else {
        return;
    };
    let job = id();
    store
        .submit(job, JobSpec::new("echo", r#"{"x":1}"#), at(T0))
        .await
        .unwrap();
    let queued = store.status(job).await.unwrap();
    assert_eq!(queued.state(), &JobState::Queued);
    assert_eq!(queued.spec().args, r#"{"x":1}"#);

    let claimed = store.claim(&request(10), at(T0 + 5)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let c = &claimed[0];
    assert_eq!((c.id, c.handler.as_str(), c.attempt), (job, "echo", 1));
    assert_eq!(c.expires_at, at(T0 + 5 + 10_000));
    assert!(
        store
            .claim(&request(10), at(T0 + 6))
            .await
            .unwrap()
            .is_empty()
    );

    let p = Progress::new(0.5, "half").unwrap();
    store.progress(job, c.token, p, at(T0 + 7)).await.unwrap();
    let running = store.status(job).await.unwrap();
    assert_eq!(running.progress().unwrap().message(), "half");
    assert_eq!(running.state().kind(), StateKind::Running);

    store
        .complete(job, c.token, "42".into(), at(T0 + 9))
        .await
        .unwrap();
    let done = store.status(job).await.unwrap();
    assert_eq!(done.state(), &JobState::Completed);
    assert_eq!(done.result(), Some("42"));
    assert_eq!(done.finished_at(), Some(at(T0 + 9)));
    assert_eq!(done.started_at(), Some(at(T0 + 5)));

    let stats = store.stats().await.unwrap();
    assert_eq!(stats.counts.completed, 1);
    assert_eq!(stats.counts.completed_total, 1);
    assert_eq!(stats.counts.queue_size, 0);
    assert_eq!(stats.counts.running, 0);
    assert!(stats.is_idle());
    // Completed is final.
    let again = store.complete(job, c.token, "1".into(), at(T0 + 10)).await;
    assert!(matches!(again, Err(StoreError::Fenced { .. })), "{again:?}");
    assert!(matches!(
        store.status(id()).await,
        Err(StoreError::UnknownJob(_))
    ));
}

#[tokio::test]
async fn claims_follow_priority_then_submission_order() {
    let Some((_server, store)) = fresh().await else {
        return;
    };
    let mut ids = HashMap::new();
    for (n, p) in [
        (0, JobPriority::Low),
        (1, JobPriority::Normal),
        (2, JobPriority::High),
        (3, JobPriority::Normal),
        (4, JobPriority::High),
    ] {
        let job = id();
        ids.insert(job, n);
        let spec = JobSpec::new("noop", "null").with_priority(p);
        store.submit(job, spec, at(T0 + n)).await.unwrap();
    }
    let claimed = store.claim(&request(10), at(T0 + 10)).await.unwrap();
    let order: Vec<i64> = claimed.iter().map(|c| ids[&c.id]).collect();
    assert_eq!(order, [2, 4, 1, 3, 0]);
}

#[tokio::test]
async fn bulk_submit_refuses_each_bad_job_alone() {
    let Some((_server, store)) = fresh().await else {
        return;
    };
    let first = id();
    let jobs = vec![
        (first, JobSpec::new("a", "1").with_unique_key("k")),
        (id(), JobSpec::new("b", "not json")),
        (id(), JobSpec::new("c", "2").with_unique_key("k")),
        (first, JobSpec::new("d", "3")),
        (id(), JobSpec::new("e", "4")),
    ];
    let results = store.submit_bulk(jobs, at(T0)).await.unwrap();
    assert_eq!(results[0], Ok(()));
    assert!(matches!(results[1], Err(SubmitRefused::Spec(_))));
    assert_eq!(
        results[2],
        Err(SubmitRefused::DuplicateKey { existing: first })
    );
    assert_eq!(results[3], Err(SubmitRefused::DuplicateId));
    assert_eq!(results[4], Ok(()));
    assert_eq!(store.stats().await.unwrap().counts.queue_size, 2);
}

#[tokio::test]
async fn delayed_jobs_wait_for_their_time() {
    let Some((_server, store)) = fresh().await else {
        return;
    };
    let job = id();
    let spec = JobSpec::new("noop", "null").with_run_at(RunAt::After(Duration::from_secs(5)));
    store.submit(job, spec, at(T0)).await.unwrap();
    assert_eq!(
        store.status(job).await.unwrap().state(),
        &JobState::Delayed {
            ready_at: at(T0 + 5_000)
        }
    );
    assert_eq!(store.stats().await.unwrap().counts.delayed, 1);
    assert_eq!(store.next_due().await.unwrap(), Some(at(T0 + 5_000)));
    assert!(
        store
            .claim(&request(1), at(T0 + 4_999))
            .await
            .unwrap()
            .is_empty()
    );
    let claimed = store.claim(&request(1), at(T0 + 5_000)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, job);
    assert_eq!(store.stats().await.unwrap().counts.delayed, 0);
}

#[tokio::test]
async fn retries_follow_the_backoff_then_the_job_is_dead() {
    let Some((_server, store)) = fresh().await else {
        return;
    };
    let job = id();
    let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60), u32::MAX)
        .unwrap()
        .with_jitter(Jitter::None);
    let spec = JobSpec::new("flaky", "null")
        .with_max_attempts(3)
        .with_backoff(backoff);
    store.submit(job, spec, at(T0)).await.unwrap();

    let mut now = T0;
    for (attempt, delay) in [(1, 1_000), (2, 2_000)] {
        let c = store.claim(&request(1), at(now)).await.unwrap().remove(0);
        assert_eq!(c.attempt, attempt);
        let state = store
            .fail(job, c.token, "boom".into(), FailKind::Retryable, at(now), 7)
            .await
            .unwrap();
        assert_eq!(
            state,
            JobState::RetryScheduled {
                at: at(now + delay)
            }
        );
        // Not before its time.
        assert!(
            store
                .claim(&request(1), at(now + delay - 1))
                .await
                .unwrap()
                .is_empty()
        );
        now += delay;
    }
    let c = store.claim(&request(1), at(now)).await.unwrap().remove(0);
    assert_eq!(c.attempt, 3);
    let state = store
        .fail(job, c.token, "boom".into(), FailKind::Retryable, at(now), 7)
        .await
        .unwrap();
    assert_eq!(state.kind(), StateKind::Dead);
    let stats = store.stats().await.unwrap().counts;
    assert_eq!((stats.dead, stats.failed), (1, 3));

    // The retry command brings it back with its attempts reset.
    store.retry(job, at(now + 1)).await.unwrap();
    let c = store
        .claim(&request(1), at(now + 2))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(c.attempt, 1);
    let state = store
        .fail(
            job,
            c.token,
            "no".into(),
            FailKind::Permanent,
            at(now + 3),
            0,
        )
        .await
        .unwrap();
    assert_eq!(state.kind(), StateKind::Dead);
    assert_eq!(store.status(job).await.unwrap().error(), Some("no"));
}

#[tokio::test]
async fn cancel_queued_and_running_jobs() {
    let Some((_server, store)) = fresh().await else {
        return;
    };
    let queued = id();
    let running = id();
    store
        .submit(running, JobSpec::new("long", "null"), at(T0))
        .await
        .unwrap();
    let c = store.claim(&request(1), at(T0)).await.unwrap().remove(0);
    store
        .submit(queued, JobSpec::new("long", "null"), at(T0))
        .await
        .unwrap();

    assert_eq!(
        store.cancel(queued, at(T0 + 1)).await.unwrap(),
        StateKind::Cancelled
    );
    assert!(
        store
            .claim(&request(1), at(T0 + 2))
            .await
            .unwrap()
            .is_empty()
    );

    assert_eq!(
        store.cancel(running, at(T0 + 3)).await.unwrap(),
        StateKind::Running
    );
    let lease = store.heartbeat(running, c.token, at(T0 + 4)).await.unwrap();
    assert!(lease.cancel_requested);
    store
        .ack_cancel(running, c.token, at(T0 + 5))
        .await
        .unwrap();
    assert_eq!(
        store.status(running).await.unwrap().state(),
        &JobState::Cancelled
    );
    assert!(matches!(
        store.cancel(running, at(T0 + 6)).await,
        Err(StoreError::Rejected { .. })
    ));
    assert_eq!(store.stats().await.unwrap().counts.cancelled, 2);
}

#[tokio::test]
async fn unique_keys_refuse_duplicates_while_pending() {
    let Some((_server, store)) = fresh().await else {
        return;
    };
    let first = id();
    let spec = || JobSpec::new("report", "null").with_unique_key("march");
    store.submit(first, spec(), at(T0)).await.unwrap();
    let dup = store.submit(id(), spec(), at(T0 + 1)).await;
    match dup {
        Err(StoreError::DuplicateKey { key, existing }) => {
            assert_eq!((key.as_str(), existing), ("march", first));
        }
        other => panic!("expected a duplicate key, got {other:?}"),
    }
    let c = store
        .claim(&request(1), at(T0 + 2))
        .await
        .unwrap()
        .remove(0);
    // Still pending while running.
    assert!(store.submit(id(), spec(), at(T0 + 3)).await.is_err());
    store
        .complete(first, c.token, "null".into(), at(T0 + 4))
        .await
        .unwrap();
    let second = id();
    store.submit(second, spec(), at(T0 + 5)).await.unwrap();
    assert_eq!(store.stats().await.unwrap().counts.queue_size, 1);
}

#[tokio::test]
async fn expired_leases_are_recovered_and_the_old_worker_is_fenced() {
    let Some((_server, store)) = fresh().await else {
        return;
    };
    let job = id();
    store
        .submit(job, JobSpec::new("slow", "null"), at(T0))
        .await
        .unwrap();
    let old = store.claim(&request(1), at(T0)).await.unwrap().remove(0);
    // A heartbeat extends the lease.
    let lease = store
        .heartbeat(job, old.token, at(T0 + 5_000))
        .await
        .unwrap();
    assert_eq!(lease.expires_at, at(T0 + 15_000));
    assert_eq!(
        store.recover_expired(at(T0 + 14_999), 10, 1).await.unwrap(),
        0
    );
    assert_eq!(
        store.recover_expired(at(T0 + 15_000), 10, 1).await.unwrap(),
        1
    );
    assert_eq!(store.status(job).await.unwrap().state(), &JobState::Queued);

    let new = store
        .claim(&request(1), at(T0 + 15_001))
        .await
        .unwrap()
        .remove(0);
    assert!(new.token > old.token);
    let fenced = store
        .complete(job, old.token, "stale".into(), at(T0 + 15_002))
        .await;
    assert!(
        matches!(fenced, Err(StoreError::Fenced { .. })),
        "{fenced:?}"
    );
    store
        .complete(job, new.token, "fresh".into(), at(T0 + 15_003))
        .await
        .unwrap();
    assert_eq!(store.status(job).await.unwrap().result(), Some("fresh"));
    let stats = store.stats().await.unwrap().counts;
    assert_eq!((stats.stalls_recovered, stats.fenced), (1, 1));
}

#[tokio::test]
async fn stalling_too_often_makes_a_job_dead() {
    let Some((_server, store)) = fresh().await else {
        return;
    };
    let job = id();
    store
        .submit(job, JobSpec::new("hang", "null"), at(T0))
        .await
        .unwrap();
    let mut now = T0;
    for _ in 0..2 {
        store.claim(&request(1), at(now)).await.unwrap().remove(0);
        now += 10_000;
        assert_eq!(store.recover_expired(at(now), 10, 1).await.unwrap(), 1);
    }
    let state = *store.status(job).await.unwrap().state();
    assert_eq!(state.kind(), StateKind::Dead, "{state:?}");
}

#[tokio::test]
async fn recovery_runs_in_batches() {
    let Some((_server, store)) = fresh().await else {
        return;
    };
    let jobs: Vec<_> = (0..25)
        .map(|_| (id(), JobSpec::new("noop", "null")))
        .collect();
    store.submit_bulk(jobs, at(T0)).await.unwrap();
    assert_eq!(store.claim(&request(25), at(T0)).await.unwrap().len(), 25);
    let later = at(T0 + 10_000);
    assert_eq!(store.recover_expired(later, 10, 3).await.unwrap(), 10);
    assert_eq!(store.recover_expired(later, 10, 3).await.unwrap(), 10);
    assert_eq!(store.recover_expired(later, 10, 3).await.unwrap(), 5);
    assert_eq!(store.recover_expired(later, 10, 3).await.unwrap(), 0);
    let stats = store.stats().await.unwrap().counts;
    assert_eq!((stats.queue_size, stats.running), (25, 0));
}

#[tokio::test]
async fn release_gives_the_attempt_back() {
    let Some((_server, store)) = fresh().await else {
        return;
    };
    let (job, token) = running(&store, T0).await;
    store.release(job, token, at(T0 + 1)).await.unwrap();
    let j = store.status(job).await.unwrap();
    assert_eq!((j.state(), j.attempts()), (&JobState::Queued, 0));
    let c = store
        .claim(&request(1), at(T0 + 2))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(c.attempt, 1);
}

#[tokio::test]
async fn handler_limits_hold_across_workers() {
    let Some((_server, store)) = fresh().await else {
        return;
    };
    let jobs: Vec<_> = (0..6)
        .map(|n| {
            (
                id(),
                JobSpec::new(if n < 4 { "heavy" } else { "light" }, "null"),
            )
        })
        .collect();
    store.submit_bulk(jobs, at(T0)).await.unwrap();
    let limited = ClaimRequest {
        worker: WorkerId("a".into()),
        max: 10,
        handler_limits: Arc::from(vec![("heavy".to_owned(), 2)]),
    };
    let first = store.claim(&limited, at(T0)).await.unwrap();
    let heavy = first.iter().filter(|c| c.handler == "heavy").count();
    assert_eq!((first.len(), heavy), (4, 2));
    // Another worker sees the same store-wide limit.
    assert!(store.claim(&limited, at(T0)).await.unwrap().is_empty());
    let done = first.iter().find(|c| c.handler == "heavy").unwrap();
    store
        .complete(done.id, done.token, "null".into(), at(T0 + 1))
        .await
        .unwrap();
    let next = store.claim(&limited, at(T0 + 2)).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].handler, "heavy");
}

#[tokio::test]
async fn prune_and_purge_remove_finished_jobs() {
    let Some(server) = RedisServer::start(base(), Persistence::None) else {
        return;
    };
    let store = open(
        &server,
        StoreConfig {
            lifecycle: lifecycle(),
            retention: Retention {
                max_age: Duration::from_secs(60),
                max_count: 3,
            },
        },
    )
    .await;
    let mut finished = Vec::new();
    for n in 0..6 {
        let job = id();
        store
            .submit(job, JobSpec::new("noop", "null"), at(T0 + n))
            .await
            .unwrap();
        let c = store
            .claim(&request(1), at(T0 + n))
            .await
            .unwrap()
            .remove(0);
        store
            .complete(job, c.token, "null".into(), at(T0 + n * 1_000))
            .await
            .unwrap();
        finished.push(job);
    }
    let (dead, token) = running(&store, T0).await;
    store
        .fail(dead, token, "x".into(), FailKind::Permanent, at(T0), 0)
        .await
        .unwrap();

    // Count first: the three oldest go.
    assert_eq!(store.prune(at(T0 + 10_000)).await.unwrap(), 3);
    for (n, job) in finished.iter().enumerate() {
        assert_eq!(store.status(*job).await.is_ok(), n >= 3, "job {n}");
    }
    // Then age: finished more than 60 s before now.
    assert_eq!(store.prune(at(T0 + 63_500)).await.unwrap(), 1);
    let stats = store.stats().await.unwrap().counts;
    assert_eq!((stats.completed, stats.dead, stats.pruned), (2, 1, 4));
    // Dead jobs stay until purged.
    assert!(matches!(
        store
            .purge(PurgeFilter {
                state: Some(StateKind::Queued),
                finished_before: None
            })
            .await,
        Err(StoreError::PurgePending(StateKind::Queued))
    ));
    let dead_only = PurgeFilter {
        state: Some(StateKind::Dead),
        finished_before: None,
    };
    assert_eq!(store.purge(dead_only).await.unwrap(), 1);
    assert_eq!(store.purge(PurgeFilter::default()).await.unwrap(), 2);
    assert!(store.list(None, 100).await.unwrap().is_empty());
}

#[tokio::test]
async fn list_filters_by_state() {
    let Some((_server, store)) = fresh().await else {
        return;
    };
    let delayed = id();
    let spec = JobSpec::new("noop", "null").with_run_at(RunAt::After(Duration::from_secs(9)));
    store.submit(delayed, spec, at(T0)).await.unwrap();
    let queued: Vec<_> = (0..3).map(|_| id()).collect();
    for (n, job) in queued.iter().enumerate() {
        store
            .submit(*job, JobSpec::new("noop", "null"), at(T0 + 1 + n as i64))
            .await
            .unwrap();
    }
    let listed: Vec<_> = store
        .list(Some(StateKind::Queued), 10)
        .await
        .unwrap()
        .iter()
        .map(|j| j.id())
        .collect();
    assert_eq!(listed, queued);
    let all = store.list(None, 2).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].id(), delayed);
    let delayed_list = store.list(Some(StateKind::Delayed), 10).await.unwrap();
    assert_eq!(delayed_list.len(), 1);
}

/// Writes job `job` as a running record of format version 1 (every field,
/// the backoff in five) with fencing token `token` as text, leased until
/// `T0 + 10 s`; returns the connection it wrote on.
async fn write_v1_running(
    server: &RedisServer,
    job: JobId,
    token: &str,
) -> redis::aio::MultiplexedConnection {
    let t0 = i128::from(T0) * 1_000_000;
    let mut conn = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let key = format!("mechops:jobs:job:{job}");
    let fields: Vec<(&str, String)> = vec![
        ("id", job.to_string()),
        ("handler", "echo".into()),
        ("args", "[1]".into()),
        ("priority", "low".into()),
        ("rank", "2".into()),
        ("max_attempts", "5".into()),
        ("bo_base", "2000000".into()),
        ("bo_cap", "9000000000".into()),
        ("bo_max", "7".into()),
        ("bo_mult", "3".into()),
        ("bo_jitter", "none".into()),
        ("created", t0.to_string()),
        ("state", "running".into()),
        ("attempt", "1".into()),
        ("token", token.into()),
        ("expires", (t0 + 10_000_000_000).to_string()),
        ("cancel", "0".into()),
        ("attempts", "1".into()),
        ("stalls", "0".into()),
        ("last_token", token.into()),
        ("ready", t0.to_string()),
        ("started", t0.to_string()),
        ("ver", "2".into()),
        ("cid", String::new()),
    ];
    let () = redis::cmd("HSET")
        .arg(&key)
        .arg(&fields)
        .query_async(&mut conn)
        .await
        .unwrap();
    let () = redis::cmd("ZADD")
        .arg("mechops:jobs:leases")
        .arg(T0 + 10_000)
        .arg(job.to_string())
        .query_async(&mut conn)
        .await
        .unwrap();
    conn
}

/// A running job's record as format version 1 wrote it (every field, the
/// backoff in five) is read, claimed again after its lease, and completed.
#[tokio::test]
async fn records_of_format_version_1_are_read() {
    let Some((server, store)) = fresh().await else {
        return;
    };
    let job = id();
    write_v1_running(&server, job, "1").await;
    let read = store.status(job).await.unwrap();
    assert_eq!(read.spec().priority, JobPriority::Low);
    assert_eq!(read.spec().max_attempts, 5);
    let b = read.spec().backoff;
    assert_eq!(
        (
            b.base(),
            b.cap(),
            b.max_attempts(),
            b.multiplier(),
            b.jitter()
        ),
        (
            Duration::from_millis(2),
            Duration::from_secs(9),
            7,
            3,
            Jitter::None
        )
    );
    let lease = read.state().lease().unwrap();
    assert_eq!((lease.token.get(), lease.cancel_requested), (1, false));
    assert_eq!(
        store.recover_expired(at(T0 + 10_000), 10, 1).await.unwrap(),
        1
    );
    let c = store
        .claim(&request(1), at(T0 + 10_001))
        .await
        .unwrap()
        .remove(0);
    assert_eq!((c.id, c.attempt, c.token.get()), (job, 2, 2));
    store
        .complete(job, c.token, "7".into(), at(T0 + 10_002))
        .await
        .unwrap();
    let done = store.status(job).await.unwrap();
    assert_eq!(
        (done.state(), done.result()),
        (&JobState::Completed, Some("7"))
    );
    assert_eq!(done.attempts(), 2);
}

/// Submits through `from` until `signal` (another store's work signal)
/// is notified: only the wake channel notifies it, since the store that
/// submits notifies its own. The subscription is made in the background,
/// so the first submissions may go unheard.
async fn until_woken(from: &RedisStore, signal: &tokio::sync::Notify) {
    for _ in 0..600 {
        let notified = signal.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        from.submit(id(), JobSpec::new("noop", "null"), at(T0))
            .await
            .unwrap();
        if tokio::time::timeout(Duration::from_millis(100), notified)
            .await
            .is_ok()
        {
            return;
        }
    }
    panic!("no wake message reached the other store in 60 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submissions_wake_workers_of_other_stores_across_a_restart() {
    let Some((server, submitter)) = fresh().await else {
        return;
    };
    let worker = default_store(&server).await;
    let signal = worker.work_signal();
    until_woken(&submitter, &signal).await;
    // Down longer than the connection's own reconnection tries: the wake
    // connection notices at its next check and subscribes again.
    let server = tokio::task::spawn_blocking(move || {
        let mut server = server;
        server.kill();
        std::thread::sleep(Duration::from_millis(1500));
        server.restart();
        server
    })
    .await
    .unwrap();
    until_woken(&submitter, &signal).await;
    drop(server);
}

#[tokio::test]
async fn prefixes_keep_queues_apart_on_one_server() {
    let Some(server) = RedisServer::start(base(), Persistence::None) else {
        return;
    };
    let a = RedisStore::connect(RedisConfig::new(server.url()).with_prefix("a:"))
        .await
        .unwrap();
    let b = RedisStore::connect(RedisConfig::new(server.url()).with_prefix("b:"))
        .await
        .unwrap();
    a.submit(id(), JobSpec::new("noop", "null"), at(T0))
        .await
        .unwrap();
    assert!(b.claim(&request(5), at(T0)).await.unwrap().is_empty());
    assert_eq!(a.claim(&request(5), at(T0)).await.unwrap().len(), 1);
    assert!(a.clear().await.unwrap() > 0);
    assert_eq!(a.stats().await.unwrap().counts.running, 0);
}

#[tokio::test]
async fn a_bad_url_is_a_config_error() {
    for url in ["http://localhost", "redis://host:notaport"] {
        let err = RedisStore::connect(RedisConfig::new(url))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Config(_)), "{url}: {err:?}");
        assert!(err.is_bad_input());
    }
}

/// Claims and completes until nothing is left, noting every job it ran.
async fn drain(store: RedisStore, worker: &str) -> Vec<JobId> {
    let mut ran = Vec::new();
    let request = ClaimRequest {
        worker: WorkerId(worker.into()),
        max: 16,
        handler_limits: Arc::from(Vec::new()),
    };
    loop {
        let now = mechops_std::clock::now();
        let claimed = store.claim(&request, now).await.unwrap();
        if claimed.is_empty() {
            return ran;
        }
        for c in claimed {
            ran.push(c.id);
            store
                .complete(c.id, c.token, "null".into(), mechops_std::clock::now())
                .await
                .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_never_run_a_job_twice() {
    let Some((server, store)) = fresh().await else {
        return;
    };
    let ids: Vec<_> = (0..3_000).map(|_| id()).collect();
    for chunk in ids.chunks(500) {
        let jobs = chunk
            .iter()
            .map(|j| (*j, JobSpec::new("noop", "null")))
            .collect();
        store
            .submit_bulk(jobs, mechops_std::clock::now())
            .await
            .unwrap();
    }
    // Separate connections, as separate processes would have.
    let a = tokio::spawn(drain(default_store(&server).await, "a"));
    let b = tokio::spawn(drain(default_store(&server).await, "b"));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    let mut seen = HashSet::new();
    for job in a.iter().chain(&b) {
        assert!(seen.insert(*job), "job {job} ran twice");
    }
    assert_eq!(seen.len(), ids.len());
    let stats = store.stats().await.unwrap().counts;
    assert_eq!(stats.completed, ids.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_loses_no_acknowledged_job() {
    let Some(mut server) = RedisServer::start(base(), Persistence::Aof(AppendFsync::Always)) else {
        return;
    };
    let store = default_store(&server).await;
    let ids: Vec<_> = (0..400).map(|_| id()).collect();
    for job in &ids[..200] {
        store
            .submit(
                *job,
                JobSpec::new("noop", "null"),
                mechops_std::clock::now(),
            )
            .await
            .unwrap();
    }
    // Half of them done before the crash.
    let request = request(100);
    let claimed = store
        .claim(&request, mechops_std::clock::now())
        .await
        .unwrap();
    assert_eq!(claimed.len(), 100);
    for c in &claimed {
        store
            .complete(c.id, c.token, "null".into(), mechops_std::clock::now())
            .await
            .unwrap();
    }

    // The server dies without a shutdown save; a worker keeps going and
    // submissions wait for it to come back.
    server.kill();
    let submitter = {
        let store = store.clone();
        let ids = ids[200..].to_vec();
        tokio::spawn(async move {
            for job in ids {
                store
                    .submit(job, JobSpec::new("noop", "null"), mechops_std::clock::now())
                    .await
                    .unwrap();
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let server = tokio::task::spawn_blocking(move || {
        server.restart();
        server
    })
    .await
    .unwrap();
    submitter.await.unwrap();
    let ran = drain(store.clone(), "after").await;
    // The 100 completed before the crash are still completed; every other
    // acknowledged job ran exactly once after it.
    assert_eq!(ran.len(), 300);
    for job in &ids {
        let j = store.status(*job).await.unwrap();
        assert_eq!(j.state(), &JobState::Completed, "job {job}");
    }
    assert_eq!(store.stats().await.unwrap().counts.completed, 400);
    drop(server);
}

/// The claim and completion scripts apply the lifecycle's own rules: the
/// record they leave is the job the pure lifecycle makes from the same
/// inputs.
#[tokio::test]
async fn scripted_claim_and_completion_match_the_lifecycle() {
    use mechops_alloc::job::{Event, Job};
    let Some((_server, store)) = fresh().await else {
        return;
    };
    let life = lifecycle();
    let job = id();
    let spec = JobSpec::new("echo", "[1,2]")
        .with_timeout(Duration::from_nanos(2_500_999_999))
        .with_unique_key("u")
        .with_priority(JobPriority::High);
    let submitted = Timestamp::from_unix_nanos(i128::from(T0) * 1_000_000 + 123).unwrap();
    let claimed_at = Timestamp::from_unix_nanos(i128::from(T0) * 1_000_000 + 999_999).unwrap();
    let done_at = Timestamp::from_unix_nanos(i128::from(T0) * 1_000_000 + 5_000_001).unwrap();
    let (mut model, _) = Job::submit(job, spec.clone(), submitted, &life).unwrap();
    store.submit(job, spec, submitted).await.unwrap();

    let c = store
        .claim(&request(1), claimed_at)
        .await
        .unwrap()
        .remove(0);
    model.handle(Event::Claim, claimed_at, 0, &life).unwrap();
    let stored = store.status(job).await.unwrap();
    // The stored spec's run-at is not kept after submission.
    let mut want = model.to_parts();
    want.spec.run_at = stored.spec().run_at;
    assert_eq!(stored.to_parts(), want);
    assert_eq!(
        Some(c.deadline.unwrap()),
        model.state().lease().unwrap().deadline
    );

    let result = String::from(r#"{"ok":true}"#);
    store
        .complete(job, c.token, result.clone(), done_at)
        .await
        .unwrap();
    model
        .handle(
            Event::Complete {
                token: c.token,
                result,
            },
            done_at,
            0,
            &life,
        )
        .unwrap();
    let stored = store.status(job).await.unwrap();
    let mut want = model.to_parts();
    want.spec.run_at = stored.spec().run_at;
    assert_eq!(stored.to_parts(), want);
    // The unique key was freed.
    let again = JobSpec::new("echo", "1").with_unique_key("u");
    store.submit(id(), again, done_at).await.unwrap();
}

#[tokio::test]
async fn completion_after_the_lease_ran_out_is_fenced() {
    let Some((_server, store)) = fresh().await else {
        return;
    };
    let (job, token) = running(&store, T0).await;
    let late = store
        .complete(job, token, "null".into(), at(T0 + 10_000))
        .await;
    assert!(
        matches!(
            late,
            Err(StoreError::Fenced {
                rejected: mechops_alloc::job::Rejected::LeaseExpired { .. },
                ..
            })
        ),
        "{late:?}"
    );
    assert_eq!(
        store.status(job).await.unwrap().state().kind(),
        StateKind::Running
    );
}

/// The crash tests' worker: claims, logs each run (the handler's side
/// effect) in `PREFIXruns`, works a little, completes, recovers expired
/// leases when idle, and returns once nothing is pending.
async fn crash_worker(url: &str, prefix: &str) {
    let config = RedisConfig::new(url)
        .with_prefix(prefix)
        .with_store(crash_config());
    let store = RedisStore::connect(config).await.unwrap();
    let request = ClaimRequest {
        worker: WorkerId(format!("pid-{}", std::process::id())),
        max: 8,
        handler_limits: Arc::from(Vec::new()),
    };
    let log = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    loop {
        let now = mechops_std::clock::now();
        let claimed = store.claim(&request, now).await.unwrap();
        if claimed.is_empty() {
            let stats = store.stats().await.unwrap();
            if stats.is_idle() {
                return;
            }
            store
                .recover_expired(mechops_std::clock::now(), 64, 7)
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let mut tasks = tokio::task::JoinSet::new();
        for c in claimed {
            let store = store.clone();
            let mut log = log.clone();
            let runs = format!("{prefix}runs");
            tasks.spawn(async move {
                let () = redis::cmd("RPUSH")
                    .arg(runs)
                    .arg(c.id.to_string())
                    .query_async(&mut log)
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(1)).await;
                store
                    .complete(c.id, c.token, "null".into(), mechops_std::clock::now())
                    .await
                    .unwrap();
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap();
        }
    }
}

fn crash_config() -> StoreConfig {
    StoreConfig {
        lifecycle: Lifecycle {
            lease: Duration::from_millis(500),
            // Kills are stalls; a job caught by many must not die of them.
            max_stalls: 1_000,
            ..Lifecycle::default()
        },
        retention: Retention::default(),
    }
}

/// Runs [`crash_worker`]: as the child process of the crash test when
/// `MECHOPS_REDIS_CRASH_CHILD` names a server, else in process against a
/// server of its own, where it must drain a small queue.
#[tokio::test]
async fn crash_worker_child() {
    if let Ok(url) = std::env::var("MECHOPS_REDIS_CRASH_CHILD") {
        let prefix = std::env::var("MECHOPS_REDIS_CRASH_PREFIX").unwrap();
        crash_worker(&url, &prefix).await;
        return;
    }
    let Some(server) = RedisServer::start(base(), Persistence::None) else {
        return;
    };
    let store = open(&server, crash_config()).await;
    let jobs: Vec<_> = (0..50)
        .map(|_| (id(), JobSpec::new("noop", "null")))
        .collect();
    store
        .submit_bulk(jobs, mechops_std::clock::now())
        .await
        .unwrap();
    crash_worker(&server.url(), "mechops:jobs:").await;
    assert_eq!(store.stats().await.unwrap().counts.completed, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_killed_with_sigkill_lose_no_job() {
    use std::os::unix::process::CommandExt;
    let Some(server) = RedisServer::start(base(), Persistence::Aof(AppendFsync::Always)) else {
        return;
    };
    let prefix = "crash:";
    let config = RedisConfig::new(server.url())
        .with_prefix(prefix)
        .with_store(crash_config());
    let store = RedisStore::connect(config).await.unwrap();
    let ids: Vec<_> = (0..2_000).map(|_| id()).collect();
    for chunk in ids.chunks(500) {
        let jobs = chunk
            .iter()
            .map(|j| (*j, JobSpec::new("noop", "null")))
            .collect();
        store
            .submit_bulk(jobs, mechops_std::clock::now())
            .await
            .unwrap();
    }
    let url = server.url();
    let spawn = move || {
        std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "crash_worker_child",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("MECHOPS_REDIS_CRASH_CHILD", &url)
            .env("MECHOPS_REDIS_CRASH_PREFIX", prefix)
            .process_group(0)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let kills = 24;
    for n in 0..kills {
        let mut child = spawn();
        // Let it connect and work a while, at a different moment each time.
        tokio::time::sleep(Duration::from_millis(150 + 23 * n)).await;
        let group = format!("-{}", child.id());
        let killed = std::process::Command::new("kill")
            .args(["-KILL", "--", &group])
            .status()
            .unwrap();
        assert!(killed.success(), "kill -KILL {group}");
        child.wait().unwrap();
    }
    let mut child = spawn();
    let last = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(last.success(), "the last worker failed: {last}");

    let stats = store.stats().await.unwrap().counts;
    assert_eq!(stats.completed, ids.len(), "{stats:?}");
    for job in &ids {
        assert_eq!(
            store.status(*job).await.unwrap().state(),
            &JobState::Completed
        );
    }
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let runs: Vec<String> = redis::cmd("LRANGE")
        .arg(format!("{prefix}runs"))
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut per_job: HashMap<&str, usize> = HashMap::new();
    for r in &runs {
        *per_job.entry(r.as_str()).or_default() += 1;
    }
    assert_eq!(per_job.len(), ids.len(), "every job ran");
    // Re-runs only for jobs a kill caught running: at most the 8 claimed
    // at a time, per kill.
    let reruns = runs.len() - ids.len();
    assert!(
        reruns <= 8 * kills as usize,
        "{reruns} re-runs after {kills} kills"
    );
    eprintln!(
        "{} jobs, {kills} kills: {reruns} re-runs, {} leases recovered",
        ids.len(),
        stats.stalls_recovered
    );
    // The kills caught jobs running, so recovery was exercised.
    assert!(stats.stalls_recovered > 0, "{stats:?}");
    // Each re-run follows an attempt whose lease expired without an outcome.
    assert!(
        reruns as u64 <= stats.stalls_recovered,
        "{reruns} re-runs, {stats:?}"
    );
}

#[tokio::test]
async fn redis_urls_open_the_redis_store() {
    use mechops_tokio::jobs::open::StoreUrl;
    let Some(server) = RedisServer::start(base(), Persistence::None) else {
        return;
    };
    let url = StoreUrl::parse(&server.url()).unwrap();
    assert_eq!(url, StoreUrl::Redis(server.url()));
    let (store, _clock) = url.open(StoreConfig::default()).unwrap();
    let job = id();
    store
        .submit(job, JobSpec::new("noop", "null"), at(T0))
        .await
        .unwrap();
    assert_eq!(store.status(job).await.unwrap().state(), &JobState::Queued);
}

#[tokio::test]
async fn an_unreachable_server_fails_after_the_reconnect_time() {
    let Some(mut server) = RedisServer::start(base(), Persistence::None) else {
        return;
    };
    let backoff = Backoff::new(
        Duration::from_millis(10),
        Duration::from_millis(50),
        u32::MAX,
    )
    .unwrap();
    let config = RedisConfig::new(server.url()).with_reconnect(backoff, Duration::from_millis(300));
    let store = RedisStore::connect(config).await.unwrap();
    store
        .submit(id(), JobSpec::new("noop", "null"), at(T0))
        .await
        .unwrap();
    server.kill();
    let err = store.stats().await.unwrap_err();
    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
    assert!(err.to_string().starts_with("Redis: "), "{err}");
    // A closed store refuses calls without reaching the server.
    store.close().await.unwrap();
    assert!(matches!(store.stats().await, Err(StoreError::Closed)));
}

/// Two stores on one queue stand for two processes: the throughput each
/// reports counts the completions of both, fenced reports not at all, and
/// only those of the window's seconds.
#[tokio::test]
async fn throughput_counts_the_completions_of_every_store_on_the_queue() {
    let Some(server) = RedisServer::start(base(), Persistence::None) else {
        return;
    };
    let a = default_store(&server).await;
    let b = default_store(&server).await;
    assert_eq!(a.throughput(at(T0)).await.unwrap().unwrap().completed, 0);
    // Three completions through `a` in the first second, two through `b`
    // half a second later, and a fenced one that counts nothing.
    for (store, n, t) in [(&a, 3, T0), (&b, 2, T0 + 500)] {
        for _ in 0..n {
            let (job, token) = running(store, t).await;
            store.complete(job, token, "1".into(), at(t)).await.unwrap();
        }
    }
    let (job, token) = running(&a, T0 + 1_000).await;
    assert!(matches!(
        b.complete(
            job,
            FencingToken::new(token.get() + 1),
            "1".into(),
            at(T0 + 1_000)
        )
        .await,
        Err(StoreError::Fenced { .. })
    ));
    // One more in the next second.
    b.complete(job, token, "1".into(), at(T0 + 1_000))
        .await
        .unwrap();
    for store in [&a, &b] {
        let t = store.throughput(at(T0 + 1_000)).await.unwrap().unwrap();
        assert_eq!((t.window, t.completed), (Throughput::WINDOW, 6));
        assert_eq!(store.stats().await.unwrap().counts.completed_total, 6);
        // The window is the minute up to `now`: the first second's five
        // are in it until the minute after that second has passed.
        let last = store.throughput(at(T0 + 59_999)).await.unwrap().unwrap();
        assert_eq!(last.completed, 6);
        let after = store.throughput(at(T0 + 60_000)).await.unwrap().unwrap();
        assert_eq!(after.completed, 1);
        let gone = store.throughput(at(T0 + 61_000)).await.unwrap().unwrap();
        assert_eq!(gone.completed, 0);
        // Completions after `now` are not counted either.
        assert_eq!(
            store
                .throughput(at(T0 - 1))
                .await
                .unwrap()
                .unwrap()
                .completed,
            0
        );
    }
    // The per-second counts expire on the server.
    let mut conn = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("mechops:jobs:completed:{}", T0 / 1000))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        ttl > 0 && ttl <= 2 * Throughput::WINDOW.as_secs() as i64,
        "TTL {ttl}"
    );
}

/// A completion the completion script refuses and the lifecycle accepts
/// is written by the commit script, and counts in the throughput too. The
/// record here is one of format version 1 whose token is written `01`:
/// the script compares tokens as text and refuses it, the lifecycle reads
/// the number 1 and accepts.
#[tokio::test]
async fn completions_written_by_the_commit_script_count_in_the_throughput() {
    let Some((server, store)) = fresh().await else {
        return;
    };
    let job = id();
    let mut conn = write_v1_running(&server, job, "01").await;
    store
        .complete(job, FencingToken::new(1), "2".into(), at(T0 + 2_500))
        .await
        .unwrap();
    assert_eq!(store.status(job).await.unwrap().result(), Some("2"));
    let per_second: Option<u64> = redis::cmd("GET")
        .arg(format!("mechops:jobs:completed:{}", T0 / 1000 + 2))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(per_second, Some(1));
    let t = store.throughput(at(T0 + 3_000)).await.unwrap().unwrap();
    assert_eq!(t.completed, 1);
}
