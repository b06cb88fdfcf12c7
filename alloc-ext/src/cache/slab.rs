//! The slab under the cache: entries in a `Vec` of slots indexed by `u32`,
//! their metadata in a parallel `Vec`, and the two S3-FIFO queues threaded
//! through the metadata as intrusive doubly-linked lists, so that removing
//! any entry is O(1).
//!
//! Invariants: a slot is occupied exactly when the table holds its index;
//! an occupied slot is on exactly one list, the one its `queue` names; a
//! list's `len` and `weight` are the count and summed weight of its entries.

use core::cell::Cell;
use core::hash::{BuildHasher, Hash};

use mechops_core::time::MonotonicClock;

use super::store::Cache;

/// The end of a list; slot indices are below it.
pub(super) const NIL: u32 = u32::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Queue {
    Small,
    Main,
}

/// The access counter saturates here, so an entry read often survives at
/// most this many extra rounds of the main queue without another read.
pub(super) const MAX_FREQ: u8 = 3;

/// Bumps a saturating access counter.
#[inline]
pub(super) fn freq_up(freq: &Cell<u8>) {
    let f = freq.get();
    // Hot entries sit at the top count; not storing the same value again
    // keeps their cache lines clean.
    if f < MAX_FREQ {
        freq.set(f + 1);
    }
}

/// What a lookup touches, kept small so that more of it stays in cache.
///
/// The counter is a `Cell` so that a hit can bump it through the shared
/// reference the table lookup found, without indexing the slab again.
pub(super) struct Slot<K, V> {
    pub(super) key: K,
    pub(super) value: V,
    pub(super) freq: Cell<u8>,
}

/// What eviction, expiry and the queues need, kept apart from the hot part.
#[derive(Clone, Copy, Debug)]
pub(super) struct Meta {
    pub(super) hash: u64,
    pub(super) weight: u64,
    /// Absolute expiry from the time-to-live, `u64::MAX` without one.
    pub(super) expires_at: u64,
    /// Last read or write, for the time-to-idle.
    pub(super) accessed_at: u64,
    pub(super) prev: u32,
    pub(super) next: u32,
    pub(super) queue: Queue,
}

impl Meta {
    pub(super) const VACANT: Self = Self {
        hash: 0,
        weight: 0,
        expires_at: u64::MAX,
        accessed_at: 0,
        prev: NIL,
        next: NIL,
        queue: Queue::Small,
    };
}

/// A FIFO threaded through the slab.
///
/// The weight is a `u128`: at most 2^32 entries of at most 2^64 each cannot
/// overflow it, so no bound makes the sum wrap.
#[derive(Clone, Copy, Debug)]
pub(super) struct List {
    pub(super) head: u32,
    pub(super) tail: u32,
    pub(super) len: usize,
    pub(super) weight: u128,
}

impl List {
    pub(super) const EMPTY: Self = Self {
        head: NIL,
        tail: NIL,
        len: 0,
        weight: 0,
    };
}

impl<K: Hash + Eq, V, C: MonotonicClock, S: BuildHasher> Cache<K, V, C, S> {
    #[inline]
    pub(super) fn slot(&self, idx: u32) -> &Slot<K, V> {
        match &self.slots[idx as usize] {
            Some(e) => e,
            None => unreachable!("the table only holds occupied slots"),
        }
    }

    #[inline]
    pub(super) fn slot_mut(&mut self, idx: u32) -> &mut Slot<K, V> {
        match &mut self.slots[idx as usize] {
            Some(e) => e,
            None => unreachable!("the table only holds occupied slots"),
        }
    }

    #[inline]
    pub(super) fn meta(&self, idx: u32) -> &Meta {
        &self.meta[idx as usize]
    }

    #[inline]
    pub(super) fn meta_mut(&mut self, idx: u32) -> &mut Meta {
        &mut self.meta[idx as usize]
    }

    /// Takes the entry out of the table, its queue and the slab.
    pub(super) fn unlink(&mut self, idx: u32) -> (K, V) {
        self.list_remove(idx);
        let hash = self.meta(idx).hash;
        if let Ok(found) = self.table.find_entry(hash, |&i| i == idx) {
            found.remove();
        }
        let Some(e) = self.slots[idx as usize].take() else {
            unreachable!("unlinking an occupied slot")
        };
        self.meta[idx as usize] = Meta::VACANT;
        self.free.push(idx);
        (e.key, e.value)
    }

    pub(super) fn list_mut(&mut self, queue: Queue) -> &mut List {
        match queue {
            Queue::Small => &mut self.small,
            Queue::Main => &mut self.main,
        }
    }

    pub(super) fn push_back(&mut self, idx: u32) {
        let Meta { queue, weight, .. } = *self.meta(idx);
        let list = *self.list_mut(queue);
        {
            let e = self.meta_mut(idx);
            e.prev = list.tail;
            e.next = NIL;
        }
        if list.tail == NIL {
            self.list_mut(queue).head = idx;
        } else {
            self.meta_mut(list.tail).next = idx;
        }
        let list = self.list_mut(queue);
        list.tail = idx;
        list.len += 1;
        list.weight += u128::from(weight);
    }

    pub(super) fn list_remove(&mut self, idx: u32) {
        let Meta {
            queue,
            weight,
            prev,
            next,
            ..
        } = *self.meta(idx);
        if prev == NIL {
            self.list_mut(queue).head = next;
        } else {
            self.meta_mut(prev).next = next;
        }
        if next == NIL {
            self.list_mut(queue).tail = prev;
        } else {
            self.meta_mut(next).prev = prev;
        }
        let list = self.list_mut(queue);
        list.len -= 1;
        list.weight -= u128::from(weight);
    }
}
