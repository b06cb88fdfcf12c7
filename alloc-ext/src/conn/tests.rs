//! Unit tests of the pool bookkeeping, and a property test that drives it
//! with random operation sequences and a fake clock, as a runtime would.

use core::time::Duration;
use std::collections::{BTreeMap, BTreeSet};
use std::string::ToString;
use std::vec;
use std::vec::Vec;

use mechops_core::backoff::{Backoff, Jitter};
use mechops_core::time::Instant;
use proptest::prelude::*;

use super::*;

const MS: Duration = Duration::from_millis(1);

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn quiet() -> PoolConfig {
    PoolConfig {
        min_connections: 0,
        max_connections: 2,
        acquire_timeout: MS * 100,
        idle_timeout: None,
        max_lifetime: None,
        lifetime_jitter: Duration::ZERO,
        keepalive: None,
        check_after_idle: None,
        leak_threshold: None,
        balance: Balance::RoundRobin,
        breaker: BreakerConfig {
            failure_threshold: 1,
            backoff: Backoff::new(MS * 10, MS * 80, 8)
                .unwrap()
                .with_jitter(Jitter::None),
        },
    }
}

fn new_pool(config: PoolConfig, endpoints: usize) -> PoolCore {
    PoolCore::new(config, endpoints, 0).unwrap()
}

fn drain_actions(pool: &mut PoolCore, now: Instant) -> Vec<Action> {
    let mut out = Vec::new();
    while let Some(action) = pool.poll_action(now) {
        out.push(action);
    }
    out
}

/// Opens one more connection and leaves it idle, most recently used.
fn open_idle(pool: &mut PoolCore, now: Instant) -> ConnId {
    let mut held = Vec::new();
    let (waiter, permit) = loop {
        match pool.acquire(now).unwrap() {
            Acquire::Ready(conn) => held.push(conn),
            Acquire::Check { conn, .. } => {
                assert_eq!(
                    pool.handle_checked(conn, true, now),
                    Ok(Checked::Ready(conn))
                );
                held.push(conn);
            }
            Acquire::Wait {
                waiter,
                open: Some(permit),
            } => break (waiter, permit),
            Acquire::Wait { open: None, .. } => panic!("expected a connect"),
        }
    };
    let conn = pool.handle_opened(permit, now).unwrap();
    assert_eq!(drain_actions(pool, now), [Action::Hand { waiter, conn }]);
    for c in held.into_iter().chain([conn]) {
        assert_eq!(pool.release(c, false, now), Ok(Disposition::Kept));
    }
    conn
}

#[test]
fn config_errors_name_the_problem() {
    let bad = PoolConfig {
        min_connections: 3,
        max_connections: 2,
        ..quiet()
    };
    assert_eq!(
        PoolCore::new(bad, 1, 0).unwrap_err(),
        ConfigError::MinAboveMax { min: 3, max: 2 }
    );
    assert_eq!(
        ConfigError::MinAboveMax { min: 3, max: 2 }.to_string(),
        "connection pool min_connections (3) is above max_connections (2)"
    );
    assert_eq!(
        PoolCore::new(quiet(), 0, 0).unwrap_err(),
        ConfigError::NoEndpoints
    );
    let jitter = PoolConfig {
        max_lifetime: Some(MS),
        lifetime_jitter: MS * 2,
        ..quiet()
    };
    assert_eq!(
        PoolCore::new(jitter, 1, 0).unwrap_err(),
        ConfigError::JitterAboveLifetime
    );
    let mut pool = PoolCore::new(quiet(), 1, 0).unwrap();
    assert_eq!(pool.resize(0, 0), Err(ConfigError::ZeroMax));
    assert_eq!(
        pool.resize(3, 2),
        Err(ConfigError::MinAboveMax { min: 3, max: 2 })
    );
    assert_eq!(
        pool.config().max_connections,
        2,
        "a refused resize changes nothing"
    );
    assert!(PoolConfig::default().validate().is_ok());
}

#[test]
fn waiters_are_served_first_come_first_served() {
    let mut pool = new_pool(
        PoolConfig {
            max_connections: 1,
            ..quiet()
        },
        1,
    );
    let conn = open_idle(&mut pool, at(0));
    assert_eq!(pool.acquire(at(1)), Ok(Acquire::Ready(conn)));
    let mut queued = Vec::new();
    for t in 2..5 {
        match pool.acquire(at(t)).unwrap() {
            Acquire::Wait { waiter, open: None } => queued.push(waiter),
            other => panic!("{other:?}"),
        }
    }
    for &waiter in &queued {
        let now = at(10);
        assert_eq!(pool.release(conn, false, now), Ok(Disposition::Kept));
        assert_eq!(
            drain_actions(&mut pool, now),
            [Action::Hand { waiter, conn }]
        );
    }
    // The immediate acquires and the three waits are all recorded: the
    // waiters arrived at 2, 3 and 4 ms and were served at 10 ms.
    let waits = pool.wait_histogram();
    assert_eq!(waits.count(), 5);
    assert_eq!(waits.max(), Some((MS * 8).as_nanos() as u64));
    assert_eq!(waits.sum(), (MS * 21).as_nanos() as u64);
    assert_eq!(pool.metrics().acquired, 5);
    pool.clear_wait_histogram();
    assert!(pool.wait_histogram().is_empty());
}

#[test]
fn an_acquire_queues_behind_waiters_even_with_an_idle_connection() {
    let mut pool = PoolCore::new(quiet(), 1, 0).unwrap();
    let conn = open_idle(&mut pool, at(0));
    assert_eq!(pool.acquire(at(0)), Ok(Acquire::Ready(conn)));
    let Acquire::Wait {
        waiter: first,
        open,
    } = pool.acquire(at(0)).unwrap()
    else {
        panic!()
    };
    let permit = open.expect("room for a second connection");
    assert_eq!(pool.release(conn, false, at(1)), Ok(Disposition::Kept));
    // Before the runtime drains, a new caller arrives: it must not jump
    // the queue.
    let Acquire::Wait { waiter: second, .. } = pool.acquire(at(1)).unwrap() else {
        panic!()
    };
    assert!(second > first);
    assert_eq!(
        drain_actions(&mut pool, at(1)),
        [Action::Hand {
            waiter: first,
            conn
        }]
    );
    let fresh = pool.handle_opened(permit, at(2)).unwrap();
    assert_eq!(
        drain_actions(&mut pool, at(2)),
        [Action::Hand {
            waiter: second,
            conn: fresh
        }]
    );
}

#[test]
fn cancelling_leaks_nothing_at_any_point() {
    let mut pool = new_pool(
        PoolConfig {
            check_after_idle: Some(MS * 5),
            ..quiet()
        },
        1,
    );
    // Queued: simply removed; its connect still completes and goes idle.
    let Acquire::Wait {
        waiter,
        open: Some(permit),
    } = pool.acquire(at(0)).unwrap()
    else {
        panic!()
    };
    assert_eq!(pool.cancel_waiter(waiter, at(0)), Cancel::Dequeued);
    assert_eq!(pool.cancel_waiter(waiter, at(0)), Cancel::Unknown);
    let conn = pool.handle_opened(permit, at(1)).unwrap();
    assert_eq!(drain_actions(&mut pool, at(1)), []);
    assert_eq!(pool.state(conn), Some(ConnState::Idle));

    // Handed but never taken: back to idle.
    assert_eq!(pool.acquire(at(2)), Ok(Acquire::Ready(conn)));
    let Acquire::Wait { waiter, .. } = pool.acquire(at(2)).unwrap() else {
        panic!()
    };
    assert_eq!(pool.release(conn, false, at(3)), Ok(Disposition::Kept));
    assert_eq!(
        drain_actions(&mut pool, at(3))[0],
        Action::Hand { waiter, conn }
    );
    assert_eq!(pool.cancel_waiter(waiter, at(3)), Cancel::Returned(conn));
    assert_eq!(pool.cancel_waiter(waiter, at(3)), Cancel::Unknown);
    assert_eq!(pool.state(conn), Some(ConnState::Idle));
    let m = pool.metrics();
    assert_eq!((m.in_use, m.waiters), (0, 0));

    // Cut off during its check: the connection's state is unknown, so it
    // is closed.
    let Acquire::Check { waiter, conn: c } = pool.acquire(at(20)).unwrap() else {
        panic!()
    };
    assert_eq!(pool.cancel_waiter(waiter, at(21)), Cancel::Close(c));
    assert_eq!(pool.state(c), Some(ConnState::Closing));
    assert_eq!(
        pool.handle_checked(c, true, at(21)),
        Err(ConnError::WrongState {
            conn: c,
            state: ConnState::Closing,
            expected: ConnState::Checking
        })
    );
    assert_eq!(c, conn);
    pool.handle_closed(c).unwrap();
    assert_eq!(pool.state(c), None);
    assert_eq!(pool.metrics().size, 0);
}

#[test]
fn ten_thousand_cancelled_acquires_leave_the_counts_as_they_were() {
    let mut pool = new_pool(
        PoolConfig {
            min_connections: 4,
            max_connections: 4,
            check_after_idle: Some(MS * 2),
            ..quiet()
        },
        2,
    );
    // The minimum is opened at start, and restored after every close.
    for action in drain_actions(&mut pool, at(0)) {
        let Action::Open(permit) = action else {
            panic!("{action:?}")
        };
        pool.handle_opened(permit, at(0)).unwrap();
    }
    let before = pool.metrics();
    assert_eq!(before.idle, 4);
    // How often each kind of cancellation happened: queued, handed, checking.
    let mut seen = [0u32; 3];
    let mut now = at(0);
    for round in 0..10_000u64 {
        // Every third round the idle connections are old enough to be
        // checked first.
        now += if round % 3 == 0 { MS * 3 } else { MS };
        // Hold every connection so that acquires queue, then cancel them at
        // different points: queued, handed but not taken, being checked.
        let mut held = Vec::new();
        let mut waiters = Vec::new();
        for _ in 0..6 {
            match pool.acquire(now).unwrap() {
                Acquire::Ready(c) => held.push(c),
                Acquire::Check { waiter, conn } => {
                    assert_eq!(pool.cancel_waiter(waiter, now), Cancel::Close(conn));
                    pool.handle_closed(conn).unwrap();
                    seen[2] += 1;
                }
                Acquire::Wait { waiter, open } => {
                    waiters.push(waiter);
                    if let Some(permit) = open {
                        pool.handle_opened(permit, now).unwrap();
                    }
                }
            }
        }
        if let Some(&c) = held.first() {
            pool.release(c, false, now).unwrap();
            held.remove(0);
        }
        for action in drain_actions(&mut pool, now) {
            match action {
                Action::Hand { .. } | Action::Check { .. } | Action::Open(_) => {}
                other => panic!("{other:?}"),
            }
            if let Action::Open(permit) = action {
                pool.handle_opened(permit, now).unwrap();
            }
        }
        let order = round as usize % 2;
        if order == 1 {
            waiters.reverse();
        }
        for waiter in waiters {
            match pool.cancel_waiter(waiter, now) {
                Cancel::Dequeued => seen[0] += 1,
                Cancel::Returned(_) => seen[1] += 1,
                Cancel::Close(conn) => {
                    pool.handle_closed(conn).unwrap();
                    seen[2] += 1;
                }
                Cancel::Unknown => panic!("{waiter:?} lost"),
            }
        }
        for c in held {
            pool.release(c, false, now).unwrap();
        }
        for action in drain_actions(&mut pool, now) {
            match action {
                Action::Open(permit) => {
                    pool.handle_opened(permit, now).unwrap();
                }
                other => panic!("nothing should be waiting: {other:?}"),
            }
        }
    }
    let after = pool.metrics();
    assert_eq!(
        (
            after.size,
            after.idle,
            after.in_use,
            after.checking,
            after.waiters,
            after.opening
        ),
        (before.size, before.idle, 0, 0, 0, 0)
    );
    assert!(seen.iter().all(|&n| n > 0), "{seen:?}");
    assert!(seen.iter().sum::<u32>() >= 10_000, "{seen:?}");
}

#[test]
fn a_failed_check_closes_the_connection_and_keeps_the_waiters_place() {
    let mut pool = new_pool(
        PoolConfig {
            check_after_idle: Some(MS * 5),
            max_connections: 3,
            ..quiet()
        },
        1,
    );
    let a = open_idle(&mut pool, at(0));
    let Acquire::Check { waiter, conn } = pool.acquire(at(10)).unwrap() else {
        panic!()
    };
    assert_eq!(conn, a);
    let Acquire::Wait { waiter: later, .. } = pool.acquire(at(11)).unwrap() else {
        panic!()
    };
    let Ok(Checked::Replaced(Acquire::Wait {
        waiter: again,
        open: Some(permit),
    })) = pool.handle_checked(a, false, at(12))
    else {
        panic!()
    };
    assert_eq!(again, waiter);
    assert_eq!(pool.metrics().broken, 1);
    pool.handle_closed(a).unwrap();
    let fresh = pool.handle_opened(permit, at(13)).unwrap();
    let actions = drain_actions(&mut pool, at(13));
    assert_eq!(
        actions[0],
        Action::Hand {
            waiter,
            conn: fresh
        }
    );
    assert!(matches!(actions.get(1), None | Some(Action::Open(_))));
    assert_eq!(pool.waiters(), 1);
    assert!(pool.cancel_waiter(later, at(13)) == Cancel::Dequeued);
    // A healthy check hands the connection over.
    assert_eq!(pool.release(fresh, false, at(14)), Ok(Disposition::Kept));
    let Acquire::Check { conn, .. } = pool.acquire(at(30)).unwrap() else {
        panic!()
    };
    assert_eq!(
        pool.handle_checked(conn, true, at(31)),
        Ok(Checked::Ready(conn))
    );
    assert_eq!(pool.state(conn), Some(ConnState::InUse));
}

#[test]
fn lifetimes_are_jittered_within_bounds_and_respected() {
    let config = PoolConfig {
        max_connections: 64,
        max_lifetime: Some(MS * 1000),
        lifetime_jitter: MS * 100,
        ..quiet()
    };
    let mut pool = PoolCore::new(config, 1, 42).unwrap();
    let mut expiries = BTreeSet::new();
    for _ in 0..32 {
        let conn = open_idle(&mut pool, at(0));
        let e = pool.expires_at(conn).unwrap();
        assert!(e >= at(900) && e <= at(1000), "{e:?}");
        expiries.insert(e);
    }
    assert!(expiries.len() > 16, "jitter spreads expiries");
    let first = *expiries.first().unwrap();
    assert_eq!(pool.poll_timeout(), Some(first));
    let closed: Vec<_> = drain_actions(&mut pool, first);
    assert!(!closed.is_empty());
    assert!(closed.iter().all(|a| matches!(
        a,
        Action::Close {
            reason: CloseReason::Expired,
            ..
        }
    )));
    // An in-use connection past its expiry is closed when released.
    let mut pool = new_pool(
        PoolConfig {
            max_lifetime: Some(MS * 10),
            ..quiet()
        },
        1,
    );
    let conn = open_idle(&mut pool, at(0));
    assert_eq!(pool.acquire(at(5)), Ok(Acquire::Ready(conn)));
    assert_eq!(
        pool.release(conn, false, at(10)),
        Ok(Disposition::Close(CloseReason::Expired))
    );
}

#[test]
fn idle_timeout_keeps_the_minimum() {
    let mut pool = new_pool(
        PoolConfig {
            min_connections: 1,
            idle_timeout: Some(MS * 50),
            ..quiet()
        },
        1,
    );
    let Some(Action::Open(permit)) = pool.poll_action(at(0)) else {
        panic!("min_connections opens at start")
    };
    assert_eq!(pool.poll_action(at(0)), None);
    let a = pool.handle_opened(permit, at(0)).unwrap();
    assert_eq!(drain_actions(&mut pool, at(0)), []);
    // Opening b checks a out and back in, so both are idle from 10 ms.
    let b = open_idle(&mut pool, at(10));
    assert_eq!(drain_actions(&mut pool, at(10)), []);
    assert_eq!(pool.poll_timeout(), Some(at(60)));
    assert_eq!(
        drain_actions(&mut pool, at(60)),
        [Action::Close {
            conn: a,
            reason: CloseReason::IdleTimeout
        }]
    );
    pool.handle_closed(a).unwrap();
    // b is now the minimum and stays.
    assert_eq!(drain_actions(&mut pool, at(500)), []);
    assert_eq!(pool.state(b), Some(ConnState::Idle));
    assert_eq!(pool.poll_timeout(), None);
}

#[test]
fn keepalive_pings_idle_connections() {
    let mut pool = new_pool(
        PoolConfig {
            keepalive: Some(MS * 30),
            ..quiet()
        },
        1,
    );
    let conn = open_idle(&mut pool, at(0));
    assert_eq!(pool.poll_timeout(), Some(at(30)));
    assert_eq!(drain_actions(&mut pool, at(30)), [Action::Ping(conn)]);
    assert_eq!(
        pool.acquire(at(31))
            .ok()
            .map(|a| matches!(a, Acquire::Wait { .. })),
        Some(true)
    );
    assert_eq!(
        pool.handle_pinged(conn, true, at(32)),
        Ok(Disposition::Kept)
    );
    let actions = drain_actions(&mut pool, at(32));
    assert!(matches!(actions[0], Action::Hand { conn: c, .. } if c == conn));
    assert_eq!(pool.release(conn, false, at(40)), Ok(Disposition::Kept));
    assert_eq!(drain_actions(&mut pool, at(70)), [Action::Ping(conn)]);
    assert_eq!(
        pool.handle_pinged(conn, false, at(71)),
        Ok(Disposition::Close(CloseReason::Broken))
    );
}

#[test]
fn a_long_checkout_is_reported_once_and_not_reclaimed() {
    let mut pool = new_pool(
        PoolConfig {
            leak_threshold: Some(MS * 100),
            ..quiet()
        },
        1,
    );
    let conn = open_idle(&mut pool, at(0));
    assert_eq!(pool.acquire(at(10)), Ok(Acquire::Ready(conn)));
    // The timer may fire early (the first checkout armed it for 100 ms);
    // a pass finds nothing and sets it to the real deadline.
    assert!(pool.poll_timeout().is_some_and(|t| t <= at(110)));
    assert_eq!(drain_actions(&mut pool, at(109)), []);
    assert_eq!(pool.poll_timeout(), Some(at(110)));
    let checkout = pool.checkout_of(conn);
    assert!(checkout.is_some());
    let leak = drain_actions(&mut pool, at(150));
    assert!(matches!(
        leak.as_slice(),
        [Action::Leak { conn: c, held, checkout: k }]
            if *c == conn && *held == MS * 140 && Some(*k) == checkout
    ));
    assert_eq!(drain_actions(&mut pool, at(1000)), []);
    assert_eq!(pool.state(conn), Some(ConnState::InUse));
    assert_eq!(pool.metrics().leaks, 1);
    assert_eq!(pool.release(conn, false, at(1000)), Ok(Disposition::Kept));
}

#[test]
fn timeouts_say_why() {
    // Exhausted: the one connection is busy.
    let mut pool = new_pool(
        PoolConfig {
            max_connections: 1,
            ..quiet()
        },
        1,
    );
    let conn = open_idle(&mut pool, at(0));
    assert_eq!(pool.acquire(at(0)), Ok(Acquire::Ready(conn)));
    let Acquire::Wait { waiter, .. } = pool.acquire(at(0)).unwrap() else {
        panic!()
    };
    let _second = pool.acquire(at(1)).unwrap();
    assert_eq!(pool.poll_timeout(), Some(at(100)));
    let reason = AcquireFailure::Exhausted {
        waiters: 2,
        in_use: 1,
    };
    assert_eq!(
        drain_actions(&mut pool, at(100)),
        [Action::Fail { waiter, reason }]
    );
    assert_eq!(
        reason.to_string(),
        "acquire timed out: pool exhausted (1 in use, 2 waiting)"
    );

    // Unreachable: the only endpoint refuses.
    let mut pool = PoolCore::new(quiet(), 1, 0).unwrap();
    let Acquire::Wait {
        waiter,
        open: Some(permit),
    } = pool.acquire(at(0)).unwrap()
    else {
        panic!()
    };
    pool.handle_open_failed(permit, at(1), FailureKind::Refused)
        .unwrap();
    let reason = AcquireFailure::Unreachable {
        last_error: Some(FailureKind::Refused),
    };
    let actions = drain_actions(&mut pool, at(100));
    assert!(
        actions.contains(&Action::Fail { waiter, reason }),
        "{actions:?}"
    );
    assert_eq!(
        reason.to_string(),
        "acquire timed out: no endpoint reachable (connection refused)"
    );
    assert_eq!(pool.metrics().timeouts, 1);
}

#[test]
fn a_dead_endpoint_is_skipped_and_recovers() {
    let mut pool = new_pool(
        PoolConfig {
            balance: Balance::Failover,
            max_connections: 4,
            ..quiet()
        },
        2,
    );
    let primary = EndpointId(0);
    let Acquire::Wait {
        waiter,
        open: Some(permit),
    } = pool.acquire(at(0)).unwrap()
    else {
        panic!()
    };
    assert_eq!(permit.endpoint(), primary);
    pool.handle_open_failed(permit, at(0), FailureKind::TimedOut)
        .unwrap();
    assert_eq!(pool.breaker(primary), Some(BreakerState::Open));
    // The waiter still wants a connection: the secondary gets the connect.
    let Some(Action::Open(permit)) = pool.poll_action(at(0)) else {
        panic!()
    };
    assert_eq!(permit.endpoint().index(), 1);
    let conn = pool.handle_opened(permit, at(1)).unwrap();
    assert_eq!(pool.poll_action(at(1)), Some(Action::Hand { waiter, conn }));
    // The primary's breaker reopens after 10 ms: a new demand goes there as
    // the half-open trial, and its success closes the breaker.
    let Acquire::Wait {
        open: Some(permit), ..
    } = pool.acquire(at(20)).unwrap()
    else {
        panic!()
    };
    assert_eq!(permit.endpoint(), primary);
    assert_eq!(pool.breaker(primary), Some(BreakerState::HalfOpen));
    pool.handle_opened(permit, at(21)).unwrap();
    assert_eq!(pool.breaker(primary), Some(BreakerState::Closed));
    let m = pool.metrics();
    assert_eq!(m.endpoints[0].open_failures, 1);
    assert_eq!(m.endpoints[0].connect_timeouts, 1);
    assert_eq!(m.endpoints[0].last_error, Some(FailureKind::TimedOut));
    assert_eq!(m.endpoints[1].created, 1);
    assert_eq!(m.endpoints[0].breaker, BreakerState::Closed);
}

#[test]
fn strategies_spread_connects() {
    let mut rr = new_pool(
        PoolConfig {
            max_connections: 6,
            ..quiet()
        },
        3,
    );
    let mut least = new_pool(
        PoolConfig {
            max_connections: 6,
            balance: Balance::LeastConnections,
            ..quiet()
        },
        3,
    );
    let mut seen_rr = Vec::new();
    let mut seen_least = Vec::new();
    for _ in 0..6 {
        let Acquire::Wait { open: Some(p), .. } = rr.acquire(at(0)).unwrap() else {
            panic!()
        };
        seen_rr.push(p.endpoint().index());
        rr.handle_opened(p, at(0)).unwrap();
        let Acquire::Wait { open: Some(p), .. } = least.acquire(at(0)).unwrap() else {
            panic!()
        };
        seen_least.push(p.endpoint().index());
        least.handle_opened(p, at(0)).unwrap();
    }
    assert_eq!(seen_rr, [0, 1, 2, 0, 1, 2]);
    assert_eq!(seen_least, [0, 1, 2, 0, 1, 2]);
}

#[test]
fn resize_grows_and_shrinks() {
    let mut pool = new_pool(
        PoolConfig {
            max_connections: 1,
            ..quiet()
        },
        1,
    );
    let a = open_idle(&mut pool, at(0));
    assert_eq!(pool.acquire(at(0)), Ok(Acquire::Ready(a)));
    let Acquire::Wait { waiter, open: None } = pool.acquire(at(0)).unwrap() else {
        panic!()
    };
    pool.resize(0, 2).unwrap();
    let Some(Action::Open(permit)) = pool.poll_action(at(1)) else {
        panic!()
    };
    let b = pool.handle_opened(permit, at(1)).unwrap();
    assert_eq!(
        drain_actions(&mut pool, at(1)),
        [Action::Hand { waiter, conn: b }]
    );
    assert_eq!(pool.release(b, false, at(2)), Ok(Disposition::Kept));
    pool.resize(0, 1).unwrap();
    assert_eq!(
        drain_actions(&mut pool, at(2)),
        [Action::Close {
            conn: b,
            reason: CloseReason::Shrunk
        }]
    );
    pool.handle_closed(b).unwrap();
    assert_eq!(pool.release(a, false, at(3)), Ok(Disposition::Kept));
    pool.resize(0, 1).unwrap();
    assert_eq!(drain_actions(&mut pool, at(3)), []);
}

#[test]
fn drain_retires_every_connection_open_now() {
    let mut pool = PoolCore::new(quiet(), 1, 0).unwrap();
    let a = open_idle(&mut pool, at(0));
    let b = open_idle(&mut pool, at(0));
    assert_eq!(pool.acquire(at(1)), Ok(Acquire::Ready(b)));
    pool.drain(at(2));
    assert_eq!(
        drain_actions(&mut pool, at(2)),
        [Action::Close {
            conn: a,
            reason: CloseReason::Drained
        }]
    );
    assert_eq!(
        pool.release(b, false, at(3)),
        Ok(Disposition::Close(CloseReason::Drained))
    );
    pool.handle_closed(a).unwrap();
    pool.handle_closed(b).unwrap();
    // New connections are not retired.
    let c = open_idle(&mut pool, at(4));
    assert_eq!(pool.state(c), Some(ConnState::Idle));
}

#[test]
fn close_waits_for_checkouts_up_to_a_deadline() {
    let mut pool = new_pool(
        PoolConfig {
            max_connections: 3,
            ..quiet()
        },
        1,
    );
    let a = open_idle(&mut pool, at(0));
    let b = open_idle(&mut pool, at(0));
    assert_eq!(pool.acquire(at(1)), Ok(Acquire::Ready(b)));
    assert_eq!(pool.acquire(at(1)), Ok(Acquire::Ready(a)));
    let Acquire::Wait {
        waiter,
        open: Some(permit),
    } = pool.acquire(at(1)).unwrap()
    else {
        panic!()
    };
    pool.close(at(2), at(50));
    assert_eq!(pool.acquire(at(2)), Err(ConnError::Closed));
    assert_eq!(
        drain_actions(&mut pool, at(2)),
        [Action::Fail {
            waiter,
            reason: AcquireFailure::Closed
        }]
    );
    let late = pool.handle_opened(permit, at(3)).unwrap();
    assert_eq!(
        drain_actions(&mut pool, at(3)),
        [Action::Close {
            conn: late,
            reason: CloseReason::PoolClosed
        }]
    );
    pool.handle_closed(late).unwrap();
    assert_eq!(
        pool.release(a, false, at(4)),
        Ok(Disposition::Close(CloseReason::PoolClosed))
    );
    pool.handle_closed(a).unwrap();
    assert_eq!(pool.poll_timeout(), Some(at(50)));
    assert_eq!(
        drain_actions(&mut pool, at(50)),
        [Action::Closed(Remaining {
            in_use: 1,
            opening: 0,
            closing: 0
        })]
    );
    assert_eq!(pool.poll_timeout(), None);
    assert_eq!(drain_actions(&mut pool, at(60)), []);
}

#[test]
fn stale_ids_and_foreign_permits_are_refused() {
    let mut pool = PoolCore::new(quiet(), 1, 0).unwrap();
    let mut other = PoolCore::new(quiet(), 1, 0).unwrap();
    let conn = open_idle(&mut pool, at(0));
    assert_eq!(
        pool.release(conn, false, at(0)),
        Err(ConnError::WrongState {
            conn,
            state: ConnState::Idle,
            expected: ConnState::InUse
        })
    );
    let Acquire::Wait {
        open: Some(foreign),
        ..
    } = other.acquire(at(0)).unwrap()
    else {
        panic!()
    };
    // Permit ids restart per pool: make the foreign one unknown here.
    let foreign = OpenPermit {
        id: foreign.id + 100,
        endpoint: foreign.endpoint,
    };
    assert_eq!(
        pool.handle_opened(foreign, at(0)),
        Err(ConnError::UnknownPermit(100))
    );
    pool.drain(at(1));
    drain_actions(&mut pool, at(1));
    pool.handle_closed(conn).unwrap();
    assert_eq!(pool.handle_closed(conn), Err(ConnError::UnknownConn(conn)));
    assert_eq!(
        ConnError::UnknownConn(conn).to_string(),
        "connection 0.0 is not in this pool"
    );
}

// ----- property test: random operation sequences against a model --------

#[derive(Clone, Debug)]
enum Op {
    Acquire,
    Cancel(usize),
    Open(usize),
    AbandonOpen(usize),
    Release(usize, bool),
    /// Given back after the runtime kept it idle for the first duration
    /// (ms), last alive the second duration before that.
    ReleaseIdle(usize, u32, u32),
    Check(usize, bool),
    Ping(usize, bool),
    Closed(usize),
    Tick(u32),
    Resize(usize, usize),
    Endpoint(usize, bool),
    Drain,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Acquire),
        2 => any::<usize>().prop_map(Op::Cancel),
        4 => any::<usize>().prop_map(Op::Open),
        1 => any::<usize>().prop_map(Op::AbandonOpen),
        4 => (any::<usize>(), prop::bool::weighted(0.2)).prop_map(|(i, b)| Op::Release(i, b)),
        2 => (any::<usize>(), 0u32..300, 0u32..300).prop_map(|(i, a, b)| Op::ReleaseIdle(i, a, b)),
        2 => (any::<usize>(), prop::bool::weighted(0.8)).prop_map(|(i, b)| Op::Check(i, b)),
        1 => (any::<usize>(), prop::bool::weighted(0.8)).prop_map(|(i, b)| Op::Ping(i, b)),
        2 => any::<usize>().prop_map(Op::Closed),
        4 => (0u32..120).prop_map(Op::Tick),
        1 => (0usize..4, 1usize..5).prop_map(|(a, b)| Op::Resize(a.min(b), b)),
        1 => (0usize..2, any::<bool>()).prop_map(|(e, up)| Op::Endpoint(e, up)),
        1 => Just(Op::Drain),
    ]
}

fn config_strategy() -> impl Strategy<Value = PoolConfig> {
    (
        1usize..5,
        0usize..5,
        prop_oneof![
            Just(Balance::RoundRobin),
            Just(Balance::LeastConnections),
            Just(Balance::Failover)
        ],
        1u32..3,
    )
        .prop_map(|(max, min, balance, threshold)| PoolConfig {
            min_connections: min.min(max),
            max_connections: max,
            acquire_timeout: MS * 50,
            idle_timeout: Some(MS * 200),
            max_lifetime: Some(MS * 500),
            lifetime_jitter: MS * 100,
            keepalive: Some(MS * 150),
            check_after_idle: Some(MS * 80),
            leak_threshold: Some(MS * 300),
            balance,
            breaker: BreakerConfig {
                failure_threshold: threshold,
                backoff: Backoff::new(MS * 10, MS * 100, 5).unwrap(),
            },
        })
}

/// What a runtime holds, with the checks the pool's promises allow.
struct Harness {
    pool: PoolCore,
    now: Instant,
    up: [bool; 2],
    permits: Vec<OpenPermit>,
    idle: BTreeSet<ConnId>,
    /// Checked out, with the waiter it was handed to, if any.
    in_use: Vec<(ConnId, Option<WaiterId>)>,
    checking: Vec<(WaiterId, ConnId)>,
    pinging: Vec<ConnId>,
    closing: Vec<ConnId>,
    queued: BTreeSet<WaiterId>,
    started: BTreeMap<WaiterId, Instant>,
    opened: BTreeMap<ConnId, Instant>,
    allowed: usize,
    breakers: Vec<BreakerState>,
    /// `close` was called; what it reported.
    shut: bool,
    report: Option<Remaining>,
    /// A checkout `flush` leaves out.
    hold: Option<ConnId>,
}

impl Harness {
    fn new(config: PoolConfig, seed: u64) -> Self {
        let pool = PoolCore::new(config, 2, seed).unwrap();
        let mut h = Self {
            allowed: config.max_connections,
            pool,
            now: Instant::ZERO,
            up: [true; 2],
            permits: Vec::new(),
            idle: BTreeSet::new(),
            in_use: Vec::new(),
            checking: Vec::new(),
            pinging: Vec::new(),
            closing: Vec::new(),
            queued: BTreeSet::new(),
            started: BTreeMap::new(),
            opened: BTreeMap::new(),
            breakers: vec![BreakerState::Closed; 2],
            shut: false,
            report: None,
            hold: None,
        };
        h.settle();
        h
    }

    /// A pool driven through `ops`, each followed by a drain of its actions.
    fn run(config: PoolConfig, seed: u64, ops: Vec<Op>) -> Self {
        let mut h = Self::new(config, seed);
        for op in ops {
            h.apply(op);
            h.settle();
        }
        h
    }

    fn counted(&self) -> usize {
        self.idle.len()
            + self.in_use.len()
            + self.checking.len()
            + self.pinging.len()
            + self.closing.len()
            + self.permits.len()
    }

    /// A connection goes to a caller: never at or after its expiry.
    fn handed(&mut self, conn: ConnId) {
        let expiry = self.pool.expires_at(conn).unwrap();
        assert!(self.now < expiry, "{conn} handed out after its expiry");
        let opened = self.opened[&conn];
        assert!(expiry >= opened + MS * 400 && expiry <= opened + MS * 500);
        assert!(self.idle.remove(&conn), "{conn} handed out but not idle");
    }

    fn served_waiter(&mut self, waiter: WaiterId) {
        assert_eq!(
            self.queued.first(),
            Some(&waiter),
            "waiter served out of FIFO order"
        );
        self.queued.remove(&waiter);
    }

    fn on_acquire(&mut self, answer: Acquire) {
        match answer {
            Acquire::Ready(conn) => {
                assert!(self.queued.is_empty(), "acquire jumped the queue");
                self.handed(conn);
                self.in_use.push((conn, None));
            }
            Acquire::Check { waiter, conn } => {
                assert!(self.queued.iter().all(|&w| w > waiter));
                self.started.entry(waiter).or_insert(self.now);
                self.handed(conn);
                self.checking.push((waiter, conn));
            }
            Acquire::Wait { waiter, open } => {
                self.started.entry(waiter).or_insert(self.now);
                self.queued.insert(waiter);
                if let Some(permit) = open {
                    self.permits.push(permit);
                }
            }
        }
    }

    fn on_disposition(&mut self, conn: ConnId, d: Disposition) {
        match d {
            Disposition::Kept => {
                self.idle.insert(conn);
            }
            Disposition::Close(reason) => {
                if reason == CloseReason::Expired {
                    let e = self.pool.expires_at(conn).unwrap();
                    assert!(self.now >= e);
                }
                self.closing.push(conn);
            }
        }
    }

    fn apply(&mut self, op: Op) {
        let now = self.now;
        match op {
            Op::Acquire => {
                let answer = self.pool.acquire(now).unwrap();
                self.on_acquire(answer);
            }
            Op::Cancel(i) => {
                let mut candidates: Vec<WaiterId> = self.queued.iter().copied().collect();
                candidates.extend(self.checking.iter().map(|&(w, _)| w));
                candidates.extend(self.in_use.iter().filter_map(|&(_, w)| w));
                if candidates.is_empty() {
                    return;
                }
                let waiter = candidates[i % candidates.len()];
                match self.pool.cancel_waiter(waiter, now) {
                    Cancel::Dequeued => assert!(self.queued.remove(&waiter)),
                    Cancel::Returned(conn) => {
                        let pos = self.in_use.iter().position(|&(c, _)| c == conn).unwrap();
                        assert_eq!(self.in_use.remove(pos).1, Some(waiter));
                        self.idle.insert(conn);
                    }
                    Cancel::Close(conn) => {
                        if let Some(pos) = self.in_use.iter().position(|&(c, _)| c == conn) {
                            self.in_use.remove(pos);
                        } else {
                            let pos = self.checking.iter().position(|&(_, c)| c == conn).unwrap();
                            self.checking.remove(pos);
                        }
                        self.closing.push(conn);
                    }
                    Cancel::Unknown => panic!("{waiter:?} was live but unknown to the pool"),
                }
                assert_eq!(self.pool.cancel_waiter(waiter, now), Cancel::Unknown);
            }
            Op::Open(i) | Op::AbandonOpen(i) => {
                if self.permits.is_empty() {
                    return;
                }
                let permit = self.permits.swap_remove(i % self.permits.len());
                let endpoint = permit.endpoint().index();
                if matches!(op, Op::AbandonOpen(_)) {
                    self.pool
                        .handle_open_failed(permit, now, FailureKind::Cancelled)
                        .unwrap();
                } else if self.up[endpoint] {
                    let conn = self.pool.handle_opened(permit, now).unwrap();
                    self.opened.insert(conn, now);
                    self.idle.insert(conn);
                } else {
                    self.pool
                        .handle_open_failed(permit, now, FailureKind::Refused)
                        .unwrap();
                }
            }
            Op::Release(i, broken) => {
                if self.in_use.is_empty() {
                    return;
                }
                let (conn, _) = self.in_use.swap_remove(i % self.in_use.len());
                let d = self.pool.release(conn, broken, now).unwrap();
                if broken {
                    assert_eq!(d, Disposition::Close(CloseReason::Broken));
                }
                self.on_disposition(conn, d);
            }
            Op::ReleaseIdle(i, idle_ms, alive_ms) => {
                if self.in_use.is_empty() {
                    return;
                }
                let (conn, _) = self.in_use.swap_remove(i % self.in_use.len());
                let idle_since = Instant::from_nanos(
                    now.as_nanos()
                        .saturating_sub(u64::from(idle_ms) * 1_000_000),
                );
                let last_alive = Instant::from_nanos(
                    idle_since
                        .as_nanos()
                        .saturating_sub(u64::from(alive_ms) * 1_000_000),
                );
                let d = self
                    .pool
                    .release_idle(conn, idle_since, last_alive, now)
                    .unwrap();
                self.on_disposition(conn, d);
            }
            Op::Check(i, healthy) => {
                if self.checking.is_empty() {
                    return;
                }
                let (waiter, conn) = self.checking.swap_remove(i % self.checking.len());
                match self.pool.handle_checked(conn, healthy, now).unwrap() {
                    Checked::Ready(c) => {
                        assert!(healthy && c == conn);
                        self.in_use.push((conn, Some(waiter)));
                    }
                    Checked::Replaced(next) => {
                        self.closing.push(conn);
                        // The waiter keeps its id (Ready needs none: it is
                        // served on the spot).
                        if let Acquire::Check { waiter: w, .. } | Acquire::Wait { waiter: w, .. } =
                            &next
                        {
                            assert_eq!(*w, waiter);
                        }
                        self.on_acquire(next);
                    }
                }
            }
            Op::Ping(i, healthy) => {
                if self.pinging.is_empty() {
                    return;
                }
                let conn = self.pinging.swap_remove(i % self.pinging.len());
                let d = self.pool.handle_pinged(conn, healthy, now).unwrap();
                self.on_disposition(conn, d);
            }
            Op::Closed(i) => {
                if self.closing.is_empty() {
                    return;
                }
                let conn = self.closing.swap_remove(i % self.closing.len());
                self.pool.handle_closed(conn).unwrap();
                self.opened.remove(&conn);
            }
            Op::Tick(ms) => self.now += MS * ms,
            Op::Resize(min, max) => self.pool.resize(min, max).unwrap(),
            Op::Endpoint(e, up) => self.up[e] = up,
            Op::Drain => self.pool.drain(now),
        }
    }

    /// Drains the pool's actions as a runtime would, checking each.
    fn settle(&mut self) {
        let now = self.now;
        while let Some(action) = self.pool.poll_action(now) {
            match action {
                Action::Open(permit) => {
                    assert!(!self.shut, "connect asked for while closing");
                    self.permits.push(permit);
                }
                Action::Hand { waiter, conn } => {
                    self.served_waiter(waiter);
                    self.handed(conn);
                    self.in_use.push((conn, Some(waiter)));
                }
                Action::Check { waiter, conn } => {
                    self.served_waiter(waiter);
                    self.handed(conn);
                    self.checking.push((waiter, conn));
                }
                Action::Fail { waiter, reason } => {
                    assert!(self.queued.remove(&waiter), "failed a waiter not queued");
                    if reason == AcquireFailure::Closed {
                        assert!(self.shut);
                    } else {
                        let deadline = self.started[&waiter] + MS * 50;
                        assert!(now >= deadline, "failed before its deadline");
                    }
                }
                Action::Close { conn, reason } => {
                    assert!(self.idle.remove(&conn), "closed {conn} that was not idle");
                    if reason == CloseReason::Expired {
                        assert!(now >= self.pool.expires_at(conn).unwrap());
                    }
                    self.closing.push(conn);
                }
                Action::Ping(conn) => {
                    assert!(self.idle.remove(&conn));
                    self.pinging.push(conn);
                }
                Action::Leak { conn, .. } => {
                    assert!(self.in_use.iter().any(|&(c, _)| c == conn));
                }
                Action::Closed(remaining) => {
                    assert!(self.shut && self.report.is_none());
                    self.report = Some(remaining);
                }
            }
        }
        self.check();
    }

    fn check(&mut self) {
        let m = self.pool.metrics();
        assert_eq!(m.idle, self.idle.len());
        assert_eq!(m.in_use, self.in_use.len());
        assert_eq!(m.checking, self.checking.len());
        assert_eq!(m.pinging, self.pinging.len());
        assert_eq!(m.closing, self.closing.len());
        assert_eq!(m.opening, self.permits.len());
        assert_eq!(m.waiters, self.queued.len());
        // Never above the maximum, except connections left over from before
        // a shrink, whose number only falls.
        let counted = self.counted();
        assert!(
            counted <= m.max_connections.max(self.allowed),
            "{counted} connections counted, max {}, allowed {}",
            m.max_connections,
            self.allowed
        );
        self.allowed = m.max_connections.max(counted);
        for (e, before) in self.breakers.iter_mut().enumerate() {
            let after = m.endpoints[e].breaker;
            // Between two looks an open breaker can half-open, admit its
            // trial connect and close on its success, unobserved.
            let through_trial =
                *before == BreakerState::Open && BreakerState::HalfOpen.can_become(after);
            assert!(
                before.can_become(after) || through_trial,
                "breaker {before} -> {after}"
            );
            *before = after;
        }
        for &conn in &self.idle {
            assert!(self.now < self.pool.expires_at(conn).unwrap());
        }
        for w in &self.queued {
            assert!(self.now < self.started[w] + MS * 50, "waiter past deadline");
        }
        if self.shut {
            assert!(self.queued.is_empty(), "waiter left queued while closing");
        }
        if let Some(t) = self.pool.poll_timeout() {
            assert!(
                t > self.now,
                "poll_timeout {t:?} not after now {:?}",
                self.now
            );
        }
    }

    /// Gives back everything the runtime holds, at the current time, until
    /// the pool asks for nothing more.
    fn flush(&mut self) {
        for _ in 0..20 {
            while let Some(i) = self.in_use.iter().position(|&(c, _)| Some(c) != self.hold) {
                self.apply(Op::Release(i, false));
            }
            while !self.checking.is_empty() {
                self.apply(Op::Check(0, true));
            }
            for waiter in self.queued.clone() {
                assert_eq!(self.pool.cancel_waiter(waiter, self.now), Cancel::Dequeued);
                self.queued.remove(&waiter);
            }
            while !self.pinging.is_empty() {
                self.apply(Op::Ping(0, true));
            }
            while !self.closing.is_empty() {
                self.apply(Op::Closed(0));
            }
            while !self.permits.is_empty() {
                self.apply(Op::Open(0));
            }
            self.settle();
        }
    }

    /// Heals every endpoint, gives everything back and lets time pass: the
    /// pool must end with nothing leaked and the minimum restored.
    fn heal(&mut self) {
        self.up = [true; 2];
        for waiter in self.queued.clone() {
            assert_eq!(self.pool.cancel_waiter(waiter, self.now), Cancel::Dequeued);
            self.queued.remove(&waiter);
        }
        for _ in 0..50 {
            self.flush();
            self.now += MS * 7;
            self.settle();
        }
        self.flush();
        let m = self.pool.metrics();
        assert_eq!((m.in_use, m.checking, m.waiters), (0, 0, 0));
        for &w in self.started.keys() {
            assert_eq!(self.pool.cancel_waiter(w, self.now), Cancel::Unknown);
        }
        let live = m.idle + m.pinging;
        assert!(
            live + m.opening >= m.min_connections,
            "minimum not restored: {m:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_operations_keep_the_invariants(
        config in config_strategy(),
        seed in any::<u64>(),
        ops in prop::collection::vec(op(), 1..120),
    ) {
        let mut h = Harness::run(config, seed, ops);
        h.heal();
    }

    #[test]
    fn close_after_random_operations_reports_what_remains(
        config in config_strategy(),
        seed in any::<u64>(),
        ops in prop::collection::vec(op(), 1..120),
    ) {
        let mut h = Harness::run(config, seed, ops);
        let held = h.in_use.first().copied();
        h.hold = held.map(|(c, _)| c);
        let deadline = h.now + MS * 100;
        h.pool.close(h.now, deadline);
        h.shut = true;
        h.settle();
        prop_assert_eq!(h.pool.acquire(h.now), Err(ConnError::Closed));
        h.flush();
        prop_assert!(h.idle.is_empty());
        match held {
            None => prop_assert_eq!(h.report, Some(Remaining::default())),
            Some((conn, _)) => {
                prop_assert_eq!(h.report, None);
                h.now = deadline;
                h.settle();
                prop_assert_eq!(
                    h.report,
                    Some(Remaining { in_use: 1, opening: 0, closing: 0 })
                );
                prop_assert_eq!(
                    h.pool.release(conn, false, h.now),
                    Ok(Disposition::Close(CloseReason::PoolClosed))
                );
                h.pool.handle_closed(conn).unwrap();
                h.in_use.clear();
            }
        }
        prop_assert_eq!(h.pool.metrics().size, 0);
        prop_assert_eq!(h.pool.poll_timeout(), None);
    }
}

#[test]
fn ready_idle_says_whether_an_acquire_is_served_at_once() {
    let mut pool = new_pool(quiet(), 1);
    // Nothing idle: an acquire would queue.
    assert!(!pool.has_ready_idle());
    let conn = open_idle(&mut pool, at(0));
    assert!(pool.has_ready_idle());
    assert_eq!(pool.acquire(at(1)), Ok(Acquire::Ready(conn)));
    assert!(!pool.has_ready_idle());
    // A waiter ahead queues the next caller even once a connection is idle.
    let Ok(Acquire::Wait { waiter, .. }) = pool.acquire(at(2)) else {
        panic!("expected to wait");
    };
    let _ = drain_actions(&mut pool, at(2));
    assert!(!pool.has_ready_idle());
    assert_eq!(pool.cancel_waiter(waiter, at(3)), Cancel::Dequeued);
    assert_eq!(pool.release(conn, false, at(4)), Ok(Disposition::Kept));
    let _ = drain_actions(&mut pool, at(4));
    assert!(pool.has_ready_idle());
    pool.close(at(5), at(6));
    assert!(!pool.has_ready_idle());
}

#[test]
fn a_check_failed_past_the_deadline_fails_the_acquire_instead_of_checking_again() {
    let mut pool = new_pool(
        PoolConfig {
            check_after_idle: Some(MS * 5),
            max_connections: 3,
            ..quiet()
        },
        1,
    );
    let a = open_idle(&mut pool, at(0));
    let b = open_idle(&mut pool, at(0));
    let Acquire::Check { waiter, conn } = pool.acquire(at(10)).unwrap() else {
        panic!("expected a check")
    };
    // The check ends (cut short by the runtime) at the acquire's deadline,
    // 100 ms later: the other idle connection is not handed over for
    // another check; the waiter fails with a reason.
    let Ok(Checked::Replaced(Acquire::Wait { waiter: again, .. })) =
        pool.handle_checked(conn, false, at(110))
    else {
        panic!("expected the waiter to be queued")
    };
    assert_eq!(again, waiter);
    let actions = drain_actions(&mut pool, at(110));
    assert!(
        matches!(actions[0], Action::Fail { waiter: w, .. } if w == waiter),
        "{actions:?}"
    );
    let other = if conn == a { b } else { a };
    assert_eq!(pool.state(other), Some(ConnState::Idle));
    // The next acquire, within its own deadline, gets it checked.
    let Acquire::Check { conn: c, .. } = pool.acquire(at(200)).unwrap() else {
        panic!("expected a check")
    };
    assert_eq!(c, other);
}

#[test]
fn a_connection_kept_idle_by_the_runtime_keeps_its_stamps() {
    let mut config = quiet();
    config.idle_timeout = Some(MS * 100);
    config.check_after_idle = Some(MS * 50);
    let mut pool = new_pool(config, 1);
    let older = open_idle(&mut pool, at(0));
    let newer = open_idle(&mut pool, at(0));
    // Both out; `newer` goes back first, at 20 ms.
    assert_eq!(pool.acquire(at(10)), Ok(Acquire::Ready(newer)));
    assert_eq!(pool.acquire(at(10)), Ok(Acquire::Ready(older)));
    assert_eq!(pool.release(newer, false, at(20)), Ok(Disposition::Kept));
    // `older` was kept idle by the runtime since 15 ms, alive at 12 ms:
    // it goes behind `newer` in the idle list, and its idle and alive
    // times count from those stamps, not from 60 ms.
    assert_eq!(
        pool.release_idle(older, at(15), at(12), at(60)),
        Ok(Disposition::Kept)
    );
    assert_eq!(pool.metrics().idle, 2);
    assert_eq!(pool.metrics().in_use, 0);
    // Most recently idle first: `newer`, idle since 20 ms, alive at 20 ms,
    // needs no check at 60 ms; `older` (alive at 12) does at 63 ms.
    assert_eq!(pool.acquire(at(60)), Ok(Acquire::Ready(newer)));
    let Ok(Acquire::Check { conn, waiter }) = pool.acquire(at(63)) else {
        panic!("expected a checkout check");
    };
    assert_eq!(conn, older);
    assert_eq!(
        pool.handle_checked(older, true, at(64)),
        Ok(Checked::Ready(older))
    );
    let _ = waiter;
    // Stamps are clamped to now.
    assert_eq!(
        pool.release_idle(older, at(500), at(500), at(70)),
        Ok(Disposition::Kept)
    );
    // The idle timeout counts from the clamped stamp: reaped at 170 ms.
    assert!(drain_actions(&mut pool, at(169)).is_empty());
    assert_eq!(
        drain_actions(&mut pool, at(170)),
        [Action::Close {
            conn: older,
            reason: CloseReason::IdleTimeout
        }]
    );
    // Only a checked-out connection can come back this way.
    assert!(pool.release_idle(older, at(170), at(170), at(171)).is_err());
}

#[test]
fn acquires_served_by_the_runtime_are_counted_with_no_wait() {
    let mut pool = new_pool(quiet(), 1);
    let before = pool.metrics().acquired;
    let waits = pool.wait_histogram().count();
    pool.count_served_at_once(0);
    pool.count_served_at_once(5);
    assert_eq!(pool.metrics().acquired, before + 5);
    assert_eq!(pool.wait_histogram().count(), waits + 5);
    assert_eq!(pool.wait_histogram().max(), Some(0));
}

#[test]
fn a_connection_kept_idle_past_a_drain_or_its_expiry_is_closed() {
    let mut config = quiet();
    config.max_lifetime = Some(MS * 100);
    let mut pool = new_pool(config, 1);
    let a = open_idle(&mut pool, at(0));
    let b = open_idle(&mut pool, at(0));
    assert_eq!(pool.acquire(at(1)), Ok(Acquire::Ready(b)));
    assert_eq!(pool.acquire(at(1)), Ok(Acquire::Ready(a)));
    pool.drain(at(2));
    assert_eq!(
        pool.release_idle(b, at(1), at(1), at(3)),
        Ok(Disposition::Close(CloseReason::Drained))
    );
    let mut config = quiet();
    config.max_lifetime = Some(MS * 100);
    let mut pool = new_pool(config, 1);
    let c = open_idle(&mut pool, at(0));
    assert_eq!(pool.acquire(at(1)), Ok(Acquire::Ready(c)));
    assert_eq!(
        pool.release_idle(c, at(50), at(50), at(100)),
        Ok(Disposition::Close(CloseReason::Expired))
    );
    let _ = a;
}

/// A case the property test found: endpoint 0 goes down after a connect
/// opened its breaker; once healed, the breaker half-opens, admits its
/// trial and closes within one step of the harness.
#[test]
fn an_open_breaker_may_close_through_a_trial_between_two_looks() {
    let config = PoolConfig {
        min_connections: 3,
        max_connections: 3,
        acquire_timeout: MS * 50,
        idle_timeout: Some(MS * 200),
        max_lifetime: Some(MS * 500),
        lifetime_jitter: MS * 100,
        keepalive: Some(MS * 150),
        check_after_idle: Some(MS * 80),
        leak_threshold: Some(MS * 300),
        balance: Balance::RoundRobin,
        breaker: BreakerConfig {
            failure_threshold: 1,
            backoff: Backoff::new(MS * 10, MS * 100, 5).unwrap(),
        },
    };
    let mut h = Harness::run(
        config,
        0,
        vec![
            Op::Endpoint(1, false),
            Op::Open(16038681678239737196),
            Op::Tick(80),
            Op::Endpoint(0, false),
            Op::Acquire,
            Op::Tick(88),
            Op::Tick(46),
            Op::Tick(101),
            Op::Open(0),
            Op::Open(0),
            Op::Resize(0, 2),
            Op::Open(0),
            Op::Tick(97),
        ],
    );
    h.heal();
}
