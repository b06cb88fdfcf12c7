//! A formatting cache for streams of nearby timestamps (log lines, metrics).
//!
//! The cache keeps the text `YYYY-MM-DDTHH:MM:` of the last local minute it
//! formatted. A timestamp in the same minute only needs its two second digits,
//! its fraction and its offset written; anything else recomputes the civil
//! date once and refills the cache. Output is byte-for-byte what
//! [`Rfc3339Format::format`] writes for the same options.
//!
//! The cache is plain owned state (`&mut self`), so it needs no
//! synchronisation; use one per thread or per writer.

use super::rfc3339::{FormatError, Head, Rfc3339Format, emit_for, head, offset_word};
use super::timestamp::Timestamp;

/// Local seconds that can never start a cached minute (an empty cache).
const EMPTY: i64 = i64::MIN;

/// Formats RFC 3339 text with fixed options, reusing the date and
/// hour-minute text while timestamps stay within one minute.
#[derive(Debug, Clone)]
pub struct Rfc3339Cache {
    format: Rfc3339Format,
    /// Local Unix seconds of the cached minute's start, or [`EMPTY`].
    minute_start: i64,
    /// `YYYY-MM-DDTHH:MM` of the cached minute (its `second` is unused).
    head: Head,
    /// The offset text, fixed by the options.
    offset: u64,
    /// Seconds added to UTC for local time, fixed by the options.
    offset_seconds: i64,
}

impl Rfc3339Cache {
    /// An empty cache for the given options.
    #[inline]
    pub fn new(format: Rfc3339Format) -> Self {
        Self {
            format,
            minute_start: EMPTY,
            head: Head {
                date: 0,
                time: 0,
                second: 0,
            },
            offset: offset_word(format.offset()),
            offset_seconds: format.offset_seconds(),
        }
    }

    /// The options this cache formats with.
    #[inline]
    pub const fn options(&self) -> Rfc3339Format {
        self.format
    }

    /// Writes `timestamp` into the start of `out` exactly as
    /// [`Rfc3339Format::format`] would, and returns the number of bytes.
    #[inline]
    pub fn format(&mut self, timestamp: Timestamp, out: &mut [u8]) -> Result<usize, FormatError> {
        let len = self.format.formatted_len();
        let available = out.len();
        let Some(out) = out.get_mut(..len) else {
            return Err(FormatError::BufferTooSmall {
                needed: len,
                available,
            });
        };
        let local = timestamp.unix_secs() + self.offset_seconds;
        // Wrapping: an EMPTY start gives a huge difference, i.e. a miss.
        let into_minute = local.wrapping_sub(self.minute_start) as u64;
        let second = if into_minute < 60 {
            into_minute as u32
        } else {
            self.refill(local)?
        };
        let head = Head {
            second,
            ..self.head
        };
        emit_for(
            self.format,
            head,
            timestamp.subsec_nanos(),
            self.offset,
            out,
        );
        Ok(len)
    }

    /// Computes the minute of `local` and returns its second.
    #[cold]
    fn refill(&mut self, local: i64) -> Result<u32, FormatError> {
        let head = head(local)?;
        self.head = head;
        self.minute_start = local - i64::from(head.second);
        Ok(head.second)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{MAX_RFC3339_LEN, Offset, Precision};
    use super::*;

    fn both(cache: &mut Rfc3339Cache, ts: Timestamp) {
        let mut a = [0u8; MAX_RFC3339_LEN];
        let mut b = [0u8; MAX_RFC3339_LEN];
        let n = cache.format(ts, &mut a).unwrap();
        let m = cache.options().format(ts, &mut b).unwrap();
        assert_eq!(&a[..n], &b[..m], "{ts}");
    }

    #[test]
    fn matches_uncached_output_across_minute_and_day_boundaries() {
        let offsets = [
            None,
            Some(Offset::UTC),
            Some(Offset::from_hm(true, 3, 30).unwrap()),
        ];
        for offset in offsets {
            for precision in [
                Precision::Seconds,
                Precision::Millis,
                Precision::Micros,
                Precision::Nanos,
            ] {
                let mut format = Rfc3339Format::new(precision);
                if let Some(o) = offset {
                    format = format.with_offset(o);
                }
                let mut cache = Rfc3339Cache::new(format);
                let start = Timestamp::from_unix(1_704_067_170, 0).unwrap().unix_nanos();
                // Steps of 7.3 s over several minutes and the new year.
                for i in 0..100 {
                    let ts = Timestamp::from_unix_nanos(start + i * 7_300_000_123).unwrap();
                    both(&mut cache, ts);
                }
                // Jumping backwards and far away still matches.
                for secs in [-1, 0, 59, 60, -61, 253_402_300_000, -62_135_596_800] {
                    both(&mut cache, Timestamp::from_unix(secs, 999_999_999).unwrap());
                }
            }
        }
    }

    #[test]
    fn reports_errors_like_the_uncached_formatter() {
        let mut cache = Rfc3339Cache::new(Rfc3339Format::new(Precision::Millis));
        let mut small = [0u8; 10];
        assert_eq!(
            cache.format(Timestamp::UNIX_EPOCH, &mut small),
            Err(FormatError::BufferTooSmall {
                needed: 24,
                available: 10
            })
        );
        let east = Offset::from_hm(false, 0, 1).unwrap();
        let mut cache = Rfc3339Cache::new(Rfc3339Format::new(Precision::Seconds).with_offset(east));
        let mut buf = [0u8; MAX_RFC3339_LEN];
        assert_eq!(
            cache.format(Timestamp::MAX, &mut buf),
            Err(FormatError::YearOutOfRange { year: 10000 })
        );
        // A failed refill leaves the cache usable.
        let n = cache.format(Timestamp::UNIX_EPOCH, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"1970-01-01T00:01:00+00:01");
    }
}
