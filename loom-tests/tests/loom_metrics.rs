//! Loom models of the metrics primitives: concurrent updates are neither lost
//! nor invented, and a drain racing with records hands every bucket count to
//! exactly one side.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use mechops_core::metrics::{Counter, Gauge, Histogram, Quantile};

#[test]
fn counter_and_gauge_keep_every_update() {
    loom::model(|| {
        let counter = Arc::new(Counter::new());
        let gauge = Arc::new(Gauge::new());
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let (counter, gauge) = (Arc::clone(&counter), Arc::clone(&gauge));
                thread::spawn(move || {
                    counter.add(2);
                    gauge.increment();
                    gauge.sub(3);
                })
            })
            .collect();
        let taken = counter.take();
        for h in handles {
            h.join().unwrap();
        }
        assert!(taken <= 4 && taken % 2 == 0);
        assert_eq!(taken + counter.get(), 4);
        assert_eq!(gauge.get(), -4);
    });
}

#[test]
fn histogram_records_from_two_threads() {
    loom::model(|| {
        let h = Arc::new(Histogram::<128>::new());
        let other = {
            let h = Arc::clone(&h);
            thread::spawn(move || h.record(100))
        };
        h.record(7);
        other.join().unwrap();
        // One pass over the buckets: loom bounds the atomic operations per
        // execution, and every bucket load counts.
        let snap = h.snapshot();
        assert_eq!(snap.count(), 2);
        assert_eq!(snap.sum(), 107);
        assert_eq!(snap.min(), Some(7));
        assert_eq!(snap.max(), Some(100));
        assert_eq!(snap.quantile(Quantile::MAX), Some(100));
        assert_eq!(snap.quantile(Quantile::new(0.0).unwrap()), Some(7));
    });
}

#[test]
fn drain_racing_with_records_loses_nothing() {
    loom::model(|| {
        let h = Arc::new(Histogram::<128>::new());
        let other = {
            let h = Arc::clone(&h);
            thread::spawn(move || {
                h.record(3);
                h.record(50);
            })
        };
        let first = h.drain();
        other.join().unwrap();
        let second = h.drain();
        assert_eq!(first.count() + second.count(), 2);
        assert_eq!(first.sum().wrapping_add(second.sum()), 53);
        let mut all = first.clone();
        all.merge(&second);
        assert_eq!(all.min(), Some(3));
        assert_eq!(all.max(), Some(50));
        assert_eq!(h.count(), 0);
    });
}
