//! `mechops uuid` end to end: output shape, every form and kind, inspection,
//! and one-line errors with exit code 2.

use std::collections::HashSet;
use std::process::{Command, Output};

use mechops_core::uuid::{Format, Uuid, Version};

fn mechops(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mechops"))
        .args(args)
        .output()
        .expect("the mechops binary runs")
}

fn stdout_lines(output: &Output) -> Vec<String> {
    assert!(output.status.success(), "{output:?}");
    assert!(output.stderr.is_empty(), "{output:?}");
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn assert_input_error(output: &Output, needle: &str) {
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr.clone()).unwrap();
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
    assert!(
        stderr.contains(needle),
        "{stderr:?} should mention {needle:?}"
    );
    assert!(!stderr.contains("panicked"));
}

#[test]
fn default_is_one_secure_hyphenated_lowercase_uuid() {
    let lines = stdout_lines(&mechops(&["uuid"]));
    assert_eq!(lines.len(), 1);
    let u: Uuid = lines[0].parse().unwrap();
    assert_eq!(u.version(), Version::V4);
    assert_eq!(lines[0], u.to_string());
}

#[test]
fn every_kind_format_and_case() {
    for kind in ["fast", "secure", "v7"] {
        for (name, format) in [
            ("hyphenated", Format::Hyphenated),
            ("simple", Format::Simple),
            ("urn", Format::Urn),
            ("braced", Format::Braced),
        ] {
            for upper in [false, true] {
                let mut args = vec!["uuid", "-n", "50", "--kind", kind, "--format", name];
                if upper {
                    args.push("--upper");
                }
                let lines = stdout_lines(&mechops(&args));
                assert_eq!(lines.len(), 50);
                let unique: HashSet<&String> = lines.iter().collect();
                assert_eq!(unique.len(), 50);
                for line in &lines {
                    assert_eq!(line.len(), format.encoded_len(), "{line}");
                    let hex = line.strip_prefix("urn:uuid:").unwrap_or(line);
                    if upper {
                        assert!(!hex.bytes().any(|b| b.is_ascii_lowercase()), "{line}");
                    } else {
                        assert!(!hex.bytes().any(|b| b.is_ascii_uppercase()), "{line}");
                    }
                    let u = Uuid::parse_str(line).unwrap();
                    let expected = if kind == "v7" {
                        Version::V7
                    } else {
                        Version::V4
                    };
                    assert_eq!(u.version(), expected);
                }
                if kind == "v7" {
                    let ids: Vec<Uuid> = lines.iter().map(|l| l.parse().unwrap()).collect();
                    assert!(ids.windows(2).all(|w| w[0] < w[1]), "v7 output increases");
                }
            }
        }
    }
}

#[test]
fn counts_span_several_batches_and_zero_prints_nothing() {
    let lines = stdout_lines(&mechops(&[
        "uuid", "-n", "40000", "--kind", "fast", "--format", "simple",
    ]));
    assert_eq!(lines.len(), 40_000);
    assert_eq!(lines.iter().collect::<HashSet<_>>().len(), 40_000);
    assert!(stdout_lines(&mechops(&["uuid", "-n", "0"])).is_empty());
}

#[test]
fn inspect_reports_the_rfc_examples() {
    let lines = stdout_lines(&mechops(&[
        "uuid",
        "inspect",
        "017F22E2-79B0-7CC3-98C4-DC0C0C07398F",
        "urn:uuid:919108f7-52d1-4320-9bac-f847db4148a8",
    ]));
    assert_eq!(
        lines,
        [
            "uuid=017f22e2-79b0-7cc3-98c4-dc0c0c07398f version=7 variant=rfc9562 \
             unix_ms=1645557742000 time=2022-02-22T19:22:22.000Z",
            "uuid=919108f7-52d1-4320-9bac-f847db4148a8 version=4 variant=rfc9562",
        ]
    );
}

#[test]
fn inspect_json_is_one_object_per_line() {
    let lines = stdout_lines(&mechops(&[
        "uuid",
        "inspect",
        "--json",
        "{017f22e2-79b0-7cc3-98c4-dc0c0c07398f}",
        "00000000000000000000000000000000",
    ]));
    assert_eq!(lines.len(), 2);
    let v7: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(v7["uuid"], "017f22e2-79b0-7cc3-98c4-dc0c0c07398f");
    assert_eq!(v7["version"], 7);
    assert_eq!(v7["variant"], "rfc9562");
    assert_eq!(v7["unix_ms"], 1_645_557_742_000_u64);
    assert_eq!(v7["time"], "2022-02-22T19:22:22.000Z");
    let nil: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
    assert_eq!(nil["version"], 0);
    assert_eq!(nil["variant"], "ncs");
    assert!(nil.get("unix_ms").is_none());
}

#[test]
fn inspect_a_v7_beyond_year_9999_keeps_the_milliseconds() {
    let lines = stdout_lines(&mechops(&[
        "uuid",
        "inspect",
        "ffffffff-ffff-7fff-bfff-ffffffffffff",
    ]));
    assert_eq!(
        lines,
        [
            "uuid=ffffffff-ffff-7fff-bfff-ffffffffffff version=7 variant=rfc9562 \
          unix_ms=281474976710655 time=beyond-9999"
        ]
    );
}

#[test]
fn bad_uuids_are_one_line_errors_with_position() {
    assert_input_error(
        &mechops(&["uuid", "inspect", "017F22E2-79B0-7CC3-98C4-DC0C0C07398g"]),
        "expected a hex digit at byte 35, found 'g'",
    );
    assert_input_error(
        &mechops(&["uuid", "inspect", "abc"]),
        "invalid UUID length 3",
    );
    assert_input_error(
        &mechops(&[
            "uuid",
            "inspect",
            "919108f7-52d1-4320-9bac-f847db4148a8",
            "bad\nline",
        ]),
        "bad\\nline",
    );
    assert_input_error(&mechops(&["uuid", "inspect"]), "at least one UUID");
}

#[test]
fn bad_options_are_one_line_errors() {
    assert_input_error(&mechops(&["uuid", "--kind", "v5"]), "--kind");
    assert_input_error(&mechops(&["uuid", "--format", "base64"]), "--format");
    assert_input_error(&mechops(&["uuid", "-n", "-3"]), "-3");
    assert_input_error(&mechops(&["uuid", "-n", "many"]), "many");
}
