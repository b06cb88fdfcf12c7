//! The bucket heads of [`LruCache`](super::LruCache)'s hash index, packed.
//!
//! With `N < 65535` entries the index has `2 * N` buckets in `N` words: each
//! word holds two 16-bit heads, stored as `index + 1` with 0 for an empty
//! bucket. Larger caches keep one 32-bit head (or `NIL`) per word, so `N`
//! buckets.
//!
//! Invariants:
//!
//! - a [`Bucket`] is made only by [`BucketHeads::bucket_of`], so it is always
//!   below [`BucketHeads::COUNT`]; that is what lets the accessors skip the
//!   bounds check;
//! - a head is `NIL` or an index below `N`; the chains behind the heads live
//!   in the cache's entries, not here.

use super::NIL;

/// A bucket number, below [`BucketHeads::COUNT`] of the index that made it.
#[derive(Clone, Copy)]
pub(super) struct Bucket(usize);

/// The first entry of every bucket's chain.
pub(super) struct BucketHeads<const N: usize> {
    words: [u32; N],
}

impl<const N: usize> BucketHeads<N> {
    /// Whether heads are 16-bit, two per word. A compact head stores
    /// `index + 1`, with 0 for an empty bucket, which needs `N < 65535`.
    pub(super) const COMPACT: bool = N < u16::MAX as usize;

    /// The number of buckets.
    pub(super) const COUNT: usize = if Self::COMPACT { 2 * N } else { N };

    /// Every bucket empty.
    pub(super) const fn new() -> Self {
        Self {
            words: if Self::COMPACT { [0; N] } else { [NIL; N] },
        }
    }

    /// The bucket of a 32-bit hash.
    #[inline(always)]
    pub(super) fn bucket_of(hash: u32) -> Bucket {
        // Multiply-shift maps the hash onto `0..COUNT` without a division.
        Bucket(((u64::from(hash) * Self::COUNT as u64) >> 32) as usize)
    }

    /// The first entry of `bucket`'s chain, or `NIL`.
    #[inline(always)]
    pub(super) fn head(&self, bucket: Bucket) -> u32 {
        debug_assert!(bucket.0 < Self::COUNT);
        if Self::COMPACT {
            // SAFETY: `[u32; N]` is `2 * N` aligned `u16`s, all initialised,
            // and a `Bucket` is below `COUNT = 2 * N` (module invariant).
            let stored = unsafe { *self.words.as_ptr().cast::<u16>().add(bucket.0) };
            u32::from(stored).wrapping_sub(1)
        } else {
            // SAFETY: a `Bucket` is below `COUNT = N` (module invariant).
            unsafe { *self.words.get_unchecked(bucket.0) }
        }
    }

    /// Makes `index` (or `NIL`) the first entry of `bucket`'s chain.
    #[inline(always)]
    pub(super) fn set_head(&mut self, bucket: Bucket, index: u32) {
        debug_assert!(bucket.0 < Self::COUNT);
        if Self::COMPACT {
            // `NIL + 1` wraps to 0, the empty marker; other indices are below
            // `N < 65535`, so `index + 1` fits.
            let stored = index.wrapping_add(1) as u16;
            // SAFETY: as in `head`, and `&mut self` makes the write
            // exclusive.
            unsafe { *self.words.as_mut_ptr().cast::<u16>().add(bucket.0) = stored };
        } else {
            // SAFETY: a `Bucket` is below `COUNT = N` (module invariant).
            unsafe { *self.words.get_unchecked_mut(bucket.0) = index };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<const N: usize>() {
        let mut heads = BucketHeads::<N>::new();
        let (first, last) = (
            BucketHeads::<N>::bucket_of(0),
            BucketHeads::<N>::bucket_of(u32::MAX),
        );
        assert_eq!(last.0, BucketHeads::<N>::COUNT - 1);
        assert_eq!((heads.head(first), heads.head(last)), (NIL, NIL));
        heads.set_head(first, 0);
        heads.set_head(last, N as u32 - 1);
        assert_eq!((heads.head(first), heads.head(last)), (0, N as u32 - 1));
        heads.set_head(last, NIL);
        assert_eq!((heads.head(first), heads.head(last)), (0, NIL));
    }

    #[test]
    fn heads_round_trip_in_both_layouts() {
        round_trip::<3>();
        round_trip::<65_534>();
        round_trip::<65_535>();
        const { assert!(BucketHeads::<65_534>::COMPACT) };
        const { assert!(!BucketHeads::<65_535>::COMPACT) };
        assert_eq!(BucketHeads::<65_534>::COUNT, 2 * 65_534);
        assert_eq!(BucketHeads::<65_535>::COUNT, 65_535);
    }
}
