//! Shared inputs for the mechops criterion benchmarks.
//!
//! The benchmarks themselves are in `benches/`, one file per area; each
//! measures mechops and its peer crates side by side in the same run.
