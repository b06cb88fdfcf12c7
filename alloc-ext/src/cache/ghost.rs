//! The ghost queue of S3-FIFO: hashes of keys recently evicted from the small
//! queue, without their values.
//!
//! A FIFO ring of hashes plus a multiset of them for O(1) membership. The same
//! hash may sit in the ring more than once; the multiset counts copies so that
//! popping an old copy does not forget a newer one.

use alloc::collections::VecDeque;
use hashbrown::HashTable;

#[derive(Debug, Default)]
pub(crate) struct Ghost {
    ring: VecDeque<u64>,
    counts: HashTable<(u64, u32)>,
}

impl Ghost {
    pub(crate) fn contains(&self, hash: u64) -> bool {
        self.counts.find(hash, |&(h, _)| h == hash).is_some()
    }

    /// Remembers `hash`, forgetting the oldest hashes beyond `capacity`.
    pub(crate) fn push(&mut self, hash: u64, capacity: usize) {
        match self.counts.find_mut(hash, |&(h, _)| h == hash) {
            Some((_, n)) => *n += 1,
            None => {
                self.counts.insert_unique(hash, (hash, 1), |&(h, _)| h);
            }
        }
        self.ring.push_back(hash);
        while self.ring.len() > capacity.max(1) {
            self.pop();
        }
    }

    fn pop(&mut self) {
        let Some(old) = self.ring.pop_front() else {
            return;
        };
        if let Ok(mut entry) = self.counts.find_entry(old, |&(h, _)| h == old) {
            let n = &mut entry.get_mut().1;
            *n -= 1;
            if *n == 0 {
                entry.remove();
            }
        }
    }

    pub(crate) fn clear(&mut self) {
        self.ring.clear();
        self.counts.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_up_to_capacity_and_counts_copies() {
        let mut g = Ghost::default();
        g.push(1, 3);
        g.push(2, 3);
        g.push(1, 3);
        g.push(3, 3);
        // The first copy of 1 fell out, the second is still there.
        assert!(g.contains(1));
        assert!(g.contains(2));
        g.push(4, 3);
        assert!(!g.contains(2));
        g.push(5, 3);
        assert!(!g.contains(1));
        assert!(g.contains(3) && g.contains(4) && g.contains(5));
    }
}
