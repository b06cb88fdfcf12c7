//! Exponential backoff with a cap, a maximum number of attempts and jitter.
