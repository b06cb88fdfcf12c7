//! `path::normalize_dir` against a reference that keeps a `Vec` of names,
//! on inputs built from the characters that matter (`/`, `.`, NUL, a
//! letter) and names near the length limit.

use mechops_core::path::{MAX_NAME_LEN, PathError, is_normal, normalize, normalize_dir};
use proptest::prelude::*;

/// The rules of the module docs, written the obvious way.
fn reference(data: &[u8]) -> Result<Vec<u8>, ()> {
    if data.first() == Some(&b'/') || data.contains(&0) {
        return Err(());
    }
    let trimmed = data.strip_suffix(b"/").unwrap_or(data);
    let mut names: Vec<&[u8]> = Vec::new();
    for name in trimmed.split(|&b| b == b'/') {
        match name {
            b"" if trimmed.is_empty() && data.len() < 2 => {}
            b"" | b".." if name.is_empty() || names.is_empty() => return Err(()),
            b".." => {
                names.pop();
            }
            b"." => {}
            n if n.len() > MAX_NAME_LEN => return Err(()),
            n => names.push(n),
        }
    }
    Ok(names.join(&b'/'))
}

fn piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => Just(b"a".to_vec()),
        6 => Just(b"/".to_vec()),
        4 => Just(b".".to_vec()),
        3 => Just(b"..".to_vec()),
        1 => Just(vec![0]),
        1 => (MAX_NAME_LEN - 1..MAX_NAME_LEN + 2).prop_map(|n| vec![b'x'; n]),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn agrees_with_the_reference(pieces in proptest::collection::vec(piece(), 0..24)) {
        let input = pieces.concat();
        let mut out = vec![0u8; input.len()];
        let got = normalize_dir(&input, &mut out);
        match (got, reference(&input)) {
            (Ok(n), Ok(want)) => {
                prop_assert_eq!(&out[..n], &want[..]);
                if n > 0 {
                    prop_assert!(is_normal(&out[..n]));
                    let mut again = vec![0u8; n];
                    prop_assert_eq!(normalize(&out[..n], &mut again), Ok(n));
                    prop_assert_eq!(&again[..], &out[..n]);
                }
            }
            (Err(PathError::TooLong { .. }), _) => prop_assert!(input.len() > 4095),
            (Err(err), Err(())) => {
                let at = match err {
                    PathError::Nul { at } | PathError::EscapesRoot { at } | PathError::EmptyName { at } => at,
                    PathError::NameTooLong { at, len } => at + len - 1,
                    _ => 0,
                };
                prop_assert!(at < input.len().max(1), "{:?} for {} bytes", err, input.len());
            }
            (got, want) => prop_assert!(false, "{:?} vs reference {:?}", got, want.map(|w| w.len())),
        }
    }
}
