//! Helpers shared by integration tests.

pub mod postgres_server;
pub mod redis_server;
