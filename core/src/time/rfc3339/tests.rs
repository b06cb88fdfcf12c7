//! Tests of RFC 3339 formatting and parsing.

use super::format::{Head, MONTH_DAY_WORDS, head, pair};
use super::parse::{DIGIT, parse_fast, parse_precise, parse_with_offset};
use super::*;
use crate::time::civil::{self, days_from_civil};
use crate::time::timestamp::SECS_PER_DAY;
use std::string::ToString;

fn fmt(ts: Timestamp, format: Rfc3339Format) -> std::string::String {
    let mut buf = [0u8; MAX_RFC3339_LEN];
    let n = format.format(ts, &mut buf).unwrap();
    assert_eq!(n, format.formatted_len());
    std::string::String::from_utf8(buf[..n].to_vec()).unwrap()
}

fn kind(input: &str) -> (ParseErrorKind, usize) {
    let e = Timestamp::parse_rfc3339(input.as_bytes()).unwrap_err();
    (e.kind(), e.position())
}

#[test]
fn formats_every_precision_and_offset_style() {
    let ts = Timestamp::from_unix(1_700_000_000, 123_456_789).unwrap();
    assert_eq!(
        fmt(ts, Rfc3339Format::new(Precision::Seconds)),
        "2023-11-14T22:13:20Z"
    );
    assert_eq!(
        fmt(ts, Rfc3339Format::new(Precision::Millis)),
        "2023-11-14T22:13:20.123Z"
    );
    assert_eq!(
        fmt(ts, Rfc3339Format::new(Precision::Micros)),
        "2023-11-14T22:13:20.123456Z"
    );
    assert_eq!(
        fmt(ts, Rfc3339Format::new(Precision::Nanos)),
        "2023-11-14T22:13:20.123456789Z"
    );
    let east = Offset::from_hm(false, 5, 30).unwrap();
    assert_eq!(
        fmt(ts, Rfc3339Format::new(Precision::Millis).with_offset(east)),
        "2023-11-15T03:43:20.123+05:30"
    );
    let west = Offset::from_hm(true, 23, 59).unwrap();
    assert_eq!(
        fmt(ts, Rfc3339Format::new(Precision::Seconds).with_offset(west)),
        "2023-11-13T22:14:20-23:59"
    );
    assert_eq!(
        fmt(
            ts,
            Rfc3339Format::new(Precision::Seconds).with_offset(Offset::UTC)
        ),
        "2023-11-14T22:13:20+00:00"
    );
    assert_eq!(ts.to_string(), "2023-11-14T22:13:20.123456789Z");
}

#[test]
fn formats_range_ends_and_pre_epoch() {
    let nanos = Rfc3339Format::new(Precision::Nanos);
    assert_eq!(fmt(Timestamp::MIN, nanos), "0001-01-01T00:00:00.000000000Z");
    assert_eq!(fmt(Timestamp::MAX, nanos), "9999-12-31T23:59:59.999999999Z");
    let before = Timestamp::from_unix_nanos(-1).unwrap();
    assert_eq!(fmt(before, nanos), "1969-12-31T23:59:59.999999999Z");
    let west = Offset::from_hm(true, 1, 0).unwrap();
    assert_eq!(
        fmt(
            Timestamp::MIN,
            Rfc3339Format::new(Precision::Seconds).with_offset(west)
        ),
        "0000-12-31T23:00:00-01:00"
    );
}

#[test]
fn format_errors_are_reported_without_writing() {
    let ts = Timestamp::UNIX_EPOCH;
    let mut small = [0u8; 20];
    assert_eq!(
        Rfc3339Format::new(Precision::Millis).format(ts, &mut small),
        Err(FormatError::BufferTooSmall {
            needed: 24,
            available: 20
        })
    );
    assert_eq!(small, [0u8; 20]);
    let east = Offset::from_hm(false, 1, 0).unwrap();
    let mut buf = [0u8; MAX_RFC3339_LEN];
    assert_eq!(
        Rfc3339Format::new(Precision::Seconds)
            .with_offset(east)
            .format(Timestamp::MAX, &mut buf),
        Err(FormatError::YearOutOfRange { year: 10000 })
    );
}

#[test]
fn fractions_truncate_and_never_round_up() {
    let ts = Timestamp::from_unix(0, 999_999_999).unwrap();
    assert_eq!(
        fmt(ts, Rfc3339Format::new(Precision::Millis)),
        "1970-01-01T00:00:00.999Z"
    );
    assert_eq!(
        fmt(ts, Rfc3339Format::new(Precision::Seconds)),
        "1970-01-01T00:00:00Z"
    );
}

#[test]
fn parses_valid_forms() {
    let p = |s: &str| Timestamp::parse_rfc3339(s.as_bytes()).unwrap();
    assert_eq!(p("1970-01-01T00:00:00Z"), Timestamp::UNIX_EPOCH);
    assert_eq!(p("1970-01-01t00:00:00z"), Timestamp::UNIX_EPOCH);
    assert_eq!(p("1970-01-01T01:00:00+01:00"), Timestamp::UNIX_EPOCH);
    assert_eq!(p("1969-12-31T23:00:00-01:00"), Timestamp::UNIX_EPOCH);
    assert_eq!(p("1970-01-01T00:00:00.5Z").subsec_nanos(), 500_000_000);
    assert_eq!(p("1970-01-01T00:00:00.000000001Z").subsec_nanos(), 1);
    assert_eq!(p("0001-01-01T00:00:00Z"), Timestamp::MIN);
    assert_eq!(p("9999-12-31T23:59:59.999999999Z"), Timestamp::MAX);
    assert_eq!(p("0000-12-31T23:00:00-01:00"), Timestamp::MIN);
    let (ts, off) = Timestamp::parse_rfc3339_with_offset(b"2024-02-29T12:00:00-08:00").unwrap();
    assert_eq!(off.minutes(), -480);
    assert_eq!(ts.unix_secs(), 1_709_236_800);
    assert_eq!(
        "1970-01-01T00:00:01Z"
            .parse::<Timestamp>()
            .unwrap()
            .unix_secs(),
        1
    );
}

#[test]
fn parse_errors_name_the_problem_and_position() {
    use ParseErrorKind as K;
    assert_eq!(kind(""), (K::UnexpectedEnd { expected: DIGIT }, 0));
    assert_eq!(kind("2024"), (K::UnexpectedEnd { expected: "'-'" }, 4));
    assert_eq!(
        kind("2o24-01-01T00:00:00Z"),
        (
            K::Unexpected {
                expected: DIGIT,
                found: b'o'
            },
            1
        )
    );
    assert_eq!(
        kind("2024/01-01T00:00:00Z"),
        (
            K::Unexpected {
                expected: "'-'",
                found: b'/'
            },
            4
        )
    );
    assert_eq!(kind("2024-13-01T00:00:00Z"), (K::Month(13), 5));
    assert_eq!(kind("2024-00-01T00:00:00Z"), (K::Month(0), 5));
    assert_eq!(kind("2023-02-29T00:00:00Z"), (K::Day(29), 8));
    assert_eq!(kind("2024-04-31T00:00:00Z"), (K::Day(31), 8));
    assert_eq!(
        kind("2024-01-01 00:00:00Z"),
        (
            K::Unexpected {
                expected: "'T'",
                found: b' '
            },
            10
        )
    );
    assert_eq!(kind("2024-01-01T24:00:00Z"), (K::Hour(24), 11));
    assert_eq!(kind("2024-01-01T00:60:00Z"), (K::Minute(60), 14));
    assert_eq!(kind("2024-01-01T00:00:61Z"), (K::Second(61), 17));
    assert_eq!(
        kind("2024-01-01T00:00:00"),
        (
            K::UnexpectedEnd {
                expected: "'.', 'Z' or an offset"
            },
            19
        )
    );
    assert_eq!(kind("2024-01-01T00:00:00.Z"), (K::EmptyFraction, 19));
    assert_eq!(
        kind("2024-01-01T00:00:00.1234567890Z"),
        (K::FractionTooLong, 29)
    );
    assert_eq!(
        kind("2024-01-01T00:00:00.123"),
        (
            K::UnexpectedEnd {
                expected: "'Z' or an offset"
            },
            23
        )
    );
    assert_eq!(
        kind("2024-01-01T00:00:00.123x"),
        (
            K::Unexpected {
                expected: "'Z' or an offset",
                found: b'x'
            },
            23
        )
    );
    assert_eq!(kind("2024-01-01T00:00:00+24:00"), (K::OffsetHour(24), 20));
    assert_eq!(kind("2024-01-01T00:00:00+01:60"), (K::OffsetMinute(60), 23));
    assert_eq!(
        kind("2024-01-01T00:00:00+0100"),
        (
            K::Unexpected {
                expected: "':'",
                found: b'0'
            },
            22
        )
    );
    assert_eq!(
        kind("2024-01-01T00:00:00+01:0"),
        (K::UnexpectedEnd { expected: DIGIT }, 24)
    );
    assert_eq!(kind("2024-01-01T00:00:00ZZ"), (K::TrailingInput, 20));
    assert_eq!(kind("2024-01-01T00:00:00Z "), (K::TrailingInput, 20));
    assert_eq!(
        kind("0000-12-31T23:59:59Z"),
        (K::OutOfRange(TimestampError::BeforeMin), 0)
    );
    assert_eq!(
        kind("9999-12-31T23:59:59-00:01"),
        (K::OutOfRange(TimestampError::AfterMax), 0)
    );
}

#[test]
fn error_messages_name_position() {
    let e = Timestamp::parse_rfc3339(b"2024-13-01T00:00:00Z").unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid RFC 3339 timestamp: month 13 at byte 5 is not in 01..=12"
    );
    let e = Timestamp::parse_rfc3339(b"2024-01-01X").unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid RFC 3339 timestamp: expected 'T' at byte 10, found 'X'"
    );
}

#[test]
fn leap_second_reads_as_the_last_nanosecond_before_midnight() {
    let last = Timestamp::parse_rfc3339(b"1990-12-31T23:59:59.999999999Z").unwrap();
    for text in [
        "1990-12-31T23:59:60Z",
        "1990-12-31T23:59:60.25Z",
        "1990-12-31t23:59:60.999999999z",
        // The same instant at other offsets, also across a date line.
        "1990-12-31T15:59:60-08:00",
        "1991-01-01T05:29:60+05:30",
        "1990-12-31T23:59:60+00:00",
    ] {
        assert_eq!(
            Timestamp::parse_rfc3339(text.as_bytes()),
            Ok(last),
            "{text}"
        );
    }
    // Text order is kept: the leap second is after every `:59.f`.
    let before = Timestamp::parse_rfc3339(b"1990-12-31T23:59:59.7Z").unwrap();
    assert!(before < last);
    // It formats as `:59` with every nanosecond, never as `:60`.
    assert_eq!(
        fmt(last, Rfc3339Format::new(Precision::Nanos)),
        "1990-12-31T23:59:59.999999999Z"
    );
    let pst = Offset::from_hm(true, 8, 0).unwrap();
    let (ts, offset) = Timestamp::parse_rfc3339_with_offset(b"1990-12-31T15:59:60-08:00").unwrap();
    assert_eq!(offset, pst);
    assert_eq!(
        fmt(ts, Rfc3339Format::new(Precision::Millis).with_offset(pst)),
        "1990-12-31T15:59:59.999-08:00"
    );
}

#[test]
fn leap_second_stands_only_at_the_end_of_a_month_in_utc() {
    // The end of every month is allowed, in any year the range holds,
    // including where the instant is the last one there is.
    for text in [
        "2016-12-31T23:59:60Z",
        "2015-06-30T23:59:60Z",
        "2023-02-28T23:59:60Z",
        "2024-02-29T23:59:60Z",
        "2024-04-30T23:59:60.5Z",
        "9999-12-31T23:59:60Z",
        "0001-01-31T23:59:60Z",
    ] {
        let ts = Timestamp::parse_rfc3339(text.as_bytes()).unwrap();
        assert_eq!(ts.subsec_nanos(), 999_999_999, "{text}");
        assert_eq!(ts.to_civil().second, 59, "{text}");
    }
    assert_eq!(
        Timestamp::parse_rfc3339(b"9999-12-31T23:59:60Z"),
        Ok(Timestamp::MAX)
    );
    for text in [
        // Not the last minute of the day, or not the last day of the month.
        "2024-03-14T12:30:60Z",
        "2024-03-14T23:59:60Z",
        "2023-02-28T23:58:60Z",
        "2024-02-28T23:59:60Z",
        // 23:59:60 local time, but not in UTC.
        "1990-12-31T23:59:60-08:00",
        "1990-12-31T23:59:60+01:00",
        // 22:59:60 UTC on the first of a month.
        "1991-01-01T23:59:60+01:00",
    ] {
        assert_eq!(kind(text), (ParseErrorKind::LeapSecond, 17), "{text}");
    }
    assert_eq!(
        Timestamp::parse_rfc3339(b"1991-01-01T00:59:60+01:00"),
        Timestamp::parse_rfc3339(b"1990-12-31T23:59:60Z")
    );
    assert_eq!(
        Timestamp::parse_rfc3339(b"2024-03-14T12:30:60Z")
            .unwrap_err()
            .to_string(),
        "invalid RFC 3339 timestamp: second 60 at byte 17 is a leap second, which stands \
         only at 23:59:60 UTC on the last day of a month"
    );
    // A leap second in the right place but outside the range is a range
    // error.
    assert_eq!(
        kind("0000-12-31T23:59:60Z"),
        (ParseErrorKind::OutOfRange(TimestampError::BeforeMin), 0)
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]

    /// The word-at-a-time path accepts nothing the precise parser
    /// rejects, and agrees on the value of whatever it accepts.
    #[test]
    fn fast_path_agrees_with_the_precise_parser(
        secs in -62_135_596_800i64..=253_402_300_799,
        nanos in 0u32..1_000_000_000,
        digits in 0usize..=10,
        offset in proptest::option::of(-1439i32..=1439),
        edits in proptest::collection::vec((0usize..40, proptest::prelude::any::<u8>()), 0..3),
    ) {
        let ts = Timestamp::from_unix(secs, nanos).unwrap();
        let mut format = Rfc3339Format::new(Precision::Nanos);
        if let Some(m) = offset {
            format = format.with_offset(Offset::from_minutes(m).unwrap());
        }
        let mut buf = [0u8; MAX_RFC3339_LEN];
        let Ok(n) = format.format(ts, &mut buf) else { return Ok(()); };
        // Cut or extend the fraction to `digits` digits.
        let mut text = buf[..19].to_vec();
        if digits > 0 {
            text.push(b'.');
            text.extend(core::iter::repeat_n(b'7', digits));
        }
        text.extend_from_slice(&buf[29..n]);
        for (at, byte) in edits {
            if !text.is_empty() {
                let i = at % text.len();
                text[i] = byte;
            }
        }
        if let Some(fast) = parse_fast(&text) {
            proptest::prop_assert_eq!(parse_precise(&text), Ok(fast));
        }
        proptest::prop_assert_eq!(parse_with_offset(&text), parse_precise(&text));
    }
}

/// The head words of local seconds, written out from the civil
/// conversion with `core::fmt`: slow and plainly right.
fn reference_head(local: i64) -> (std::string::String, u32) {
    let c = civil::civil_from_unix(local, 0);
    let text = std::format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}",
        c.year,
        c.month,
        c.day,
        c.hour,
        c.minute
    );
    (text, u32::from(c.second))
}

fn head_text(head: Head) -> (std::string::String, u32) {
    let mut bytes = head.date.to_le_bytes().to_vec();
    bytes.extend_from_slice(&head.time.to_le_bytes());
    (std::string::String::from_utf8(bytes).unwrap(), head.second)
}

/// Every day that any offset can reach, at a second that moves through
/// the day, matches the civil conversion.
#[test]
fn head_matches_the_civil_conversion_on_every_day() {
    let first = Timestamp::MIN.unix_secs() - SECS_PER_DAY;
    let last = Timestamp::MAX.unix_secs() + SECS_PER_DAY;
    let mut local = first;
    let mut second_of_day = 0;
    while local <= last {
        let at = local + second_of_day;
        let want = reference_head(at);
        match head(at) {
            Ok(head) => assert_eq!(head_text(head), want, "{at}"),
            Err(e) => {
                let year = civil::civil_from_unix(at, 0).year;
                assert!(year > 9999, "{at}");
                assert_eq!(e, FormatError::YearOutOfRange { year });
            }
        }
        local += SECS_PER_DAY;
        second_of_day = (second_of_day + 7_919) % SECS_PER_DAY;
    }
}

/// The time of day comes from a rounded-up fraction whose error grows
/// with the instant, so every second of the last and first reachable
/// days (and of the epoch's) is checked.
#[test]
fn head_matches_the_civil_conversion_on_every_second_of_extreme_days() {
    let days = [
        Timestamp::MIN.unix_secs() - SECS_PER_DAY,
        Timestamp::MIN.unix_secs(),
        -SECS_PER_DAY,
        0,
        Timestamp::MAX.unix_secs() - (SECS_PER_DAY - 1),
    ];
    for start in days {
        for at in start..start + SECS_PER_DAY {
            assert_eq!(head_text(head(at).unwrap()), reference_head(at), "{at}");
        }
    }
}

#[test]
fn month_day_words_match_the_civil_conversion() {
    // 2003-03-01 starts a March-based year that ends on 29 February.
    let march_first = days_from_civil(2003, 3, 1) * SECS_PER_DAY;
    for (day_of_year, [date, time]) in MONTH_DAY_WORDS.iter().enumerate() {
        let c = civil::civil_from_unix(march_first + day_of_year as i64 * SECS_PER_DAY, 0);
        let date = date.to_le_bytes();
        let time = time.to_le_bytes();
        assert_eq!(&date[4..], std::format!("-{:02}-", c.month).as_bytes());
        assert_eq!(&time[..3], std::format!("{:02}T", c.day).as_bytes());
        assert_eq!(time[5], b':');
    }
}

#[test]
fn pair_table_wraps_at_one_hundred() {
    for value in 0..128u32 {
        let want = std::format!("{:02}", value % 100);
        assert_eq!(&(pair(value) as u16).to_le_bytes(), want.as_bytes());
    }
    for ms in 0..1000u32 {
        assert_eq!((ms * 41) >> 12, ms / 100);
    }
}

#[test]
fn minimal_precision_keeps_every_digit() {
    let cases = [
        (0, Precision::Seconds),
        (5_000_000, Precision::Millis),
        (5_000, Precision::Micros),
        (5, Precision::Nanos),
    ];
    for (nanos, want) in cases {
        let ts = Timestamp::from_unix(1, nanos).unwrap();
        assert_eq!(Precision::minimal_for(ts), want);
    }
}
