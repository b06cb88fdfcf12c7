//! # mechops-std
//!
//! The std adapter: it supplies what the sans-IO core takes as inputs (the
//! system clock, OS entropy) and the thread-safe, process-wide conveniences
//! that need an operating system.
#![forbid(unsafe_op_in_unsafe_fn)]

pub mod cache;
pub mod clock;
pub mod codec;
pub mod durable;
pub mod entropy;
pub mod pool;
pub mod registry;
pub mod tz;
pub mod uuid;
pub mod workspace;
