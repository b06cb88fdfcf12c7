//! Thread-safe pools: the shared growable pool and the thread-local high-frequency pool.
