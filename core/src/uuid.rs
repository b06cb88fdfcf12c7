//! UUIDs (RFC 9562): the value type, its text forms and the generators.
//!
//! Invariants every part of this module keeps:
//!
//! - a [`Uuid`] is exactly 16 bytes in network order; its ordering is the
//!   ordering of those bytes, which for v7 is time order;
//! - encoding never allocates: it writes into a caller buffer, or into the
//!   fixed-size [`UuidString`] on the stack;
//! - parsing accepts exactly the hyphenated, simple, URN and braced forms, in
//!   either case, and reports the first offending byte position otherwise;
//! - generators take their randomness (`rand_core` traits) and the current
//!   time (`now_ms` Unix milliseconds, or a wall-clock `Timestamp` through
//!   `generate_at`) as inputs; they never read a clock or the OS;
//! - every generated UUID carries the right version and the RFC 9562 variant;
//! - the v7 generators hand out strictly increasing values, whatever the
//!   clock does (RFC 9562 §6.2).

mod encode;
mod fast;
mod hybrid;
mod parse;
mod secure;
#[cfg(any(loom, feature = "portable-atomic", target_has_atomic = "64"))]
mod shared;
mod v7;
mod value;

pub use encode::{Case, EncodeError, Format, UuidString};
pub use fast::FastV4;
pub use hybrid::{HybridGenerator, Mode};
pub use parse::ParseError;
pub use secure::SecureV4;
#[cfg(any(loom, feature = "portable-atomic", target_has_atomic = "64"))]
pub use shared::SharedV7;
pub use v7::{MAX_UNIX_MILLIS, V7Error, V7Generator};
pub use value::{Uuid, Variant, Version};
