//! # mechops-core
//!
//! The contract of this crate, which every module keeps:
//!
//! - **no I/O**: nothing here reads or writes files, sockets or terminals;
//! - **no clock**: the current time is always an input (a `now` argument or a
//!   [`time::WallClock`] or [`time::MonotonicClock`] supplied by the caller);
//! - **no allocation**: every container has a capacity fixed by const generics
//!   and every encoder writes into a buffer the caller owns;
//! - **no global state**: randomness comes from [`rand_core`] generators the
//!   caller passes in, shared state lives in values the caller owns;
//! - **deterministic**: given the same inputs, the same outputs.
//!
//! The std and tokio adapters (`mechops-std`, `mechops-tokio`) supply the
//! system clock, OS entropy and I/O around these pieces.
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(test)]
extern crate std;

pub(crate) mod sync;

pub mod backoff;
pub mod codec;
pub mod lru;
pub mod metrics;
pub mod path;
pub mod pool;
pub mod queue;
pub mod time;
pub mod uuid;
