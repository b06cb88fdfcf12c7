//! Job stores and the runtime that drives the sans-IO job lifecycle of
//! [`mechops_alloc::job`].

pub mod redis_store;
