//! The priority queue against a plain `Vec` reference model: priority first,
//! FIFO by push order within a priority, delayed entries held back until
//! their instant, and `poll_timeout` naming the next instant.

use mechops_core::queue::{Priority, PriorityQueue};
use proptest::prelude::*;

const CAPACITY: usize = 12;

struct Entry {
    value: u32,
    priority: u8,
    seq: u64,
    /// `None` for entries pushed ready.
    ready_at: Option<u64>,
    /// Whether a `pop` has already seen its instant come.
    promoted: bool,
}

#[derive(Default)]
struct Model {
    entries: Vec<Entry>,
    seq: u64,
}

impl Model {
    fn push(&mut self, value: u32, priority: u8, ready_at: Option<u64>) -> bool {
        if self.entries.len() == CAPACITY {
            return false;
        }
        self.entries.push(Entry {
            value,
            priority,
            seq: self.seq,
            ready_at,
            promoted: false,
        });
        self.seq += 1;
        true
    }

    fn pop(&mut self, now: u64) -> Option<u32> {
        for e in &mut self.entries {
            if e.ready_at.is_some_and(|at| at <= now) {
                e.promoted = true;
            }
        }
        let best = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.ready_at.is_none() || e.promoted)
            .max_by(|(_, a), (_, b)| a.priority.cmp(&b.priority).then(b.seq.cmp(&a.seq)))
            .map(|(i, _)| i)?;
        Some(self.entries.remove(best).value)
    }

    fn poll_timeout(&self) -> Option<u64> {
        self.entries
            .iter()
            .filter(|e| !e.promoted)
            .filter_map(|e| e.ready_at)
            .min()
    }
}

#[derive(Clone, Debug)]
enum Op {
    Push(u8),
    PushDelayed(u8, u64),
    Pop(u64),
    Retain(u32),
}

fn op() -> impl Strategy<Value = Op> {
    // A handful of levels, so that equal priorities (the FIFO case) are common.
    let priority = prop::sample::select(vec![0u8, 64, 128, 192, 255]);
    prop_oneof![
        3 => priority.clone().prop_map(Op::Push),
        3 => (priority, 0u64..60).prop_map(|(p, at)| Op::PushDelayed(p, at)),
        4 => (0u64..60).prop_map(Op::Pop),
        1 => (2u32..5).prop_map(Op::Retain),
    ]
}

proptest! {
    // Under miri, PROPTEST_CASES (read by the default config) bounds the run.
    #![proptest_config(if cfg!(miri) { ProptestConfig::default() } else { ProptestConfig::with_cases(300) })]

    #[test]
    fn matches_the_model(ops in prop::collection::vec(op(), 0..150)) {
        let mut queue: PriorityQueue<u32, CAPACITY, u64> = PriorityQueue::new();
        let mut model = Model::default();
        let mut next_value = 0u32;
        for op in &ops {
            match *op {
                Op::Push(p) => {
                    next_value += 1;
                    let ok = queue.push(next_value, Priority::new(p)).is_ok();
                    prop_assert_eq!(ok, model.push(next_value, p, None));
                }
                Op::PushDelayed(p, at) => {
                    next_value += 1;
                    let result = queue.push_delayed(next_value, Priority::new(p), at);
                    prop_assert_eq!(result.is_ok(), model.push(next_value, p, Some(at)));
                    if let Err(full) = result {
                        prop_assert_eq!(full.value, next_value);
                    }
                }
                Op::Pop(now) => prop_assert_eq!(queue.pop(now), model.pop(now), "{:?}", op),
                Op::Retain(m) => {
                    queue.retain(|v| v % m != 0);
                    model.entries.retain(|e| e.value % m != 0);
                }
            }
            prop_assert_eq!(queue.len(), model.entries.len());
            prop_assert_eq!(queue.poll_timeout(), model.poll_timeout());
        }
        // Draining at the end of time returns everything, in model order.
        loop {
            let expected = model.pop(u64::MAX);
            prop_assert_eq!(queue.pop(u64::MAX), expected);
            if expected.is_none() {
                break;
            }
        }
    }
}
