//! # mechops-alloc
//!
//! The mechops pieces that need a heap but not an operating system: growable
//! object pools, the session pool, the growable cache with weights and expiry,
//! and serialization into `Vec<u8>`. Like the core, this crate has no I/O and
//! no clock: time and randomness are inputs.
#![no_std]

extern crate alloc;

#[cfg(test)]
extern crate std;

pub mod cache;
pub mod conn;
pub mod job;
pub mod pool;
pub mod serialize;
