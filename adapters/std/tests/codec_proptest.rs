//! Round trips through every format x compression x encryption combination.

use mechops_std::codec::{
    Compression, CompressionPolicy, Encryption, Format, Key, Options, deserialize, inspect, open,
    serialize,
};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    id: u64,
    delta: i32,
    name: String,
    tags: Vec<String>,
    score: Option<f64>,
    blob: Vec<u8>,
    nested: Vec<(u16, bool)>,
}

fn record() -> impl Strategy<Value = Record> {
    (
        any::<u64>(),
        any::<i32>(),
        ".{0,40}",
        prop::collection::vec("[a-z]{0,12}", 0..120),
        prop::option::of(-1e300f64..1e300),
        prop::collection::vec(any::<u8>(), 0..300),
        prop::collection::vec(any::<(u16, bool)>(), 0..40),
    )
        .prop_map(|(id, delta, name, tags, score, blob, nested)| Record {
            id,
            delta,
            name,
            tags,
            score,
            blob,
            nested,
        })
}

fn policies() -> [CompressionPolicy; 4] {
    [
        CompressionPolicy::Never,
        CompressionPolicy::Always,
        CompressionPolicy::default(),
        CompressionPolicy::Auto { threshold: 64 },
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn every_combination_round_trips(value in record(), key in any::<[u8; 32]>(), level in 0u8..=10) {
        for format in Format::ALL {
            for policy in policies() {
                for keyed in [false, true] {
                    let mut options = Options::new(format).compression(policy).level(level);
                    if keyed {
                        options = options.key(Key::from_bytes(&key));
                    }
                    let out = serialize(&value, &options).unwrap();
                    let header = inspect(&out.data).unwrap();
                    prop_assert_eq!(header.format(), format);
                    prop_assert_eq!(header.original_size() as usize, out.original_size);
                    prop_assert_eq!(out.final_size, out.data.len());
                    prop_assert_eq!(
                        header.encryption(),
                        if keyed { Encryption::XChaCha20Poly1305 } else { Encryption::None }
                    );
                    // Compression is used only when asked and only when it shrinks.
                    if header.compression() == Compression::Deflate {
                        prop_assert!(policy.should_try(out.original_size));
                        prop_assert!(header.stored_len() < out.original_size);
                    } else {
                        prop_assert_eq!(header.stored_len(), out.original_size);
                    }
                    let back: Record = deserialize(&out.data, &options).unwrap();
                    prop_assert_eq!(&back, &value);
                    // The opened payload is the original size exactly.
                    let (_, payload) = open(&out.data, &options).unwrap();
                    prop_assert_eq!(payload.len(), out.original_size);
                }
            }
        }
    }
}
