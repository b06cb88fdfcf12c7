//! The registry parser never panics. A registry it accepts has scripts
//! whose JSON form parses back to the same script, and whose binding and
//! rendering with their defaults never panic. Input is bounded by
//! `MAX_REGISTRY_BYTES` (16 MiB): more is refused before parsing.
#![no_main]

use std::path::Path;

use mechops_std::registry::{Registry, Script};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    match Registry::parse(text, Path::new("/registry")) {
        Ok(reg) => {
            for script in reg.scripts() {
                let json = serde_json::to_string(&**script).expect("a script serializes");
                let again = Script::parse_entry(&json, reg.pools()).expect("its JSON form is valid");
                assert_eq!(&again, &**script);
                assert!(reg.get(&script.id).is_some());
                if let Ok(bound) = script.bind(&serde_json::Map::new()) {
                    let _ = script.render(&bound, reg.base_dir());
                }
            }
        }
        Err(err) => assert!(!err.to_string().is_empty()),
    }
});
