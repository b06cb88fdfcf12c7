//! The ordered indexes of the [scheduler](super::scheduler): a min-ordered
//! collection of job entries whose removals are lazy.
//!
//! A job changes index at almost every transition (ready, then leased,
//! then finished), and almost always in order: a new job has the highest
//! submission sequence of its priority, a new lease the latest expiry, a
//! finished job the latest finish time. So each [`LazyIndex`] keeps a
//! `VecDeque` that takes every item at least as large as its last one in
//! O(1), and a binary heap for the few that arrive out of order (a
//! recovered job keeps its old sequence, a clock that stepped back). A
//! balanced tree would pay `O(log n)` comparisons of 40-byte keys and node
//! allocations for each of those moves.
//!
//! # Lazy removal
//!
//! An item is not taken out when its job leaves the index: the owner makes
//! it stale (a job's entry records the tag of its one live item, and
//! forgets it) and calls [`LazyIndex::forget`] with a liveness test.
//!
//! # Invariants
//!
//! - `live` counts the items the owner considers live; every other item is
//!   stale, and a stale item never becomes live again (tags are never
//!   reused).
//! - The smallest item, if any, is live: [`LazyIndex::forget`] drops stale
//!   items from the front, so [`LazyIndex::peek`] needs no liveness test
//!   and works on `&self`.
//! - Stale items are at most `2 * live + SLACK`: past that, `forget`
//!   drops them all, so the memory is bounded and the cost of dropping is
//!   O(1) amortised per removal.

use alloc::collections::{BinaryHeap, VecDeque};
use core::cmp::Reverse;

use super::model::JobId;

/// Stale items tolerated beyond twice the live ones before a sweep.
const SLACK: usize = 32;

/// One entry: ordered by key, then job, then tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Item<K> {
    /// What the index orders by.
    pub(super) key: K,
    /// The job.
    pub(super) id: JobId,
    /// What the owner checks to tell a live item from a stale one.
    pub(super) tag: u64,
}

/// A min-ordered index with lazy removal. See the [module docs](self).
#[derive(Debug)]
pub(super) struct LazyIndex<K> {
    /// Items pushed in order, ascending.
    fifo: VecDeque<Item<K>>,
    /// Items pushed out of order.
    heap: BinaryHeap<Reverse<Item<K>>>,
    live: usize,
}

impl<K> Default for LazyIndex<K> {
    fn default() -> Self {
        Self {
            fifo: VecDeque::new(),
            heap: BinaryHeap::new(),
            live: 0,
        }
    }
}

impl<K: Ord + Copy> LazyIndex<K> {
    /// The number of live items.
    pub(super) const fn live(&self) -> usize {
        self.live
    }

    /// Adds a live item.
    pub(super) fn push(&mut self, item: Item<K>) {
        self.live += 1;
        if self.fifo.back().is_none_or(|last| *last <= item) {
            self.fifo.push_back(item);
        } else {
            self.heap.push(Reverse(item));
        }
    }

    /// The smallest item, which is live.
    pub(super) fn peek(&self) -> Option<&Item<K>> {
        match (self.fifo.front(), self.heap.peek()) {
            (Some(f), Some(Reverse(h))) => Some(if h < f { h } else { f }),
            (f, h) => f.or(h.map(|r| &r.0)),
        }
    }

    /// Removes the smallest item, live or not.
    fn pop(&mut self) -> Option<Item<K>> {
        let from_heap = match (self.fifo.front(), self.heap.peek()) {
            (Some(f), Some(Reverse(h))) => h < f,
            (None, Some(_)) => true,
            _ => false,
        };
        if from_heap {
            self.heap.pop().map(|r| r.0)
        } else {
            self.fifo.pop_front()
        }
    }

    /// One live item has become stale: counts it out, restores the
    /// invariants with `is_live`, and sweeps when stale items pile up.
    pub(super) fn forget(&mut self, is_live: impl Fn(&Item<K>) -> bool) {
        self.live = self.live.saturating_sub(1);
        while let Some(first) = self.peek() {
            if is_live(first) {
                break;
            }
            self.pop();
        }
        if self.fifo.len() + self.heap.len() > 2 * self.live + SLACK {
            self.fifo.retain(|i| is_live(i));
            self.heap.retain(|r| is_live(&r.0));
        }
    }

    /// Drops the smallest item as if it were live and forgotten: the way
    /// out for an item the owner cannot act on, so a loop over the index
    /// cannot spin on it.
    pub(super) fn discard_first(&mut self, is_live: impl Fn(&Item<K>) -> bool) {
        if self.pop().is_some() {
            self.live = self.live.saturating_sub(1);
        }
        while let Some(first) = self.peek() {
            if is_live(first) {
                break;
            }
            self.pop();
        }
    }

    /// Every item, live or stale, in no particular order.
    #[cfg(test)]
    pub(super) fn len_with_stale(&self) -> usize {
        self.fifo.len() + self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeSet;
    use mechops_core::uuid::Uuid;
    use proptest::prelude::*;

    fn id(n: u64) -> JobId {
        JobId::new(Uuid::from_u128(u128::from(n)))
    }

    proptest! {
        /// Against a `BTreeSet` of the live items: the same minimum after
        /// every push and removal, whatever the order of keys.
        #[test]
        fn matches_an_ordered_set(ops in proptest::collection::vec((any::<bool>(), 0u16..64, any::<u16>()), 1..400)) {
            let mut index = LazyIndex::<u16>::default();
            let mut model = BTreeSet::new();
            let mut next_tag = 0u64;
            for (push, key, pick) in ops {
                if push || model.is_empty() {
                    let item = Item { key, id: id(next_tag % 7), tag: next_tag };
                    next_tag += 1;
                    index.push(item);
                    model.insert(item);
                } else {
                    let victim = *model.iter().nth(usize::from(pick) % model.len()).unwrap();
                    model.remove(&victim);
                    index.forget(|i| model.contains(i));
                }
                prop_assert_eq!(index.peek(), model.first());
                prop_assert_eq!(index.live(), model.len());
                prop_assert!(index.len_with_stale() <= 2 * model.len() + SLACK + 1);
            }
        }
    }
}
