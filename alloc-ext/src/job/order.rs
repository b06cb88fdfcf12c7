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
//! [`LazyIndex::forget`] takes an item out. The smallest item (the usual
//! case: the job claimed, the lease that ended first) is popped at once;
//! any other is left in place and its tag noted as a hole, skipped when it
//! reaches the front. While there are no holes, which is most of the time,
//! the front is live without looking anything up.
//!
//! # Invariants
//!
//! - Tags are unique among the items ever pushed (the owner never reuses
//!   one), so a hole names exactly one item.
//! - `live` counts the items that are not holes.
//! - The smallest item, if any, is not a hole: [`LazyIndex::peek`] works
//!   on `&self` with no test.
//! - Holes are at most `live + SLACK`: past that, `forget` drops them all,
//!   so memory stays bounded and removal is O(1) amortised.

use alloc::collections::{BinaryHeap, VecDeque};
use core::cmp::Reverse;

use hashbrown::HashSet;

use super::model::JobId;

/// Holes tolerated beyond the live items before a sweep.
const SLACK: usize = 32;

/// One entry: ordered by key, then job, then tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Item<K> {
    /// What the index orders by.
    pub(super) key: K,
    /// The job.
    pub(super) id: JobId,
    /// Unique among the items ever pushed.
    pub(super) tag: u64,
}

/// A min-ordered index with lazy removal. See the [module docs](self).
#[derive(Debug)]
pub(super) struct LazyIndex<K> {
    /// Items pushed in order, ascending.
    fifo: VecDeque<Item<K>>,
    /// Items pushed out of order.
    heap: BinaryHeap<Reverse<Item<K>>>,
    /// The tags of items taken out but still in `fifo` or `heap`.
    holes: HashSet<u64>,
    live: usize,
}

impl<K> Default for LazyIndex<K> {
    fn default() -> Self {
        Self {
            fifo: VecDeque::new(),
            heap: BinaryHeap::new(),
            holes: HashSet::new(),
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

    /// Takes `item`, which was pushed and not yet taken out, out.
    pub(super) fn forget(&mut self, item: &Item<K>) {
        self.live = self.live.saturating_sub(1);
        if self.peek() == Some(item) {
            self.pop();
            self.skip_holes();
        } else {
            self.holes.insert(item.tag);
        }
        self.sweep_if_holey();
    }

    /// Drops every hole once they outnumber the live items (plus slack):
    /// each sweep costs about the holes it drops.
    fn sweep_if_holey(&mut self) {
        if self.holes.len() > self.live + SLACK {
            let holes = core::mem::take(&mut self.holes);
            self.fifo.retain(|i| !holes.contains(&i.tag));
            self.heap.retain(|r| !holes.contains(&r.0.tag));
        }
    }

    /// Takes the smallest item out.
    pub(super) fn forget_first(&mut self) {
        if self.pop().is_some() {
            self.live = self.live.saturating_sub(1);
        }
        self.skip_holes();
        self.sweep_if_holey();
    }

    /// Pops holes from the front.
    fn skip_holes(&mut self) {
        while !self.holes.is_empty() {
            let Some(tag) = self.peek().map(|i| i.tag) else {
                // Nothing left: no hole can remain.
                self.holes.clear();
                return;
            };
            if !self.holes.remove(&tag) {
                return;
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
                if !push && pick % 5 == 0 && !model.is_empty() {
                    let first = *model.first().unwrap();
                    model.remove(&first);
                    index.forget_first();
                } else if push || model.is_empty() {
                    let item = Item { key, id: id(next_tag % 7), tag: next_tag };
                    next_tag += 1;
                    index.push(item);
                    model.insert(item);
                } else {
                    let victim = *model.iter().nth(usize::from(pick) % model.len()).unwrap();
                    model.remove(&victim);
                    index.forget(&victim);
                }
                prop_assert_eq!(index.peek(), model.first());
                prop_assert_eq!(index.live(), model.len());
                prop_assert!(index.len_with_stale() <= 2 * model.len() + SLACK + 1);
                prop_assert_eq!(index.len_with_stale() - index.holes.len(), model.len());
            }
        }
    }
}
