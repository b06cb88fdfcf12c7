//! Formatting timestamps in IANA time zones by name.
//!
//! Zone rules come from jiff's bundled copy of the IANA database; nothing
//! here encodes a rule by hand. A zone name resolves once to a [`Zone`], which
//! answers the UTC offset in force at any instant.
//!
//! RFC 3339 offsets have minute precision. Historical offsets with seconds
//! (local mean time, e.g. Amsterdam's `+00:19:32` before 1937) are rounded to
//! the nearest minute, and the local time written is computed with that
//! rounded offset, so the text still names exactly the same instant.

use mechops_core::time::{
    FormatError, MAX_RFC3339_LEN, Offset, Precision, Rfc3339Format, Timestamp,
};

/// Why a zone lookup or zoned formatting failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TzError {
    /// The name is not in the time-zone database.
    #[error("unknown time zone {0:?} (expected an IANA name such as Europe/Paris)")]
    UnknownZone(String),
    /// The zone's offset does not fit RFC 3339 (beyond ±23:59).
    #[error("time zone {zone} has offset of {seconds} s, beyond what RFC 3339 can write")]
    Offset {
        /// The zone name.
        zone: String,
        /// The offset in seconds.
        seconds: i32,
    },
    /// The text could not be written.
    #[error(transparent)]
    Format(#[from] FormatError),
}

/// A time zone from the IANA database, resolved by name.
#[derive(Debug, Clone)]
pub struct Zone {
    name: String,
    tz: jiff::tz::TimeZone,
}

impl Zone {
    /// Looks up a zone by its IANA name (e.g. `America/New_York`; `UTC` also
    /// works). Names are matched case-insensitively, as jiff does.
    pub fn get(name: &str) -> Result<Self, TzError> {
        let tz =
            jiff::tz::TimeZone::get(name).map_err(|_| TzError::UnknownZone(name.to_owned()))?;
        // jiff maps `Etc/Unknown` to a placeholder zone; it names no rules.
        if tz.is_unknown() {
            return Err(TzError::UnknownZone(name.to_owned()));
        }
        Ok(Self {
            name: name.to_owned(),
            tz,
        })
    }

    /// The name this zone was looked up by.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The zone's exact UTC offset in seconds at `instant`.
    pub fn offset_seconds_at(&self, instant: Timestamp) -> i32 {
        self.tz.to_offset(to_jiff(instant)).seconds()
    }

    /// The zone's offset at `instant`, rounded to whole minutes.
    pub fn offset_at(&self, instant: Timestamp) -> Result<Offset, TzError> {
        let seconds = self.offset_seconds_at(instant);
        Offset::from_seconds_rounded(seconds).map_err(|_| TzError::Offset {
            zone: self.name.clone(),
            seconds,
        })
    }

    /// The RFC 3339 options that write `instant` in this zone.
    pub fn rfc3339_format(
        &self,
        instant: Timestamp,
        precision: Precision,
    ) -> Result<Rfc3339Format, TzError> {
        Ok(Rfc3339Format::new(precision).with_offset(self.offset_at(instant)?))
    }

    /// Writes `instant` as RFC 3339 local time with the zone's offset into
    /// `out`; returns the number of bytes written.
    pub fn format_rfc3339_into(
        &self,
        instant: Timestamp,
        precision: Precision,
        out: &mut [u8],
    ) -> Result<usize, TzError> {
        Ok(self
            .rfc3339_format(instant, precision)?
            .format(instant, out)?)
    }

    /// `instant` as an RFC 3339 string with the zone's offset.
    pub fn format_rfc3339(
        &self,
        instant: Timestamp,
        precision: Precision,
    ) -> Result<String, TzError> {
        let mut buf = [0u8; MAX_RFC3339_LEN];
        let n = self.format_rfc3339_into(instant, precision, &mut buf)?;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    }
}

/// The jiff instant for a core timestamp. jiff stops about a day before
/// the core's `9999-12-31T23:59:59.999999999Z`; later instants are looked up
/// at jiff's last instant, where no zone has a transition (zone rules change
/// offsets in spring and autumn, never on the last two days of December).
fn to_jiff(instant: Timestamp) -> jiff::Timestamp {
    let nanos = i32::try_from(instant.subsec_nanos()).unwrap_or(0);
    jiff::Timestamp::new(instant.unix_secs(), nanos).unwrap_or(if instant.unix_secs() < 0 {
        jiff::Timestamp::MIN
    } else {
        jiff::Timestamp::MAX
    })
}

/// Formats `instant` in the zone named `zone` (one lookup per call; keep a
/// [`Zone`] to format many instants).
pub fn format_in_zone(
    instant: Timestamp,
    zone: &str,
    precision: Precision,
) -> Result<String, TzError> {
    Zone::get(zone)?.format_rfc3339(instant, precision)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text.as_bytes()).unwrap()
    }

    #[test]
    fn formats_with_the_offset_in_force() {
        let paris = Zone::get("Europe/Paris").unwrap();
        assert_eq!(
            paris
                .format_rfc3339(ts("2024-01-15T12:00:00Z"), Precision::Seconds)
                .unwrap(),
            "2024-01-15T13:00:00+01:00"
        );
        assert_eq!(
            paris
                .format_rfc3339(ts("2024-07-15T12:00:00.5Z"), Precision::Millis)
                .unwrap(),
            "2024-07-15T14:00:00.500+02:00"
        );
        let ny = format_in_zone(
            ts("2024-03-10T07:30:00Z"),
            "America/New_York",
            Precision::Seconds,
        )
        .unwrap();
        assert_eq!(ny, "2024-03-10T03:30:00-04:00");
        let kolkata = format_in_zone(
            ts("2024-01-01T00:00:00Z"),
            "Asia/Kolkata",
            Precision::Seconds,
        )
        .unwrap();
        assert_eq!(kolkata, "2024-01-01T05:30:00+05:30");
        let utc = format_in_zone(ts("2024-01-01T00:00:00Z"), "UTC", Precision::Seconds).unwrap();
        assert_eq!(utc, "2024-01-01T00:00:00+00:00");
    }

    #[test]
    fn the_text_names_the_same_instant_even_with_second_offsets() {
        let amsterdam = Zone::get("Europe/Amsterdam").unwrap();
        let instant = ts("1900-06-01T12:00:00Z");
        assert_eq!(amsterdam.offset_seconds_at(instant), 1_172);
        let text = amsterdam
            .format_rfc3339(instant, Precision::Seconds)
            .unwrap();
        assert_eq!(text, "1900-06-01T12:20:00+00:20");
        assert_eq!(Timestamp::parse_rfc3339(text.as_bytes()).unwrap(), instant);
    }

    #[test]
    fn unknown_names_are_errors() {
        for name in ["Mars/Olympus_Mons", "", "Etc/Unknown", "Europe/Paris "] {
            match Zone::get(name) {
                Err(TzError::UnknownZone(n)) => assert_eq!(n, name),
                other => panic!("{name:?}: {other:?}"),
            }
        }
        let message = Zone::get("Nowhere/City").unwrap_err().to_string();
        assert!(
            message.contains("unknown time zone \"Nowhere/City\""),
            "{message}"
        );
    }

    #[test]
    fn the_ends_of_the_core_range_have_offsets() {
        let ny = Zone::get("America/New_York").unwrap();
        assert_eq!(ny.offset_seconds_at(Timestamp::MAX), -5 * 3_600);
        assert_eq!(
            ny.format_rfc3339(Timestamp::MAX, Precision::Seconds)
                .unwrap(),
            "9999-12-31T18:59:59-05:00"
        );
        let lisbon = Zone::get("Europe/Lisbon").unwrap();
        // Local mean time of Lisbon, -0:36:45, rounds to -00:37.
        assert_eq!(
            lisbon
                .format_rfc3339(Timestamp::MIN, Precision::Seconds)
                .unwrap(),
            "0000-12-31T23:23:00-00:37"
        );
    }

    #[test]
    fn end_of_range_in_an_eastern_zone_is_a_format_error() {
        let tokyo = Zone::get("Asia/Tokyo").unwrap();
        let err = tokyo
            .format_rfc3339(Timestamp::MAX, Precision::Seconds)
            .unwrap_err();
        assert!(matches!(
            err,
            TzError::Format(FormatError::YearOutOfRange { year: 10000 })
        ));
    }
}
