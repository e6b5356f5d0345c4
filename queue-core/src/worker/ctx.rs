//! `Ctx`: what a running handler can do besides computing — report progress, write log
//! lines, learn its attempt number, notice cancellation, and reach the handler primitives
//! (cache, lock, rate limiter).

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::primitives::{Cache, Caches, Lock, RateLimiter};
use crate::queue::Queue;

/// Handed to every handler call.
#[derive(Clone)]
pub struct Ctx {
    pub(crate) queue: Queue,
    pub(crate) job_id: String,
    pub(crate) attempt: u32,
    pub(crate) cancel: CancellationToken,
    /// The worker's caches, shared by every job it runs.
    pub(crate) caches: Caches,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("queue", &self.queue.name())
            .field("job_id", &self.job_id)
            .field("attempt", &self.attempt)
            .finish()
    }
}

impl Ctx {
    /// Stores the job's progress (a number 0–100 or any JSON) and emits a `progress` event.
    pub async fn progress(&self, progress: impl Serialize) -> Result<()> {
        let text = serde_json::to_string(&progress)?;
        self.queue.set_progress(&self.job_id, &text).await?;
        Ok(())
    }

    /// Appends a line to the job's log (the newest 1,000 lines are kept).
    pub async fn log(&self, line: impl AsRef<str>) -> Result<()> {
        self.queue.add_log(&self.job_id, line.as_ref()).await?;
        Ok(())
    }

    /// This attempt's number, 1 for the first run.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The job's id.
    pub fn job_id(&self) -> &str {
        &self.job_id
    }

    /// The queue the job belongs to.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// Cancelled when the attempt times out or the worker gives up on it; long handlers
    /// (child processes) should watch it and stop.
    pub fn cancellation_token(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Whether the attempt has been cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// The cache of `namespace`: one instance per namespace for the whole worker, so its
    /// hit/miss counters add up over jobs (see [`crate::Worker::cache_stats`]).
    pub fn cache(&self, namespace: &str) -> Cache {
        self.caches
            .get(self.queue.redis(), self.queue.prefix(), namespace)
    }

    /// Named locks on the worker's Redis, under its prefix.
    pub fn lock(&self) -> Lock {
        Lock::new(self.queue.redis().clone(), self.queue.prefix())
    }

    /// Sliding-window rate limits on the worker's Redis, under its prefix.
    pub fn rate_limiter(&self) -> RateLimiter {
        RateLimiter::new(self.queue.redis().clone(), self.queue.prefix())
    }
}
