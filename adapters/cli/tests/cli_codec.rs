//! `mechops pack`, `unpack`, `inspect` and `keygen` as a user runs them.

mod support;

use std::path::Path;

use support::{assert_refused, run, temp_dir};

fn keygen(dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    let out = run(&["keygen", "-o", path.to_str().unwrap()], b"");
    assert_eq!(out.code, 0, "{}", out.stderr);
    path.to_str().unwrap().to_owned()
}

const SAMPLE: &str = r#"{"id":18446744073709551615,"neg":-42,"pi":3.25,"ok":true,"none":null,
"text":"h\u00e9llo \"quoted\"","list":[1,2,[3,{"deep":[]}]],"rows":[
{"name":"alpha","tags":["a","b"],"n":1},{"name":"alpha","tags":["a","b"],"n":2},
{"name":"alpha","tags":["a","b"],"n":3},{"name":"alpha","tags":["a","b"],"n":4}]}"#;

fn sample_json() -> serde_json::Value {
    serde_json::from_str(SAMPLE).unwrap()
}

fn big_json() -> Vec<u8> {
    let rows: Vec<_> = (0..400)
        .map(|i| serde_json::json!({"id": i, "name": format!("row {i}"), "on": i % 3 == 0}))
        .collect();
    serde_json::to_vec(&rows).unwrap()
}

#[test]
fn round_trips_every_format_compression_and_key() {
    let dir = temp_dir("roundtrip");
    let key = keygen(&dir, "key");
    for format in ["postcard", "json", "msgpack", "cbor"] {
        for compress in ["auto", "always", "never"] {
            for keyed in [false, true] {
                let mut args = vec!["pack", "--format", format, "--compress", compress];
                if keyed {
                    args.extend(["--key-file", key.as_str()]);
                }
                let packed = run(&args, SAMPLE.as_bytes());
                assert_eq!(packed.code, 0, "{format} {compress}: {}", packed.stderr);
                assert!(packed.stderr.is_empty());
                let mut args = vec!["unpack"];
                if keyed {
                    args.extend(["--key-file", key.as_str()]);
                }
                let unpacked = run(&args, &packed.stdout);
                assert_eq!(unpacked.code, 0, "{format} {compress}: {}", unpacked.stderr);
                let back: serde_json::Value = serde_json::from_slice(&unpacked.stdout).unwrap();
                assert_eq!(back, sample_json(), "{format} {compress} keyed={keyed}");
            }
        }
    }
}

#[test]
fn files_levels_and_compression_choice() {
    let dir = temp_dir("files");
    let input = dir.join("in.json");
    std::fs::write(&input, big_json()).unwrap();
    let mut sizes = Vec::new();
    for level in ["0", "1", "6", "10"] {
        let frame = dir.join(format!("f{level}"));
        let out = run(
            &[
                "pack",
                "--format",
                "json",
                "--level",
                level,
                "-i",
                input.to_str().unwrap(),
                "-o",
                frame.to_str().unwrap(),
            ],
            b"",
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(out.stdout.is_empty(), "-o writes the file, not stdout");
        sizes.push(std::fs::metadata(&frame).unwrap().len());
        let back = dir.join(format!("b{level}"));
        let out = run(
            &[
                "unpack",
                "-i",
                frame.to_str().unwrap(),
                "-o",
                back.to_str().unwrap(),
            ],
            b"",
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        let back: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&back).unwrap()).unwrap();
        let original: serde_json::Value = serde_json::from_slice(&big_json()).unwrap();
        assert_eq!(back, original);
    }
    // Level 0 stores (no shrink, so the frame is uncompressed); higher levels shrink.
    assert!(sizes[1] < sizes[0] && sizes[2] <= sizes[1], "{sizes:?}");
    let out = run(&["pack", "--level", "11"], b"{}");
    assert_refused(&out, "level");
}

#[test]
fn raw_is_the_payload_as_serialized() {
    let packed = run(
        &["pack", "--format", "json", "--compress", "always"],
        SAMPLE.as_bytes(),
    );
    let raw = run(&["unpack", "--raw"], &packed.stdout);
    assert_eq!(raw.code, 0, "{}", raw.stderr);
    assert_eq!(raw.stdout, serde_json::to_vec(&sample_json()).unwrap());

    let packed = run(&["pack", "--format", "cbor"], SAMPLE.as_bytes());
    let raw = run(&["unpack", "--raw"], &packed.stdout);
    let mut expected = Vec::new();
    ciborium::into_writer(&sample_json(), &mut expected).unwrap();
    assert_eq!(raw.stdout, expected);
}

#[test]
fn inspect_reports_the_header_without_a_key() {
    let dir = temp_dir("inspect");
    let key = keygen(&dir, "key");
    let packed = run(
        &[
            "pack",
            "--format",
            "msgpack",
            "--compress",
            "always",
            "--key-file",
            &key,
        ],
        &big_json(),
    );
    assert_eq!(packed.code, 0);
    let text = run(&["inspect"], &packed.stdout);
    assert_eq!(text.code, 0, "{}", text.stderr);
    let text = String::from_utf8(text.stdout).unwrap();
    for expected in [
        "format       msgpack",
        "compression  deflate",
        "encryption   xchacha20poly1305",
        "version      1",
    ] {
        assert!(text.contains(expected), "{text}");
    }
    let json = run(&["inspect", "--json"], &packed.stdout);
    let header: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(header["format"], "msgpack");
    assert_eq!(header["frame_size"], packed.stdout.len());
    assert_eq!(header["checksum"], serde_json::Value::Null);
    let ratio = header["ratio"].as_f64().unwrap();
    assert!(ratio > 0.0 && ratio < 1.0, "{ratio}");
}

#[test]
fn corrupt_truncated_and_trailing_input_is_refused() {
    let packed = run(&["pack", "--compress", "always"], &big_json()).stdout;
    assert_refused(
        &run(&["unpack"], b"not a frame at all, longer than a header"),
        "magic",
    );
    assert_refused(&run(&["unpack"], b""), "truncated");
    assert_refused(&run(&["unpack"], &packed[..packed.len() - 1]), "truncated");
    assert_refused(&run(&["inspect"], &packed[..20]), "truncated");
    let mut trailing = packed.clone();
    trailing.push(b'\n');
    assert_refused(&run(&["unpack"], &trailing), "trailing");
    // A flipped bit in the compressed body: caught by inflate, by the declared
    // size or by the checksum, depending on where it lands.
    let mut flipped = packed.clone();
    let at = flipped.len() - 10;
    flipped[at] ^= 0x10;
    let out = run(&["unpack"], &flipped);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stdout.is_empty());
    assert!(
        ["checksum", "deflate", "inflate"]
            .iter()
            .any(|word| out.stderr.contains(word)),
        "{}",
        out.stderr
    );
    // A flipped bit in the header.
    let mut header = packed.clone();
    header[9] ^= 1;
    assert_refused(&run(&["unpack"], &header), "header");
    assert_refused(&run(&["pack"], b"{\"a\": [1, 2"), "json");
}

#[test]
fn tampered_wrong_key_and_missing_key_are_refused() {
    let dir = temp_dir("keys");
    let key = keygen(&dir, "key");
    let other = keygen(&dir, "other");
    let packed = run(&["pack", "--key-file", &key], SAMPLE.as_bytes()).stdout;
    assert_refused(
        &run(&["unpack", "--key-file", &other], &packed),
        "authentication failed",
    );
    assert_refused(&run(&["unpack"], &packed), "no key");
    let mut tampered = packed.clone();
    let at = tampered.len() / 2 + 20;
    tampered[at] ^= 0x01;
    assert_refused(
        &run(&["unpack", "--key-file", &key], &tampered),
        "authentication failed",
    );
    let plain = run(&["pack"], SAMPLE.as_bytes()).stdout;
    assert_refused(
        &run(&["unpack", "--key-file", &key], &plain),
        "not encrypted",
    );
    // Key files: refused when malformed, never overwritten.
    let bad = dir.join("bad");
    std::fs::write(&bad, "mechops-key v1 xchacha20poly1305 abcd\n").unwrap();
    make_private(&bad);
    assert_refused(
        &run(&["unpack", "--key-file", bad.to_str().unwrap()], &packed),
        "64 hex",
    );
    let before = std::fs::read(&key).unwrap();
    assert_refused(&run(&["keygen", "-o", &key], b""), "exists");
    assert_eq!(std::fs::read(&key).unwrap(), before);
    let missing = dir.join("missing");
    // A file that cannot be opened is an I/O failure, its cause said once.
    let out = run(&["pack", "--key-file", missing.to_str().unwrap()], b"{}");
    support::assert_io_failure(&out, "missing: no such file");
    assert_eq!(
        out.stderr.matches("No such file").count(),
        1,
        "{}",
        out.stderr
    );
}

/// Takes away the group's and others' access, as `keygen` would have.
fn make_private(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[test]
fn oversized_frames_are_refused_at_the_limit() {
    let packed = run(&["pack", "--compress", "always"], &big_json()).stdout;
    let out = run(&["unpack", "--max-size", "1000"], &packed);
    assert_refused(&out, "above the limit of 1000");
    let ok = run(&["unpack", "--max-size", "100000000"], &packed);
    assert_eq!(ok.code, 0);
}

#[test]
fn postcard_frames_that_nest_too_deep_are_refused() {
    // Hand-built postcard Value: 10,000 nested one-element arrays.
    let mut payload: Vec<u8> = [6u8, 1].repeat(10_000);
    payload.push(0);
    let header = mechops_std::codec::FrameHeader::new(
        mechops_std::codec::FrameSpec::new(
            mechops_std::codec::Format::Postcard,
            mechops_std::codec::Compression::None,
            mechops_std::codec::Encryption::None,
        ),
        payload.len(),
        payload.len(),
        crc32fast::hash(&payload),
    )
    .unwrap();
    let mut frame = header.to_bytes().to_vec();
    frame.extend_from_slice(&payload);
    assert_refused(&run(&["unpack"], &frame), "deeper");
}
