//! # mechops-tokio
//!
//! The tokio adapter: a thin driver of the core's sans-IO state machines on
//! the tokio runtime. It reads the clock, feeds the core, does the I/O the
//! core asks for and sleeps until the core's next deadline; every decision
//! (what a byte stream holds, when a deadline falls) stays in `mechops-core`,
//! where it is tested without a runtime.
//!
//! Its contract, which every module keeps:
//!
//! - **one time vocabulary**: time is the core's monotonic
//!   [`Instant`](mechops_core::time::Instant), read from a
//!   [`clock::TokioClock`] on `tokio::time::Instant`, so a paused runtime
//!   (`tokio::time::pause`, `#[tokio::test(start_paused = true)]`) drives
//!   every deadline in tests, and deadlines are slept on with
//!   [`clock::TokioClock::sleep_until`];
//! - **cancellation safety is part of every async API's contract**: each
//!   `async fn` says what happens when its future is dropped at any
//!   `.await` (under `tokio::time::timeout`, `select!` or task abort), and
//!   tests drop futures mid-way and check that nothing is lost or left
//!   half-done;
//! - **bounded memory**: every buffer has a size fixed when the value is
//!   built; input announcing more is refused with an error, never a panic;
//! - **no unsafe code**.
//!
//! Modules:
//!
//! - [`clock`]: [`clock::TokioClock`], the monotonic clock on tokio's time,
//!   and conversions between core instants and `tokio::time::Instant`;
//! - [`conn`]: [`conn::ConnectionPool`], async connection pools over a
//!   [`conn::Manager`], driving `mechops-alloc`'s sans-IO `PoolCore`, with
//!   metrics and a process-wide registry of named pools;
//! - [`exec`]: the execution runners (commands in a process group of
//!   their own, with bounded output and progress reports) and per-script
//!   statistics;
//! - [`frame_io`]: [`frame_io::FrameReader`] and [`frame_io::FrameWriter`],
//!   the frame format of `docs/FORMAT.md` over `AsyncRead` and `AsyncWrite`,
//!   driving the core's
//!   [`FrameAccumulator`](mechops_core::codec::accumulator::FrameAccumulator);
//! - [`jobs`]: the job queue runtime and its stores.
//! - [`http`]: the tool execution service's HTTP API on axum, with a
//!   bearer token, a body limit and a graceful shutdown;
//! - [`object_pool`]: [`object_pool::AsyncObjectPool`], an async object pool
//!   with first come, first served waiters and an acquire timeout, driving
//!   `mechops-alloc`'s [`PoolStore`](mechops_alloc::pool::PoolStore).
//! - [`service`]: [`service::ToolService`], the tool execution service:
//!   registry scripts run now or as jobs, with statistics;
//! - [`registry_tier`]: [`registry_tier::RegistryTier`], the script
//!   registry shared by many processes through Redis, with versioned
//!   invalidations over pub/sub.
//! - [`workspace`]: [`workspace::AsyncWorkspace`], the std crate's confined,
//!   crash-safe file store with each operation on tokio's blocking pool.
#![forbid(unsafe_code)]

pub mod clock;
pub mod conn;
pub mod exec;
pub mod frame_io;
pub mod http;
pub mod jobs;
pub mod object_pool;
pub mod registry_tier;
pub mod service;
pub mod workspace;
