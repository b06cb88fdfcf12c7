//! Zoned formatting against the core parser, and the system clock as a
//! core `WallClock`.

use mechops_core::time::{Precision, Timestamp, Unit, WallClock};
use mechops_std::clock::SystemClock;
use mechops_std::tz::{Zone, format_in_zone};
use proptest::prelude::*;

const ZONES: &[&str] = &[
    "UTC",
    "Europe/Paris",
    "Europe/Amsterdam",
    "America/New_York",
    "America/St_Johns",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn zoned_text_names_the_same_instant(
        secs in Timestamp::MIN.unix_secs()..Timestamp::MAX.unix_secs() - 86_400,
        nanos in 0u32..1_000_000_000,
        zone in proptest::sample::select(ZONES),
    ) {
        let instant = Timestamp::from_unix(secs, nanos).unwrap();
        let zone = Zone::get(zone).unwrap();
        let text = zone.format_rfc3339(instant, Precision::Millis).unwrap();
        let (back, offset) = Timestamp::parse_rfc3339_with_offset(text.as_bytes()).unwrap();
        prop_assert_eq!(back, instant.truncate(Unit::Millisecond));
        prop_assert_eq!(offset, zone.offset_at(instant).unwrap());
        let exact = zone.offset_seconds_at(instant);
        prop_assert!((offset.seconds() - exact).abs() <= 30, "{} vs {}", offset.seconds(), exact);
    }
}

#[test]
fn daylight_saving_transitions_switch_the_offset() {
    let before = Timestamp::parse_rfc3339(b"2024-03-31T00:59:59Z").unwrap();
    let after = Timestamp::parse_rfc3339(b"2024-03-31T01:00:00Z").unwrap();
    assert_eq!(
        format_in_zone(before, "Europe/Berlin", Precision::Seconds).unwrap(),
        "2024-03-31T01:59:59+01:00"
    );
    assert_eq!(
        format_in_zone(after, "Europe/Berlin", Precision::Seconds).unwrap(),
        "2024-03-31T03:00:00+02:00"
    );
    assert_eq!(
        format_in_zone(after, "Asia/Kathmandu", Precision::Seconds).unwrap(),
        "2024-03-31T06:45:00+05:45"
    );
}

#[test]
fn system_clock_is_a_core_clock_and_moves_forward_or_stays() {
    fn read(clock: &impl WallClock) -> Timestamp {
        clock.now()
    }
    let a = read(&SystemClock);
    let b = read(&SystemClock::new());
    // Wall clocks can step back; a step of more than a minute here would be
    // a broken conversion, not an adjustment.
    assert!(b.since(a).secs_floor() > -60);
    assert!(mechops_std::clock::now().to_civil().year >= 2024);
}
