//! The connection pool's contract against an in-memory manager whose
//! "server" counts open connections, under tokio's paused time (and a few
//! in real time, where the pool stamps times with the coarse clock).

use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use core::time::Duration;
use std::io;
use std::sync::Arc;

use mechops_tokio::conn::{
    AcquireFailure, ConnectionPool, ConnectionPoolConfig, FailureKind, Manager, PoolError,
    PoolRegistry,
};

#[derive(Default)]
struct Server {
    open: AtomicUsize,
    max_open: AtomicUsize,
    connects: AtomicUsize,
    refuse: AtomicBool,
    check_fails: AtomicBool,
    check_hangs: AtomicBool,
    resets: AtomicUsize,
}

struct Fake {
    server: Arc<Server>,
    reset: bool,
}

struct FakeConn {
    server: Arc<Server>,
    serial: usize,
    in_flight: bool,
}

impl Drop for FakeConn {
    fn drop(&mut self) {
        self.server.open.fetch_sub(1, Ordering::SeqCst);
    }
}

impl FakeConn {
    /// A request that takes 5 ms; dropped half way it leaves the
    /// connection with work in flight.
    async fn request(&mut self) {
        self.in_flight = true;
        tokio::time::sleep(Duration::from_millis(5)).await;
        self.in_flight = false;
    }
}

impl Manager for Fake {
    type Endpoint = String;
    type Connection = FakeConn;
    type Error = io::Error;

    async fn connect(&self, _endpoint: &String) -> io::Result<FakeConn> {
        tokio::time::sleep(Duration::from_millis(1)).await;
        if self.server.refuse.load(Ordering::SeqCst) {
            return Err(io::Error::new(io::ErrorKind::ConnectionRefused, "refused"));
        }
        let serial = self.server.connects.fetch_add(1, Ordering::SeqCst);
        let open = self.server.open.fetch_add(1, Ordering::SeqCst) + 1;
        self.server.max_open.fetch_max(open, Ordering::SeqCst);
        Ok(FakeConn {
            server: Arc::clone(&self.server),
            serial,
            in_flight: false,
        })
    }

    async fn check(&self, _conn: &mut FakeConn) -> io::Result<()> {
        tokio::time::sleep(Duration::from_millis(1)).await;
        if self.server.check_hangs.load(Ordering::SeqCst) {
            core::future::pending::<()>().await;
        }
        if self.server.check_fails.load(Ordering::SeqCst) {
            return Err(io::Error::other("check failed"));
        }
        Ok(())
    }

    fn needs_reset(&self, _conn: &FakeConn) -> bool {
        self.reset
    }

    async fn reset(&self, _conn: &mut FakeConn) -> io::Result<()> {
        self.server.resets.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn is_broken(&self, conn: &FakeConn) -> bool {
        conn.in_flight
    }

    fn classify(&self, error: &io::Error) -> FailureKind {
        match error.kind() {
            io::ErrorKind::ConnectionRefused => FailureKind::Refused,
            _ => FailureKind::Other,
        }
    }
}

fn pool(
    min: usize,
    max: usize,
    tweak: impl FnOnce(&mut ConnectionPoolConfig),
) -> (ConnectionPool<Fake>, Arc<Server>) {
    let server = Arc::new(Server::default());
    let mut config = ConnectionPoolConfig::sized(min, max);
    config.pool.check_after_idle = None;
    tweak(&mut config);
    let manager = Fake {
        server: Arc::clone(&server),
        reset: false,
    };
    let pool = ConnectionPool::new("test", manager, vec!["a".to_owned()], config).unwrap();
    (pool, server)
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(50)).await;
}

#[tokio::test(start_paused = true)]
async fn released_connection_is_reused() {
    let (pool, server) = pool(0, 2, |_| {});
    let first = pool.acquire().await.unwrap().serial;
    let second = pool.acquire().await.unwrap().serial;
    assert_eq!(first, second);
    assert_eq!(server.connects.load(Ordering::SeqCst), 1);
    assert_eq!(pool.metrics().acquired, 2);
}

#[tokio::test(start_paused = true)]
async fn exhausted_timeout_says_how_many_wait() {
    let (pool, _server) = pool(0, 1, |c| c.pool.acquire_timeout = Duration::from_secs(1));
    let _held = pool.acquire().await.unwrap();
    let err = pool.acquire().await.unwrap_err();
    match &err {
        PoolError::Timeout {
            reason: AcquireFailure::Exhausted { waiters, in_use },
            ..
        } => {
            assert_eq!((*waiters, *in_use), (1, 1));
        }
        other => panic!("expected exhausted, got {other:?}"),
    }
    assert!(err.to_string().contains("exhausted"), "{err}");
    assert_eq!(pool.metrics().timeouts, 1);
}

#[tokio::test(start_paused = true)]
async fn unreachable_timeout_names_the_last_error() {
    let (pool, server) = pool(0, 2, |c| {
        c.pool.acquire_timeout = Duration::from_secs(2);
        // A backoff cap well under the acquire timeout, so that the
        // recovering acquire below always sees a trial connect.
        c.pool.breaker.backoff = mechops_core::backoff::Backoff::new(
            Duration::from_millis(100),
            Duration::from_millis(400),
            32,
        )
        .unwrap();
    });
    server.refuse.store(true, Ordering::SeqCst);
    let err = pool.acquire().await.unwrap_err();
    assert!(
        matches!(
            err,
            PoolError::Timeout {
                reason: AcquireFailure::Unreachable {
                    last_error: Some(FailureKind::Refused)
                },
                ..
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("no endpoint reachable") && text.contains("refused"),
        "{text}"
    );
    // The breaker opened, then half-opened for a trial: more than one
    // connect was tried within the timeout, each spaced by the backoff.
    let failures = pool.metrics().open_failures;
    assert!(failures >= 2, "{failures}");
    // The endpoint comes back: the pool recovers without a restart.
    server.refuse.store(false, Ordering::SeqCst);
    assert!(pool.acquire().await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn waiters_are_served_first_come_first_served() {
    let (pool, _server) = pool(0, 1, |_| {});
    let held = pool.acquire().await.unwrap();
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..5 {
        let pool = pool.clone();
        let order = Arc::clone(&order);
        tasks.push(tokio::spawn(async move {
            let conn = pool.acquire().await.unwrap();
            order.lock().unwrap().push(i);
            tokio::time::sleep(Duration::from_millis(1)).await;
            drop(conn);
        }));
        // Let each task queue before the next one starts.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    drop(held);
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
}

#[tokio::test(start_paused = true)]
async fn ten_thousand_cancelled_acquires_leak_nothing() {
    let (pool, server) = pool(0, 4, |c| c.pool.check_after_idle = Some(Duration::ZERO));
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(pool.acquire().await.unwrap());
    }
    // Queued, then cancelled by a timeout.
    for _ in 0..5_000 {
        let r = tokio::time::timeout(Duration::from_micros(10), pool.acquire()).await;
        assert!(r.is_err());
    }
    // Cancelled by task abort at every stage: queued, handed, mid-check.
    for round in 0..250 {
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    let c = pool.acquire().await;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    drop(c);
                })
            })
            .collect();
        tokio::task::yield_now().await;
        if round % 2 == 0 {
            // Release one so some aborts hit a handed or checking waiter.
            if let Some(c) = held.pop() {
                drop(c);
            }
        }
        for _ in 0..(round % 3) {
            tokio::task::yield_now().await;
        }
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
        while held.len() < 4 {
            match tokio::time::timeout(Duration::from_secs(5), pool.acquire()).await {
                Ok(Ok(c)) => held.push(c),
                other => panic!("pool lost a slot: {other:?}"),
            }
        }
    }
    drop(held);
    settle().await;
    let m = pool.metrics();
    assert_eq!(
        (m.waiters, m.in_use, m.checking, m.opening),
        (0, 0, 0, 0),
        "{m:?}"
    );
    assert!(server.max_open.load(Ordering::SeqCst) <= 4);
    assert_eq!(m.size, server.open.load(Ordering::SeqCst));
    // All four slots are usable.
    let mut again = Vec::new();
    for _ in 0..4 {
        again.push(pool.acquire().await.unwrap());
    }
}

#[tokio::test(start_paused = true)]
async fn broken_connections_are_closed_and_replaced() {
    let (pool, server) = pool(1, 2, |_| {});
    settle().await;
    assert_eq!(server.open.load(Ordering::SeqCst), 1);
    let mut conn = pool.acquire().await.unwrap();
    conn.mark_broken();
    drop(conn);
    settle().await;
    // Dropped with a request in flight.
    let mut conn = pool.acquire().await.unwrap();
    let _ = tokio::time::timeout(Duration::from_millis(1), conn.request()).await;
    drop(conn);
    settle().await;
    let m = pool.metrics();
    assert_eq!(m.broken, 2);
    // The minimum is restored after each failure.
    assert_eq!(server.open.load(Ordering::SeqCst), 1);
    assert_eq!(server.connects.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn never_more_open_than_max_at_the_server() {
    let (pool, server) = pool(2, 8, |c| {
        c.pool.idle_timeout = Some(Duration::from_millis(20))
    });
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for j in 0..50 {
                    let mut c = pool.acquire().await.unwrap();
                    if (i + j) % 7 == 0 {
                        c.mark_broken();
                    }
                    tokio::time::sleep(Duration::from_millis(((i + j) % 5) as u64)).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert!(server.max_open.load(Ordering::SeqCst) <= 8);
    assert!(server.connects.load(Ordering::SeqCst) > 8);
}

#[tokio::test(start_paused = true)]
async fn resize_serves_waiters_and_shrinks() {
    let (pool, server) = pool(0, 1, |_| {});
    let a = pool.acquire().await.unwrap();
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.acquire().await.map(|c| c.serial) }
    });
    settle().await;
    pool.resize(0, 2).unwrap();
    let b = waiter.await.unwrap().unwrap();
    assert_ne!(a.serial, b);
    pool.resize(0, 1).unwrap();
    drop(a);
    settle().await;
    assert!(server.open.load(Ordering::SeqCst) <= 1);
    assert!(pool.resize(3, 2).is_err());
}

#[tokio::test(start_paused = true)]
async fn drain_retires_open_connections() {
    let (pool, server) = pool(1, 2, |_| {});
    settle().await;
    let before = pool.acquire().await.unwrap().serial;
    pool.drain();
    settle().await;
    let after = pool.acquire().await.unwrap().serial;
    assert_ne!(before, after);
    assert_eq!(server.open.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn close_waits_for_checked_out_connections() {
    let (pool, server) = pool(2, 2, |_| {});
    let held = pool.acquire().await.unwrap();
    let closer = tokio::spawn({
        let pool = pool.clone();
        async move { pool.close(Duration::from_secs(10)).await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!closer.is_finished());
    assert!(matches!(pool.acquire().await, Err(PoolError::Closed)));
    drop(held);
    let left = closer.await.unwrap();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(server.open.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn close_gives_up_at_its_deadline() {
    let (pool, _server) = pool(0, 2, |_| {});
    let _held = pool.acquire().await.unwrap();
    let left = pool.close(Duration::from_secs(3)).await;
    assert_eq!(left.in_use, 1);
}

#[tokio::test(start_paused = true)]
async fn max_lifetime_recycles() {
    let (pool, server) = pool(1, 1, |c| {
        c.pool.max_lifetime = Some(Duration::from_secs(10));
        c.pool.lifetime_jitter = Duration::ZERO;
    });
    let first = pool.acquire().await.unwrap().serial;
    tokio::time::sleep(Duration::from_secs(11)).await;
    let second = pool.acquire().await.unwrap().serial;
    assert_ne!(first, second);
    assert_eq!(server.open.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn failed_checkout_check_gets_a_fresh_connection() {
    let (pool, server) = pool(0, 1, |c| {
        c.pool.check_after_idle = Some(Duration::from_secs(1))
    });
    let first = pool.acquire().await.unwrap().serial;
    tokio::time::sleep(Duration::from_secs(2)).await;
    server.check_fails.store(true, Ordering::SeqCst);
    let second = pool.acquire().await.unwrap().serial;
    assert_ne!(first, second);
    assert_eq!(pool.metrics().broken, 1);
}

#[tokio::test(start_paused = true)]
async fn reset_runs_before_reuse() {
    let server = Arc::new(Server::default());
    let manager = Fake {
        server: Arc::clone(&server),
        reset: true,
    };
    let pool = ConnectionPool::new(
        "r",
        manager,
        vec!["a".into()],
        ConnectionPoolConfig::sized(0, 1),
    )
    .unwrap();
    drop(pool.acquire().await.unwrap());
    let _again = pool.acquire().await.unwrap();
    assert_eq!(server.resets.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn keepalive_pings_idle_connections() {
    let (pool, server) = pool(1, 1, |c| c.pool.keepalive = Some(Duration::from_secs(1)));
    settle().await;
    server.check_fails.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The failed ping closed the connection; the minimum brought a new one.
    assert!(pool.metrics().broken >= 1);
    assert!(server.connects.load(Ordering::SeqCst) >= 2);
}

#[tokio::test(start_paused = true)]
async fn registry_creates_finds_and_closes_pools() {
    let registry = PoolRegistry::new();
    let server = Arc::new(Server::default());
    let make = || Fake {
        server: Arc::clone(&server),
        reset: false,
    };
    let pool = registry
        .create(
            "db",
            make(),
            vec!["a".into()],
            ConnectionPoolConfig::sized(1, 2),
        )
        .unwrap();
    assert!(
        registry
            .create(
                "db",
                make(),
                vec!["a".into()],
                ConnectionPoolConfig::default()
            )
            .is_err()
    );
    assert!(
        registry
            .create("bad", make(), vec![], ConnectionPoolConfig::default())
            .is_err()
    );
    let found = registry.get::<Fake>("db").unwrap();
    drop(found.acquire().await.unwrap());
    assert_eq!(pool.metrics().acquired, 1);
    let text = registry.prometheus();
    assert!(
        text.contains("mechops_conn_pool_acquired_total{pool=\"db\"} 1"),
        "{text}"
    );
    assert!(text.contains("mechops_conn_pool_endpoint_breaker{pool=\"db\",endpoint=\"a\"} 0"));
    assert_eq!(registry.metrics().len(), 1);
    let left = registry.close_all(Duration::from_secs(1)).await;
    assert_eq!(left.len(), 1);
    assert!(left[0].1.is_empty());
    assert!(registry.names().is_empty());
    assert!(pool.is_closed());
}

#[tokio::test(start_paused = true)]
async fn long_checkouts_are_reported_once_not_reclaimed() {
    let (pool, _server) = pool(0, 1, |c| {
        c.pool.leak_threshold = Some(Duration::from_secs(1))
    });
    let held = pool.acquire().await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let m = pool.metrics();
    assert_eq!((m.leaks, m.in_use), (1, 1));
    drop(held);
}

/// Many tasks on two worker threads racing for two connections: every
/// hand-off must reach its waiter (a lost one would leave a waiter asleep
/// with no deadline left to wake it, and this test would hang).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_offs_across_threads_are_never_lost() {
    let (pool, server) = pool(0, 2, |_| {});
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for _ in 0..500 {
                    let conn = pool.acquire().await.unwrap();
                    core::hint::black_box(conn.serial);
                }
            })
        })
        .collect();
    join_or_report_hang(&pool, tasks).await;
    let m = pool.metrics();
    assert_eq!((m.acquired, m.in_use, m.waiters), (64 * 500, 0, 0));
    assert!(server.max_open.load(Ordering::SeqCst) <= 2);
}

#[tokio::test(start_paused = true)]
async fn a_check_that_never_ends_is_cut_off_by_the_connect_timeout() {
    let (pool, server) = pool(0, 1, |c| {
        c.pool.check_after_idle = Some(Duration::from_secs(1));
        c.connect_timeout = Duration::from_secs(2);
    });
    let first = pool.acquire().await.unwrap().serial;
    tokio::time::sleep(Duration::from_secs(5)).await;
    server.check_hangs.store(true, Ordering::SeqCst);
    // The stuck check counts as failed; a fresh connection serves the
    // acquire (it is new, so it is not checked).
    let second = pool.acquire().await.unwrap().serial;
    assert_ne!(first, second);
    assert_eq!(pool.metrics().broken, 1);
}

#[tokio::test(start_paused = true)]
async fn a_check_that_never_ends_is_cut_off_by_the_acquire_deadline() {
    let (pool, server) = pool(0, 1, |c| {
        c.pool.check_after_idle = Some(Duration::from_secs(1));
        c.pool.acquire_timeout = Duration::from_secs(2);
        c.connect_timeout = Duration::from_secs(3600);
    });
    drop(pool.acquire().await.unwrap());
    tokio::time::sleep(Duration::from_secs(5)).await;
    server.check_hangs.store(true, Ordering::SeqCst);
    // Virtual time: the acquire ends long before the connect timeout would
    // have cut the check, with a timeout error, and the connection whose
    // check was cut is closed as broken.
    let err = tokio::time::timeout(Duration::from_secs(60), pool.acquire())
        .await
        .expect("the acquire outlived its deadline")
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(pool.metrics().broken, 1);
}

/// In real time the pool stamps idle times with the coarse clock; its
/// decisions still follow them: a connection back for far less than the
/// check threshold is handed out unchecked, one idle for longer is checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coarse_stamps_still_drive_the_checkout_check() {
    let (pool, server) = pool(0, 1, |c| {
        c.pool.check_after_idle = Some(Duration::from_secs(1));
    });
    let first = pool.acquire().await.unwrap().serial;
    // Every check would fail from now on: an unchecked acquire keeps the
    // connection, a checked one gets a fresh one.
    server.check_fails.store(true, Ordering::SeqCst);
    assert_eq!(pool.acquire().await.unwrap().serial, first);
    assert_eq!(pool.metrics().broken, 0);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let second = pool.acquire().await.unwrap().serial;
    assert_ne!(first, second);
    assert_eq!(pool.metrics().broken, 1);
}

#[tokio::test(start_paused = true)]
async fn connections_lent_without_the_lock_are_still_reaped_when_idle() {
    let (pool, server) = pool(0, 2, |c| c.pool.idle_timeout = Some(Duration::from_secs(1)));
    // Given back, the connection sits on the shelf, out of the core's
    // sight; the timer task puts it back in time for its idle timeout.
    let first = pool.acquire().await.unwrap().serial;
    let again = pool.acquire().await.unwrap().serial;
    assert_eq!(first, again);
    assert_eq!(server.open.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Read at the server: `metrics` itself would move it into the core.
    assert_eq!(server.open.load(Ordering::SeqCst), 0);
    let m = pool.metrics();
    assert_eq!((m.size, m.idle, m.in_use, m.acquired), (0, 0, 0, 2));
}

#[tokio::test(start_paused = true)]
async fn connections_lent_without_the_lock_are_still_pinged() {
    let (pool, server) = pool(1, 1, |c| c.pool.keepalive = Some(Duration::from_secs(1)));
    drop(pool.acquire().await.unwrap());
    server.check_fails.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(server.connects.load(Ordering::SeqCst) >= 2);
    assert!(pool.metrics().broken >= 1);
}

#[tokio::test(start_paused = true)]
async fn gauges_and_counters_include_acquires_served_without_the_lock() {
    let (pool, _server) = pool(0, 3, |_| {});
    let held: Vec<_> = futures_join(&pool, 3).await;
    drop(held);
    for _ in 0..100 {
        let a = pool.acquire().await.unwrap();
        let b = pool.acquire().await.unwrap();
        core::hint::black_box((a.serial, b.serial));
    }
    let kept = pool.acquire().await.unwrap();
    let m = pool.metrics();
    assert_eq!((m.size, m.idle, m.in_use, m.waiters), (3, 2, 1, 0));
    assert_eq!(m.acquired, 3 + 200 + 1);
    assert_eq!(pool.wait_histogram().count(), 3 + 200 + 1);
    drop(kept);
    let m = pool.metrics();
    assert_eq!((m.idle, m.in_use), (3, 0));
}

async fn futures_join(
    pool: &ConnectionPool<Fake>,
    n: usize,
) -> Vec<mechops_tokio::conn::Pooled<Fake>> {
    let mut held = Vec::new();
    for _ in 0..n {
        held.push(pool.acquire().await.unwrap());
    }
    held
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shelf_hand_offs_racing_drains_and_cancellations_leak_nothing() {
    let (pool, server) = pool(0, 3, |_| {});
    let tasks: Vec<_> = (0..24)
        .map(|t| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for i in 0..300 {
                    // Every fifth acquire of some tasks gives up almost at
                    // once, often while queued or just handed a connection.
                    let limit = if (t + i) % 5 == 0 {
                        Duration::from_micros(1)
                    } else {
                        Duration::from_secs(60)
                    };
                    if let Ok(Ok(conn)) = tokio::time::timeout(limit, pool.acquire()).await {
                        core::hint::black_box(conn.serial);
                    }
                    if t == 0 && i % 50 == 0 {
                        pool.drain();
                    }
                }
            })
        })
        .collect();
    join_or_report_hang(&pool, tasks).await;
    // A connection given back while a drain ran may have gone on the shelf
    // with its old generation; the first look moves it into the core,
    // which closes it. So look until nothing is closing (bounded).
    let mut m = pool.metrics();
    for _ in 0..100 {
        if m.closing == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        m = pool.metrics();
    }
    assert_eq!((m.in_use, m.checking, m.waiters, m.closing), (0, 0, 0, 0));
    assert_eq!(m.size, m.idle);
    assert_eq!(server.open.load(Ordering::SeqCst), m.idle);
    assert!(server.max_open.load(Ordering::SeqCst) <= 3);
    assert_eq!(pool.wait_histogram().count(), m.acquired);
}

/// Waits for `tasks`; a hang fails the test with the pool's metrics.
async fn join_or_report_hang(pool: &ConnectionPool<Fake>, tasks: Vec<tokio::task::JoinHandle<()>>) {
    let all = async {
        for t in tasks {
            t.await.unwrap();
        }
    };
    if tokio::time::timeout(Duration::from_secs(120), all)
        .await
        .is_err()
    {
        panic!("acquires hung: {:?}", pool.metrics());
    }
}
