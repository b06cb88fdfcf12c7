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
//!
//! # Features and targets
//!
//! - `codec` (default): the frame codec ([`codec`]) and its CRC-32,
//!   XChaCha20-Poly1305, DEFLATE and postcard dependencies. Turn default
//!   features off for a firmware build that wants UUIDs, time, pools and
//!   caches only.
//! - `serde`: serde for the value types; with `codec`, `codec::postcard`.
//! - `std`: run-time CPU feature detection in the codec's dependencies.
//! - `portable-atomic`, `critical-section`: atomics from `portable-atomic`,
//!   for targets without compare-and-swap or without 64-bit atomics.
//!
//! Every module builds on every target, with two exceptions that depend on
//! the target's atomics and are absent, not broken, where those are missing:
//!
//! - [`pool`] needs compare-and-swap (`cfg(target_has_atomic = "ptr")`): on
//!   `thumbv6m-none-eabi` or `riscv32imc-unknown-none-elf` enable
//!   `critical-section` (and link a critical-section implementation), or
//!   `portable-atomic` with portable-atomic's `unsafe-assume-single-core`;
//! - `uuid::SharedV7`, `metrics::Counter`, `metrics::Gauge` and
//!   `metrics::Histogram` need 64-bit atomics (`cfg(target_has_atomic =
//!   "64")`, absent on every 32-bit microcontroller): `portable-atomic`
//!   supplies them there, behind a lock or a critical section. The
//!   single-threaded `uuid::V7Generator` and `metrics::LocalHistogram` work
//!   everywhere.
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(test)]
extern crate std;

pub(crate) mod sync;

pub mod backoff;
#[cfg(feature = "codec")]
pub mod codec;
pub mod lru;
pub mod metrics;
pub mod path;
#[cfg(any(loom, feature = "portable-atomic", target_has_atomic = "ptr"))]
pub mod pool;
pub mod queue;
pub mod time;
pub mod uuid;

#[cfg(test)]
mod test_support;
