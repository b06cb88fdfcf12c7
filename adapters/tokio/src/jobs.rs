//! A durable job queue on tokio: thin drivers of the sans-IO lifecycle in
//! [`mechops_alloc::job`].
//!
//! - [`store`]: the [`store::Store`] trait every job store implements.
//! - [`redis_store`]: [`redis_store::RedisStore`], jobs in a Redis server
//!   shared by many workers on many machines.
pub mod redis_store;
pub mod store;
