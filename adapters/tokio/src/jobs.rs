//! A durable job queue on tokio: thin drivers of the sans-IO lifecycle in
//! [`mechops_alloc::job`].
//!
//! - [`store`]: the [`store::Store`] trait every job store implements.
pub mod store;
