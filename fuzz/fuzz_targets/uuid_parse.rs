//! UUID parsing never panics, and whatever parses survives encoding in every
//! form and case and parsing again unchanged. Rejections carry a position
//! inside the input.
#![no_main]

use mechops_core::uuid::{Case, Format, ParseError, Uuid};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    match Uuid::parse_ascii(data) {
        Ok(uuid) => {
            for format in Format::ALL {
                for case in [Case::Lower, Case::Upper] {
                    let mut buf = [0u8; 45];
                    let text = uuid
                        .encode(format, case, &mut buf)
                        .expect("45 bytes fit every form");
                    assert_eq!(Uuid::parse_str(text), Ok(uuid));
                    assert_eq!(&*uuid.to_str_in(format, case), &*text);
                }
            }
            // The input was one of the forms, so it has one of their lengths.
            assert!(Format::ALL.iter().any(|f| f.encoded_len() == data.len()));
        }
        Err(err) => {
            if let Some(position) = err.position() {
                assert!(
                    position < data.len(),
                    "{err:?} outside {} bytes",
                    data.len()
                );
            } else {
                assert!(matches!(err, ParseError::InvalidLength { .. }));
            }
            // Displaying an error never panics either.
            let mut sink = count_sink::Sink::default();
            core::fmt::write(&mut sink, format_args!("{err}")).expect("sink accepts all");
        }
    }
});

mod count_sink {
    /// Counts what `Display` writes, without allocating.
    #[derive(Default)]
    pub struct Sink(pub usize);

    impl core::fmt::Write for Sink {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            self.0 += s.len();
            Ok(())
        }
    }
}
