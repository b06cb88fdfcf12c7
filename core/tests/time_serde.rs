//! Timestamps serialize as RFC 3339 text and read back exactly.
#![cfg(feature = "serde")]

use mechops_core::time::Timestamp;

#[test]
fn timestamps_serialize_as_rfc3339_with_nanoseconds() {
    let ts = Timestamp::from_unix(1_700_000_000, 123_456_789).unwrap();
    let json = serde_json::to_string(&ts).unwrap();
    assert_eq!(json, "\"2023-11-14T22:13:20.123456789Z\"");
    assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), ts);
    let west: Timestamp = serde_json::from_str("\"2023-11-14T14:13:20.5-08:00\"").unwrap();
    assert_eq!(
        (west.unix_secs(), west.subsec_nanos()),
        (1_700_000_000, 500_000_000)
    );
}

#[test]
fn bad_text_is_a_deserialization_error_naming_the_position() {
    let err = serde_json::from_str::<Timestamp>("\"2023-13-14T22:13:20Z\"").unwrap_err();
    assert!(err.to_string().contains("month 13 at byte 5"), "{err}");
    assert!(serde_json::from_str::<Timestamp>("12").is_err());
}
