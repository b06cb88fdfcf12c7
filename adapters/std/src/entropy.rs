//! OS entropy (getrandom) as `rand_core` sources, fork-safe.
