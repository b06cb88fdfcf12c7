//! Bounded capture of a byte stream, and the splitter that takes the
//! `::progress` lines out of standard error. Both are plain state machines
//! fed with whatever chunks the pipes give, so they are tested without a
//! process.
//!
//! # Invariants
//!
//! - A [`Capture`] never holds more than its limit, however much it is fed.
//! - A [`LineSplitter`] holds at most [`MAX_PROGRESS_LINE`] bytes: a line is
//!   held back only while it may still be a progress line, so a line of
//!   gigabytes without a newline streams through as text.
//! - The text pieces a splitter emits, concatenated, are its input minus
//!   exactly the well-formed progress lines (with their line ends), however
//!   the input was chunked.

use super::outcome::ProgressReport;

/// The longest line taken for a progress report; a longer one that starts
/// like one is ordinary text.
pub const MAX_PROGRESS_LINE: usize = 4096;

const PREFIX: &[u8] = b"::progress";

/// Keeps the first `limit` bytes of a stream and notes whether more came.
#[derive(Debug)]
pub(crate) struct Capture {
    kept: Vec<u8>,
    limit: usize,
    truncated: bool,
}

impl Capture {
    pub(crate) const fn new(limit: usize) -> Self {
        Self {
            kept: Vec::new(),
            limit,
            truncated: false,
        }
    }

    pub(crate) fn push(&mut self, bytes: &[u8]) {
        let room = self.limit - self.kept.len();
        if bytes.len() > room {
            self.truncated = true;
        }
        self.kept.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// Whether more came than the bound.
    pub(crate) const fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// The text (lossy UTF-8) and whether it was truncated. A character
    /// cut in two by the bound is dropped rather than shown as U+FFFD.
    pub(crate) fn finish(mut self) -> (String, bool) {
        if self.truncated {
            let cut = incomplete_tail(&self.kept);
            self.kept.truncate(self.kept.len() - cut);
        }
        let text = match String::from_utf8(self.kept) {
            Ok(text) => text,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
        (text, self.truncated)
    }
}

/// How many bytes at the end of `bytes` are the start of a UTF-8 sequence
/// that the end cuts short (0 when none).
fn incomplete_tail(bytes: &[u8]) -> usize {
    for back in 1..=bytes.len().min(3) {
        let b = bytes[bytes.len() - back];
        if b & 0xC0 == 0x80 {
            continue; // a continuation byte: look further back
        }
        let needed = match b {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => return 0,
        };
        return if needed > back { back } else { 0 };
    }
    0
}

/// One piece of standard error: text to keep, or a progress report.
#[derive(Debug, PartialEq)]
pub(crate) enum Piece<'a> {
    Text(&'a [u8]),
    Progress(ProgressReport),
}

/// Splits standard error into text and progress reports. Feed it chunks
/// with [`feed`](Self::feed), then call [`finish`](Self::finish) at the end
/// of the stream.
#[derive(Debug, Default)]
pub(crate) struct LineSplitter {
    /// The start of the current line, held while it may be a progress line.
    held: Vec<u8>,
    /// The current line is ordinary text and streams through.
    passthrough: bool,
}

impl LineSplitter {
    pub(crate) fn feed(&mut self, mut input: &[u8], out: &mut impl FnMut(Piece<'_>)) {
        while !input.is_empty() {
            let newline = input.iter().position(|&b| b == b'\n');
            let (chunk, complete) = match newline {
                Some(i) => (&input[..=i], true),
                None => (input, false),
            };
            input = &input[chunk.len()..];
            if self.passthrough {
                out(Piece::Text(chunk));
                self.passthrough = !complete;
                continue;
            }
            if self.held.len() + chunk.len() > MAX_PROGRESS_LINE
                || !starts_like_progress(&self.held, chunk)
            {
                if !self.held.is_empty() {
                    out(Piece::Text(&self.held));
                    self.held.clear();
                }
                out(Piece::Text(chunk));
                self.passthrough = !complete;
                continue;
            }
            self.held.extend_from_slice(chunk);
            if complete {
                self.emit_held(out);
            }
        }
    }

    /// Ends the stream: a last line without a newline counts too.
    pub(crate) fn finish(&mut self, out: &mut impl FnMut(Piece<'_>)) {
        if !self.held.is_empty() {
            self.emit_held(out);
        }
        self.passthrough = false;
    }

    fn emit_held(&mut self, out: &mut impl FnMut(Piece<'_>)) {
        match parse_progress(&self.held) {
            Some(report) => out(Piece::Progress(report)),
            None => out(Piece::Text(&self.held)),
        }
        self.held.clear();
    }
}

/// Whether `held` followed by `chunk` agrees with the progress prefix as
/// far as both go.
fn starts_like_progress(held: &[u8], chunk: &[u8]) -> bool {
    let have = held.iter().chain(chunk).take(PREFIX.len());
    PREFIX.iter().zip(have).all(|(a, b)| a == b)
}

/// Parses `::progress PERCENT [MESSAGE]` (with its line end, if any):
/// `PERCENT` is digits with an optional fraction, from 0 to 100; the
/// message is the rest of the line without surrounding blanks.
pub(crate) fn parse_progress(line: &[u8]) -> Option<ProgressReport> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let rest = line.strip_prefix(PREFIX)?;
    let rest = core::str::from_utf8(rest).ok()?;
    if !rest.starts_with([' ', '\t']) {
        return None;
    }
    let rest = rest.trim_start_matches([' ', '\t']);
    let (number, message) = match rest.find([' ', '\t']) {
        Some(i) => (&rest[..i], rest[i..].trim()),
        None => (rest, ""),
    };
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (number, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !fraction.is_none_or(digits) {
        return None;
    }
    let percent: f64 = number.parse().ok()?;
    if !(0.0..=100.0).contains(&percent) {
        return None;
    }
    Some(ProgressReport {
        percent,
        message: (!message.is_empty()).then(|| message.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn report(percent: f64, message: Option<&str>) -> Option<ProgressReport> {
        Some(ProgressReport {
            percent,
            message: message.map(str::to_owned),
        })
    }

    #[test]
    fn progress_lines_parse_and_malformed_ones_do_not() {
        assert_eq!(
            parse_progress(b"::progress 40 copying files\n"),
            report(40.0, Some("copying files"))
        );
        assert_eq!(parse_progress(b"::progress 0"), report(0.0, None));
        assert_eq!(parse_progress(b"::progress 100\r\n"), report(100.0, None));
        assert_eq!(
            parse_progress(b"::progress\t12.5\t half  "),
            report(12.5, Some("half"))
        );
        for bad in [
            &b"::progress"[..],
            b"::progress ",
            b"::progress 101",
            b"::progress 100.5",
            b"::progress -1",
            b"::progress +5",
            b"::progress 5.",
            b"::progress .5",
            b"::progress NaN",
            b"::progress inf",
            b"::progress 1e2",
            b"::progress40",
            b"::progressive 40",
            b" ::progress 40",
            b"::progress 40 \xff",
        ] {
            assert_eq!(
                parse_progress(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    fn split(chunks: &[&[u8]]) -> (Vec<u8>, Vec<ProgressReport>) {
        let mut s = LineSplitter::default();
        let mut text = Vec::new();
        let mut reports = Vec::new();
        let mut out = |p: Piece<'_>| match p {
            Piece::Text(t) => text.extend_from_slice(t),
            Piece::Progress(r) => reports.push(r),
        };
        for c in chunks {
            s.feed(c, &mut out);
        }
        s.finish(&mut out);
        (text, reports)
    }

    #[test]
    fn progress_lines_leave_the_text() {
        let (text, reports) = split(&[
            b"start\n::progr",
            b"ess 10 a\nwarn: x\n::progress 200\n::progress 50",
        ]);
        assert_eq!(text, b"start\nwarn: x\n::progress 200\n");
        assert_eq!(
            reports,
            [
                report(10.0, Some("a")).unwrap(),
                report(50.0, None).unwrap()
            ]
        );
    }

    #[test]
    fn a_long_line_streams_through_without_being_held() {
        let mut s = LineSplitter::default();
        let long = vec![b'x'; 10 * MAX_PROGRESS_LINE];
        let mut seen = 0;
        s.feed(&long, &mut |p| {
            if let Piece::Text(t) = p {
                seen += t.len();
            }
        });
        assert_eq!(seen, long.len());
        assert!(s.held.is_empty());
        // A line that starts like a progress line but never ends is let
        // go once it passes the bound.
        let mut fake = b"::progress 5 ".to_vec();
        fake.resize(MAX_PROGRESS_LINE + 1, b'y');
        let (text, reports) = split(&[b"\n", &fake[..100], &fake[100..], b"\n::progress 7\n"]);
        assert!(reports == [report(7.0, None).unwrap()]);
        assert_eq!(text.len(), 1 + fake.len() + 1);
    }

    #[test]
    fn capture_keeps_the_bound_and_whole_characters() {
        let mut c = Capture::new(5);
        c.push(b"ab");
        c.push("cdé".as_bytes()); // é is two bytes: one fits
        assert_eq!(c.finish(), ("abcd".to_owned(), true));
        let mut c = Capture::new(8);
        c.push(b"ok\xff");
        assert_eq!(c.finish(), ("ok\u{fffd}".to_owned(), false));
        let mut c = Capture::new(0);
        c.push(b"");
        assert_eq!(c.finish(), (String::new(), false));
    }

    fn line() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            (0u32..=100, "[a-z ]{0,6}")
                .prop_map(|(p, m)| format!("::progress {p} {m}\n").into_bytes()),
            "[:a-z0-9 .]{0,12}\n".prop_map(String::into_bytes),
            proptest::collection::vec(any::<u8>(), 0..20),
        ]
    }

    proptest! {
        #[test]
        fn chunking_does_not_change_the_split(
            lines in proptest::collection::vec(line(), 0..12),
            cuts in proptest::collection::vec(0usize..200, 0..8),
        ) {
            let input: Vec<u8> = lines.concat();
            let (whole_text, whole_reports) = split(&[&input]);
            let mut bounds: Vec<usize> = cuts.into_iter().map(|c| c.min(input.len())).collect();
            bounds.sort_unstable();
            let mut chunks = Vec::new();
            let mut at = 0;
            for b in bounds {
                chunks.push(&input[at..b]);
                at = b;
            }
            chunks.push(&input[at..]);
            let (text, reports) = split(&chunks);
            prop_assert_eq!(&text, &whole_text);
            prop_assert_eq!(&reports, &whole_reports);
            // Text plus the progress lines make up the whole input.
            let kept: usize = text.len();
            prop_assert!(kept <= input.len());
            prop_assert_eq!(reports.is_empty(), kept == input.len());
        }
    }
}
