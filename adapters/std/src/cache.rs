//! Thread-safe forms of the growable cache.
