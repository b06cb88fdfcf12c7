//! A fixed-capacity priority queue with FIFO order within a priority and
//! delayed entries.
//!
//! [`PriorityQueue<T, N, I>`] holds at most `N` entries. Each has a
//! [`Priority`] and is either ready at once or delayed until an instant of
//! type `I`, by default the core's monotonic [`Instant`]. The queue never
//! reads a clock: [`PriorityQueue::pop`] takes `now`, and
//! [`PriorityQueue::poll_timeout`] says when to come back.
//!
//! The time type stays a parameter (any `Ord + Copy` type) because some
//! callers already count time their own way and should not convert at every
//! call: a virtual tick counter in a simulation, a `u64` of milliseconds read
//! from a hardware timer, a calendar [`Timestamp`](crate::time::Timestamp)
//! for jobs scheduled at a wall-clock time. Use the default unless one of
//! those applies.
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
//! # Panics in the caller's code
//!
//! The time type's `Ord` and the closure given to
//! [`retain`](PriorityQueue::retain) are the caller's code and may panic.
//! Every sift holds the index it moves in a guard that puts it back however
//! the sift ends, so a panic at any point leaves every live entry in exactly
//! one heap: nothing is dropped twice or lost, and the queue stays usable (a panicking `Ord` may leave the entries
//! in an unspecified order, as std's `BinaryHeap` does). A panic in `retain`'s
//! closure leaves the queue as it was.
//!
//! ```
//! use core::time::Duration;
//! use mechops_core::queue::{Priority, PriorityQueue};
//! use mechops_core::time::Instant;
//!
//! let start = Instant::from_secs(1);
//! let mut jobs: PriorityQueue<&str, 8> = PriorityQueue::new();
//! jobs.push("report", Priority::LOW).unwrap();
//! jobs.push("page on-call", Priority::HIGH).unwrap();
//! let retry_at = start + Duration::from_millis(500);
//! jobs.push_delayed("retry upload", Priority::HIGH, retry_at).unwrap();
//! jobs.push("index", Priority::LOW).unwrap();
//!
//! assert_eq!(jobs.pop(start), Some("page on-call"));
//! assert_eq!(jobs.pop(start), Some("report"));
//! assert_eq!(jobs.poll_timeout(), Some(retry_at));
//! assert_eq!(jobs.pop(retry_at), Some("retry upload"));
//! assert_eq!(jobs.pop(retry_at), Some("index"));
//! assert_eq!(jobs.pop(retry_at), None);
//! ```

use core::fmt;
use core::mem::MaybeUninit;

use crate::time::Instant;

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
/// measured in instants of type `I` (the monotonic [`Instant`] unless the
/// caller keeps time its own way). See the [module docs](self).
pub struct PriorityQueue<T, const N: usize, I = Instant> {
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
    /// If `keep` panics, the queue is left as it was: every verdict is taken
    /// before any entry moves.
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        let live = self.len();
        if live == 0 {
            return;
        }
        // The verdicts go into a bitmap in the unused tail of the free list:
        // `free[free_len..]` holds `N - free_len >= live` words, far more
        // than the `live / 32` needed, and nothing reads it.
        let scratch = &mut self.free[self.free_len..];
        scratch[..live.div_ceil(32)].fill(0);
        let entries = self.ready[..self.ready_len]
            .iter()
            .chain(&self.delayed[..self.delayed_len]);
        for (i, &slot) in entries.enumerate() {
            // SAFETY: slots in a heap hold initialised values.
            if keep(unsafe { self.slots[slot as usize].value.assume_init_ref() }) {
                scratch[i / 32] |= 1 << (i % 32);
            }
        }
        // From here on only the time type's `Ord` (in `heapify`) and `T`'s
        // `Drop` run caller code. Partition each heap by swapping, kept
        // entries first, reading the verdicts before the free list is
        // touched.
        let kept_ready = partition(&mut self.ready[..self.ready_len], scratch, 0);
        let kept_delayed = partition(
            &mut self.delayed[..self.delayed_len],
            scratch,
            self.ready_len,
        );
        // Move the removed slots to the free list before dropping anything,
        // so that a panicking `Drop` of `T` leaks the rest of the values but
        // never drops one twice or loses a slot.
        let free_start = self.free_len;
        for i in kept_ready..self.ready_len {
            self.free[self.free_len] = self.ready[i];
            self.free_len += 1;
        }
        for i in kept_delayed..self.delayed_len {
            self.free[self.free_len] = self.delayed[i];
            self.free_len += 1;
        }
        self.ready_len = kept_ready;
        self.delayed_len = kept_delayed;
        /// Drops the values of the slots just freed, also when `heapify`
        /// panics.
        struct DropFreed<'a, T, const N: usize, I> {
            queue: &'a mut PriorityQueue<T, N, I>,
            from: usize,
        }
        impl<T, const N: usize, I> Drop for DropFreed<'_, T, N, I> {
            fn drop(&mut self) {
                let q = &mut *self.queue;
                for &slot in &q.free[self.from..q.free_len] {
                    // SAFETY: the slot left its heap for the free list in
                    // `retain` with its value initialised; the free list
                    // never reads or drops values, so this drops it once.
                    unsafe { q.slots[slot as usize].value.assume_init_drop() };
                }
            }
        }
        let guard = DropFreed {
            queue: self,
            from: free_start,
        };
        let q = &mut *guard.queue;
        heapify(&mut q.ready[..q.ready_len], |a, b| {
            ready_before(&q.slots, a, b)
        });
        heapify(&mut q.delayed[..q.delayed_len], |a, b| {
            delayed_before(&q.slots, a, b)
        });
    }

    /// Removes every entry. If a value's `Drop` panics, the queue is empty
    /// all the same and the values not yet dropped are leaked.
    pub fn clear(&mut self) {
        let (ready, delayed) = (self.ready_len, self.delayed_len);
        self.ready_len = 0;
        self.delayed_len = 0;
        self.free_len = 0;
        self.used = 0;
        for &slot in self.ready[..ready].iter().chain(&self.delayed[..delayed]) {
            // SAFETY: each slot was live in exactly one heap, and the heaps
            // were emptied above, so each value is dropped once.
            unsafe { self.slots[slot as usize].value.assume_init_drop() };
        }
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

impl<T, const N: usize, I> Drop for PriorityQueue<T, N, I> {
    fn drop(&mut self) {
        for &slot in self.ready[..self.ready_len]
            .iter()
            .chain(&self.delayed[..self.delayed_len])
        {
            // SAFETY: each live slot is in exactly one heap, so each value is
            // dropped once; the queue is never used again.
            unsafe { self.slots[slot as usize].value.assume_init_drop() };
        }
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

/// Moves the entries whose verdict bit is set (bit `offset + i` of `bits`
/// for `heap[i]`) to the front of `heap`, by swapping, and returns how many
/// there are.
fn partition(heap: &mut [u32], bits: &[u32], offset: usize) -> usize {
    let mut kept = 0;
    for i in 0..heap.len() {
        let bit = offset + i;
        if bits[bit / 32] & (1 << (bit % 32)) != 0 {
            heap.swap(kept, i);
            kept += 1;
        }
    }
    kept
}

/// An index lifted out of a heap while it sifts. The heap slot at `pos` is a
/// hole: moves fill it from a neighbour and the hole moves there. Dropping
/// the hole writes the index back, when the sift ends and also when the
/// caller's `Ord` (inside `before`) panics part-way, so the heap is always
/// left a permutation of the same indices: no live slot lost, none twice
/// (std's `BinaryHeap` guards its sifts the same way).
struct Hole<'a> {
    heap: &'a mut [u32],
    pos: usize,
    item: u32,
}

impl Hole<'_> {
    /// Moves the index at `to` into the hole, which moves to `to`.
    #[inline(always)]
    fn move_to(&mut self, to: usize) {
        self.heap[self.pos] = self.heap[to];
        self.pos = to;
    }
}

impl Drop for Hole<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        self.heap[self.pos] = self.item;
    }
}

/// Adds `item` to the binary heap `heap[..len]`, whose root is the element
/// that comes first by `before`.
fn heap_push(heap: &mut [u32], len: &mut usize, item: u32, before: impl Fn(u32, u32) -> bool) {
    let mut hole = Hole {
        heap,
        pos: *len,
        item,
    };
    *len += 1;
    while hole.pos > 0 {
        let parent = (hole.pos - 1) / 2;
        if !before(item, hole.heap[parent]) {
            break;
        }
        hole.move_to(parent);
    }
}

/// Restores the heap order of `heap` after arbitrary removals.
fn heapify(heap: &mut [u32], before: impl Fn(u32, u32) -> bool) {
    for start in (0..heap.len() / 2).rev() {
        let item = heap[start];
        sift_down(&mut *heap, start, item, &before);
    }
}

/// Puts `item` into the hole at `heap[pos]` and moves it down until neither
/// child comes before it.
fn sift_down(heap: &mut [u32], pos: usize, item: u32, before: &impl Fn(u32, u32) -> bool) {
    let n = heap.len();
    let mut hole = Hole { heap, pos, item };
    loop {
        let left = 2 * hole.pos + 1;
        if left >= n {
            break;
        }
        let right = left + 1;
        let child = if right < n && before(hole.heap[right], hole.heap[left]) {
            right
        } else {
            left
        };
        if !before(hole.heap[child], item) {
            break;
        }
        hole.move_to(child);
    }
}

/// Removes and returns the root of the binary heap `heap[..len]`.
///
/// The root moves to the end and the length shrinks only once the heap is in
/// order again, so a panic in `before` leaves the root in the heap.
fn heap_pop(heap: &mut [u32], len: &mut usize, before: impl Fn(u32, u32) -> bool) -> Option<u32> {
    let last = len.checked_sub(1)?;
    let root = heap[0];
    if last > 0 {
        // The last index sifts down from the root's place, which becomes a
        // hole; the root takes the last place meanwhile.
        let item = heap[last];
        heap[last] = root;
        sift_down(&mut heap[..last], 0, item, &before);
    }
    *len = last;
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
        let mut q: PriorityQueue<u32, 8, u64> = PriorityQueue::new();
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
        let mut q: PriorityQueue<&str, 4, u64> = PriorityQueue::new();
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
        let mut q: PriorityQueue<u8, 2, u64> = PriorityQueue::new();
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
            let mut q: PriorityQueue<Rc<()>, 4, u64> = PriorityQueue::new();
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
        let mut q: PriorityQueue<u32, 16, u64> = PriorityQueue::new();
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
    fn delays_default_to_the_monotonic_instant() {
        use core::time::Duration;
        let start = Instant::from_secs(5);
        let mut q: PriorityQueue<u8, 4> = PriorityQueue::new();
        q.push_delayed(1, Priority::NORMAL, start + Duration::from_millis(3))
            .unwrap();
        q.push(2, Priority::LOW).unwrap();
        assert_eq!(q.pop(start), Some(2));
        assert_eq!(q.pop(start), None);
        assert_eq!(q.poll_timeout(), Some(Instant::from_nanos(5_003_000_000)));
        assert_eq!(q.pop(start + Duration::from_millis(3)), Some(1));
    }

    #[test]
    fn zero_capacity_rejects_everything() {
        let mut q: PriorityQueue<u8, 0, u64> = PriorityQueue::new();
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

    std::thread_local! {
        /// Comparisons left before [`Touchy`]'s `Ord` panics; `None` never.
        static FUSE: core::cell::Cell<Option<u32>> = const { core::cell::Cell::new(None) };
    }

    /// A time type whose `Ord` panics once the thread's fuse burns down.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    struct Touchy(u64);

    impl PartialOrd for Touchy {
        fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
            Some(self.cmp(other))
        }
    }

    impl Ord for Touchy {
        fn cmp(&self, other: &Self) -> core::cmp::Ordering {
            FUSE.with(|fuse| match fuse.get() {
                Some(0) => panic!("time comparison failed"),
                Some(n) => fuse.set(Some(n - 1)),
                None => {}
            });
            self.0.cmp(&other.0)
        }
    }

    /// A value that counts its drops in a shared table, by id.
    struct Counted {
        id: usize,
        drops: Rc<[core::cell::Cell<u32>]>,
    }

    impl Drop for Counted {
        fn drop(&mut self) {
            let c = &self.drops[self.id];
            c.set(c.get() + 1);
        }
    }

    const ENTRIES: usize = 24;

    /// A queue of `ENTRIES` counted values, half delayed, at instants that
    /// are not in push order.
    fn touchy_queue(drops: &Rc<[core::cell::Cell<u32>]>) -> PriorityQueue<Counted, 32, Touchy> {
        let mut q = PriorityQueue::new();
        for id in 0..ENTRIES {
            let value = Counted {
                id,
                drops: Rc::clone(drops),
            };
            let priority = Priority::new((id * 37 % 5) as u8);
            if id % 2 == 0 {
                q.push_delayed(value, priority, Touchy((id as u64 * 7919) % 101))
                    .unwrap();
            } else {
                q.push(value, priority).unwrap();
            }
        }
        q
    }

    type Drops = Rc<[core::cell::Cell<u32>]>;
    type TouchyQueue = PriorityQueue<Counted, 32, Touchy>;

    /// Runs `op` on a fresh queue with the fuse set to every count from 0
    /// up, then checks that the queue still works and that every value is
    /// dropped exactly once, whether popped, kept or dropped with the queue.
    /// `op` may push one more value, with id `ENTRIES`.
    fn survives_panicking_ord(op: impl Fn(&mut TouchyQueue, &Drops)) {
        let mut panicked = 0;
        let mut completed = 0;
        // Every fuse length under a normal run; a sample under miri, which is
        // some thousand times slower.
        for fuse in (0..300).step_by(if cfg!(miri) { 13 } else { 1 }) {
            let drops: Drops = (0..ENTRIES + 2).map(|_| core::cell::Cell::new(0)).collect();
            let mut q = touchy_queue(&drops);
            FUSE.with(|f| f.set(Some(fuse)));
            let caught =
                std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| op(&mut q, &drops)));
            FUSE.with(|f| f.set(None));
            match caught {
                Ok(()) => completed += 1,
                Err(_) => panicked += 1,
            }
            // Still usable: a push finds room and entries come out.
            let extra = Counted {
                id: ENTRIES + 1,
                drops: Rc::clone(&drops),
            };
            q.push_delayed(extra, Priority::HIGHEST, Touchy(0)).unwrap();
            let before = q.len();
            let popped = (0..ENTRIES / 2)
                .filter(|_| q.pop(Touchy(u64::MAX)).is_some())
                .count();
            assert_eq!(q.len(), before - popped);
            assert!(popped > 0);
            drop(q);
            for (id, count) in drops.iter().enumerate() {
                let expected = u32::from(id != ENTRIES || drops[ENTRIES].get() > 0);
                assert_eq!(
                    count.get(),
                    expected,
                    "value {id} dropped {} times",
                    count.get()
                );
            }
        }
        assert!(panicked > 0, "the fuse never burnt down");
        assert!(completed > 0, "the operation never completed");
    }

    #[test]
    fn panicking_ord_in_push_delayed_neither_frees_twice_nor_leaks() {
        survives_panicking_ord(|q, drops| {
            let value = Counted {
                id: ENTRIES,
                drops: Rc::clone(drops),
            };
            let _ = q.push_delayed(value, Priority::LOW, Touchy(50));
        });
    }

    #[test]
    fn panicking_ord_in_pop_and_peek_neither_frees_twice_nor_leaks() {
        survives_panicking_ord(|q, _| {
            for now in [0, 30, 60, 101] {
                let _ = q.peek(Touchy(now));
                drop(q.pop(Touchy(now)));
            }
        });
    }

    #[test]
    fn panicking_ord_in_retain_neither_frees_twice_nor_leaks() {
        survives_panicking_ord(|q, _| q.retain(|v| v.id % 3 != 0));
    }

    #[test]
    fn panicking_retain_closure_leaves_the_queue_as_it_was() {
        let drops: Drops = (0..ENTRIES).map(|_| core::cell::Cell::new(0)).collect();
        let mut q = touchy_queue(&drops);
        let mut seen = 0;
        let caught = std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| {
            q.retain(|v| {
                seen += 1;
                assert!(seen < ENTRIES / 2, "predicate failed");
                v.id % 2 == 0
            })
        }));
        assert!(caught.is_err());
        assert_eq!((q.len(), q.delayed_len()), (ENTRIES, ENTRIES / 2));
        assert!(drops.iter().all(|c| c.get() == 0));
        let mut reference = touchy_queue(&drops);
        while let Some(v) = q.pop(Touchy(u64::MAX)) {
            assert_eq!(reference.pop(Touchy(u64::MAX)).map(|r| r.id), Some(v.id));
        }
        assert!(reference.is_empty());
        assert!(drops.iter().all(|c| c.get() == 2));
    }

    std::thread_local! {
        /// Drops of [`Fragile`] values on this thread. A counter rather than
        /// a shared `Rc`, so that the values the test leaks on purpose hold
        /// no allocation and miri's leak check stays meaningful.
        static FRAGILE_DROPS: core::cell::Cell<u32> = const { core::cell::Cell::new(0) };
    }

    /// A value whose `Drop` panics when its flag is set.
    struct Fragile(bool);

    impl Drop for Fragile {
        fn drop(&mut self) {
            FRAGILE_DROPS.with(|d| d.set(d.get() + 1));
            assert!(!self.0, "drop failed");
        }
    }

    #[test]
    fn panicking_drop_in_clear_and_retain_never_drops_twice() {
        let count = || FRAGILE_DROPS.with(core::cell::Cell::get);
        let mut q: PriorityQueue<Fragile, 8, u64> = PriorityQueue::new();
        for fragile in [false, true, false] {
            q.push(Fragile(fragile), Priority::NORMAL).unwrap();
        }
        assert!(std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| q.clear())).is_err());
        assert!(q.is_empty());
        assert_eq!(count(), 2, "the value after the panic is leaked");
        for fragile in [false, true, false, false] {
            q.push_delayed(Fragile(fragile), Priority::NORMAL, 3)
                .unwrap();
        }
        let retain =
            std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| q.retain(|_| false)));
        assert!(retain.is_err());
        assert!(q.is_empty());
        for _ in 0..8 {
            q.push(Fragile(false), Priority::LOW).unwrap();
        }
        drop(q);
        assert_eq!(count(), 2 + 2 + 8);
    }
}
