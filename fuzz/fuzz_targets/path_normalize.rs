//! Path normalization never panics; what it accepts is in normal form, no
//! longer than the input, idempotent, and agrees with a reference that keeps
//! a stack of names; every refusal's offset lies inside the input.
#![no_main]

use mechops_core::path::{MAX_PATH_LEN, PathError, is_normal, normalize, normalize_dir};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut out = vec![0u8; data.len()];
    match normalize_dir(data, &mut out) {
        Ok(n) => {
            let normal = &out[..n];
            assert!(n <= data.len());
            assert_eq!(reference(data).as_deref(), Some(normal));
            if n > 0 {
                assert!(is_normal(normal), "{normal:?}");
                let mut again = vec![0u8; n];
                assert_eq!(normalize(normal, &mut again), Ok(n));
                assert_eq!(&again[..], normal);
            }
        }
        Err(err) => {
            assert!(reference(data).is_none() || matches!(err, PathError::TooLong { .. }));
            match err {
                PathError::Nul { at }
                | PathError::EscapesRoot { at }
                | PathError::EmptyName { at } => {
                    assert!(at < data.len() || (at == data.len() && !data.is_empty()))
                }
                PathError::NameTooLong { at, len } => assert!(at + len <= data.len()),
                PathError::TooLong { len } => assert!(len > MAX_PATH_LEN),
                PathError::Absolute => assert_eq!(data.first(), Some(&b'/')),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
});

/// The same rules with a `Vec` of names.
fn reference(data: &[u8]) -> Option<Vec<u8>> {
    if data.first() == Some(&b'/') || data.contains(&0) {
        return None;
    }
    let trimmed = data.strip_suffix(b"/").unwrap_or(data);
    let mut names: Vec<&[u8]> = Vec::new();
    for name in trimmed.split(|&b| b == b'/') {
        match name {
            b"" if trimmed.is_empty() && data.len() < 2 => {}
            b"" => return None,
            b"." => {}
            b".." => {
                names.pop()?;
            }
            n if n.len() > 255 => return None,
            n => names.push(n),
        }
    }
    Some(names.join(&b'/'))
}
