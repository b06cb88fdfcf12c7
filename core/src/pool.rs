//! A fixed-capacity, lock-free object pool.
