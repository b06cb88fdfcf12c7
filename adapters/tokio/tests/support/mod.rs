//! Helpers shared by integration tests.

pub mod conn_pool;
pub mod postgres_server;
pub mod redis_server;
