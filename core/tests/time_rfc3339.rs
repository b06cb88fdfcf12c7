//! RFC 3339 known answers (section 5.8) and format/parse round trips.

use mechops_core::time::{
    CivilDateTime, MAX_RFC3339_LEN, Offset, ParseErrorKind, Precision, Rfc3339Cache, Rfc3339Format,
    Timestamp, Unit, days_in_month,
};
use proptest::prelude::*;

fn parse(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text.as_bytes()).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn format(ts: Timestamp, format: Rfc3339Format) -> String {
    let mut buf = [0u8; MAX_RFC3339_LEN];
    let n = format.format(ts, &mut buf).unwrap();
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

#[test]
fn rfc3339_section_5_8_examples() {
    // 1985-04-12T23:20:50.52Z: 20 minutes and 50.52 seconds after 23:00 UTC.
    let a = parse("1985-04-12T23:20:50.52Z");
    assert_eq!(
        (a.unix_secs(), a.subsec_nanos()),
        (482_196_050, 520_000_000)
    );
    assert_eq!(
        format(a, Rfc3339Format::new(Precision::Millis)),
        "1985-04-12T23:20:50.520Z"
    );

    // 1996-12-19T16:39:57-08:00 is 1996-12-20T00:39:57Z.
    let b = parse("1996-12-19T16:39:57-08:00");
    assert_eq!(b, parse("1996-12-20T00:39:57Z"));
    assert_eq!(b.unix_secs(), 851_042_397);
    let pst = Offset::from_hm(true, 8, 0).unwrap();
    assert_eq!(
        format(b, Rfc3339Format::new(Precision::Seconds).with_offset(pst)),
        "1996-12-19T16:39:57-08:00"
    );

    // The leap second at the end of 1990, in UTC and in Pacific time; Unix
    // time has no second 60, so both read as the last nanosecond of
    // 23:59:59 UTC.
    let c = parse("1990-12-31T23:59:60Z");
    let d = parse("1990-12-31T15:59:60-08:00");
    assert_eq!(
        (c.unix_secs(), c.subsec_nanos()),
        (662_687_999, 999_999_999)
    );
    assert_eq!(c, d);

    // Netherlands time in 1937: +00:20.
    let e = parse("1937-01-01T12:00:27.87+00:20");
    assert_eq!(
        (e.unix_secs(), e.subsec_nanos()),
        (-1_041_337_173, 870_000_000)
    );
    assert_eq!(e, parse("1937-01-01T11:40:27.87Z"));
    let nl = Offset::from_hm(false, 0, 20).unwrap();
    assert_eq!(
        format(e, Rfc3339Format::new(Precision::Millis).with_offset(nl)),
        "1937-01-01T12:00:27.870+00:20"
    );
}

#[test]
fn rejects_forms_outside_the_grammar() {
    for bad in [
        "1985-04-12 23:20:50Z",
        "1985-04-12T23:20Z",
        "1985-4-12T23:20:50Z",
        "85-04-12T23:20:50Z",
        "1985-04-12T23:20:50",
        "1985-04-12T23:20:50+0100",
        "1985-04-12T23:20:50+01",
        "1985-04-12T23:20:50.Z",
        "1985-04-12T23:20:50,5Z",
        "+1985-04-12T23:20:50Z",
        "1985-04-12T23:20:50Z\n",
        "１９８５-04-12T23:20:50Z",
    ] {
        assert!(Timestamp::parse_rfc3339(bad.as_bytes()).is_err(), "{bad}");
    }
    let e = Timestamp::parse_rfc3339(b"2001-02-29T00:00:00Z").unwrap_err();
    assert_eq!((e.kind(), e.position()), (ParseErrorKind::Day(29), 8));
}

fn any_timestamp() -> impl Strategy<Value = Timestamp> {
    (
        Timestamp::MIN.unix_secs()..=Timestamp::MAX.unix_secs(),
        0u32..1_000_000_000,
    )
        .prop_map(|(s, n)| Timestamp::from_unix(s, n).unwrap())
}

fn any_precision() -> impl Strategy<Value = Precision> {
    prop_oneof![
        Just(Precision::Seconds),
        Just(Precision::Millis),
        Just(Precision::Micros),
        Just(Precision::Nanos)
    ]
}

fn any_format() -> impl Strategy<Value = Rfc3339Format> {
    (any_precision(), proptest::option::of(-1439i32..=1439)).prop_map(|(p, o)| match o {
        None => Rfc3339Format::new(p),
        Some(m) => Rfc3339Format::new(p).with_offset(Offset::from_minutes(m).unwrap()),
    })
}

fn truncated(ts: Timestamp, precision: Precision) -> Timestamp {
    match precision {
        Precision::Seconds => ts.truncate(Unit::Second),
        Precision::Millis => ts.truncate(Unit::Millisecond),
        Precision::Micros => ts.truncate(Unit::Microsecond),
        Precision::Nanos => ts,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn format_then_parse_gives_the_instant_back(ts in any_timestamp(), fmt in any_format()) {
        let mut buf = [0u8; MAX_RFC3339_LEN];
        let local_year = ts.to_civil_with_offset(fmt.offset().unwrap_or(Offset::UTC)).year;
        match fmt.format(ts, &mut buf) {
            Ok(n) => {
                prop_assert_eq!(n, fmt.formatted_len());
                let (back, offset) = Timestamp::parse_rfc3339_with_offset(&buf[..n]).unwrap();
                prop_assert_eq!(back, truncated(ts, fmt.precision()));
                prop_assert_eq!(offset, fmt.offset().unwrap_or(Offset::UTC));
            }
            Err(_) => prop_assert!(local_year > 9999),
        }
    }

    #[test]
    fn cached_formatting_matches_uncached(
        start in any_timestamp(),
        steps in proptest::collection::vec(-90_000_000_000i64..90_000_000_000, 1..40),
        fmt in any_format(),
    ) {
        let mut cache = Rfc3339Cache::new(fmt);
        let mut ts = start;
        for step in steps {
            ts = ts.saturating_add(mechops_core::time::SignedDuration::from_nanos(step));
            let mut a = [0u8; MAX_RFC3339_LEN];
            let mut b = [0u8; MAX_RFC3339_LEN];
            let cached = cache.format(ts, &mut a).map(|n| a[..n].to_vec());
            let plain = fmt.format(ts, &mut b).map(|n| b[..n].to_vec());
            prop_assert_eq!(cached, plain);
        }
    }

    #[test]
    fn parse_never_panics_on_mutated_text(ts in any_timestamp(), fmt in any_format(), at in 0usize..35, byte in any::<u8>()) {
        let mut buf = [0u8; MAX_RFC3339_LEN];
        if let Ok(n) = fmt.format(ts, &mut buf) {
            let mut text = buf[..n].to_vec();
            let i = at % n;
            text[i] = byte;
            if let Err(e) = Timestamp::parse_rfc3339(&text) {
                prop_assert!(e.position() <= text.len());
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// `hh:mm:60` at any offset is accepted exactly when the instant of its
    /// `hh:mm:59` is 23:59:59 UTC on the last day of a month, and then reads
    /// as the last nanosecond of that second, whatever its fraction.
    #[test]
    fn leap_second_is_accepted_exactly_at_the_end_of_a_month_in_utc(
        ts in any_timestamp(),
        at_month_end in any::<bool>(),
        offset in -1439i32..=1439,
        fraction in proptest::option::of(1usize..=9),
    ) {
        // Second 59 of the minute, in UTC and so at every offset; half the
        // time moved to the end of its month, where a leap second may stand.
        let c = ts.to_civil();
        let c = if at_month_end {
            CivilDateTime::date(c.year, c.month, days_in_month(c.year, c.month)).at(23, 59, 59, 0)
        } else {
            c.at(c.hour, c.minute, 59, 0)
        };
        let ts59 = Timestamp::from_civil(c).unwrap();
        let local = Rfc3339Format::new(Precision::Seconds)
            .with_offset(Offset::from_minutes(offset).unwrap());
        let mut buf = [0u8; MAX_RFC3339_LEN];
        // The local year 10000 has no RFC 3339 text.
        let Ok(n) = local.format(ts59, &mut buf) else { return Ok(()); };
        let mut text = buf[..n].to_vec();
        prop_assert_eq!(&text[17..19], b"59");
        text[17..19].copy_from_slice(b"60");
        if let Some(digits) = fraction {
            let dot_digits = core::iter::once(b'.').chain(core::iter::repeat_n(b'4', digits));
            text.splice(19..19, dot_digits);
        }
        let ends_a_month = c.hour == 23 && c.minute == 59 && c.day == days_in_month(c.year, c.month);
        let parsed = Timestamp::parse_rfc3339(&text);
        if ends_a_month {
            prop_assert_eq!(parsed, Ok(Timestamp::from_unix(ts59.unix_secs(), 999_999_999).unwrap()));
        } else {
            let e = parsed.unwrap_err();
            prop_assert_eq!((e.kind(), e.position()), (ParseErrorKind::LeapSecond, 17));
        }
    }
}

/// RFC 3339 text written the slow way: the date by walking whole years and
/// months from 0001-01-01, the fields with `format!`, the fraction truncated.
fn naive_text(ts: Timestamp, precision: Precision, offset_minutes: Option<i32>) -> Option<String> {
    const DAYS_0001_TO_1970: i64 = 719_162;
    let local = ts.unix_secs() + i64::from(offset_minutes.unwrap_or(0)) * 60;
    let mut days = local.div_euclid(86_400) + DAYS_0001_TO_1970;
    let sod = local.rem_euclid(86_400);
    let mut year: i64 = 1;
    let year_len = |y: i64| {
        if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) {
            366
        } else {
            365
        }
    };
    while days < 0 {
        year -= 1;
        days += year_len(year);
    }
    while days >= year_len(year) {
        days -= year_len(year);
        year += 1;
    }
    if !(0..=9999).contains(&year) {
        return None;
    }
    let mut month = 1u8;
    loop {
        let len = if month == 2 {
            year_len(year) - 337
        } else {
            i64::from(mechops_core::time::days_in_month(2001, month))
        };
        if days < len {
            break;
        }
        days -= len;
        month += 1;
    }
    let nanos = ts.subsec_nanos();
    let fraction = match precision {
        Precision::Seconds => String::new(),
        Precision::Millis => format!(".{:03}", nanos / 1_000_000),
        Precision::Micros => format!(".{:06}", nanos / 1_000),
        Precision::Nanos => format!(".{nanos:09}"),
    };
    let zone = match offset_minutes {
        None => "Z".to_owned(),
        Some(m) => {
            let sign = if m < 0 { '-' } else { '+' };
            format!("{sign}{:02}:{:02}", m.abs() / 60, m.abs() % 60)
        }
    };
    Some(format!(
        "{year:04}-{month:02}-{:02}T{:02}:{:02}:{:02}{fraction}{zone}",
        days + 1,
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    ))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The word-at-a-time formatter writes exactly the naive text, for every
    /// precision and offset style across 0001..=9999 (instants near both
    /// ends of the range are drawn often).
    #[test]
    fn format_matches_a_naive_formatter(
        ts in prop_oneof![
            any_timestamp(),
            (0i64..3 * 86_400, 0u32..1_000_000_000).prop_map(|(s, n)| {
                Timestamp::from_unix(Timestamp::MIN.unix_secs() + s, n).unwrap()
            }),
            (0i64..3 * 86_400, 0u32..1_000_000_000).prop_map(|(s, n)| {
                Timestamp::from_unix(Timestamp::MAX.unix_secs() - s, n).unwrap()
            }),
        ],
        precision in any_precision(),
        offset in proptest::option::of(-1439i32..=1439),
    ) {
        let mut format = Rfc3339Format::new(precision);
        if let Some(m) = offset {
            format = format.with_offset(Offset::from_minutes(m).unwrap());
        }
        let mut buf = [0u8; MAX_RFC3339_LEN];
        let ours = format.format(ts, &mut buf).ok().map(|n| String::from_utf8(buf[..n].to_vec()).unwrap());
        prop_assert_eq!(ours, naive_text(ts, precision, offset));
        let mut api = [0u8; MAX_RFC3339_LEN];
        if let Ok(n) = ts.format_rfc3339(format, &mut api) {
            prop_assert_eq!(&api[..n], &buf[..n]);
        }
    }
}
