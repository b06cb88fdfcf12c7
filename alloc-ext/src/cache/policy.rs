//! The S3-FIFO eviction policy: which entry leaves when the cache is over a
//! bound. New entries wait in the small queue; one read there is promoted to
//! the main queue, one never read leaves and its hash goes to the ghost
//! queue; the main queue gives entries read since their last round another
//! round (a CLOCK).

use core::hash::{BuildHasher, Hash};

use mechops_core::time::MonotonicClock;

use super::eviction::EvictionCause;
use super::slab::Queue;
use super::store::Cache;

impl<K: Hash + Eq, V, C: MonotonicClock, S: BuildHasher> Cache<K, V, C, S> {
    pub(super) fn over_capacity(&self) -> bool {
        self.table.len() > self.limits.max_entries
            || self.small.weight + self.main.weight > u128::from(self.limits.max_weight)
    }

    /// The small queue's share: a fortieth of each bound. The S3-FIFO paper
    /// suggests a tenth; on Zipf traces (s = 0.8 to 1.2) a smaller probation
    /// queue keeps more of the frequently read entries, and the ghost queue
    /// still gives a key evicted unread a direct way into the main queue.
    pub(super) fn small_over_target(&self) -> bool {
        self.small.len > self.limits.max_entries / 40
            || self.small.weight > u128::from(self.limits.max_weight / 40)
    }

    pub(super) fn enforce_capacity(&mut self, now: u64) {
        while self.over_capacity() {
            if self.small.len > 0 && (self.small_over_target() || self.main.len == 0) {
                self.evict_from_small(now);
            } else {
                self.evict_from_main(now);
            }
        }
    }

    pub(super) fn evict_from_small(&mut self, now: u64) {
        let idx = self.small.head;
        if self.expired_at(idx, now) {
            self.evict_entry(idx, EvictionCause::Expired);
        } else if self.slot(idx).freq.get() > 0 {
            // Read while on probation: promote with a fresh counter.
            self.list_remove(idx);
            self.slot(idx).freq.set(0);
            self.meta_mut(idx).queue = Queue::Main;
            self.push_back(idx);
        } else {
            let hash = self.meta(idx).hash;
            // A third of the resident count: tuned on the same Zipf traces,
            // where a ghost as large as the main queue readmitted too many
            // keys that were not coming back often.
            let ghost_capacity = self.table.len().max(16) / 3;
            self.ghost.push(hash, ghost_capacity);
            self.evict_entry(idx, EvictionCause::Capacity);
        }
    }

    pub(super) fn evict_from_main(&mut self, now: u64) {
        let idx = self.main.head;
        if self.expired_at(idx, now) {
            self.evict_entry(idx, EvictionCause::Expired);
        } else if self.slot(idx).freq.get() > 0 {
            self.list_remove(idx);
            let e = self.slot(idx);
            e.freq.set(e.freq.get() - 1);
            self.push_back(idx);
        } else {
            self.evict_entry(idx, EvictionCause::Capacity);
        }
    }
}
