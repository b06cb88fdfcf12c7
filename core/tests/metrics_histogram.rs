//! Property tests of the latency histogram against the exact quantiles of the
//! recorded values.

use mechops_core::metrics::{Histogram, LocalHistogram, Quantile};
use proptest::prelude::*;

/// Values spread over many orders of magnitude, as latencies are.
fn value() -> impl Strategy<Value = u64> {
    (0u32..64, any::<u64>()).prop_map(|(bits, raw)| if bits == 0 { 0 } else { raw >> (64 - bits) })
}

/// The exact value of rank `ceil(q * n)` (at least 1) in `sorted`.
fn exact(sorted: &[u64], q: f64) -> u64 {
    let n = sorted.len() as f64;
    let rank = ((q * n).ceil() as usize).max(1);
    sorted[rank - 1]
}

fn within_one_percent(estimate: u64, exact: u64) -> bool {
    let error = estimate.abs_diff(exact) as f64;
    error <= exact as f64 * 0.01
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn quantiles_are_within_one_percent(values in prop::collection::vec(value(), 1..400), q in 0.0f64..=1.0) {
        let mut h: LocalHistogram = LocalHistogram::new();
        for &v in &values {
            h.record(v);
        }
        let mut sorted = values.clone();
        sorted.sort_unstable();
        let quantile = Quantile::new(q).unwrap();
        let estimate = h.quantile(quantile).unwrap();
        let exact = exact(&sorted, quantile.get());
        prop_assert!(within_one_percent(estimate, exact), "q={q} estimate={estimate} exact={exact}");
        prop_assert_eq!(h.count(), values.len() as u64);
        prop_assert_eq!(h.min(), sorted.first().copied());
        prop_assert_eq!(h.max(), sorted.last().copied());
        prop_assert_eq!(h.sum(), values.iter().fold(0u64, |a, &v| a.wrapping_add(v)));
    }

    #[test]
    fn merging_equals_recording_both(a in prop::collection::vec(value(), 0..200), b in prop::collection::vec(value(), 0..200)) {
        let mut left: LocalHistogram<1024> = LocalHistogram::new();
        let mut right: LocalHistogram<1024> = LocalHistogram::new();
        let mut both: LocalHistogram<1024> = LocalHistogram::new();
        a.iter().for_each(|&v| { left.record(v); both.record(v); });
        b.iter().for_each(|&v| { right.record(v); both.record(v); });
        left.merge(&right);
        prop_assert_eq!(left.buckets().collect::<Vec<_>>(), both.buckets().collect::<Vec<_>>());
        prop_assert_eq!((left.count(), left.sum(), left.min(), left.max()), (both.count(), both.sum(), both.min(), both.max()));

        let shared: Histogram<1024> = Histogram::new();
        a.iter().for_each(|&v| shared.record(v));
        shared.merge(&right);
        let snap = shared.snapshot();
        prop_assert_eq!(snap.buckets().collect::<Vec<_>>(), both.buckets().collect::<Vec<_>>());
        prop_assert_eq!((snap.min(), snap.max()), (both.min(), both.max()));
    }
}

#[test]
fn dense_latency_distribution_meets_the_bound_at_every_percentile() {
    let mut h: LocalHistogram = LocalHistogram::new();
    let values: Vec<u64> = (1..=20_000u64).map(|i| 1_000 + i * i / 7).collect();
    values.iter().for_each(|&v| h.record(v));
    for p in 1..=1000 {
        let q = Quantile::new(f64::from(p) / 1000.0).unwrap();
        let estimate = h.quantile(q).unwrap();
        let exact = exact(&values, q.get());
        assert!(
            within_one_percent(estimate, exact),
            "p={p} estimate={estimate} exact={exact}"
        );
    }
}
