//! The `jobq-worker` binary (`src/bin/jobq-worker.rs`) and jobq's built-in handlers
//! (`video.*`, `analytics.*`, `moderation.*`, `diag.*`). [`register_all`] adds every one of
//! them to a worker.
//!
//! The worker runtime itself — claiming, leases, retries, crash recovery, the background
//! duties — is not here: it is `queue_core::worker` (`queue-core/src/worker/`), which any
//! Rust program can embed with its own handlers. This crate only registers handlers on a
//! `queue_core::WorkerBuilder` and wraps it in a command line.

pub mod analytics;
pub mod diag;
mod digest;
#[cfg(test)]
mod handler_tests;
pub mod metrics_server;
pub mod moderation;
pub mod otel;
pub mod video;

use queue_core::WorkerBuilder;

/// Registers every built-in handler, configured from the environment
/// (`MODERATION_API_URL`, …); fails on a bad setting, naming it.
pub fn register_all(builder: WorkerBuilder) -> Result<WorkerBuilder, String> {
    let builder = diag::register(builder);
    let builder = analytics::register(builder);
    let builder = moderation::register_with(builder, moderation::ModerationConfig::from_env()?);
    let builder = video::register(builder);
    Ok(builder)
}
