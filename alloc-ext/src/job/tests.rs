//! Unit tests per transition, scheduler tests, and a property test of the
//! scheduler against a reference model with a fake clock.

use alloc::string::ToString;
use alloc::vec::Vec;
use core::time::Duration;

use mechops_core::backoff::{Backoff, Jitter};
use mechops_core::time::Timestamp;
use mechops_core::uuid::Uuid;

use super::*;

const MS: Duration = Duration::from_millis(1);
const LEASE: Duration = Duration::from_secs(10);

fn at(ms: i64) -> Timestamp {
    Timestamp::from_unix_millis(ms).unwrap()
}

fn id(n: u128) -> JobId {
    JobId::new(Uuid::from_u128(n))
}

fn lifecycle() -> Lifecycle {
    Lifecycle {
        lease: LEASE,
        max_stalls: 1,
        progress_interval: Duration::from_millis(250),
    }
}

fn no_jitter(base_ms: u64) -> Backoff {
    Backoff::new(MS * base_ms as u32, Duration::from_secs(60), u32::MAX)
        .unwrap()
        .with_jitter(Jitter::None)
}

fn spec() -> JobSpec {
    JobSpec::new("echo", r#"{"x":1}"#).with_backoff(no_jitter(100))
}

fn submitted(spec: JobSpec, now: i64) -> Job {
    Job::submit(id(1), spec, at(now), &lifecycle()).unwrap().0
}

/// Claims `job` at `now` and returns the lease's token.
fn claim(job: &mut Job, now: i64) -> FencingToken {
    job.handle(Event::Claim, at(now), 0, &lifecycle()).unwrap();
    job.state().lease().unwrap().token
}

fn handle(job: &mut Job, event: Event, now: i64) -> Result<Effects, Rejected> {
    job.handle(event, at(now), 0, &lifecycle())
}

fn complete(token: FencingToken) -> Event {
    Event::Complete {
        token,
        result: "42".into(),
    }
}

fn fail(token: FencingToken, kind: FailKind) -> Event {
    Event::Fail {
        token,
        error: "boom".into(),
        kind,
    }
}

// ---------------------------------------------------------------- model

#[test]
fn specs_are_validated_with_clear_errors() {
    let bad = |s: JobSpec| s.validate().unwrap_err().to_string();
    assert_eq!(bad(JobSpec::new(" ", "{}")), "job handler name is empty");
    assert_eq!(
        bad(JobSpec::new("h", "{\n  \"a\": }")),
        "job arguments are not valid JSON (line 2, column 8)"
    );
    assert_eq!(
        bad(JobSpec::new("h", "{} {}")),
        "job arguments are not valid JSON (line 1, column 4)"
    );
    assert_eq!(
        bad(spec().with_max_attempts(0)),
        "job max_attempts must be at least 1"
    );
    assert_eq!(
        bad(spec().with_timeout(Duration::ZERO)),
        "job timeout must be longer than zero"
    );
    assert_eq!(bad(spec().with_unique_key("")), "job unique key is empty");
    assert!(spec().validate().is_ok());
    assert_eq!(
        Job::submit(id(1), JobSpec::new("", "1"), at(0), &lifecycle()).unwrap_err(),
        SpecError::EmptyHandler
    );
}

#[test]
fn priorities_and_states_parse_and_map_onto_the_core() {
    use mechops_core::queue::Priority;
    assert_eq!("HIGH".parse(), Ok(JobPriority::High));
    assert_eq!("low".parse(), Ok(JobPriority::Low));
    assert_eq!(
        "urgent".parse::<JobPriority>().unwrap_err().to_string(),
        "job priority must be high, normal or low"
    );
    assert_eq!(JobPriority::High.priority(), Priority::HIGH);
    assert!(JobPriority::High.priority() > JobPriority::Normal.priority());
    assert!(JobPriority::Normal.priority() > JobPriority::Low.priority());
    for kind in StateKind::ALL {
        assert_eq!(kind.as_str().parse(), Ok(kind));
    }
    assert!("done".parse::<StateKind>().is_err());
}

#[test]
fn progress_is_a_checked_fraction() {
    assert!(Progress::new(1.5, "").is_err());
    assert!(Progress::new(f64::NAN, "").is_err());
    assert!(Progress::from_percent(-1.0, "").is_err());
    let p = Progress::from_percent(40.0, "copying").unwrap();
    assert_eq!((p.fraction(), p.message()), (0.4, "copying"));
}

// ----------------------------------------------------- lifecycle transitions

#[test]
fn submit_queues_or_delays() {
    let (job, fx) = Job::submit(id(1), spec(), at(5), &lifecycle()).unwrap();
    assert_eq!(*job.state(), JobState::Queued);
    assert_eq!(
        fx.as_slice(),
        [
            Effect::Persist(Delta::Inserted),
            Effect::Emit(JobEvent::Queued)
        ]
    );
    let delayed = spec().with_run_at(RunAt::After(MS * 20));
    let (job, fx) = Job::submit(id(2), delayed, at(5), &lifecycle()).unwrap();
    assert_eq!(*job.state(), JobState::Delayed { ready_at: at(25) });
    assert!(fx.contains(&Effect::Wake(at(25))));
    assert_eq!(job.poll_timeout(), Some(at(25)));
    // A run-at time in the past is "now".
    let past = spec().with_run_at(RunAt::At(at(1)));
    assert_eq!(*submitted(past, 5).state(), JobState::Queued);
}

#[test]
fn a_delayed_job_is_not_claimable_before_its_time() {
    let mut job = submitted(spec().with_run_at(RunAt::At(at(100))), 0);
    assert_eq!(
        handle(&mut job, Event::Claim, 99),
        Err(Rejected::NotDue { at: at(100) })
    );
    assert_eq!(
        handle(&mut job, Event::Promote, 99),
        Err(Rejected::NotDue { at: at(100) })
    );
    let fx = handle(&mut job, Event::Promote, 100).unwrap();
    assert_eq!(fx.events().collect::<Vec<_>>(), [JobEvent::Queued]);
    assert_eq!(
        handle(&mut job, Event::Promote, 100),
        Err(Rejected::InvalidTransition {
            state: StateKind::Queued,
            event: "promote"
        })
    );
}

#[test]
fn each_claim_counts_an_attempt_and_issues_a_larger_token() {
    let mut job = submitted(spec().with_timeout(MS * 50_000), 0);
    let fx = handle(&mut job, Event::Claim, 3).unwrap();
    assert!(fx.contains(&Effect::Emit(JobEvent::Started { attempt: 1 })));
    assert!(fx.contains(&Effect::Wake(at(10_003))));
    let JobState::Running { attempt, lease } = *job.state() else {
        panic!("not running: {:?}", job.state());
    };
    assert_eq!(attempt, 1);
    assert_eq!(lease.expires_at, at(10_003));
    assert_eq!(lease.deadline, Some(at(50_003)));
    assert_eq!(job.started_at(), Some(at(3)));
    assert_eq!(job.wait_time(), Some(MS * 3));
    let first = lease.token;
    handle(&mut job, fail(first, FailKind::Retryable), 4).unwrap();
    let second = claim(&mut job, 200);
    assert!(second > first);
    assert_eq!(job.attempts(), 2);
    assert_eq!(job.last_token(), second);
}

#[test]
fn heartbeats_renew_the_lease_but_not_past_the_deadline() {
    let mut job = submitted(spec().with_timeout(MS * 15_000), 0);
    let token = claim(&mut job, 0);
    let fx = handle(&mut job, Event::Heartbeat { token }, 4_000).unwrap();
    assert_eq!(
        fx.as_slice(),
        [Effect::Persist(Delta::Lease), Effect::Wake(at(14_000))]
    );
    // deadline 15 s + lease 10 s caps the lease at 25 s.
    handle(&mut job, Event::Heartbeat { token }, 13_000).unwrap();
    handle(&mut job, Event::Heartbeat { token }, 22_000).unwrap();
    assert_eq!(job.state().lease().unwrap().expires_at, at(25_000));
    assert_eq!(
        handle(&mut job, Event::Heartbeat { token }, 25_000),
        Err(Rejected::LeaseExpired {
            token,
            expired_at: at(25_000)
        })
    );
    let stale = FencingToken::new(token.get() + 7);
    assert_eq!(
        handle(&mut job, Event::Heartbeat { token: stale }, 1),
        Err(Rejected::StaleToken {
            presented: stale,
            current: Some(token)
        })
    );
}

#[test]
fn progress_is_emitted_always_and_persisted_throttled() {
    let mut job = submitted(spec(), 0);
    let token = claim(&mut job, 0);
    let report = |f: f64| Event::Progress {
        token,
        progress: Progress::new(f, "step").unwrap(),
    };
    let fx = handle(&mut job, report(0.1), 10).unwrap();
    assert!(fx.contains(&Effect::Persist(Delta::Progress)));
    assert!(fx.contains(&Effect::Emit(JobEvent::Progress)));
    let fx = handle(&mut job, report(0.2), 20).unwrap();
    assert!(!fx.contains(&Effect::Persist(Delta::Progress)));
    assert!(fx.contains(&Effect::Wake(at(260))));
    handle(&mut job, report(0.3), 30).unwrap();
    assert_eq!(job.poll_timeout(), Some(at(260)));
    assert_eq!(job.poll_progress(at(259)), None);
    assert_eq!(
        job.poll_progress(at(260)),
        Some(Effect::Persist(Delta::Progress))
    );
    assert_eq!(job.progress().unwrap().fraction(), 0.3);
    assert_eq!(job.poll_timeout(), Some(at(10_000)));
}

#[test]
fn completion_is_final_and_frees_lease_and_key() {
    let mut job = submitted(spec().with_unique_key("k"), 0);
    let token = claim(&mut job, 0);
    let fx = handle(&mut job, complete(token), 500).unwrap();
    assert_eq!(
        fx.as_slice(),
        [
            Effect::Persist(Delta::State),
            Effect::Emit(JobEvent::Completed),
            Effect::ReleaseLease,
            Effect::ReleaseUniqueKey
        ]
    );
    assert_eq!(*job.state(), JobState::Completed);
    assert_eq!(job.result(), Some("42"));
    assert_eq!(job.finished_at(), Some(at(500)));
    assert_eq!(job.run_time(), Some(MS * 500));
    for event in [Event::Claim, Event::Cancel, Event::Retry, Event::Expire] {
        assert!(matches!(
            handle(&mut job, event, 600),
            Err(Rejected::InvalidTransition {
                state: StateKind::Completed,
                ..
            })
        ));
    }
    // The same outcome twice is a stale report, not a second completion.
    assert_eq!(
        handle(&mut job, complete(token), 600),
        Err(Rejected::StaleToken {
            presented: token,
            current: None
        })
    );
}

#[test]
fn a_fenced_worker_cannot_overwrite_the_newer_attempt() {
    let mut job = submitted(spec(), 0);
    let old = claim(&mut job, 0);
    // The first worker hangs; its lease expires and the job is recovered.
    assert_eq!(
        handle(&mut job, complete(old), 10_000),
        Err(Rejected::LeaseExpired {
            token: old,
            expired_at: at(10_000)
        })
    );
    let fx = handle(&mut job, Event::Expire, 10_000).unwrap();
    assert!(fx.contains(&Effect::Emit(JobEvent::Stalled { stalls: 1 })));
    let new = claim(&mut job, 10_001);
    let before = job.clone();
    let err = handle(&mut job, complete(old), 10_002).unwrap_err();
    assert_eq!(
        err,
        Rejected::StaleToken {
            presented: old,
            current: Some(new)
        }
    );
    assert_eq!(
        err.to_string(),
        "stale lease token 1: the job is running under token 2"
    );
    assert_eq!(job, before, "a rejected event changes nothing");
    assert!(handle(&mut job, fail(old, FailKind::Permanent), 10_002).is_err());
    assert!(handle(&mut job, Event::Release { token: old }, 10_002).is_err());
    handle(&mut job, complete(new), 10_003).unwrap();
    assert_eq!(*job.state(), JobState::Completed);
}

#[test]
fn retryable_failures_back_off_then_the_last_attempt_is_dead() {
    let mut job = submitted(spec().with_unique_key("k"), 0);
    let t1 = claim(&mut job, 0);
    let fx = handle(&mut job, fail(t1, FailKind::Retryable), 10).unwrap();
    assert_eq!(*job.state(), JobState::RetryScheduled { at: at(110) });
    assert!(fx.contains(&Effect::Emit(JobEvent::RetryScheduled {
        attempt: 1,
        at: at(110)
    })));
    assert!(fx.contains(&Effect::Wake(at(110))));
    assert!(!fx.contains(&Effect::ReleaseUniqueKey));
    assert_eq!(job.error(), Some("boom"));
    assert_eq!(
        handle(&mut job, Event::Claim, 109),
        Err(Rejected::NotDue { at: at(110) })
    );
    let t2 = claim(&mut job, 110);
    handle(&mut job, fail(t2, FailKind::Retryable), 120).unwrap();
    assert_eq!(*job.state(), JobState::RetryScheduled { at: at(320) });
    let t3 = claim(&mut job, 320);
    let fx = handle(&mut job, fail(t3, FailKind::Retryable), 330).unwrap();
    assert_eq!(
        *job.state(),
        JobState::Dead {
            reason: DeadReason::AttemptsExhausted
        }
    );
    assert!(fx.contains(&Effect::ReleaseUniqueKey));
    assert_eq!(job.attempts(), 3);
    assert_eq!(
        handle(&mut job, Event::Claim, 1_000),
        Err(Rejected::InvalidTransition {
            state: StateKind::Dead,
            event: "claim"
        })
    );
}

#[test]
fn a_permanent_failure_or_an_exhausted_policy_is_dead_at_once() {
    let mut job = submitted(spec(), 0);
    let t = claim(&mut job, 0);
    handle(&mut job, fail(t, FailKind::Permanent), 1).unwrap();
    assert_eq!(
        *job.state(),
        JobState::Dead {
            reason: DeadReason::Permanent
        }
    );
    // A policy allowing no retry wins over max_attempts.
    let policy = Backoff::new(MS, MS, 0).unwrap();
    let mut job = submitted(spec().with_backoff(policy).with_max_attempts(5), 0);
    let t = claim(&mut job, 0);
    handle(&mut job, fail(t, FailKind::Retryable), 1).unwrap();
    assert_eq!(
        *job.state(),
        JobState::Dead {
            reason: DeadReason::AttemptsExhausted
        }
    );
}

#[test]
fn jittered_retry_delays_stay_within_the_policy() {
    let policy = Backoff::new(MS * 100, MS * 1_000, u32::MAX)
        .unwrap()
        .with_jitter(Jitter::Full);
    for random in [0, 1 << 20, u64::MAX / 3, u64::MAX] {
        let mut job = submitted(spec().with_backoff(policy).with_max_attempts(5), 0);
        let mut now = 0;
        for retry in 0..4 {
            let t = claim(&mut job, now);
            job.handle(
                fail(t, FailKind::Retryable),
                at(now + 1),
                random,
                &lifecycle(),
            )
            .unwrap();
            let ready = job.state().ready_at().unwrap();
            let delay = elapsed(ready, at(now + 1));
            assert!(delay <= policy.ceiling(retry).unwrap(), "{delay:?}");
            assert_eq!(job.last_retry_delay(), Some(delay));
            now = ready.unix_millis() + 1;
        }
    }
}

#[test]
fn a_stall_requeues_and_too_many_stalls_are_dead() {
    let mut job = submitted(spec().with_max_attempts(10), 0);
    let t = claim(&mut job, 0);
    assert_eq!(
        handle(&mut job, Event::Expire, 9_999),
        Err(Rejected::NotDue { at: at(10_000) })
    );
    let fx = handle(&mut job, Event::Expire, 10_000).unwrap();
    assert_eq!(*job.state(), JobState::Queued);
    assert_eq!(job.ready_at(), at(10_000));
    assert!(fx.contains(&Effect::ReleaseLease));
    assert!(fx.contains(&Effect::Emit(JobEvent::Queued)));
    assert!(handle(&mut job, Event::Heartbeat { token: t }, 10_001).is_err());
    claim(&mut job, 10_001);
    let fx = handle(&mut job, Event::Expire, 20_001).unwrap();
    assert_eq!(
        fx.events().collect::<Vec<_>>(),
        [
            JobEvent::Stalled { stalls: 2 },
            JobEvent::Dead {
                reason: DeadReason::StalledTooOften
            }
        ]
    );
    assert_eq!(job.stalls(), 2);
    assert!(job.error().unwrap().contains("stalled too often"));
}

#[test]
fn a_stall_of_the_last_attempt_is_dead() {
    let mut job = submitted(spec().with_max_attempts(1), 0);
    claim(&mut job, 0);
    handle(&mut job, Event::Expire, 10_000).unwrap();
    assert_eq!(
        *job.state(),
        JobState::Dead {
            reason: DeadReason::AttemptsExhausted
        }
    );
    assert_eq!(job.attempts(), 1);
}

#[test]
fn a_lease_expiring_after_the_deadline_is_a_timed_out_attempt() {
    let mut job = submitted(spec().with_timeout(MS * 2_000), 0);
    claim(&mut job, 0);
    let fx = handle(&mut job, Event::Expire, 10_000).unwrap();
    assert_eq!(*job.state(), JobState::RetryScheduled { at: at(10_100) });
    assert!(!fx.events().any(|e| matches!(e, JobEvent::Stalled { .. })));
    assert_eq!(job.stalls(), 0);
    assert_eq!(job.error(), Some("attempt timed out after 2s"));
}

#[test]
fn cancel_stops_waiting_jobs_at_once_and_running_ones_on_acknowledgement() {
    let mut job = submitted(spec().with_run_at(RunAt::After(MS * 50)), 0);
    let fx = handle(&mut job, Event::Cancel, 1).unwrap();
    assert_eq!(*job.state(), JobState::Cancelled);
    assert!(!fx.contains(&Effect::ReleaseLease));
    assert!(handle(&mut job, Event::Cancel, 2).is_err());

    let mut job = submitted(spec(), 0);
    let token = claim(&mut job, 0);
    assert!(matches!(
        handle(&mut job, Event::AckCancel { token }, 1),
        Err(Rejected::InvalidTransition { .. })
    ));
    let fx = handle(&mut job, Event::Cancel, 1).unwrap();
    assert_eq!(fx.events().collect::<Vec<_>>(), [JobEvent::CancelRequested]);
    assert!(job.state().lease().unwrap().cancel_requested);
    // A second cancel changes nothing.
    assert!(handle(&mut job, Event::Cancel, 2).unwrap().is_empty());
    let fx = handle(&mut job, Event::AckCancel { token }, 3).unwrap();
    assert_eq!(*job.state(), JobState::Cancelled);
    assert!(fx.contains(&Effect::ReleaseLease));

    // A running job asked to stop whose worker vanishes, fails or releases
    // ends cancelled, not retried.
    for outcome in 0..3 {
        let mut job = submitted(spec(), 0);
        let token = claim(&mut job, 0);
        handle(&mut job, Event::Cancel, 1).unwrap();
        let (event, now) = match outcome {
            0 => (Event::Expire, 10_000),
            1 => (fail(token, FailKind::Retryable), 5),
            _ => (Event::Release { token }, 5),
        };
        handle(&mut job, event, now).unwrap();
        assert_eq!(*job.state(), JobState::Cancelled, "outcome {outcome}");
    }
}

#[test]
fn release_gives_the_attempt_back() {
    let mut job = submitted(spec().with_max_attempts(1), 0);
    let token = claim(&mut job, 0);
    let fx = handle(&mut job, Event::Release { token }, 5).unwrap();
    assert_eq!(*job.state(), JobState::Queued);
    assert_eq!(job.attempts(), 0);
    assert!(fx.contains(&Effect::Emit(JobEvent::Released)));
    assert!(fx.contains(&Effect::ReleaseLease));
    // Its only attempt is still there.
    let token = claim(&mut job, 6);
    handle(&mut job, complete(token), 7).unwrap();
}

#[test]
fn the_retry_command_revives_dead_and_waiting_jobs() {
    let mut job = submitted(spec().with_max_attempts(1), 0);
    let t = claim(&mut job, 0);
    handle(&mut job, fail(t, FailKind::Retryable), 1).unwrap();
    assert_eq!(job.state().kind(), StateKind::Dead);
    let fx = handle(&mut job, Event::Retry, 50).unwrap();
    assert_eq!(fx.events().collect::<Vec<_>>(), [JobEvent::Retried]);
    assert_eq!(*job.state(), JobState::Queued);
    assert_eq!((job.attempts(), job.error()), (0, None));
    let t2 = claim(&mut job, 51);
    assert!(t2 > t, "tokens keep growing across retries");

    let mut job = submitted(spec(), 0);
    let t = claim(&mut job, 0);
    handle(&mut job, fail(t, FailKind::Retryable), 1).unwrap();
    handle(&mut job, Event::Retry, 2).unwrap();
    assert_eq!(*job.state(), JobState::Queued);
    assert!(handle(&mut job, Event::Retry, 3).is_err());
}

#[test]
fn a_job_restores_from_its_parts_and_damaged_parts_are_refused() {
    let mut job = submitted(spec(), 0);
    claim(&mut job, 0);
    let restored = Job::restore(job.to_parts(), &lifecycle()).unwrap();
    assert_eq!(restored, job);

    let damaged = |f: &dyn Fn(&mut JobParts)| {
        let mut parts = job.to_parts();
        f(&mut parts);
        Job::restore(parts, &lifecycle()).unwrap_err().to_string()
    };
    assert!(damaged(&|p| p.attempts = 4).contains("more attempts than max_attempts"));
    assert!(damaged(&|p| p.last_token = 9).contains("token"));
    assert!(damaged(&|p| p.state = JobState::Completed).contains("finish time"));
    assert!(
        damaged(&|p| {
            p.state = JobState::Queued;
            p.attempts = 3;
        })
        .contains("no attempt left")
    );
    assert!(damaged(&|p| p.spec.args = "{".into()).starts_with("stored job is invalid"));
}

// ------------------------------------------------------------- scheduler

fn scheduler(concurrency: usize) -> Scheduler {
    let mut config = SchedulerConfig::new(concurrency);
    config.lifecycle = lifecycle();
    Scheduler::new(config).unwrap()
}

fn prio(p: JobPriority) -> JobSpec {
    spec().with_priority(p)
}

fn claim_all(s: &mut Scheduler, now: i64) -> Vec<JobId> {
    core::iter::from_fn(|| s.claim(at(now)).map(|c| c.id)).collect()
}

#[test]
fn claims_follow_priority_then_submission_order_with_delays() {
    let mut s = scheduler(100);
    s.submit(id(1), prio(JobPriority::Low), at(0)).unwrap();
    s.submit(id(2), prio(JobPriority::High), at(0)).unwrap();
    let delayed = prio(JobPriority::High).with_run_at(RunAt::At(at(1_500)));
    s.submit(id(3), delayed, at(0)).unwrap();
    s.submit(id(4), prio(JobPriority::Low), at(0)).unwrap();
    s.submit(id(5), prio(JobPriority::Normal), at(0)).unwrap();
    assert_eq!(s.stats().delayed, 1);
    assert_eq!(claim_all(&mut s, 1_000), [id(2), id(5), id(1), id(4)]);
    assert_eq!(s.poll_timeout(), Some(at(1_500)));
    assert_eq!(claim_all(&mut s, 1_499), []);
    assert_eq!(claim_all(&mut s, 1_500), [id(3)]);
    // A due delayed job keeps its submission order among equals.
    let mut s = scheduler(100);
    s.submit(id(1), spec().with_run_at(RunAt::At(at(10))), at(0))
        .unwrap();
    s.submit(id(2), spec(), at(5)).unwrap();
    assert_eq!(claim_all(&mut s, 10), [id(1), id(2)]);
}

#[test]
fn the_global_limit_caps_running_jobs() {
    let mut s = scheduler(2);
    for n in 1..=3 {
        s.submit(id(n), spec(), at(0)).unwrap();
    }
    let claimed: Vec<_> = core::iter::from_fn(|| s.claim(at(1))).collect();
    assert_eq!(claimed.len(), 2);
    assert_eq!(s.running(), 2);
    s.complete(claimed[0].id, claimed[0].token, "1".into(), at(2))
        .unwrap();
    assert_eq!(claim_all(&mut s, 3), [id(3)]);
    assert_eq!(
        Scheduler::new(SchedulerConfig::new(0)).unwrap_err(),
        ConfigError::ZeroConcurrency
    );
}

#[test]
fn a_high_job_at_its_handler_limit_does_not_block_other_handlers() {
    let mut s = scheduler(10);
    s.set_handler_limit("resize", Some(1)).unwrap();
    assert_eq!(
        s.set_handler_limit("resize", Some(0)),
        Err(ConfigError::ZeroHandlerLimit)
    );
    let resize = |p| JobSpec::new("resize", "{}").with_priority(p);
    let mail = |p| JobSpec::new("mail", "{}").with_priority(p);
    s.submit(id(1), resize(JobPriority::High), at(0)).unwrap();
    s.submit(id(2), resize(JobPriority::High), at(0)).unwrap();
    s.submit(id(3), resize(JobPriority::Low), at(0)).unwrap();
    s.submit(id(4), mail(JobPriority::Low), at(0)).unwrap();
    s.submit(id(5), mail(JobPriority::Normal), at(0)).unwrap();
    // resize runs one job; its second HIGH job cannot run, so mail's jobs
    // go ahead in their own priority order.
    let first = s.claim(at(1)).unwrap();
    assert_eq!(first.id, id(1));
    assert_eq!(claim_all(&mut s, 1), [id(5), id(4)]);
    // The freed slot goes to resize's HIGH job, before its LOW one.
    s.complete(first.id, first.token, "{}".into(), at(2))
        .unwrap();
    s.submit(id(6), mail(JobPriority::Normal), at(2)).unwrap();
    assert_eq!(claim_all(&mut s, 3), [id(2), id(6)]);
    // Raising the limit lets the LOW one run too.
    s.set_handler_limit("resize", None).unwrap();
    assert_eq!(claim_all(&mut s, 4), [id(3)]);
}

#[test]
fn unique_keys_refuse_duplicates_while_pending() {
    let mut s = scheduler(4);
    s.submit(id(1), spec().with_unique_key("nightly"), at(0))
        .unwrap();
    assert_eq!(
        s.submit(id(2), spec().with_unique_key("nightly"), at(0)),
        Err(SchedulerError::DuplicateKey { existing: id(1) })
    );
    assert_eq!(
        s.submit(id(1), spec(), at(0)),
        Err(SchedulerError::DuplicateId(id(1)))
    );
    let c = s.claim(at(1)).unwrap();
    s.fail(c.id, c.token, "x".into(), FailKind::Permanent, at(2), 0)
        .unwrap();
    // Dead: the key is free again, and the dead job cannot be revived
    // while another job holds it.
    s.submit(id(2), spec().with_unique_key("nightly"), at(3))
        .unwrap();
    assert_eq!(
        s.retry(id(1), at(4)),
        Err(SchedulerError::DuplicateKey { existing: id(2) })
    );
    s.cancel(id(2), at(5)).unwrap();
    s.retry(id(1), at(6)).unwrap();
    assert_eq!(
        s.submit(id(3), spec().with_unique_key("nightly"), at(7)),
        Err(SchedulerError::DuplicateKey { existing: id(1) })
    );
}

#[test]
fn expired_leases_are_recovered_in_batches_without_blocking_claims() {
    let mut s = scheduler(100);
    for n in 1..=25 {
        s.submit(id(n), spec(), at(0)).unwrap();
    }
    let claimed: Vec<_> = core::iter::from_fn(|| s.claim(at(0))).collect();
    assert_eq!(claimed.len(), 25);
    s.submit(
        id(99),
        prio(JobPriority::High).with_timeout(MS * 300),
        at(5),
    )
    .unwrap();
    assert_eq!(s.poll_timeout(), Some(at(10_000)));
    assert_eq!(s.poll_expired(at(9_999), 10, 7), 0);
    assert_eq!(s.poll_expired(at(10_000), 10, 7), 10);
    // Between batches, claiming goes on: the HIGH job first.
    let high = s.claim(at(10_000)).unwrap();
    assert_eq!((high.id, high.deadline), (id(99), Some(at(10_300))));
    assert_eq!(s.poll_expired(at(10_000), 10, 7), 10);
    assert_eq!(s.poll_expired(at(10_000), 10, 7), 5);
    assert_eq!(s.poll_expired(at(10_000), 10, 7), 0);
    let stats = s.stats();
    assert_eq!(stats.stalls_recovered, 25);
    assert_eq!((stats.queue_size, stats.running), (25, 1));
    // The recovered workers are fenced.
    let old = claimed[0];
    assert!(matches!(
        s.complete(old.id, old.token, "1".into(), at(10_001)),
        Err(SchedulerError::Rejected(Rejected::StaleToken { .. }))
    ));
    assert_eq!(s.stats().fenced, 1);
    let events: Vec<_> = core::iter::from_fn(|| s.poll_event()).collect();
    let stalled = events
        .iter()
        .filter(|(_, e)| matches!(e, JobEvent::Stalled { stalls: 1 }))
        .count();
    assert_eq!(stalled, 25);
}

#[test]
fn retention_prunes_finished_jobs_by_age_and_count_but_keeps_the_dead() {
    let mut config = SchedulerConfig::new(10);
    config.retention = Retention {
        max_age: Duration::from_secs(60),
        max_count: 2,
    };
    let mut s = Scheduler::new(config).unwrap();
    for n in 1..=4 {
        s.submit(id(n), spec(), at(0)).unwrap();
        let c = s.claim(at(0)).unwrap();
        if n == 4 {
            s.fail(
                c.id,
                c.token,
                "x".into(),
                FailKind::Permanent,
                at(n as i64),
                0,
            )
            .unwrap();
        } else {
            s.complete(c.id, c.token, "1".into(), at(n as i64)).unwrap();
        }
    }
    assert_eq!(s.poll_timeout(), Some(at(60_001)));
    assert_eq!(s.prune(at(10)), 1, "over the count: the oldest goes");
    assert!(s.job(id(1)).is_none());
    assert_eq!(s.prune(at(60_002)), 1);
    assert_eq!(s.prune(at(60_003)), 1);
    assert_eq!(s.prune(at(1_000_000)), 0);
    let stats = s.stats();
    assert_eq!((stats.completed, stats.dead, stats.pruned), (0, 1, 3));
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(s.remove(id(4)).unwrap().id(), id(4));
    assert!(s.is_empty());
    s.submit(id(5), spec(), at(0)).unwrap();
    assert_eq!(
        s.remove(id(5)).unwrap_err(),
        SchedulerError::NotFinished(StateKind::Queued)
    );
    assert_eq!(
        s.remove(id(6)).unwrap_err().to_string(),
        alloc::format!("unknown job {}", id(6))
    );
}

#[test]
fn stats_and_histograms_follow_the_jobs() {
    let mut s = scheduler(4);
    s.submit(id(1), spec(), at(0)).unwrap();
    s.submit(id(2), spec().with_run_at(RunAt::After(MS * 5)), at(0))
        .unwrap();
    let c = s.claim(at(3)).unwrap();
    s.progress(c.id, c.token, Progress::new(0.5, "half").unwrap(), at(4))
        .unwrap();
    assert!(
        !s.progress(c.id, c.token, Progress::new(0.6, "").unwrap(), at(5))
            .unwrap()
    );
    s.fail(c.id, c.token, "x".into(), FailKind::Retryable, at(7), 0)
        .unwrap();
    assert_eq!(s.wait_times().count(), 1);
    assert_eq!(s.wait_times().max(), Some(3_000));
    assert_eq!(s.run_times().max(), Some(4_000));
    let stats = s.stats();
    assert_eq!(
        (
            stats.queue_size,
            stats.delayed,
            stats.retry_scheduled,
            stats.failed
        ),
        (0, 1, 1, 1)
    );
    assert!(!s.is_idle());
    let c2 = s.claim(at(7)).unwrap();
    assert_eq!(c2.id, id(2));
    s.complete(c2.id, c2.token, "1".into(), at(8)).unwrap();
    s.cancel(id(1), at(9)).unwrap();
    assert!(s.is_idle());
    let stats = s.stats();
    assert_eq!(
        (stats.completed, stats.cancelled, stats.completed_total),
        (1, 1, 1)
    );
}

#[test]
fn a_running_job_learns_of_its_cancel_by_heartbeat() {
    let mut s = scheduler(1);
    s.submit(id(1), spec(), at(0)).unwrap();
    s.submit(id(2), spec(), at(0)).unwrap();
    let c = s.claim(at(0)).unwrap();
    assert_eq!(c.deadline, None);
    assert!(!s.heartbeat(c.id, c.token, at(1)).unwrap().cancel_requested);
    assert_eq!(s.cancel(c.id, at(2)), Ok(StateKind::Running));
    let lease = s.heartbeat(c.id, c.token, at(3)).unwrap();
    assert!(lease.cancel_requested);
    assert_eq!(lease.expires_at, at(10_003));
    // The slot stays taken until the worker acknowledges.
    assert_eq!(s.claim(at(4)), None);
    s.ack_cancel(c.id, c.token, at(5)).unwrap();
    assert_eq!(s.job(c.id).unwrap().state().kind(), StateKind::Cancelled);
    assert_eq!(s.claim(at(6)).map(|c| c.id), Some(id(2)));
}

#[test]
fn a_saved_scheduler_restores_with_order_keys_and_leases() {
    let mut s = scheduler(4);
    s.submit(id(1), prio(JobPriority::Low), at(0)).unwrap();
    s.submit(id(2), prio(JobPriority::High).with_unique_key("k"), at(0))
        .unwrap();
    s.submit(id(3), prio(JobPriority::Low), at(0)).unwrap();
    s.submit(id(4), prio(JobPriority::High), at(0)).unwrap();
    let running = s.claim(at(1)).unwrap();
    assert_eq!(running.id, id(2));

    let mut saved: Vec<JobParts> = s.jobs().map(Job::to_parts).collect();
    saved.sort_by_key(|p| p.id);
    let mut back = scheduler(4);
    for parts in saved {
        back.restore(Job::restore(parts, &lifecycle()).unwrap())
            .unwrap();
    }
    assert_eq!(back.stats(), s.stats());
    assert_eq!(
        back.submit(id(5), spec().with_unique_key("k"), at(2)),
        Err(SchedulerError::DuplicateKey { existing: id(2) })
    );
    let again = back.job(id(1)).unwrap().clone();
    assert_eq!(back.restore(again), Err(SchedulerError::DuplicateId(id(1))));
    assert_eq!(claim_all(&mut back, 2), [id(4), id(1), id(3)]);
    // The worker of the running job is gone: its lease expires and the job
    // runs again.
    assert_eq!(back.poll_expired(at(10_001), 10, 0), 1);
    let c = back.claim(at(10_001)).unwrap();
    assert_eq!((c.id, c.attempt), (id(2), 2));
    assert!(c.token > running.token);
}

// ------------------------------------------------- property test vs model

mod model {
    use super::*;
    use proptest::prelude::*;

    const CONCURRENCY: usize = 3;
    /// The handler with its own limit, and the limit.
    const LIMITED: &str = "limited";
    const LIMIT: usize = 1;

    #[derive(Clone, Debug)]
    enum Op {
        Submit {
            priority: u8,
            delay_ms: u16,
            max_attempts: u8,
        },
        Claim,
        Heartbeat(usize),
        Complete {
            pick: usize,
            stale: bool,
        },
        Fail {
            pick: usize,
            permanent: bool,
            random: u64,
        },
        Release(usize),
        Cancel(usize),
        Retry(usize),
        Tick(u16),
        Expire,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0u8..6, prop_oneof![Just(0u16), 1u16..3_000], 1u8..4).prop_map(
                |(priority, delay_ms, max_attempts)| Op::Submit { priority, delay_ms, max_attempts }
            ),
            4 => Just(Op::Claim),
            1 => any::<usize>().prop_map(Op::Heartbeat),
            3 => (any::<usize>(), proptest::bool::weighted(0.2))
                .prop_map(|(pick, stale)| Op::Complete { pick, stale }),
            2 => (any::<usize>(), proptest::bool::weighted(0.2), any::<u64>())
                .prop_map(|(pick, permanent, random)| Op::Fail { pick, permanent, random }),
            1 => any::<usize>().prop_map(Op::Release),
            1 => any::<usize>().prop_map(Op::Cancel),
            1 => any::<usize>().prop_map(Op::Retry),
            3 => (1u16..6_000).prop_map(Op::Tick),
            1 => Just(Op::Expire),
        ]
    }

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum M {
        /// Claimable from `at`; `retry` while a retry-scheduled job has not
        /// been promoted yet.
        Ready {
            at: Timestamp,
            retry: bool,
        },
        Running {
            token: FencingToken,
            expires: i64,
            cancel: bool,
        },
        Completed,
        Dead,
        Cancelled,
    }

    #[derive(Debug)]
    struct MJob {
        id: JobId,
        priority: JobPriority,
        seq: usize,
        max_attempts: u32,
        attempts: u32,
        stalls: u32,
        state: M,
        tokens: Vec<FencingToken>,
        completed_once: bool,
        /// Runs under the handler limited to one job at a time.
        limited: bool,
    }

    struct World {
        sched: Scheduler,
        jobs: Vec<MJob>,
        now: i64,
        lease_ms: i64,
        policy: Backoff,
    }

    impl World {
        fn new() -> Self {
            let mut config = SchedulerConfig::new(CONCURRENCY);
            config.lifecycle = lifecycle();
            config.retention.max_count = usize::MAX;
            let mut sched = Scheduler::new(config).unwrap();
            sched.set_handler_limit(LIMITED, Some(LIMIT)).unwrap();
            Self {
                sched,
                jobs: Vec::new(),
                now: 0,
                lease_ms: LEASE.as_millis() as i64,
                policy: Backoff::new(MS * 100, MS * 2_000, u32::MAX)
                    .unwrap()
                    .with_jitter(Jitter::Equal),
            }
        }

        fn running(&self) -> Vec<usize> {
            (0..self.jobs.len())
                .filter(|&i| matches!(self.jobs[i].state, M::Running { .. }))
                .collect()
        }

        /// The `n`th running job (modulo), with its token, expiry and
        /// cancel flag.
        fn pick_running(&self, n: usize) -> Option<(usize, FencingToken, i64, bool)> {
            let running = self.running();
            let i = *running.get(n % running.len().max(1))?;
            match self.jobs[i].state {
                M::Running {
                    token,
                    expires,
                    cancel,
                } => Some((i, token, expires, cancel)),
                _ => None,
            }
        }

        fn pick(&self, n: usize) -> Option<usize> {
            (!self.jobs.is_empty()).then(|| n % self.jobs.len())
        }

        fn step(&mut self, op: &Op) {
            let now = self.now;
            match *op {
                Op::Submit {
                    priority,
                    delay_ms,
                    max_attempts,
                } => {
                    // 0..3 for the unlimited handler, 3..6 for the limited one.
                    let limited = priority >= 3;
                    let priority = [JobPriority::High, JobPriority::Normal, JobPriority::Low]
                        [usize::from(priority % 3)];
                    let n = self.jobs.len();
                    let job_id = id(n as u128 + 1);
                    let spec = JobSpec::new(if limited { LIMITED } else { "free" }, "null")
                        .with_priority(priority)
                        .with_max_attempts(u32::from(max_attempts))
                        .with_backoff(self.policy)
                        .with_run_at(RunAt::After(MS * u32::from(delay_ms)));
                    self.sched.submit(job_id, spec, at(now)).unwrap();
                    self.jobs.push(MJob {
                        id: job_id,
                        priority,
                        seq: n,
                        max_attempts: u32::from(max_attempts),
                        attempts: 0,
                        stalls: 0,
                        state: M::Ready {
                            at: at(now + i64::from(delay_ms)),
                            retry: false,
                        },
                        tokens: Vec::new(),
                        completed_once: false,
                        limited,
                    });
                }
                Op::Claim => {
                    // The scheduler promotes every due job when asked to claim.
                    for j in &mut self.jobs {
                        if let M::Ready { at: t, retry } = &mut j.state {
                            if *t <= at(now) {
                                *retry = false;
                            }
                        }
                    }
                    let free = self.running().len() < CONCURRENCY;
                    let limited_busy = self
                        .running()
                        .iter()
                        .filter(|&&i| self.jobs[i].limited)
                        .count()
                        >= LIMIT;
                    let expected = self
                        .jobs
                        .iter()
                        .enumerate()
                        .filter(|(_, j)| matches!(j.state, M::Ready { at: t, .. } if t <= at(now)))
                        .filter(|(_, j)| !(j.limited && limited_busy))
                        .max_by_key(|(_, j)| (j.priority.priority(), core::cmp::Reverse(j.seq)))
                        .map(|(i, _)| i)
                        .filter(|_| free);
                    let got = self.sched.claim(at(now));
                    assert_eq!(got.map(|c| c.id), expected.map(|i| self.jobs[i].id));
                    if let (Some(c), Some(i)) = (got, expected) {
                        let j = &mut self.jobs[i];
                        assert!(!j.completed_once, "a completed job ran again");
                        assert!(j.tokens.iter().all(|&t| t < c.token), "tokens grow");
                        j.tokens.push(c.token);
                        j.attempts += 1;
                        assert_eq!(c.attempt, j.attempts);
                        assert_eq!(c.expires_at, at(now + self.lease_ms));
                        j.state = M::Running {
                            token: c.token,
                            expires: now + self.lease_ms,
                            cancel: false,
                        };
                    }
                }
                Op::Heartbeat(n) => {
                    let Some((i, token, expires, _)) = self.pick_running(n) else {
                        return;
                    };
                    let r = self.sched.heartbeat(self.jobs[i].id, token, at(now));
                    if now < expires {
                        let renewed = now + self.lease_ms;
                        assert_eq!(r.map(|l| l.expires_at), Ok(at(renewed)));
                        if let M::Running { expires, .. } = &mut self.jobs[i].state {
                            *expires = renewed;
                        }
                    } else {
                        assert!(matches!(
                            r,
                            Err(SchedulerError::Rejected(Rejected::LeaseExpired { .. }))
                        ));
                    }
                }
                Op::Complete { pick, stale } => {
                    let Some(i) = self.pick(pick) else { return };
                    let j = &mut self.jobs[i];
                    let Some(&last) = j.tokens.last() else { return };
                    let token = if stale {
                        FencingToken::new(last.get().saturating_sub(1))
                    } else {
                        last
                    };
                    let r = self.sched.complete(j.id, token, "1".into(), at(now));
                    match j.state {
                        M::Running {
                            token: t, expires, ..
                        } if t == token && now < expires => {
                            r.unwrap();
                            j.state = M::Completed;
                            j.completed_once = true;
                        }
                        _ => assert!(
                            matches!(
                                r,
                                Err(SchedulerError::Rejected(
                                    Rejected::StaleToken { .. } | Rejected::LeaseExpired { .. }
                                ))
                            ),
                            "{r:?} for {:?}",
                            j.state
                        ),
                    }
                }
                Op::Fail {
                    pick,
                    permanent,
                    random,
                } => {
                    let Some((i, token, expires, cancel)) = self.pick_running(pick) else {
                        return;
                    };
                    let j = &mut self.jobs[i];
                    let kind = if permanent {
                        FailKind::Permanent
                    } else {
                        FailKind::Retryable
                    };
                    let r = self
                        .sched
                        .fail(j.id, token, "e".into(), kind, at(now), random);
                    if now >= expires {
                        assert!(r.is_err());
                        return;
                    }
                    let state = r.unwrap();
                    j.state = if cancel {
                        M::Cancelled
                    } else if permanent || j.attempts >= j.max_attempts {
                        M::Dead
                    } else {
                        let JobState::RetryScheduled { at: ready } = state else {
                            panic!("expected a retry, got {state:?}");
                        };
                        // Equal jitter: between half the ceiling and the ceiling.
                        let ceiling = self.policy.ceiling(j.attempts - 1).unwrap();
                        let delay = elapsed(ready, at(now));
                        assert!(
                            delay <= ceiling && delay >= ceiling / 2,
                            "{delay:?} vs {ceiling:?}"
                        );
                        M::Ready {
                            at: ready,
                            retry: true,
                        }
                    };
                }
                Op::Release(n) => {
                    let Some((i, token, expires, cancel)) = self.pick_running(n) else {
                        return;
                    };
                    let j = &mut self.jobs[i];
                    let r = self.sched.release(j.id, token, at(now));
                    if now >= expires {
                        assert!(r.is_err());
                    } else if cancel {
                        r.unwrap();
                        j.state = M::Cancelled;
                    } else {
                        r.unwrap();
                        j.attempts -= 1;
                        j.state = M::Ready {
                            at: at(now),
                            retry: false,
                        };
                    }
                }
                Op::Cancel(n) => {
                    let Some(i) = self.pick(n) else { return };
                    let j = &mut self.jobs[i];
                    let r = self.sched.cancel(j.id, at(now));
                    match &mut j.state {
                        M::Ready { .. } => {
                            assert_eq!(r, Ok(StateKind::Cancelled));
                            j.state = M::Cancelled;
                        }
                        M::Running { cancel, .. } => {
                            assert_eq!(r, Ok(StateKind::Running));
                            *cancel = true;
                        }
                        _ => assert!(r.is_err()),
                    }
                }
                Op::Retry(n) => {
                    let Some(i) = self.pick(n) else { return };
                    let j = &mut self.jobs[i];
                    let r = self.sched.retry(j.id, at(now));
                    match j.state {
                        M::Dead | M::Ready { retry: true, .. } => {
                            r.unwrap();
                            j.attempts = 0;
                            j.stalls = 0;
                            j.state = M::Ready {
                                at: at(now),
                                retry: false,
                            };
                        }
                        _ => assert!(r.is_err()),
                    }
                }
                Op::Tick(ms) => self.now += i64::from(ms),
                Op::Expire => {
                    let expired = self
                        .jobs
                        .iter()
                        .filter(|j| matches!(j.state, M::Running { expires, .. } if expires <= now))
                        .count();
                    let mut handled = 0;
                    loop {
                        let n = self.sched.poll_expired(at(now), 2, 9);
                        assert!(n <= 2);
                        handled += n;
                        if n < 2 {
                            break;
                        }
                    }
                    assert_eq!(handled, expired);
                    for j in &mut self.jobs {
                        let M::Running {
                            expires, cancel, ..
                        } = j.state
                        else {
                            continue;
                        };
                        if expires > now {
                            continue;
                        }
                        j.state = if cancel {
                            M::Cancelled
                        } else {
                            j.stalls += 1;
                            if j.stalls > 1 || j.attempts >= j.max_attempts {
                                M::Dead
                            } else {
                                M::Ready {
                                    at: at(now),
                                    retry: false,
                                }
                            }
                        };
                    }
                }
            }
        }

        fn check(&self) {
            assert_eq!(self.sched.len(), self.jobs.len(), "no job is lost");
            let mut counts = [0usize; 7];
            for m in &self.jobs {
                let job = self.sched.job(m.id).expect("every job is kept");
                let kind = job.state().kind();
                let expected = match m.state {
                    // Checked below: queued, delayed or retry-scheduled.
                    M::Ready { .. } => kind,
                    M::Running { .. } => StateKind::Running,
                    M::Completed => StateKind::Completed,
                    M::Dead => StateKind::Dead,
                    M::Cancelled => StateKind::Cancelled,
                };
                assert_eq!(kind, expected, "{m:?}");
                if let M::Ready { at: t, retry } = m.state {
                    assert!(
                        matches!(
                            kind,
                            StateKind::Queued | StateKind::Delayed | StateKind::RetryScheduled
                        ),
                        "{kind} for {m:?}"
                    );
                    assert_eq!(job.state().ready_at().is_some(), kind != StateKind::Queued);
                    if retry {
                        assert_eq!(kind, StateKind::RetryScheduled);
                    }
                    if kind != StateKind::Queued {
                        assert_eq!(job.state().ready_at(), Some(t), "delays are honoured");
                    }
                }
                if let M::Running {
                    token,
                    expires,
                    cancel,
                } = m.state
                {
                    let lease = job.state().lease().unwrap();
                    assert_eq!(
                        (lease.token, lease.expires_at, lease.cancel_requested),
                        (token, at(expires), cancel)
                    );
                    assert_eq!(job.last_token(), token, "one valid lease: the last issued");
                }
                assert_eq!(job.attempts(), m.attempts);
                assert!(
                    job.attempts() <= m.max_attempts,
                    "attempts never exceed the max"
                );
                counts[kind as usize] += 1;
            }
            for kind in StateKind::ALL {
                assert_eq!(self.sched.count(kind), counts[kind as usize], "{kind}");
            }
            assert!(self.sched.running() <= CONCURRENCY);
            let limited_running = self
                .running()
                .iter()
                .filter(|&&i| self.jobs[i].limited)
                .count();
            assert!(limited_running <= LIMIT, "the handler limit holds");
            assert_eq!(self.sched.running(), self.running().len());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn the_scheduler_matches_the_model(ops in proptest::collection::vec(op(), 1..120)) {
            let mut world = World::new();
            for op in &ops {
                world.step(op);
                world.check();
            }
            // Drain: every job reaches a final state, none is lost.
            let mut world = world;
            for _ in 0..200 {
                world.step(&Op::Tick(5_000));
                world.step(&Op::Expire);
                world.step(&Op::Claim);
                world.step(&Op::Claim);
                world.step(&Op::Claim);
                let running = world.running();
                for (k, _) in running.iter().enumerate() {
                    world.step(&Op::Fail { pick: k, permanent: false, random: 1 });
                }
                world.check();
                if world.sched.is_idle() {
                    break;
                }
            }
            prop_assert!(world.sched.is_idle());
        }
    }
}

mod arithmetic {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// `after` in seconds and nanoseconds agrees with the sum of
        /// nanoseconds, saturating at the largest timestamp.
        #[test]
        fn after_is_the_nanosecond_sum(secs in -62_135_596_800i64..253_402_300_799, nanos in 0u32..1_000_000_000, d_secs in 0u64..u64::MAX, d_nanos in 0u32..1_000_000_000, small in any::<bool>()) {
            let t = Timestamp::from_unix(secs, nanos).unwrap();
            let d = Duration::new(if small { d_secs % 1_000_000 } else { d_secs }, d_nanos);
            let want = i128::try_from(d.as_nanos())
                .ok()
                .and_then(|n| t.unix_nanos().checked_add(n))
                .and_then(|n| Timestamp::from_unix_nanos(n).ok())
                .unwrap_or(Timestamp::MAX);
            prop_assert_eq!(after(t, d), want);
        }
    }
}

#[test]
fn a_scheduler_not_recording_events_queues_none_and_counts_alike() {
    let mut quiet = Scheduler::new(SchedulerConfig::new(4)).unwrap();
    quiet.set_record_events(false);
    let mut loud = Scheduler::new(SchedulerConfig::new(4)).unwrap();
    let t = Timestamp::from_unix_millis(1_000).unwrap();
    for s in [&mut quiet, &mut loud] {
        for n in 0..3u128 {
            s.submit(
                JobId::new(Uuid::from_u128(n + 1)),
                JobSpec::new("h", "null"),
                t,
            )
            .unwrap();
        }
        let c = s.claim(t).unwrap();
        s.complete(c.id, c.token, "null".into(), t).unwrap();
    }
    assert_eq!(quiet.poll_event(), None);
    assert!(loud.poll_event().is_some());
    assert_eq!(quiet.stats(), loud.stats());
    // Turning it off drops what was queued.
    loud.set_record_events(false);
    assert_eq!(loud.poll_event(), None);
}
