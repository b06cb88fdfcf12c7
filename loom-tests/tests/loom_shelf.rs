//! Loom models of the shelf (`mechops_core::pool::shelf`): every
//! interleaving of threads putting and taking values, and of a put racing a
//! seal followed by a drain, checked for values lost, duplicated or read
//! before they were written.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use mechops_core::pool::shelf::{Shelf, ShelfPlace};

type TestShelf = Shelf<Box<usize>, Vec<ShelfPlace<Box<usize>>>>;

fn shelf(places: usize) -> Arc<TestShelf> {
    Arc::new(Shelf::new((0..places).map(|_| ShelfPlace::new()).collect()))
}

/// Empties the shelf (sealed or not) into a sorted list of values, checking
/// each is on its own place.
fn drain(shelf: &TestShelf) -> Vec<usize> {
    let mut values = Vec::new();
    while let Some((index, value)) = shelf.take_sealed() {
        assert_eq!(index, *value, "a value came back on another place");
        values.push(*value);
    }
    values.sort_unstable();
    values
}

/// Two threads each take a value and put it back: none is lost or handed to
/// both (a heap value read twice would be a double free under loom).
#[test]
fn loom_shelf_take_and_put_back() {
    loom::model(|| {
        let shelf = shelf(2);
        shelf.put(0, Box::new(0)).unwrap();
        shelf.put(1, Box::new(1)).unwrap();
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let shelf = Arc::clone(&shelf);
                thread::spawn(move || {
                    if let Some((index, value)) = shelf.take() {
                        assert_eq!(index, *value);
                        shelf.put(index, value).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(drain(&shelf), vec![0, 1]);
    });
}

/// One thread puts while another takes: the value ends up taken or still on
/// the shelf, exactly once, and a take sees what the put wrote.
#[test]
fn loom_shelf_put_races_take() {
    loom::model(|| {
        let shelf = shelf(2);
        shelf.put(1, Box::new(1)).unwrap();
        let putter = {
            let shelf = Arc::clone(&shelf);
            thread::spawn(move || shelf.put(0, Box::new(0)).unwrap())
        };
        let taker = {
            let shelf = Arc::clone(&shelf);
            thread::spawn(move || shelf.take().map(|(i, v)| (i, *v)))
        };
        putter.join().unwrap();
        let taken = taker.join().unwrap();
        let mut all = drain(&shelf);
        if let Some((index, value)) = taken {
            assert_eq!(index, value);
            all.push(value);
        }
        all.sort_unstable();
        assert_eq!(all, vec![0, 1]);
    });
}

/// The runtime's hand-off: a releaser puts its value unless the shelf is
/// sealed (then it keeps it, and gives it elsewhere); a sealer seals and
/// drains. Every value ends in exactly one of the two hands, and after the
/// seal nothing is left on the shelf.
#[test]
fn loom_shelf_seal_then_drain_misses_no_put() {
    loom::model(|| {
        let shelf = shelf(2);
        shelf.put(1, Box::new(1)).unwrap();
        let releaser = {
            let shelf = Arc::clone(&shelf);
            thread::spawn(move || shelf.put(0, Box::new(0)).err().map(|v| *v))
        };
        let sealer = {
            let shelf = Arc::clone(&shelf);
            thread::spawn(move || {
                shelf.seal();
                drain(&shelf)
            })
        };
        let kept = releaser.join().unwrap();
        let mut drained = sealer.join().unwrap();
        assert!(shelf.is_sealed());
        assert_eq!(shelf.take(), None, "a take found a value after the seal");
        assert_eq!(
            drain(&shelf),
            Vec::<usize>::new(),
            "a put landed after the drain"
        );
        drained.extend(kept);
        drained.sort_unstable();
        assert_eq!(drained, vec![0, 1]);
    });
}
