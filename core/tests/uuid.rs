//! Integration tests of `mechops_core::uuid`: RFC 9562 known answers,
//! round trips of every encoding and case, and serde.

use mechops_core::uuid::{
    Case, FastV4, Format, ParseError, SharedV7, Uuid, V7Generator, Variant, Version,
};
use proptest::prelude::*;
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

#[test]
fn rfc9562_appendix_a_v4_example() {
    let u = Uuid::parse_str("919108f7-52d1-4320-9bac-f847db4148a8").unwrap();
    assert_eq!(u.version(), Version::V4);
    assert_eq!(u.variant(), Variant::Rfc9562);
    assert_eq!(u.unix_millis(), None);
    assert_eq!(u.as_u128(), 0x9191_08f7_52d1_4320_9bac_f847_db41_48a8);
    assert_eq!(u.to_string(), "919108f7-52d1-4320-9bac-f847db4148a8");
}

#[test]
fn rfc9562_appendix_a_v7_example() {
    // RFC 9562 A.6: Tuesday, February 22, 2022 2:22:22.00 PM GMT-05:00.
    let u = Uuid::parse_str("017F22E2-79B0-7CC3-98C4-DC0C0C07398F").unwrap();
    assert_eq!(u.version(), Version::V7);
    assert_eq!(u.variant(), Variant::Rfc9562);
    assert_eq!(u.unix_millis(), Some(0x017F_22E2_79B0));
    assert_eq!(u.unix_millis(), Some(1_645_557_742_000));
    assert_eq!(
        &*u.hyphenated(Case::Upper),
        "017F22E2-79B0-7CC3-98C4-DC0C0C07398F"
    );
    assert_eq!(u.to_string(), "017f22e2-79b0-7cc3-98c4-dc0c0c07398f");
}

#[test]
fn rfc9562_nil_and_max() {
    assert_eq!(
        Uuid::parse_str("00000000-0000-0000-0000-000000000000"),
        Ok(Uuid::NIL)
    );
    assert_eq!(
        Uuid::parse_str("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"),
        Ok(Uuid::MAX)
    );
}

#[test]
fn a_generated_v7_embeds_the_time_it_was_given() {
    let mut g = V7Generator::new(Xoshiro256PlusPlus::seed_from_u64(0));
    let u = g.generate(1_645_557_742_000).unwrap();
    assert_eq!(u.unix_millis(), Some(1_645_557_742_000));
    let shared = SharedV7::new();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(0);
    let s = shared.generate(1_645_557_742_000, &mut rng).unwrap();
    assert_eq!(s.unix_millis(), Some(1_645_557_742_000));
    // Same millisecond prefix as the RFC example.
    assert_eq!(&u.simple(Case::Upper)[..12], "017F22E279B0");
}

fn case_strategy() -> impl Strategy<Value = Case> {
    prop_oneof![Just(Case::Lower), Just(Case::Upper)]
}

fn format_strategy() -> impl Strategy<Value = Format> {
    prop_oneof![
        Just(Format::Hyphenated),
        Just(Format::Simple),
        Just(Format::Urn),
        Just(Format::Braced)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_encoding_round_trips(value: u128, format in format_strategy(), case in case_strategy()) {
        let u = Uuid::from_u128(value);
        let mut buf = [0u8; 64];
        let text = u.encode(format, case, &mut buf).unwrap();
        prop_assert_eq!(text.len(), format.encoded_len());
        let text: &str = text;
        prop_assert_eq!(Uuid::parse_str(text), Ok(u));
        prop_assert_eq!(&*u.to_str_in(format, case), text);
        let has_lower = text.bytes().skip(if format == Format::Urn { 9 } else { 0 })
            .any(|b| b.is_ascii_lowercase());
        let has_upper = text.bytes().any(|b| b.is_ascii_uppercase());
        match case {
            Case::Lower => prop_assert!(!has_upper),
            Case::Upper => prop_assert!(!has_lower),
        }
    }

    #[test]
    fn parsing_matches_a_naive_reference(bytes in proptest::collection::vec(any::<u8>(), 30..47)) {
        let ours = Uuid::parse_ascii(&bytes);
        prop_assert_eq!(ours.ok(), naive_parse(&bytes));
    }

    #[test]
    fn single_byte_corruption_is_reported_at_its_position(
        value: u128,
        format in format_strategy(),
        case in case_strategy(),
        index: prop::sample::Index,
        replacement: u8,
    ) {
        let mut buf = [0u8; 64];
        let len = Uuid::from_u128(value).encode(format, case, &mut buf).unwrap().len();
        let text = &mut buf[..len];
        let at = index.index(len);
        let original = text[at];
        text[at] = replacement;
        match Uuid::parse_ascii(text) {
            // A hex digit for a hex digit, or a case change, still parses,
            // and must agree with the reference.
            Ok(parsed) => prop_assert_eq!(Some(parsed), naive_parse(text)),
            Err(err) => {
                prop_assert_ne!(replacement, original);
                prop_assert_eq!(naive_parse(text), None);
                prop_assert_eq!(err.position(), Some(at));
            }
        }
    }

    #[test]
    fn fast_generator_is_reproducible(seed: [u8; 32]) {
        let mut a = FastV4::from_seed(seed);
        let mut b = FastV4::from_seed(seed);
        let mut bulk = [Uuid::NIL; 8];
        a.fill(&mut bulk);
        for u in bulk {
            prop_assert_eq!(u, b.generate());
            prop_assert_eq!(u.version(), Version::V4);
            prop_assert_eq!(u.variant(), Variant::Rfc9562);
        }
    }

    #[test]
    fn v7_is_strictly_increasing_under_any_clock(
        seed: u64,
        clock in proptest::collection::vec(0u64..20, 1..200),
    ) {
        let mut g = V7Generator::new(Xoshiro256PlusPlus::seed_from_u64(seed));
        let shared = SharedV7::new();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut prev = None;
        let mut prev_shared = None;
        for now in clock {
            let u = g.generate(now).unwrap();
            let s = shared.generate(now, &mut rng).unwrap();
            prop_assert!(prev.is_none_or(|p| u > p));
            prop_assert!(prev_shared.is_none_or(|p| s > p));
            prop_assert!(u.unix_millis().unwrap() >= now);
            prop_assert!(s.unix_millis().unwrap() >= now);
            prev = Some(u);
            prev_shared = Some(s);
        }
    }
}

/// A deliberately simple parser to compare against: strip the form's frame,
/// then require exactly 32 hex digits with hyphens where they belong.
fn naive_parse(input: &[u8]) -> Option<Uuid> {
    let text = core::str::from_utf8(input).ok()?;
    let body = match text.len() {
        32 => text.to_owned(),
        36 => hyphenated_body(text)?,
        38 => hyphenated_body(text.strip_prefix('{')?.strip_suffix('}')?)?,
        45 => {
            let (prefix, rest) = text.split_at_checked(9)?;
            if !prefix.eq_ignore_ascii_case("urn:uuid:") {
                return None;
            }
            hyphenated_body(rest)?
        }
        _ => return None,
    };
    if !body.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u128::from_str_radix(&body, 16).ok().map(Uuid::from_u128)
}

fn hyphenated_body(text: &str) -> Option<String> {
    let groups: Vec<&str> = text.split('-').collect();
    let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    (lens == [8, 4, 4, 4, 12]).then(|| groups.concat())
}

#[test]
fn naive_reference_agrees_on_fixed_cases() {
    let good = "urn:uuid:919108F7-52d1-4320-9bac-f847db4148a8";
    assert_eq!(naive_parse(good.as_bytes()), Uuid::parse_str(good).ok());
    assert!(naive_parse(b"919108f7-52d1-4320-9bac-f847db4148a+").is_none());
    assert!(matches!(
        Uuid::parse_str("919108f7-52d1-4320-9bac-f847db4148a+"),
        Err(ParseError::InvalidDigit { position: 35, .. })
    ));
}

#[cfg(feature = "serde")]
mod serde_support {
    use super::*;

    #[test]
    fn json_uses_the_hyphenated_string() {
        let u = Uuid::parse_str("919108f7-52d1-4320-9bac-f847db4148a8").unwrap();
        let json = serde_json::to_string(&u).unwrap();
        assert_eq!(json, "\"919108f7-52d1-4320-9bac-f847db4148a8\"");
        assert_eq!(serde_json::from_str::<Uuid>(&json).unwrap(), u);
        assert_eq!(
            serde_json::from_str::<Uuid>("\"919108F752D143209BACF847DB4148A8\"").unwrap(),
            u
        );
        let err = serde_json::from_str::<Uuid>("\"919108f7\"").unwrap_err();
        assert!(err.to_string().contains("invalid UUID length 8"), "{err}");
    }

    #[test]
    fn binary_formats_use_sixteen_bytes() {
        let u = Uuid::parse_str("017f22e2-79b0-7cc3-98c4-dc0c0c07398f").unwrap();
        let mut buf = [0u8; 32];
        let used = postcard::to_slice(&u, &mut buf).unwrap();
        // One length byte, then the 16 bytes in network order.
        assert_eq!(used.len(), 17);
        assert_eq!(&used[1..], u.as_bytes());
        assert_eq!(postcard::from_bytes::<Uuid>(used).unwrap(), u);
        assert!(postcard::from_bytes::<Uuid>(&[3, 1, 2, 3]).is_err());
    }
}
