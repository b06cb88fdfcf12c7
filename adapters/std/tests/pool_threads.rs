//! The shared pool under contention: ownership stamps prove that no object
//! is ever handed to two holders at once, and the books balance afterwards.

use core::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

use mechops_alloc::pool::{Growth, PoolBuilder};
use mechops_std::pool::SharedPool;

/// An object that records who holds it.
struct Stamped {
    owner: AtomicU64,
}

const THREADS: u64 = 4;
const OPS: u64 = 20_000;

fn stamped_pool(max: usize) -> SharedPool<Stamped> {
    SharedPool::new(
        PoolBuilder::new(max, || Stamped {
            owner: AtomicU64::new(0),
        })
        .growth(Growth::Double),
    )
    .unwrap()
}

fn hold(obj: &Stamped, me: u64) {
    let prev = obj.owner.swap(me, Ordering::AcqRel);
    assert_eq!(prev, 0, "object handed out while thread {prev} held it");
    core::hint::spin_loop();
    assert_eq!(obj.owner.swap(0, Ordering::AcqRel), me);
}

#[test]
fn guards_never_share_an_object() {
    let pool = stamped_pool(3);
    let handed = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (1..=THREADS)
        .map(|me| {
            let pool = pool.clone();
            let handed = Arc::clone(&handed);
            thread::spawn(move || {
                for _ in 0..OPS {
                    if let Some(obj) = pool.acquire() {
                        hold(&obj, me);
                        handed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let s = pool.stats();
    assert_eq!(s.acquired, handed.load(Ordering::Relaxed));
    assert_eq!(s.acquired, s.released);
    assert_eq!(s.in_use, 0);
    assert!(s.live() <= 3);
    assert_eq!(s.acquired + s.exhausted, THREADS * OPS);
}

#[test]
fn local_caches_never_share_an_object() {
    let pool = stamped_pool(64);
    let workers: Vec<_> = (1..=THREADS)
        .map(|me| {
            let pool = pool.clone();
            thread::spawn(move || {
                let mut local = pool.local_cache(4, |_: &mut Stamped| {});
                let mut held = Vec::new();
                for i in 0..OPS {
                    // Hold up to three objects at a time to make the local
                    // stack refill and flush.
                    if let Some(obj) = local.take() {
                        hold(&obj, me);
                        held.push(obj);
                    }
                    if held.len() > (i % 3) as usize {
                        local.put(held.pop().unwrap());
                    }
                }
                for obj in held {
                    local.put(obj);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let s = pool.stats();
    assert_eq!(s.in_use, 0, "every local cache gave its objects back");
    assert!(s.live() <= 64);
}
