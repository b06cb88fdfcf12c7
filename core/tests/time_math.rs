//! Properties of differences, ranges, rounding and duration text.

use mechops_core::time::{SignedDuration, TimeRange, Timestamp, Unit};
use proptest::prelude::*;

fn any_timestamp() -> impl Strategy<Value = Timestamp> {
    (
        Timestamp::MIN.unix_secs()..=Timestamp::MAX.unix_secs(),
        0u32..1_000_000_000,
    )
        .prop_map(|(s, n)| Timestamp::from_unix(s, n).unwrap())
}

fn any_unit() -> impl Strategy<Value = Unit> {
    prop_oneof![
        Just(Unit::Nanosecond),
        Just(Unit::Microsecond),
        Just(Unit::Millisecond),
        Just(Unit::Second),
        Just(Unit::Minute),
        Just(Unit::Hour),
        Just(Unit::Day),
    ]
}

fn any_duration() -> impl Strategy<Value = SignedDuration> {
    (any::<i64>(), 0u32..1_000_000_000).prop_map(|(s, n)| SignedDuration::new(s, n).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn difference_adds_back_and_breaks_down(a in any_timestamp(), b in any_timestamp()) {
        let d = b.since(a);
        prop_assert_eq!(a.checked_add(d), Ok(b));
        prop_assert_eq!(b.checked_sub(d), Ok(a));
        prop_assert_eq!(d.as_nanos(), b.unix_nanos() - a.unix_nanos());
        prop_assert_eq!(a.since(b).checked_neg(), Some(d));
        let p = d.breakdown();
        let total = ((((i128::from(p.days) * 24 + i128::from(p.hours)) * 60 + i128::from(p.minutes)) * 60
            + i128::from(p.seconds)) * 1_000_000_000)
            + i128::from(p.millis) * 1_000_000
            + i128::from(p.micros) * 1_000
            + i128::from(p.nanos);
        prop_assert_eq!(total, d.as_nanos());
        for part in [p.days, p.hours, p.minutes, p.seconds, p.millis, p.micros, p.nanos] {
            prop_assert!(part == 0 || (part < 0) == d.is_negative());
        }
        prop_assert!(p.hours.abs() < 24 && p.minutes.abs() < 60 && p.seconds.abs() < 60);
        prop_assert!(p.millis.abs() < 1000 && p.micros.abs() < 1000 && p.nanos.abs() < 1000);
    }

    #[test]
    fn truncation_and_rounding_bracket_the_instant(t in any_timestamp(), unit in any_unit()) {
        let u = i128::from(unit.nanos());
        let floor = t.truncate(unit);
        prop_assert!(floor <= t);
        prop_assert!(t.unix_nanos() - floor.unix_nanos() < u);
        prop_assert_eq!(floor.unix_nanos().rem_euclid(u), 0);
        prop_assert_eq!(floor.truncate(unit), floor);
        match t.round(unit) {
            Ok(r) => {
                prop_assert_eq!(r.unix_nanos().rem_euclid(u), 0);
                let dist = (r.unix_nanos() - t.unix_nanos()).abs();
                prop_assert!(dist * 2 <= u);
                // Ties go up: a distance of exactly half a unit means r is later.
                if dist * 2 == u { prop_assert!(r > t); }
            }
            Err(_) => prop_assert!(floor.unix_nanos() + u > Timestamp::MAX.unix_nanos()),
        }
    }

    #[test]
    fn duration_rounding_matches_integer_arithmetic(d in any_duration(), unit in any_unit()) {
        let u = i128::from(unit.nanos());
        let n = d.as_nanos();
        prop_assert_eq!(d.truncate(unit).as_nanos(), n / u * u);
        if let Some(r) = d.round(unit) {
            let dist = (r.as_nanos() - n).abs();
            prop_assert!(dist * 2 <= u);
            prop_assert_eq!(r.as_nanos() % u, 0);
        }
    }

    #[test]
    fn duration_text_round_trips(d in any_duration()) {
        let text = d.to_string();
        prop_assert_eq!(SignedDuration::parse(text.as_bytes()), Ok(d));
    }

    #[test]
    fn range_iteration_steps_exactly(
        start in any_timestamp(),
        len in 0i64..10_000_000_000_000,
        step in 1i64..1_000_000_000_000,
    ) {
        let Ok(range) = TimeRange::new(start, SignedDuration::from_nanos(len)) else {
            return Ok(());
        };
        let step = SignedDuration::from_nanos(step);
        let items: Vec<_> = range.iter(step).unwrap().take(20_000).collect();
        let expected = range.step_count(step).unwrap();
        if expected <= 20_000 {
            prop_assert_eq!(items.len() as u128, expected);
        }
        for (i, t) in items.iter().enumerate() {
            prop_assert!(range.contains(*t));
            prop_assert_eq!(t.since(start).as_nanos(), i as i128 * step.as_nanos());
        }
    }

    #[test]
    fn intersection_is_the_shared_part(
        a in any_timestamp(), la in 0i64..1_000_000, b_off in -2_000_000i64..2_000_000, lb in 0i64..1_000_000,
        probe in -3_000_000i64..3_000_000,
    ) {
        let Ok(ra) = TimeRange::new(a, SignedDuration::from_nanos(la)) else { return Ok(()); };
        let Ok(b) = a.checked_add(SignedDuration::from_nanos(b_off)) else { return Ok(()); };
        let Ok(rb) = TimeRange::new(b, SignedDuration::from_nanos(lb)) else { return Ok(()); };
        let Ok(p) = a.checked_add(SignedDuration::from_nanos(probe)) else { return Ok(()); };
        let both = ra.contains(p) && rb.contains(p);
        let inter = ra.intersection(&rb);
        prop_assert_eq!(inter, rb.intersection(&ra));
        prop_assert_eq!(ra.overlaps(&rb), inter.is_some());
        prop_assert_eq!(ra.overlaps(&rb), rb.overlaps(&ra));
        prop_assert_eq!(inter.is_some_and(|i| i.contains(p)), both);
        if let Some(i) = inter {
            prop_assert!(ra.contains_range(&i) && rb.contains_range(&i));
        }
    }
}
