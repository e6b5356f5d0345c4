//! jobq's built-in handlers. [`register_all`] adds every one of them to a worker.

pub mod diag;

use queue_core::WorkerBuilder;

/// Registers every built-in handler.
pub fn register_all(builder: WorkerBuilder) -> WorkerBuilder {
    diag::register(builder)
}
