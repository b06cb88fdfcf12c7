//! RFC 3339 and duration parsing: never a panic, and whatever parses
//! survives format -> parse unchanged.
#![no_main]

use mechops_core::time::{
    MAX_RFC3339_LEN, Precision, Rfc3339Cache, Rfc3339Format, SignedDuration, Timestamp,
};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok((ts, offset)) = Timestamp::parse_rfc3339_with_offset(data) {
        // Nanosecond precision keeps every digit the input could carry.
        let mut buf = [0u8; MAX_RFC3339_LEN];
        let utc = Rfc3339Format::new(Precision::Nanos);
        let n = utc
            .format(ts, &mut buf)
            .expect("UTC text of an in-range instant");
        assert_eq!(Timestamp::parse_rfc3339(&buf[..n]), Ok(ts));

        // At the input's own offset the local year may be 10000, which RFC
        // 3339 cannot write; otherwise the round trip must hold, cached too.
        let local = utc.with_offset(offset);
        let mut cache = Rfc3339Cache::new(local);
        let mut cached = [0u8; MAX_RFC3339_LEN];
        match (local.format(ts, &mut buf), cache.format(ts, &mut cached)) {
            (Ok(n), Ok(m)) => {
                assert_eq!(&buf[..n], &cached[..m]);
                assert_eq!(
                    Timestamp::parse_rfc3339_with_offset(&buf[..n]),
                    Ok((ts, offset))
                );
            }
            (Err(a), Err(b)) => {
                assert_eq!(a, b);
                assert!(ts.to_civil_with_offset(offset).year > 9999);
            }
            (a, b) => panic!("cached and plain formatting disagree: {a:?} vs {b:?}"),
        }
    } else if let Err(e) = Timestamp::parse_rfc3339(data) {
        assert!(e.position() <= data.len());
    }

    if let Ok(d) = SignedDuration::parse(data) {
        let text = format!("{d}");
        assert_eq!(SignedDuration::parse(text.as_bytes()), Ok(d));
    } else if let Err(e) = SignedDuration::parse(data) {
        assert!(e.position() <= data.len());
    }
});
