//! The process-wide generators through their public API: the hybrid switch,
//! bulk fills, and uniqueness while threads generate and switch at once.

use std::collections::HashSet;

use mechops_core::uuid::{Mode, Uuid, Variant, Version};
use mechops_std::clock::unix_millis_now;
use mechops_std::uuid::{
    fill_fast_uuids, fill_secure_uuids, generate_uuid, generate_v7, hybrid_mode, set_use_fast_mode,
    try_generate_uuid, try_generate_v7,
};

#[test]
fn hybrid_starts_secure_and_switches_at_run_time() {
    // This is the only test in this binary that switches, so the initial
    // mode is observable.
    assert_eq!(hybrid_mode(), Mode::Secure);
    set_use_fast_mode(true);
    assert_eq!(hybrid_mode(), Mode::Fast);
    let fast = generate_uuid();
    set_use_fast_mode(false);
    assert_eq!(hybrid_mode(), Mode::Secure);
    let secure = try_generate_uuid().unwrap();
    for u in [fast, secure] {
        assert_eq!(u.version(), Version::V4);
        assert_eq!(u.variant(), Variant::Rfc9562);
    }
    assert_ne!(fast, secure);

    // Threads generating while another thread flips the mode: every UUID
    // is a valid v4 and none repeats.
    let all: Vec<Uuid> = std::thread::scope(|s| {
        let toggler = s.spawn(|| {
            for i in 0..1_000 {
                set_use_fast_mode(i % 2 == 0);
            }
        });
        let workers: Vec<_> = (0..3)
            .map(|_| s.spawn(|| (0..2_000).map(|_| generate_uuid()).collect::<Vec<_>>()))
            .collect();
        toggler.join().unwrap();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    assert!(all.iter().all(|u| u.version() == Version::V4));
    assert_eq!(all.iter().collect::<HashSet<_>>().len(), all.len());
    set_use_fast_mode(false);
}

#[test]
fn bulk_fills_agree_with_the_single_forms() {
    let mut fast = vec![Uuid::NIL; 1_000];
    fill_fast_uuids(&mut fast).unwrap();
    let mut secure = vec![Uuid::NIL; 1_000];
    fill_secure_uuids(&mut secure).unwrap();
    for u in fast.iter().chain(&secure) {
        assert_eq!(u.version(), Version::V4);
        assert_eq!(u.variant(), Variant::Rfc9562);
    }
    let unique: HashSet<&Uuid> = fast.iter().chain(&secure).collect();
    assert_eq!(unique.len(), 2_000);
}

#[test]
fn v7_tracks_the_system_clock_and_never_goes_back() {
    let before = unix_millis_now();
    let ids: Vec<Uuid> = (0..5_000).map(|_| generate_v7()).collect();
    let after = unix_millis_now();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    for id in &ids {
        let ms = id.unix_millis().unwrap();
        // Never behind the clock; ahead only by what 5000 IDs can borrow.
        assert!(ms >= before, "{ms} < {before}");
        assert!(ms <= after + 1, "{ms} > {after}");
    }
    assert!(try_generate_v7().unwrap() > ids[ids.len() - 1]);
}
