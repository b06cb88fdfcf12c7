//! postcard decoding of the project's own serde types from slices and from
//! an `embedded_io` reader: never a panic, and a value that decodes
//! re-encodes to exactly the bytes it used.
#![no_main]

#[path = "support/trickle.rs"]
mod trickle;

use mechops_alloc::serialize::Value;
use mechops_core::codec::header::FrameHeader;
use mechops_core::codec::postcard::{from_reader, take_from_slice, to_slice};
use mechops_core::time::Timestamp;
use mechops_core::uuid::Uuid;
use serde::Serialize;
use serde::de::DeserializeOwned;
use trickle::Trickle;

fn check<T>(data: &[u8], step: usize)
where
    T: Serialize + DeserializeOwned + PartialEq + core::fmt::Debug,
{
    if let Ok((value, rest)) = take_from_slice::<T>(data) {
        let used = data.len() - rest.len();
        let mut out = vec![0u8; used + 16];
        let n = to_slice(&value, &mut out).expect("a decoded value encodes");
        // Varints have one canonical form in postcard's encoder but the
        // decoder may accept others, so compare values, not bytes.
        let (again, _) = take_from_slice::<T>(&out[..n]).expect("re-encoded bytes decode");
        assert_eq!(again, value);
    }
    let mut reader = Trickle { data, step };
    let mut scratch = [0u8; 64];
    let from_stream = from_reader::<T, _>(&mut reader, &mut scratch);
    if let (Ok(a), Ok((b, _))) = (&from_stream, take_from_slice::<T>(data)) {
        assert_eq!(a, &b);
    }
}

/// The CLI's self-describing value: untrusted bytes pass the non-recursive
/// structure check first, and whatever passes must decode without exhausting
/// the stack. `Float(NaN)` is not equal to itself, so the round trip compares
/// re-encoded bytes rather than values.
fn check_value(data: &[u8]) {
    if Value::check_postcard(data).is_err() {
        return;
    }
    if let Ok((value, _)) = take_from_slice::<Value>(data) {
        let mut first = vec![0u8; data.len() + 16];
        let n = to_slice(&value, &mut first).expect("a decoded value encodes");
        let (again, _) = take_from_slice::<Value>(&first[..n]).expect("re-encoded bytes decode");
        let mut second = vec![0u8; n + 16];
        let m = to_slice(&again, &mut second).expect("a decoded value encodes");
        assert_eq!(first[..n], second[..m]);
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let step = usize::from(sel >> 4) + 1;
    match sel & 7 {
        0 => check::<FrameHeader>(rest, step),
        1 => check::<(FrameHeader, u64, bool)>(rest, step),
        2 => check::<Uuid>(rest, step),
        3 => check::<Timestamp>(rest, step),
        4 => check::<(Uuid, Timestamp, Option<Uuid>)>(rest, step),
        _ => check_value(rest),
    }
});
