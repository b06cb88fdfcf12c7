//! UUIDs (RFC 9562): the value type, encodings, parsing and generators.
