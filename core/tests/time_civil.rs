//! Civil conversion against a naive day-counting reference.

use mechops_core::time::{CivilDateTime, Timestamp, Weekday, days_in_month, is_leap_year};
use proptest::prelude::*;

/// Year, month, day and weekday of a day count since 0001-01-01 (a Monday),
/// found by walking whole years and months: slow and plainly right.
fn naive_date(mut days: i64) -> (u16, u8, u8, u8) {
    let weekday = (days % 7) as u8;
    let mut year = 1u16;
    loop {
        let len = if is_leap_year(year) { 366 } else { 365 };
        if days < len {
            break;
        }
        days -= len;
        year += 1;
    }
    let mut month = 1u8;
    loop {
        let len = i64::from(days_in_month(year, month));
        if days < len {
            break;
        }
        days -= len;
        month += 1;
    }
    (year, month, days as u8 + 1, weekday)
}

const DAYS_0001_TO_1970: i64 = 719_162;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn civil_matches_naive_counting(day in 0i64..3_652_059, sod in 0i64..86_400, nanos in 0u32..1_000_000_000) {
        let secs = (day - DAYS_0001_TO_1970) * 86_400 + sod;
        let ts = Timestamp::from_unix(secs, nanos).unwrap();
        let civil = ts.to_civil();
        let (year, month, dom, weekday) = naive_date(day);
        prop_assert_eq!((civil.year, civil.month, civil.day), (year, month, dom));
        prop_assert_eq!(
            (i64::from(civil.hour), i64::from(civil.minute), i64::from(civil.second)),
            (sod / 3600, sod / 60 % 60, sod % 60)
        );
        prop_assert_eq!(civil.nanosecond, nanos);
        prop_assert_eq!(civil.weekday().number_from_monday(), weekday + 1);
        let first = Timestamp::from_civil(CivilDateTime::date(year, 1, 1)).unwrap();
        let ordinal = (ts.unix_secs() - first.unix_secs()) / 86_400 + 1;
        prop_assert_eq!(i64::from(civil.day_of_year()), ordinal);
        prop_assert_eq!(Timestamp::from_civil(civil), Ok(ts));
    }
}

#[test]
fn ends_of_the_range_have_the_expected_weekdays() {
    assert_eq!(Timestamp::MIN.to_civil().weekday(), Weekday::Monday);
    assert_eq!(Timestamp::MAX.to_civil().weekday(), Weekday::Friday);
    assert_eq!(Timestamp::MAX.to_civil().day_of_year(), 365);
}
