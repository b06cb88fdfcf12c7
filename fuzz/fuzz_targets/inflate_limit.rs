//! Bounded inflate: never a panic, never a byte written past the limit, and
//! whatever it accepts agrees with miniz_oxide's reference decoder.
#![no_main]

use mechops_core::codec::inflate::{InflateError, inflate};

const GUARD: usize = 64;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let limit = usize::from(u16::from_le_bytes([data[0], data[1]]));
    let stream = &data[2..];
    let mut out = vec![0xA5u8; limit + GUARD];
    let res = inflate(stream, &mut out[..limit]);
    assert!(
        out[limit..].iter().all(|&b| b == 0xA5),
        "wrote past the limit"
    );
    match res {
        Ok(n) => {
            assert!(n <= limit);
            let reference = miniz_oxide::inflate::decompress_to_vec_with_limit(stream, limit)
                .expect("the reference decoder accepts what we accept");
            assert_eq!(&out[..n], &reference[..]);
        }
        Err(InflateError::OutputTooLarge { limit: l }) => {
            assert_eq!(l, limit);
            // The stream really is longer than the limit (or the reference
            // rejects it for a reason found later in the stream).
            if let Ok(v) = miniz_oxide::inflate::decompress_to_vec_with_limit(stream, limit + 1) {
                assert!(v.len() > limit);
            }
        }
        Err(_) => {}
    }
});
