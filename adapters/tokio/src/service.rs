//! The tool execution service.

pub mod error;
pub mod events;
pub mod status;

pub use error::ServiceError;
