//! Fixed UTC offsets as RFC 3339 writes them: `+HH:MM` or `-HH:MM`.
//!
//! Invariant: an [`Offset`] is a whole number of minutes strictly between
//! -24 h and +24 h (RFC 3339 `time-numoffset` allows hours 00..=23 and
//! minutes 00..=59). Local time is UTC plus the offset.

use core::fmt;

/// A fixed offset from UTC, in whole minutes, within ±23:59.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Offset {
    minutes: i16,
}

/// Why an offset was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OffsetError {
    /// The offset is 24 hours or more away from UTC (value in minutes).
    OutOfRange(i32),
    /// The text is not `Z` or `+HH:MM`/`-HH:MM`; `position` is the byte that
    /// broke the pattern.
    Syntax {
        /// Byte index of the first unexpected byte (or the length, if short).
        position: usize,
    },
    /// The hour field is above 23.
    Hour(u8),
    /// The minute field is above 59.
    Minute(u8),
}

impl fmt::Display for OffsetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::OutOfRange(m) => write!(f, "offset of {m} minutes is not within ±23:59"),
            Self::Syntax { position } => write!(
                f,
                "offset must look like Z, +HH:MM or -HH:MM (unexpected input at byte {position})"
            ),
            Self::Hour(h) => write!(f, "offset hour {h} is not in 00..=23"),
            Self::Minute(m) => write!(f, "offset minute {m} is not in 00..=59"),
        }
    }
}

impl core::error::Error for OffsetError {}

impl Offset {
    /// UTC itself.
    pub const UTC: Self = Self { minutes: 0 };
    /// The most negative offset, `-23:59`.
    pub const MIN: Self = Self { minutes: -1439 };
    /// The most positive offset, `+23:59`.
    pub const MAX: Self = Self { minutes: 1439 };

    /// An offset of `minutes` east of UTC (negative is west).
    #[inline]
    pub const fn from_minutes(minutes: i32) -> Result<Self, OffsetError> {
        if minutes < -1439 || minutes > 1439 {
            return Err(OffsetError::OutOfRange(minutes));
        }
        Ok(Self {
            minutes: minutes as i16,
        })
    }

    /// An offset from hours and minutes; `negative` makes it west of UTC.
    pub const fn from_hm(negative: bool, hours: u8, minutes: u8) -> Result<Self, OffsetError> {
        if hours > 23 {
            return Err(OffsetError::Hour(hours));
        }
        if minutes > 59 {
            return Err(OffsetError::Minute(minutes));
        }
        let total = hours as i32 * 60 + minutes as i32;
        Self::from_minutes(if negative { -total } else { total })
    }

    /// The offset rounded to the nearest minute (half away from zero) from a
    /// number of seconds, as time-zone databases give historical offsets
    /// such as `+00:19:32`.
    pub const fn from_seconds_rounded(seconds: i32) -> Result<Self, OffsetError> {
        let minutes = if seconds >= 0 {
            (seconds + 30) / 60
        } else {
            (seconds - 30) / 60
        };
        Self::from_minutes(minutes)
    }

    /// Minutes east of UTC.
    #[inline]
    pub const fn minutes(self) -> i16 {
        self.minutes
    }

    /// Seconds east of UTC.
    #[inline]
    pub const fn seconds(self) -> i32 {
        self.minutes as i32 * 60
    }

    /// Whether this is UTC.
    #[inline]
    pub const fn is_utc(self) -> bool {
        self.minutes == 0
    }

    /// Parses `Z`/`z` (UTC) or `+HH:MM`/`-HH:MM`.
    pub const fn parse(text: &[u8]) -> Result<Self, OffsetError> {
        if text.len() == 1 && (text[0] == b'Z' || text[0] == b'z') {
            return Ok(Self::UTC);
        }
        if text.is_empty() {
            return Err(OffsetError::Syntax { position: 0 });
        }
        let negative = match text[0] {
            b'+' => false,
            b'-' => true,
            _ => return Err(OffsetError::Syntax { position: 0 }),
        };
        let mut i = 1;
        while i < 6 {
            if i >= text.len() {
                return Err(OffsetError::Syntax { position: i });
            }
            let ok = if i == 3 {
                text[i] == b':'
            } else {
                text[i].is_ascii_digit()
            };
            if !ok {
                return Err(OffsetError::Syntax { position: i });
            }
            i += 1;
        }
        if text.len() != 6 {
            return Err(OffsetError::Syntax { position: 6 });
        }
        let hours = (text[1] - b'0') * 10 + (text[2] - b'0');
        let minutes = (text[4] - b'0') * 10 + (text[5] - b'0');
        Self::from_hm(negative, hours, minutes)
    }

    /// Writes `+HH:MM` or `-HH:MM` (never `Z`) into the first six bytes.
    #[inline]
    pub(crate) const fn write_numeric(self, out: &mut [u8; 6]) {
        let (sign, abs) = if self.minutes < 0 {
            (b'-', (-self.minutes) as u16)
        } else {
            (b'+', self.minutes as u16)
        };
        let h = abs / 60;
        let m = abs % 60;
        out[0] = sign;
        out[1] = b'0' + (h / 10) as u8;
        out[2] = b'0' + (h % 10) as u8;
        out[3] = b':';
        out[4] = b'0' + (m / 10) as u8;
        out[5] = b'0' + (m % 10) as u8;
    }
}

impl fmt::Display for Offset {
    /// `+HH:MM` or `-HH:MM` (`+00:00` for UTC).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 6];
        self.write_numeric(&mut buf);
        f.write_str(core::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl core::str::FromStr for Offset {
    type Err = OffsetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn parses_and_displays() {
        assert_eq!(Offset::parse(b"Z"), Ok(Offset::UTC));
        assert_eq!(Offset::parse(b"z"), Ok(Offset::UTC));
        let o = Offset::parse(b"+05:30").unwrap();
        assert_eq!(o.minutes(), 330);
        assert_eq!(o.to_string(), "+05:30");
        let w = Offset::parse(b"-08:00").unwrap();
        assert_eq!(w.seconds(), -28_800);
        assert_eq!(w.to_string(), "-08:00");
        assert_eq!(Offset::MIN.to_string(), "-23:59");
        assert_eq!(Offset::UTC.to_string(), "+00:00");
    }

    #[test]
    fn rejects_bad_offsets_with_the_reason() {
        assert_eq!(Offset::parse(b""), Err(OffsetError::Syntax { position: 0 }));
        assert_eq!(
            Offset::parse(b"05:30"),
            Err(OffsetError::Syntax { position: 0 })
        );
        assert_eq!(
            Offset::parse(b"+0530"),
            Err(OffsetError::Syntax { position: 3 })
        );
        assert_eq!(
            Offset::parse(b"+05:3"),
            Err(OffsetError::Syntax { position: 5 })
        );
        assert_eq!(
            Offset::parse(b"+05:300"),
            Err(OffsetError::Syntax { position: 6 })
        );
        assert_eq!(Offset::parse(b"+24:00"), Err(OffsetError::Hour(24)));
        assert_eq!(Offset::parse(b"+23:60"), Err(OffsetError::Minute(60)));
        assert_eq!(
            Offset::from_minutes(1440),
            Err(OffsetError::OutOfRange(1440))
        );
        assert_eq!(
            Offset::from_minutes(-1440),
            Err(OffsetError::OutOfRange(-1440))
        );
    }

    #[test]
    fn rounds_second_offsets_to_the_nearest_minute() {
        assert_eq!(Offset::from_seconds_rounded(1172).unwrap().minutes(), 20);
        assert_eq!(Offset::from_seconds_rounded(1169).unwrap().minutes(), 19);
        assert_eq!(Offset::from_seconds_rounded(-1172).unwrap().minutes(), -20);
        assert_eq!(Offset::from_seconds_rounded(-89).unwrap().minutes(), -1);
    }
}
