//! The outcome check of the worker crash tests, shared by the SQLite and
//! Redis stores: a job mix of `noop`, `sleep`, `fail` once and `fail`
//! permanently, run by a worker killed with `SIGKILL` many times.

use serde_json::Value;

/// Checks every listed job ended as its handler dictates, and that exactly
/// `dead` jobs (the permanent failures) are dead; returns how many jobs ran
/// more attempts than their handler needs, which only a kill explains. At
/// most `per_kill` jobs (the worker's concurrency) may run again per kill.
pub(crate) fn check_outcomes(all: &[Value], dead: usize, kills: usize, per_kill: usize) -> usize {
    let mut excess_jobs = 0;
    for j in all {
        let handler = j["handler"].as_str().unwrap();
        let permanent = handler == "fail"
            && j["error"]
                .as_str()
                .is_some_and(|e| e.contains("fails as asked"))
            && j["state"] == "dead";
        let attempts = j["attempts"].as_u64().unwrap();
        let expected = if permanent {
            assert_eq!(j["state"], "dead", "{j}");
            1
        } else {
            assert_eq!(j["state"], "completed", "{j}");
            if handler == "fail" { 2 } else { 1 }
        };
        assert!(attempts >= expected, "{j}");
        if attempts > expected {
            excess_jobs += 1;
        }
    }
    let found = all.iter().filter(|j| j["state"] == "dead").count();
    assert_eq!(found, dead, "exactly the permanent failures are dead");
    assert!(
        excess_jobs <= kills * per_kill,
        "{excess_jobs} jobs re-ran after {kills} kills"
    );
    excess_jobs
}
