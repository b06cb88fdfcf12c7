//! Timestamps, civil time, RFC 3339 and interval math.
