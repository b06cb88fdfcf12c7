//! Pools and caches stay consistent, and lose no slot, when caller code they
//! run panics: a `Hash`, an `Eq`, a weigher, an eviction listener, a create
//! or a reset hook.

use core::cell::Cell;
use core::hash::{Hash, Hasher};
use core::panic::AssertUnwindSafe;
use std::panic::catch_unwind;

use mechops_alloc::cache::{Cache, EvictionCause};
use mechops_alloc::pool::GrowablePool;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
}

fn armed() -> bool {
    ARMED.with(Cell::get)
}

/// Runs `f` with the panicking key operations armed; `f` must panic.
fn panics(f: impl FnOnce()) {
    ARMED.with(|a| a.set(true));
    let r = catch_unwind(AssertUnwindSafe(f));
    ARMED.with(|a| a.set(false));
    assert!(r.is_err(), "expected a panic");
}

/// A key whose `Hash` panics while armed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct HashBomb(u32);

impl Hash for HashBomb {
    fn hash<H: Hasher>(&self, state: &mut H) {
        assert!(!armed(), "hash failed");
        self.0.hash(state);
    }
}

/// A key whose `Eq` panics while armed.
#[derive(Clone, Copy, Debug, Eq)]
struct EqBomb(u32);

impl Hash for EqBomb {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl PartialEq for EqBomb {
    fn eq(&self, other: &Self) -> bool {
        assert!(!armed(), "eq failed");
        self.0 == other.0
    }
}

/// The cache still answers for every key it holds, and holds its bound.
fn check<K: Hash + Eq + Copy + core::fmt::Debug>(c: &mut Cache<K, u32>, keys: &[K]) {
    let held = keys.iter().filter(|k| c.peek(*k).is_some()).count();
    assert_eq!(held, c.len());
    assert!(c.len() <= c.max_entries());
}

#[test]
fn cache_with_a_panicking_hash() {
    let mut c = Cache::with_max_entries(4);
    let keys: Vec<_> = (0..8).map(HashBomb).collect();
    for &k in &keys[..4] {
        c.insert(k, k.0).unwrap();
    }
    panics(|| drop(c.insert(keys[5], 5)));
    panics(|| {
        let _ = c.get(&keys[0]);
    });
    panics(|| {
        let _ = c.remove(&keys[1]);
    });
    check(&mut c, &keys);
    for &k in &keys[4..] {
        c.insert(k, k.0).unwrap();
    }
    check(&mut c, &keys);
}

#[test]
fn cache_with_a_panicking_eq() {
    let mut c = Cache::with_max_entries(4);
    let keys: Vec<_> = (0..8).map(EqBomb).collect();
    for &k in &keys[..4] {
        c.insert(k, k.0).unwrap();
    }
    panics(|| drop(c.insert(keys[0], 9)));
    panics(|| {
        let _ = c.get(&keys[1]);
    });
    panics(|| {
        let _ = c.remove(&keys[2]);
    });
    check(&mut c, &keys);
    assert_eq!(
        c.get(&keys[0]),
        Some(&0),
        "the refused update changed nothing"
    );
    for &k in &keys[4..] {
        c.insert(k, k.0).unwrap();
    }
    check(&mut c, &keys);
}

#[test]
fn cache_with_a_panicking_weigher() {
    let mut c = Cache::builder()
        .max_weight(10, |_: &u32, v: &u32| {
            assert!(!armed(), "weigher failed");
            u64::from(*v)
        })
        .build()
        .unwrap();
    c.insert(1, 4).unwrap();
    panics(|| drop(c.insert(2, 4)));
    panics(|| drop(c.insert(1, 5)));
    assert_eq!((c.len(), c.weight(), c.get(&1)), (1, 4, Some(&4)));
    c.insert(2, 4).unwrap();
    c.insert(3, 4).unwrap();
    assert!(c.weight() <= 10);
}

#[test]
fn cache_with_a_panicking_listener() {
    let mut c = Cache::builder()
        .max_entries(2)
        .eviction_listener(|_: u32, _: u32, cause| {
            assert_eq!(cause, EvictionCause::Capacity);
            assert!(!armed(), "listener failed");
        })
        .build()
        .unwrap();
    c.insert(1, 1).unwrap();
    c.insert(2, 2).unwrap();
    panics(|| drop(c.insert(3, 3)));
    // The evicted entry was unlinked before the listener ran.
    let keys = [1, 2, 3, 4];
    check(&mut c, &keys);
    c.insert(4, 4).unwrap();
    check(&mut c, &keys);
    assert!(c.len() <= 2);
}

#[test]
fn pool_with_a_panicking_reset_loses_no_slot() {
    let pool = GrowablePool::builder(2, || 0u8)
        .reset(|_| assert!(!armed(), "reset failed"))
        .build()
        .unwrap();
    for _ in 0..3 {
        let a = pool.acquire().unwrap();
        let b = pool.acquire().unwrap();
        panics(|| drop(a));
        panics(|| drop(b));
        assert_eq!(pool.stats().in_use, 0);
    }
    assert!(pool.acquire().is_some(), "the pool still hands out");
    assert_eq!(pool.stats().discarded, 6);
}

#[test]
fn pool_with_a_panicking_create_loses_no_slot() {
    let pool = GrowablePool::builder(1, || {
        assert!(!armed(), "create failed");
        0u8
    })
    .build()
    .unwrap();
    panics(|| drop(pool.acquire()));
    assert_eq!(pool.stats().live(), 0);
    assert_eq!(pool.stats().create_failures, 1);
    assert!(pool.acquire().is_some());
}
