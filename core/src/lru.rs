//! A fixed-capacity least-recently-used cache.
