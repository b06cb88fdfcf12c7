//! Timestamps, civil time, RFC 3339 and interval math.
//!
//! Invariants every type here keeps:
//!
//! - a [`Timestamp`] is an instant on the proleptic Gregorian UTC time line
//!   between [`Timestamp::MIN`] (`0001-01-01T00:00:00Z`) and
//!   [`Timestamp::MAX`] (`9999-12-31T23:59:59.999999999Z`) with nanosecond
//!   precision; no constructor produces a value outside that range;
//! - leap seconds are not counted (Unix time). RFC 3339 text may carry one
//!   only where RFC 3339 allows it, at 23:59:60 UTC on the last day of a
//!   month (after applying the offset; elsewhere `:60` is an error), and it
//!   reads as 23:59:59.999999999 UTC, the last instant before midnight, so
//!   text order is kept and the value is never later than the text.
//!   Formatting never writes `:60`;
//! - civil conversion is closed-form arithmetic (days-from-civil and
//!   civil-from-days), never a loop over years or months;
//! - the current time is never read here: callers pass a [`Timestamp`] (the
//!   calendar) or an [`Instant`] (a monotonic reading), or a [`WallClock`] or
//!   [`MonotonicClock`] they own.
//!
//! ```
//! use mechops_core::time::{Offset, Precision, Rfc3339Format, SignedDuration, Timestamp, Unit};
//!
//! let start = Timestamp::parse_rfc3339(b"1996-12-19T16:39:57-08:00")?;
//! let later = start.checked_add(SignedDuration::parse(b"1h30m250ms")?)?;
//! assert_eq!(later.since(start).to_string(), "1h30m250ms");
//!
//! let mut buf = [0u8; mechops_core::time::MAX_RFC3339_LEN];
//! let pst = Offset::from_hm(true, 8, 0)?;
//! let n = Rfc3339Format::new(Precision::Millis).with_offset(pst).format(later, &mut buf)?;
//! assert_eq!(&buf[..n], b"1996-12-19T18:09:57.250-08:00");
//! assert_eq!(later.truncate(Unit::Hour).to_civil().hour, 2);
//! # Ok::<(), Box<dyn core::error::Error>>(())
//! ```

mod cache;
mod civil;
mod duration;
mod instant;
mod offset;
mod range;
mod rfc3339;
mod round;
mod timestamp;

pub use cache::Rfc3339Cache;
pub use civil::{CivilDateTime, CivilError, Weekday, days_from_civil, days_in_month, is_leap_year};
pub use duration::{Breakdown, DurationParseError, DurationParseErrorKind, SignedDuration};
pub use instant::{FixedClock, Instant, ManualClock, MonotonicClock, WallClock};
pub use offset::{Offset, OffsetError};
pub use range::{RangeError, RangeIter, TimeRange};
pub use rfc3339::{
    FormatError, MAX_RFC3339_LEN, ParseError, ParseErrorKind, Precision, Rfc3339Format,
};
pub use round::Unit;
pub use timestamp::{Timestamp, TimestampError};
