//! Civil (calendar) time on the proleptic Gregorian calendar.
//!
//! Conversions are closed-form: days-from-civil and civil-from-days work on
//! 400-year eras (146 097 days) with the year starting on 1 March, so the leap
//! day is the last day of the shifted year and month lengths follow the
//! `(153 * m + 2) / 5` pattern. Nothing here loops over years or months.
//!
//! Arithmetic runs on unsigned values shifted by one extra era so every
//! division rounds the same way; this holds for every instant from the year
//! -400 on, well beyond the supported `0000..=10000` local years.

use core::fmt;

use super::timestamp::{NANOS_PER_SEC, TimestampError};

/// Days from 0000-03-01 to 1970-01-01, plus one 400-year era so that every
/// supported day number stays non-negative.
const SHIFT_DAYS: u64 = 719_468 + 146_097;
/// [`SHIFT_DAYS`] in seconds.
pub(crate) const SHIFT_SECS: i64 = SHIFT_DAYS as i64 * 86_400;

/// A calendar date and time of day, without an offset.
///
/// Fields are plain data; [`CivilDateTime::validate`] checks them and the
/// constructors of [`Timestamp`](super::Timestamp) call it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CivilDateTime {
    /// The year, e.g. 2024 (1..=9999 in UTC; 0 or 10000 can appear at an offset).
    pub year: u16,
    /// The month, 1..=12.
    pub month: u8,
    /// The day of the month, 1..=31.
    pub day: u8,
    /// The hour, 0..=23.
    pub hour: u8,
    /// The minute, 0..=59.
    pub minute: u8,
    /// The second, 0..=59.
    pub second: u8,
    /// The nanosecond of the second, 0..=999_999_999.
    pub nanosecond: u32,
}

/// What was wrong with a [`CivilDateTime`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CivilError {
    /// The month was not in 1..=12.
    Month(u8),
    /// The day does not exist in that month of that year.
    Day {
        /// The year checked.
        year: u16,
        /// The month checked.
        month: u8,
        /// The offending day.
        day: u8,
    },
    /// The hour was not in 0..=23.
    Hour(u8),
    /// The minute was not in 0..=59.
    Minute(u8),
    /// The second was not in 0..=59.
    Second(u8),
    /// The nanosecond was not below 10^9.
    Nanosecond(u32),
    /// The fields are valid but the instant is outside the supported range.
    Range(TimestampError),
}

impl fmt::Display for CivilError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Month(m) => write!(f, "month {m} is not in 1..=12"),
            Self::Day { year, month, day } => {
                write!(f, "day {day} does not exist in {year:04}-{month:02}")
            }
            Self::Hour(h) => write!(f, "hour {h} is not in 0..=23"),
            Self::Minute(m) => write!(f, "minute {m} is not in 0..=59"),
            Self::Second(s) => write!(f, "second {s} is not in 0..=59"),
            Self::Nanosecond(n) => write!(f, "nanosecond {n} is not below 1000000000"),
            Self::Range(e) => fmt::Display::fmt(&e, f),
        }
    }
}

impl core::error::Error for CivilError {}

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Weekday {
    /// Monday (ISO 8601 day 1).
    Monday,
    /// Tuesday.
    Tuesday,
    /// Wednesday.
    Wednesday,
    /// Thursday.
    Thursday,
    /// Friday.
    Friday,
    /// Saturday.
    Saturday,
    /// Sunday (ISO 8601 day 7).
    Sunday,
}

impl Weekday {
    /// The ISO 8601 number: Monday is 1, Sunday is 7.
    #[inline]
    pub const fn number_from_monday(self) -> u8 {
        self as u8 + 1
    }

    /// The English name, e.g. `"Monday"`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Monday => "Monday",
            Self::Tuesday => "Tuesday",
            Self::Wednesday => "Wednesday",
            Self::Thursday => "Thursday",
            Self::Friday => "Friday",
            Self::Saturday => "Saturday",
            Self::Sunday => "Sunday",
        }
    }

    const fn from_monday_index(index: u64) -> Self {
        match index {
            0 => Self::Monday,
            1 => Self::Tuesday,
            2 => Self::Wednesday,
            3 => Self::Thursday,
            4 => Self::Friday,
            5 => Self::Saturday,
            _ => Self::Sunday,
        }
    }
}

impl fmt::Display for Weekday {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether `year` is a Gregorian leap year.
#[inline]
pub const fn is_leap_year(year: u16) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// The number of days in `month` (1..=12) of `year`; 0 for an invalid month.
#[inline]
pub const fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a valid date (month 1..=12, day within the
/// month, year -400..=65535).
#[inline]
pub const fn days_from_civil(year: i32, month: u8, day: u8) -> i64 {
    // Years start in March so the leap day ends the year; the shift by one
    // era keeps every quotient non-negative.
    let (y, m) = if month < 3 {
        (year as i64 + 399, month as i64 + 12)
    } else {
        (year as i64 + 400, month as i64)
    };
    days_from_march_year(y as u64, m as u64, day as u64) as i64 - MARCH_YEAR_EPOCH
}

/// Days before `day` of month `m` (3..=14, March-based) of the shifted,
/// March-based year `y`, counted from the start of that shifted calendar.
/// `(979 * m - 2919) / 32` is the number of days from 1 March to the first
/// of month `m`.
#[inline(always)]
pub(crate) const fn days_from_march_year(y: u64, m: u64, day: u64) -> u64 {
    365 * y + y / 4 - y / 100 + y / 400 + (979 * m - 2919) / 32 + day
}

/// [`days_from_march_year`] of 1970-01-01.
pub(crate) const MARCH_YEAR_EPOCH: i64 = 865_566;

/// Civil date-time of Unix seconds (which may already include an offset).
#[inline]
pub(crate) const fn civil_from_unix(secs: i64, nanos: u32) -> CivilDateTime {
    let shifted = (secs + SHIFT_SECS) as u64;
    let days = shifted / 86_400;
    let sod = (shifted % 86_400) as u32;
    let (year, month, day) = date_from_shifted_days(days);
    CivilDateTime {
        year,
        month,
        day,
        hour: (sod / 3_600) as u8,
        minute: (sod / 60 % 60) as u8,
        second: (sod % 60) as u8,
        nanosecond: nanos,
    }
}

/// Year, month and day of a day number counted from 0000-03-01 minus one era.
///
/// Euclidean affine functions (Neri and Schneider, 2021): centuries and
/// years come from one multiply-shift each, and the month and day from a
/// linear map of the day of the March-based year, so the whole conversion is
/// a handful of multiplications with no data-dependent branch.
#[inline]
pub(crate) const fn date_from_shifted_days(days: u64) -> (u16, u8, u8) {
    let n = days as u32;
    // Century and day of century.
    let n1 = 4 * n + 3;
    let century = n1 / 146_097;
    let day_of_century = n1 % 146_097 / 4;
    // Year of century and day of (March-based) year: 2_939_745 / 2^32 is
    // 4 / 1461 to enough bits for every day of a century.
    let n2 = 4 * day_of_century + 3;
    let p2 = 2_939_745u64 * n2 as u64;
    let year_of_century = (p2 >> 32) as u32;
    let day_of_year = (p2 as u32) / 2_939_745 / 4;
    // Month (March = 3 .. February = 14) and day: 2141 / 2^16 is 5 / 153.
    let n3 = 2_141 * day_of_year + 197_913;
    let month = n3 >> 16;
    let day = (n3 & 0xFFFF) / 2_141 + 1;
    let january_or_february = day_of_year >= 306;
    let year = 100 * century + year_of_century + january_or_february as u32;
    let month = if january_or_february {
        month - 12
    } else {
        month
    };
    ((year as i32 - 400) as u16, month as u8, day as u8)
}

/// Shifted day number (as used by [`date_from_shifted_days`]) of Unix seconds.
#[inline]
pub(crate) const fn shifted_days(secs: i64) -> u64 {
    (secs + SHIFT_SECS) as u64 / 86_400
}

impl CivilDateTime {
    /// Midnight at the start of a date.
    #[inline]
    pub const fn date(year: u16, month: u8, day: u8) -> Self {
        Self {
            year,
            month,
            day,
            hour: 0,
            minute: 0,
            second: 0,
            nanosecond: 0,
        }
    }

    /// The same date with a time of day.
    #[inline]
    pub const fn at(self, hour: u8, minute: u8, second: u8, nanosecond: u32) -> Self {
        Self {
            hour,
            minute,
            second,
            nanosecond,
            ..self
        }
    }

    /// Checks every field (not the year range, which the timestamp
    /// constructors check as an instant).
    pub const fn validate(&self) -> Result<(), CivilError> {
        if self.month < 1 || self.month > 12 {
            return Err(CivilError::Month(self.month));
        }
        if self.day < 1 || self.day > days_in_month(self.year, self.month) {
            return Err(CivilError::Day {
                year: self.year,
                month: self.month,
                day: self.day,
            });
        }
        if self.hour > 23 {
            return Err(CivilError::Hour(self.hour));
        }
        if self.minute > 59 {
            return Err(CivilError::Minute(self.minute));
        }
        if self.second > 59 {
            return Err(CivilError::Second(self.second));
        }
        if self.nanosecond >= NANOS_PER_SEC {
            return Err(CivilError::Nanosecond(self.nanosecond));
        }
        Ok(())
    }

    /// The day of the week of this date (assumes a valid date).
    #[inline]
    pub const fn weekday(&self) -> Weekday {
        let days = days_from_civil(self.year as i32, self.month, self.day);
        // 1970-01-01 was a Thursday (Monday-based index 3).
        Weekday::from_monday_index((days + 3).rem_euclid(7) as u64)
    }

    /// The ordinal day of the year, 1..=366 (assumes a valid date).
    #[inline]
    pub const fn day_of_year(&self) -> u16 {
        // Cumulative days before each month in a common year.
        const BEFORE: [u16; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
        let leap = (self.month > 2 && is_leap_year(self.year)) as u16;
        BEFORE[(self.month as usize - 1) % 12] + self.day as u16 + leap
    }

    /// The sub-second part in milliseconds (0..=999), truncated.
    #[inline]
    pub const fn millisecond(&self) -> u16 {
        (self.nanosecond / 1_000_000) as u16
    }

    /// The sub-second part in microseconds (0..=999_999), truncated.
    #[inline]
    pub const fn microsecond(&self) -> u32 {
        self.nanosecond / 1_000
    }
}

#[cfg(test)]
mod tests {
    use super::super::Timestamp;
    use super::*;

    /// Days since 1970-01-01 by counting whole years and months: slow and
    /// obviously right.
    fn naive_days(year: u16, month: u8, day: u8) -> i64 {
        let mut days: i64 = 0;
        if year >= 1970 {
            for y in 1970..year {
                days += if is_leap_year(y) { 366 } else { 365 };
            }
        } else {
            for y in year..1970 {
                days -= if is_leap_year(y) { 366 } else { 365 };
            }
        }
        for m in 1..month {
            days += i64::from(days_in_month(year, m));
        }
        days + i64::from(day) - 1
    }

    #[test]
    fn known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1, 1, 1), -719_162);
        assert_eq!(days_from_civil(9999, 12, 31), 2_932_896);
        assert_eq!(days_from_civil(0, 1, 1), -719_528);
        let leap = Timestamp::from_unix_secs(951_782_400).unwrap().to_civil();
        assert_eq!((leap.year, leap.month, leap.day), (2000, 2, 29));
    }

    #[test]
    fn every_day_of_sample_years_matches_the_naive_count() {
        for year in [
            0u16, 1, 4, 100, 399, 400, 1600, 1900, 1969, 1970, 2000, 2024, 2100, 9999, 10000,
        ] {
            for month in 1..=12 {
                for day in 1..=days_in_month(year, month) {
                    let days = days_from_civil(i32::from(year), month, day);
                    assert_eq!(days, naive_days(year, month, day), "{year}-{month}-{day}");
                    let civil = civil_from_unix(days * 86_400, 0);
                    assert_eq!((civil.year, civil.month, civil.day), (year, month, day));
                }
            }
        }
    }

    #[test]
    fn weekdays_and_ordinals() {
        let d = CivilDateTime::date(1970, 1, 1);
        assert_eq!(d.weekday(), Weekday::Thursday);
        assert_eq!(
            CivilDateTime::date(2024, 2, 29).weekday(),
            Weekday::Thursday
        );
        assert_eq!(CivilDateTime::date(1, 1, 1).weekday(), Weekday::Monday);
        assert_eq!(CivilDateTime::date(9999, 12, 31).weekday(), Weekday::Friday);
        assert_eq!(
            CivilDateTime::date(1969, 12, 31).weekday(),
            Weekday::Wednesday
        );
        assert_eq!(CivilDateTime::date(2024, 12, 31).day_of_year(), 366);
        assert_eq!(CivilDateTime::date(2023, 12, 31).day_of_year(), 365);
        assert_eq!(CivilDateTime::date(2024, 3, 1).day_of_year(), 61);
        assert_eq!(CivilDateTime::date(2023, 3, 1).day_of_year(), 60);
        assert_eq!(Weekday::Sunday.number_from_monday(), 7);
    }

    #[test]
    fn validation_names_the_bad_field() {
        let ok = CivilDateTime::date(2023, 2, 28).at(23, 59, 59, 999_999_999);
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(
            CivilDateTime::date(2023, 13, 1).validate(),
            Err(CivilError::Month(13))
        );
        assert_eq!(
            CivilDateTime::date(2023, 0, 1).validate(),
            Err(CivilError::Month(0))
        );
        assert_eq!(
            CivilDateTime::date(2023, 2, 29).validate(),
            Err(CivilError::Day {
                year: 2023,
                month: 2,
                day: 29
            })
        );
        assert_eq!(ok.at(24, 0, 0, 0).validate(), Err(CivilError::Hour(24)));
        assert_eq!(ok.at(0, 60, 0, 0).validate(), Err(CivilError::Minute(60)));
        assert_eq!(ok.at(0, 0, 60, 0).validate(), Err(CivilError::Second(60)));
        assert_eq!(
            ok.at(0, 0, 0, NANOS_PER_SEC).validate(),
            Err(CivilError::Nanosecond(NANOS_PER_SEC))
        );
    }

    #[test]
    fn from_civil_round_trips_and_checks_range() {
        let c = CivilDateTime::date(2021, 7, 4).at(12, 34, 56, 789);
        let ts = Timestamp::from_civil(c).unwrap();
        assert_eq!(ts.to_civil(), c);
        assert_eq!(
            Timestamp::from_civil(CivilDateTime::date(0, 12, 31)),
            Err(CivilError::Range(TimestampError::BeforeMin))
        );
        assert_eq!(
            Timestamp::from_civil(CivilDateTime::date(10000, 1, 1)),
            Err(CivilError::Range(TimestampError::AfterMax))
        );
    }
}
