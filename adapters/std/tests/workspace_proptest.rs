//! Random operation sequences against an in-memory model of the files,
//! with compression on and off, single operations and atomic batches.

use std::collections::BTreeMap;

use mechops_std::workspace::{
    BatchOp, BatchOptions, CompressionPolicy, Durability, Options, Workspace,
};
use proptest::prelude::*;

const PATHS: [&str; 5] = ["a", "b", "c", "x/a", "x/y/b"];

#[derive(Clone, Debug)]
enum Op {
    Write(usize, Vec<u8>),
    Delete(usize),
    Rename(usize, usize),
    Read(usize),
    Batch(Vec<Self>),
}

fn content() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        (any::<u8>(), 1000usize..5000).prop_map(|(b, n)| vec![b; n]),
        (proptest::collection::vec(any::<u8>(), 1..16), 50usize..300)
            .prop_map(|(chunk, n)| chunk.repeat(n)),
    ]
}

fn single() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..PATHS.len(), content()).prop_map(|(p, c)| Op::Write(p, c)),
        1 => (0..PATHS.len()).prop_map(Op::Delete),
        1 => (0..PATHS.len(), 0..PATHS.len()).prop_map(|(a, b)| Op::Rename(a, b)),
        2 => (0..PATHS.len()).prop_map(Op::Read),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => single(),
        1 => proptest::collection::vec(single(), 1..5).prop_map(Op::Batch),
    ]
}

type Model = BTreeMap<&'static str, Vec<u8>>;

/// Applies a single operation to the model; `false` if it fails.
fn model_apply(model: &mut Model, op: &Op) -> bool {
    match op {
        Op::Write(p, c) => {
            model.insert(PATHS[*p], c.clone());
            true
        }
        Op::Delete(p) => model.remove(PATHS[*p]).is_some(),
        Op::Rename(a, b) => match model.remove(PATHS[*a]) {
            Some(c) => {
                model.insert(PATHS[*b], c);
                true
            }
            None => false,
        },
        Op::Read(_) | Op::Batch(_) => true,
    }
}

fn to_batch_op(op: &Op) -> Option<BatchOp> {
    Some(match op {
        Op::Write(p, c) => BatchOp::Write {
            path: PATHS[*p].into(),
            content: c.clone(),
        },
        Op::Delete(p) => BatchOp::Delete {
            path: PATHS[*p].into(),
        },
        Op::Rename(a, b) => BatchOp::Rename {
            from: PATHS[*a].into(),
            to: PATHS[*b].into(),
        },
        Op::Read(_) | Op::Batch(_) => return None,
    })
}

fn run(ops: &[Op], compression: CompressionPolicy, case: u64) {
    let dir = std::env::temp_dir().join(format!("ws-prop-{}-{case}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let ws = Workspace::open(
        &dir,
        Options::default()
            .durability(Durability::None)
            .compression(compression),
    )
    .unwrap();
    let mut model = Model::new();
    for op in ops {
        match op {
            Op::Write(p, c) => ws.write(PATHS[*p], c).unwrap(),
            Op::Delete(p) => {
                let expect = model_apply(&mut model, op);
                assert_eq!(ws.delete(PATHS[*p]).is_ok(), expect, "{op:?}");
                continue;
            }
            Op::Rename(a, b) => {
                let expect = model_apply(&mut model, op);
                assert_eq!(ws.rename(PATHS[*a], PATHS[*b]).is_ok(), expect, "{op:?}");
                continue;
            }
            Op::Read(p) => {
                let got = ws.read(PATHS[*p]).ok();
                assert_eq!(got.as_ref(), model.get(PATHS[*p]), "{op:?}");
                continue;
            }
            Op::Batch(inner) => {
                let batch: Vec<BatchOp> = inner.iter().filter_map(to_batch_op).collect();
                let mut next = model.clone();
                let all_ok = inner.iter().all(|o| model_apply(&mut next, o));
                let results = ws.batch(&batch, BatchOptions::atomic()).unwrap();
                assert_eq!(results.iter().all(Result::is_ok), all_ok, "{inner:?}");
                if all_ok {
                    model = next;
                }
                continue;
            }
        }
        model_apply(&mut model, op);
    }
    let listed: Vec<String> = ws.list("").unwrap().into_iter().map(|f| f.path).collect();
    let expected: Vec<String> = model.keys().map(|k| (*k).to_owned()).collect();
    assert_eq!(listed, expected);
    for (path, content) in &model {
        assert_eq!(&ws.read(path).unwrap(), content);
    }
    let report = ws.verify().unwrap();
    assert!(report.is_ok(), "{report:?}");
    drop(ws);
    std::fs::remove_dir_all(&dir).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn operations_match_the_model(ops in proptest::collection::vec(op(), 1..24), compress in any::<bool>(), case in any::<u64>()) {
        let policy = if compress {
            CompressionPolicy::Auto { threshold: 1024 }
        } else {
            CompressionPolicy::Never
        };
        run(&ops, policy, case);
    }
}
