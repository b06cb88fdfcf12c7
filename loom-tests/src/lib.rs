//! Loom models of every atomic algorithm in mechops.
//!
//! The models live in `tests/`, one file per algorithm, each behind
//! `#![cfg(loom)]`. Run them with:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 \
//!     cargo test -p mechops-loom-tests --release
//! ```
#![no_std]
