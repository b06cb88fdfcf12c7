//! A fixed-capacity priority queue with FIFO order within a priority and
//! delayed entries.
//!
//! [`PriorityQueue<T, N, I>`] holds at most `N` entries. Each has a
//! [`Priority`] and is either ready at once or delayed until an instant of
//! type `I` (any `Ord + Copy` time type: a `u64` of milliseconds, a
//! `core::time::Duration` since boot, a calendar timestamp). The queue never
//! reads a clock: [`PriorityQueue::pop`] takes `now`, and
//! [`PriorityQueue::poll_timeout`] says when to come back.
//!
//! # Order
//!
//! `pop(now)` returns, among the entries that are ready at `now`, the one
//! with the highest priority; among equal priorities, the one pushed first
//! (FIFO by push order, whether or not it was delayed). A delayed entry is
//! ready once `now >= ready_at`.
//!
//! # Calling order
//!
//! Push entries as they arrive. To drain: call `pop(now)` until it returns
//! `None`, then sleep until `poll_timeout()` (if `Some`) or until a new
//! entry arrives, and repeat.
//!
//! # Invariants
//!
//! - Every live entry is in exactly one of two binary heaps of slot indices:
//!   the ready heap, ordered by (priority descending, push sequence
//!   ascending), or the delayed heap, ordered by (ready instant, push
//!   sequence). A slot holds an initialised value exactly when one heap
//!   refers to it.
//! - `pop(now)` first moves every delayed entry with `ready_at <= now` to the
//!   ready heap; `poll_timeout()` is the earliest `ready_at` still in the
//!   delayed heap.
//! - Push and pop cost O(log N); nothing allocates.
//!
//! ```
//! use mechops_core::queue::{Priority, PriorityQueue};
//!
//! let mut jobs: PriorityQueue<&str, 8, u64> = PriorityQueue::new();
//! jobs.push("report", Priority::LOW).unwrap();
//! jobs.push("page on-call", Priority::HIGH).unwrap();
//! jobs.push_delayed("retry upload", Priority::HIGH, 1_500).unwrap();
//! jobs.push("index", Priority::LOW).unwrap();
//!
//! assert_eq!(jobs.pop(1_000), Some("page on-call"));
//! assert_eq!(jobs.pop(1_000), Some("report"));
//! assert_eq!(jobs.poll_timeout(), Some(1_500));
//! assert_eq!(jobs.pop(1_500), Some("retry upload"));
//! assert_eq!(jobs.pop(1_500), Some("index"));
//! assert_eq!(jobs.pop(1_500), None);
//! ```

use core::fmt;
use core::mem::MaybeUninit;

/// How urgent an entry is: larger levels are served first.
///
/// The named levels leave room between them for callers that need more.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Priority(u8);

impl Priority {
    /// The least urgent level.
    pub const LOWEST: Self = Self(0);
    /// Background work.
    pub const LOW: Self = Self(64);
    /// The default.
    pub const NORMAL: Self = Self(128);
    /// Work that should jump the line.
    pub const HIGH: Self = Self(192);
    /// The most urgent level.
    pub const HIGHEST: Self = Self(255);

    /// A priority of `level` (0 is the least urgent, 255 the most).
    pub const fn new(level: u8) -> Self {
        Self(level)
    }

    /// The numeric level.
    pub const fn level(self) -> u8 {
        self.0
    }
}

impl Default for Priority {
    fn default() -> Self {
        Self::NORMAL
    }
}

/// The queue was full; the entry that did not fit is handed back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct QueueFull<T> {
    /// The value that was not queued.
    pub value: T,
    /// The queue's capacity.
    pub capacity: usize,
}

impl<T> fmt::Debug for QueueFull<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueFull")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Display for QueueFull<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "priority queue is full (capacity {})", self.capacity)
    }
}

impl<T> core::error::Error for QueueFull<T> {}

struct Slot<T, I> {
    value: MaybeUninit<T>,
    ready_at: MaybeUninit<I>,
    priority: Priority,
    seq: u64,
}

impl<T, I> Slot<T, I> {
    const VACANT: Self = Self {
        value: MaybeUninit::uninit(),
        ready_at: MaybeUninit::uninit(),
        priority: Priority::NORMAL,
        seq: 0,
    };
}

/// A fixed-capacity priority queue of at most `N` entries, with delays
/// measured in instants of type `I`. See the [module docs](self).
pub struct PriorityQueue<T, const N: usize, I = u64> {
    slots: [Slot<T, I>; N],
    ready: [u32; N],
    ready_len: usize,
    delayed: [u32; N],
    delayed_len: usize,
    /// Slots given back, reused before `used` grows.
    free: [u32; N],
    free_len: usize,
    /// Slots `used..N` have never held an entry.
    used: usize,
    next_seq: u64,
}

impl<T, const N: usize, I: Ord + Copy> Default for PriorityQueue<T, N, I> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const N: usize, I: Ord + Copy> PriorityQueue<T, N, I> {
    /// An empty queue. Fails to compile if `N` exceeds `u32::MAX`.
    pub const fn new() -> Self {
        const {
            assert!(
                N <= u32::MAX as usize,
                "PriorityQueue capacity exceeds u32::MAX"
            )
        };
        Self {
            slots: [const { Slot::VACANT }; N],
            ready: [0; N],
            ready_len: 0,
            delayed: [0; N],
            delayed_len: 0,
            free: [0; N],
            free_len: 0,
            used: 0,
            next_seq: 0,
        }
    }

    /// The number of entries, ready or delayed.
    #[inline]
    pub const fn len(&self) -> usize {
        self.ready_len + self.delayed_len
    }

    /// Whether the queue holds no entries.
    #[inline]
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether another push would fail.
    #[inline]
    pub const fn is_full(&self) -> bool {
        self.len() == N
    }

    /// The most entries the queue holds.
    #[inline]
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Entries still waiting for their instant, as of the last `pop`.
    #[inline]
    pub const fn delayed_len(&self) -> usize {
        self.delayed_len
    }

    /// Queues `value`, ready at once.
    pub fn push(&mut self, value: T, priority: Priority) -> Result<(), QueueFull<T>> {
        let slot = self.claim(value, priority, None)?;
        heap_push(&mut self.ready, &mut self.ready_len, slot, |a, b| {
            ready_before(&self.slots, a, b)
        });
        Ok(())
    }

    /// Queues `value`, to become ready when `now >= ready_at`.
    pub fn push_delayed(
        &mut self,
        value: T,
        priority: Priority,
        ready_at: I,
    ) -> Result<(), QueueFull<T>> {
        let slot = self.claim(value, priority, Some(ready_at))?;
        heap_push(&mut self.delayed, &mut self.delayed_len, slot, |a, b| {
            delayed_before(&self.slots, a, b)
        });
        Ok(())
    }

    /// Removes and returns the best entry ready at `now` (see the module docs
    /// for the order), or `None` if no entry is ready.
    pub fn pop(&mut self, now: I) -> Option<T> {
        self.promote(now);
        let slot = heap_pop(&mut self.ready, &mut self.ready_len, |a, b| {
            ready_before(&self.slots, a, b)
        })?;
        self.free[self.free_len] = slot;
        self.free_len += 1;
        // SAFETY: the slot was in the ready heap, so its value is initialised;
        // it is now on the free list, which never reads it, so the value is
        // moved out exactly once.
        Some(unsafe { self.slots[slot as usize].value.assume_init_read() })
    }

    /// The entry `pop(now)` would return, with its priority, without removing
    /// it.
    pub fn peek(&mut self, now: I) -> Option<(&T, Priority)> {
        self.promote(now);
        if self.ready_len == 0 {
            return None;
        }
        let slot = &self.slots[self.ready[0] as usize];
        // SAFETY: the ready heap refers only to initialised slots.
        Some((unsafe { slot.value.assume_init_ref() }, slot.priority))
    }

    /// The earliest instant at which a delayed entry becomes ready, or `None`
    /// if no entry is waiting. Entries already ready do not count: `pop`
    /// returns them at once.
    pub fn poll_timeout(&self) -> Option<I> {
        (self.delayed_len > 0).then(|| {
            // SAFETY: the delayed heap refers only to slots with `ready_at` set.
            unsafe { self.slots[self.delayed[0] as usize].ready_at.assume_init() }
        })
    }

    /// Keeps only the entries for which `keep` returns `true` (ready and
    /// delayed alike), in O(N); the order of the rest is unchanged. This is
    /// how a caller cancels queued work.
    ///
    /// If `keep` panics, no entry is lost or dropped and the queue stays
    /// ordered.
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        /// Restores heap order however the partition below ends.
        struct Reorder<'a, T, const N: usize, I: Ord + Copy>(&'a mut PriorityQueue<T, N, I>);
        impl<T, const N: usize, I: Ord + Copy> Drop for Reorder<'_, T, N, I> {
            fn drop(&mut self) {
                let q = &mut *self.0;
                heapify(&mut q.ready[..q.ready_len], |a, b| {
                    ready_before(&q.slots, a, b)
                });
                heapify(&mut q.delayed[..q.delayed_len], |a, b| {
                    delayed_before(&q.slots, a, b)
                });
            }
        }
        let q = Reorder(self);
        let q = &mut *q.0;
        // Partition each heap into kept entries first, by swapping only, so
        // that a panic in `keep` leaves every entry in its heap.
        let mut kept_ready = 0;
        for i in 0..q.ready_len {
            // SAFETY: slots in a heap hold initialised values.
            if keep(unsafe { q.slots[q.ready[i] as usize].value.assume_init_ref() }) {
                q.ready.swap(kept_ready, i);
                kept_ready += 1;
            }
        }
        let mut kept_delayed = 0;
        for i in 0..q.delayed_len {
            // SAFETY: as above.
            if keep(unsafe { q.slots[q.delayed[i] as usize].value.assume_init_ref() }) {
                q.delayed.swap(kept_delayed, i);
                kept_delayed += 1;
            }
        }
        // Shrink the heaps before dropping anything, so that a panicking
        // `Drop` of `T` can at worst leak the rest, never drop twice.
        let (ready_end, delayed_end) = (q.ready_len, q.delayed_len);
        q.ready_len = kept_ready;
        q.delayed_len = kept_delayed;
        let removed = q.ready[kept_ready..ready_end]
            .iter()
            .chain(&q.delayed[kept_delayed..delayed_end]);
        for &slot in removed {
            q.free[q.free_len] = slot;
            q.free_len += 1;
            // SAFETY: the slot has left its heap and joined the free list, so
            // nothing else will read or drop its value.
            unsafe { q.slots[slot as usize].value.assume_init_drop() };
        }
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.drop_values();
        self.ready_len = 0;
        self.delayed_len = 0;
        self.free_len = 0;
        self.used = 0;
    }

    /// Moves every delayed entry whose instant has come into the ready heap.
    fn promote(&mut self, now: I) {
        while self.delayed_len > 0 {
            let top = self.delayed[0] as usize;
            // SAFETY: the delayed heap refers only to slots with `ready_at` set.
            if unsafe { self.slots[top].ready_at.assume_init() } > now {
                break;
            }
            let slot = heap_pop(&mut self.delayed, &mut self.delayed_len, |a, b| {
                delayed_before(&self.slots, a, b)
            });
            if let Some(slot) = slot {
                heap_push(&mut self.ready, &mut self.ready_len, slot, |a, b| {
                    ready_before(&self.slots, a, b)
                });
            }
        }
    }

    /// Takes a free slot and fills it, or hands the value back when full.
    fn claim(
        &mut self,
        value: T,
        priority: Priority,
        ready_at: Option<I>,
    ) -> Result<u32, QueueFull<T>> {
        let slot = if self.free_len > 0 {
            self.free_len -= 1;
            self.free[self.free_len]
        } else if self.used < N {
            self.used += 1;
            (self.used - 1) as u32
        } else {
            return Err(QueueFull { value, capacity: N });
        };
        let entry = &mut self.slots[slot as usize];
        entry.value.write(value);
        if let Some(ready_at) = ready_at {
            entry.ready_at.write(ready_at);
        }
        entry.priority = priority;
        entry.seq = self.next_seq;
        self.next_seq += 1;
        Ok(slot)
    }
}

impl<T, const N: usize, I> PriorityQueue<T, N, I> {
    /// Drops every live value; the caller empties the heaps right after.
    fn drop_values(&mut self) {
        for &slot in self.ready[..self.ready_len]
            .iter()
            .chain(&self.delayed[..self.delayed_len])
        {
            // SAFETY: each live slot is in exactly one heap, so each value is
            // dropped once, and the caller forgets the heaps right after.
            unsafe { self.slots[slot as usize].value.assume_init_drop() };
        }
    }
}

impl<T, const N: usize, I> Drop for PriorityQueue<T, N, I> {
    fn drop(&mut self) {
        self.drop_values();
    }
}

impl<T, const N: usize, I: fmt::Debug + Copy> fmt::Debug for PriorityQueue<T, N, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PriorityQueue")
            .field("ready", &self.ready_len)
            .field("delayed", &self.delayed_len)
            .field("capacity", &N)
            .finish()
    }
}

/// Whether slot `a` is served before slot `b` among ready entries.
#[inline]
fn ready_before<T, I>(slots: &[Slot<T, I>], a: u32, b: u32) -> bool {
    let (a, b) = (&slots[a as usize], &slots[b as usize]);
    (b.priority, a.seq) < (a.priority, b.seq)
}

/// Whether slot `a` becomes ready before slot `b`.
#[inline]
fn delayed_before<T, I: Ord + Copy>(slots: &[Slot<T, I>], a: u32, b: u32) -> bool {
    let (a, b) = (&slots[a as usize], &slots[b as usize]);
    // SAFETY: only slots in the delayed heap are compared here, and they
    // all have `ready_at` set.
    let (ra, rb) = unsafe { (a.ready_at.assume_init(), b.ready_at.assume_init()) };
    (ra, a.seq) < (rb, b.seq)
}

/// Adds `item` to the binary heap `heap[..len]`, whose root is the element
/// that comes first by `before`.
fn heap_push(heap: &mut [u32], len: &mut usize, item: u32, before: impl Fn(u32, u32) -> bool) {
    let mut pos = *len;
    *len += 1;
    while pos > 0 {
        let parent = (pos - 1) / 2;
        if !before(item, heap[parent]) {
            break;
        }
        heap[pos] = heap[parent];
        pos = parent;
    }
    heap[pos] = item;
}

/// Restores the heap order of `heap` after arbitrary removals.
fn heapify(heap: &mut [u32], before: impl Fn(u32, u32) -> bool) {
    for start in (0..heap.len() / 2).rev() {
        sift_down(heap, start, heap.len(), &before);
    }
}

/// Moves `heap[pos]` down until neither child comes before it.
fn sift_down(heap: &mut [u32], mut pos: usize, n: usize, before: &impl Fn(u32, u32) -> bool) {
    let item = heap[pos];
    loop {
        let left = 2 * pos + 1;
        if left >= n {
            break;
        }
        let right = left + 1;
        let child = if right < n && before(heap[right], heap[left]) {
            right
        } else {
            left
        };
        if !before(heap[child], item) {
            break;
        }
        heap[pos] = heap[child];
        pos = child;
    }
    heap[pos] = item;
}

/// Removes and returns the root of the binary heap `heap[..len]`.
fn heap_pop(heap: &mut [u32], len: &mut usize, before: impl Fn(u32, u32) -> bool) -> Option<u32> {
    if *len == 0 {
        return None;
    }
    let root = heap[0];
    *len -= 1;
    let n = *len;
    if n == 0 {
        return Some(root);
    }
    heap[0] = heap[n];
    sift_down(heap, 0, n, &before);
    Some(root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;
    use std::string::ToString;
    use std::vec::Vec;

    #[test]
    fn higher_priority_first_then_fifo() {
        let mut q: PriorityQueue<u32, 8> = PriorityQueue::new();
        for (v, p) in [
            (1, Priority::LOW),
            (2, Priority::NORMAL),
            (3, Priority::HIGH),
            (4, Priority::NORMAL),
            (5, Priority::HIGH),
        ] {
            q.push(v, p).unwrap();
        }
        let order: Vec<u32> = core::iter::from_fn(|| q.pop(0)).collect();
        assert_eq!(order, [3, 5, 2, 4, 1]);
    }

    #[test]
    fn delayed_entries_wait_for_their_instant() {
        let mut q: PriorityQueue<&str, 4> = PriorityQueue::new();
        q.push_delayed("later", Priority::HIGHEST, 10).unwrap();
        q.push_delayed("sooner", Priority::LOWEST, 5).unwrap();
        assert_eq!(q.pop(4), None);
        assert_eq!(q.poll_timeout(), Some(5));
        assert_eq!(q.peek(5), Some((&"sooner", Priority::LOWEST)));
        assert_eq!(q.poll_timeout(), Some(10));
        assert_eq!(q.pop(9), Some("sooner"));
        assert_eq!(q.pop(9), None);
        assert_eq!(q.pop(10), Some("later"));
        assert_eq!(q.poll_timeout(), None);
        assert!(q.is_empty());
    }

    #[test]
    fn full_queue_hands_the_value_back() {
        let mut q: PriorityQueue<u8, 2> = PriorityQueue::new();
        q.push(1, Priority::NORMAL).unwrap();
        q.push_delayed(2, Priority::NORMAL, 3).unwrap();
        assert!(q.is_full());
        let err = q.push(3, Priority::HIGH).unwrap_err();
        assert_eq!((err.value, err.capacity), (3, 2));
        assert_eq!(err.to_string(), "priority queue is full (capacity 2)");
        assert_eq!(q.pop(0), Some(1));
        q.push(4, Priority::LOW).unwrap();
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn values_are_dropped_exactly_once() {
        let tracker = Rc::new(());
        {
            let mut q: PriorityQueue<Rc<()>, 4> = PriorityQueue::new();
            q.push(Rc::clone(&tracker), Priority::LOW).unwrap();
            q.push_delayed(Rc::clone(&tracker), Priority::LOW, 7)
                .unwrap();
            q.push(Rc::clone(&tracker), Priority::HIGH).unwrap();
            drop(q.pop(0));
            assert_eq!(Rc::strong_count(&tracker), 3);
            q.clear();
            assert_eq!(Rc::strong_count(&tracker), 1);
            q.push(Rc::clone(&tracker), Priority::LOW).unwrap();
            q.push_delayed(Rc::clone(&tracker), Priority::LOW, 1)
                .unwrap();
        }
        assert_eq!(Rc::strong_count(&tracker), 1);
    }

    #[test]
    fn works_with_duration_instants_and_in_a_static_initialiser() {
        use core::time::Duration;
        static Q: std::sync::Mutex<PriorityQueue<u8, 4, Duration>> =
            std::sync::Mutex::new(PriorityQueue::new());
        let mut q = Q.lock().unwrap();
        q.push_delayed(1, Priority::NORMAL, Duration::from_millis(20))
            .unwrap();
        assert_eq!(q.pop(Duration::from_millis(19)), None);
        assert_eq!(q.pop(Duration::from_millis(20)), Some(1));
    }

    #[test]
    fn retain_cancels_ready_and_delayed_entries() {
        let mut q: PriorityQueue<u32, 16> = PriorityQueue::new();
        for v in 0..12u32 {
            let p = Priority::new((v % 3) as u8);
            if v % 4 == 0 {
                q.push_delayed(v, p, u64::from(v)).unwrap()
            } else {
                q.push(v, p).unwrap()
            }
        }
        let caught = std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| {
            q.retain(|v| {
                if *v == 7 {
                    panic!("predicate failed")
                } else {
                    true
                }
            });
        }));
        assert!(caught.is_err());
        assert_eq!(q.len(), 12);
        q.retain(|v| v % 2 == 1);
        assert_eq!(q.len(), 6);
        assert_eq!(q.delayed_len(), 0);
        let order: Vec<u32> = core::iter::from_fn(|| q.pop(100)).collect();
        assert_eq!(order, [5, 11, 1, 7, 3, 9]);
        for v in 0..16 {
            q.push(v, Priority::LOW).unwrap();
        }
    }

    #[test]
    fn zero_capacity_rejects_everything() {
        let mut q: PriorityQueue<u8, 0> = PriorityQueue::new();
        assert!(q.push(1, Priority::HIGH).is_err());
        assert_eq!(q.pop(0), None);
        assert_eq!(q.poll_timeout(), None);
    }

    #[test]
    fn priority_levels_order() {
        assert!(Priority::HIGH > Priority::NORMAL && Priority::NORMAL > Priority::LOW);
        assert_eq!(Priority::default(), Priority::NORMAL);
        assert_eq!(Priority::new(7).level(), 7);
    }
}
