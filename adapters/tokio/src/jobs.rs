//! A durable job queue on tokio: thin drivers of the sans-IO lifecycle in
//! [`mechops_alloc::job`], which decides everything (claim order, limits,
//! retries and their backoff, leases and fencing, retention).
//!
//! - [`store`], the [`store::Store`] trait every job store implements;
//! - [`memory`], `memory://`, the core scheduler behind a mutex, saved to a
//!   file at a graceful shutdown;
//! - [`sqlite`], `sqlite://PATH`, the default: durable, group commit,
//!   shareable by several processes;
//! - [`redis_store`], `redis://HOST:PORT[/DB]`: jobs in a Redis server
//!   shared by many workers on many machines;
//! - [`open`], choosing a store by URL;
//! - [`record`], the JSON form of a job record the embedded stores persist;
//! - [`runtime`], [`runtime::Queue`] (submit, inspect, subscribe to events)
//!   and [`runtime::Worker`] (claim, run handlers, heartbeat, shut down
//!   gracefully).
//!
//! Delivery is at least once: a handler may run again for a job whose
//! worker died or lost its lease before its outcome was recorded, so
//! handlers with side effects must be idempotent. A completed job is never
//! run again, and a worker whose lease was lost cannot overwrite the
//! outcome of the attempt that replaced it (fencing tokens).

pub mod memory;
pub mod open;
pub mod record;
pub mod redis_store;
pub mod runtime;
pub mod sqlite;
pub mod store;
