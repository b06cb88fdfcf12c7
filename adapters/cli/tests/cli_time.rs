//! `mechops time` end to end: stdout results, one-line errors with exit 2.

use std::process::{Command, Output};

fn mechops(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mechops"))
        .args(args)
        .output()
        .expect("the mechops binary runs")
}

/// Runs a command that must succeed and returns its stdout lines.
fn ok(args: &[&str]) -> Vec<String> {
    let out = mechops(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty(), "{args:?} wrote to stderr");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Runs a command that must fail as bad input and returns its one stderr line.
fn bad(args: &[&str]) -> String {
    let out = mechops(args);
    assert_eq!(out.status.code(), Some(2), "{args:?} should exit 2");
    assert!(out.stdout.is_empty(), "{args:?} wrote to stdout");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn now_writes_one_rfc3339_line_in_each_style() {
    let line = &ok(&["time", "now"])[0];
    assert_eq!(line.len(), 24, "{line}");
    assert!(line.ends_with('Z') && line.as_bytes()[19] == b'.', "{line}");
    let line = &ok(&["time", "now", "--precision", "ns", "--offset", "-08:00"])[0];
    assert_eq!(line.len(), 35, "{line}");
    assert!(line.ends_with("-08:00"), "{line}");
    let line = &ok(&["time", "now", "--precision", "s", "--tz", "Asia/Kolkata"])[0];
    assert!(line.ends_with("+05:30") && line.len() == 25, "{line}");
}

#[test]
fn format_uses_the_unit_and_its_precision() {
    assert_eq!(
        ok(&["time", "format", "1700000000123"]),
        ["2023-11-14T22:13:20.123Z"]
    );
    assert_eq!(
        ok(&["time", "format", "1700000000", "--unit", "s"]),
        ["2023-11-14T22:13:20Z"]
    );
    assert_eq!(
        ok(&["time", "format", "-1", "--unit", "ns"]),
        ["1969-12-31T23:59:59.999999999Z"]
    );
    assert_eq!(
        ok(&[
            "time",
            "format",
            "0",
            "--precision",
            "us",
            "--offset",
            "+05:30"
        ]),
        ["1970-01-01T05:30:00.000000+05:30"]
    );
    assert_eq!(
        ok(&[
            "time",
            "format",
            "1720000000000",
            "--tz",
            "Europe/Paris",
            "--precision",
            "s"
        ]),
        ["2024-07-03T11:46:40+02:00"]
    );
}

#[test]
fn parse_rounds_toward_negative_infinity() {
    assert_eq!(
        ok(&["time", "parse", "2023-11-14T22:13:20.123456Z"]),
        ["1700000000123"]
    );
    assert_eq!(ok(&["time", "parse", "1969-12-31T23:59:59.9995Z"]), ["-1"]);
    assert_eq!(
        ok(&["time", "parse", "1969-12-31T23:59:59.9995Z", "--unit", "s"]),
        ["-1"]
    );
    assert_eq!(
        ok(&["time", "parse", "1970-01-01T01:00:00+01:00", "--unit", "ns"]),
        ["0"]
    );
    assert_eq!(
        ok(&[
            "time",
            "parse",
            "9999-12-31T23:59:59.999999999Z",
            "--unit",
            "ns"
        ]),
        ["253402300799999999999"]
    );
}

#[test]
fn diff_prints_a_duration_or_json() {
    assert_eq!(
        ok(&[
            "time",
            "diff",
            "2024-01-01T00:00:00Z",
            "2024-01-02T01:30:00.25Z"
        ]),
        ["1d1h30m250ms"]
    );
    assert_eq!(ok(&["time", "diff", "1500", "0"]), ["-1s500ms"]);
    assert_eq!(ok(&["time", "diff", "5", "5", "--unit", "s"]), ["0s"]);
    let json = ok(&[
        "time",
        "diff",
        "0",
        "2024-01-01T00:00:00.000000001Z",
        "--json",
    ]);
    assert_eq!(json.len(), 1);
    let v: serde_json::Value = serde_json::from_str(&json[0]).unwrap();
    assert_eq!(v["days"], 19_723);
    assert_eq!(v["nanoseconds"], 1);
    assert_eq!(v["negative"], false);
    assert_eq!(v["total_nanoseconds"], 1_704_067_200_000_000_001_i64);
    assert_eq!(v["to"], "2024-01-01T00:00:00.000000001Z");
}

#[test]
fn range_prints_bounds_or_steps() {
    assert_eq!(
        ok(&["time", "range", "2024-01-01T00:00:00Z", "1h30m"]),
        ["2024-01-01T00:00:00Z", "2024-01-01T01:30:00Z"]
    );
    assert_eq!(
        ok(&[
            "time", "range", "0", "10s", "--step", "2500ms", "--unit", "s"
        ]),
        [
            "1970-01-01T00:00:00.000Z",
            "1970-01-01T00:00:02.500Z",
            "1970-01-01T00:00:05.000Z",
            "1970-01-01T00:00:07.500Z"
        ]
    );
    assert_eq!(
        ok(&[
            "time", "range", "0", "2h", "--step", "1h", "--offset", "+01:00"
        ]),
        ["1970-01-01T01:00:00+01:00", "1970-01-01T02:00:00+01:00"]
    );
    assert!(ok(&["time", "range", "0", "0s", "--step", "1s"]).is_empty());
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "time",
                "format",
                "99999999999999999999999999999999999999999",
            ],
            "out of range",
        ),
        (
            &["time", "format", "-99999999999999999999"],
            "before 0001-01-01",
        ),
        (&["time", "format", "253402300800000"], "after 9999-12-31"),
        (&["time", "format", "12x"], "not an integer"),
        (&["time", "format", "1", "--unit", "h"], "invalid value"),
        (
            &["time", "parse", "2024-13-01T00:00:00Z"],
            "month 13 at byte 5",
        ),
        (&["time", "parse", "2024-01-01T00:00:00"], "byte 19"),
        (
            &["time", "parse", "0000-01-01T00:00:00Z"],
            "before 0001-01-01",
        ),
        (&["time", "diff", "yesterday", "0"], "neither an integer"),
        (
            &["time", "range", "0", "1h", "--step", "0s"],
            "step must be greater than zero",
        ),
        (&["time", "range", "0", "-1h"], "negative"),
        (&["time", "range", "0", "1y"], "unknown unit"),
        (
            &["time", "range", "9999-12-31T23:00:00Z", "2h"],
            "after 9999-12-31",
        ),
        (
            &["time", "now", "--tz", "Mars/Olympus_Mons"],
            "unknown time zone",
        ),
        (&["time", "now", "--offset", "+24:00"], "offset hour 24"),
        (
            &["time", "now", "--offset", "+01:00", "--tz", "UTC"],
            "cannot be used with",
        ),
        (
            &["time", "format", "253402300799999", "--tz", "Asia/Tokyo"],
            "year 10000",
        ),
        (
            &["time", "range", "0", "1h", "--step", "-1s"],
            "step must be greater than zero",
        ),
    ];
    for (args, needle) in cases {
        let err = bad(args);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}
