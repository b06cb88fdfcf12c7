//! Identities of pools, so that a token from one pool is refused by another.

use core::sync::atomic::{AtomicU64, Ordering};

/// Which pool issued a token. Each pool takes a fresh one when built; ids
/// are never reused within a process (a 64-bit counter does not wrap).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PoolId(u64);

impl PoolId {
    /// A fresh id. A relaxed counter suffices: only uniqueness matters, and
    /// no other memory is published through it.
    pub(crate) fn fresh() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Self(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}
