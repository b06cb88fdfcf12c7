//! Formatting timestamps in IANA time zones by name.
