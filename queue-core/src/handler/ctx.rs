//! `Ctx`: what a running handler can do besides computing — report progress, write log
//! lines, learn its attempt number, notice cancellation, and reach the handler primitives
//! (cache, lock, rate limiter).
//!
//! A job run in-process because Redis is down (the producer's `inline` fallback) gets a
//! `Ctx` without a queue: progress and log lines go to `tracing`, and the Redis-backed
//! parts (`queue`, `cache`, `lock`, `rate_limiter`, `children`) fail the job with
//! `Redis is down: <part> is not available inline`. A job run by
//! [`crate::testing::TestWorker`] gets one whose progress and log lines are recorded for
//! the test to read, and whose Redis-backed parts fail the job the same way, naming the
//! test kit.

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::primitives::{Cache, Caches, Lock, RateLimiter};
use crate::queue::Queue;

/// Handed to every handler call.
///
/// A handler that packages the renditions of a video: it reports progress and log lines as
/// it goes, stops between steps once the attempt is cancelled (timed out, or the worker
/// gave up on it), and caches the title's manifest for every job of the title to share
/// ([`Ctx::lock`] and [`Ctx::rate_limiter`] are reached the same way).
///
/// ```no_run
/// use std::time::Duration;
/// use queue_core::{Ctx, Job, JobError};
///
/// async fn package(job: Job<Vec<String>>, ctx: Ctx) -> Result<String, JobError> {
///     let renditions = job.data;
///     for (done, rendition) in renditions.iter().enumerate() {
///         if ctx.is_cancelled() {
///             return Err(JobError::new(format!("cancelled before {rendition}")));
///         }
///         ctx.log(format!("packaging {rendition} (attempt {})", ctx.attempt())).await?;
///         ctx.progress(done * 100 / renditions.len()).await?;
///     }
///     let manifest = ctx.cache("manifests")
///         .get_or_set("title:42", Duration::from_secs(600), || async {
///             Ok::<_, JobError>(format!("#EXTM3U ({} renditions)", renditions.len()))
///         })
///         .await?;
///     Ok(manifest.value)
/// }
/// ```
#[derive(Clone)]
pub struct Ctx {
    /// Where progress and logs go, and whether the Redis-backed parts exist.
    pub(crate) home: Home,
    pub(crate) job_id: String,
    pub(crate) attempt: u32,
    pub(crate) cancel: CancellationToken,
    /// The worker's caches, shared by every job it runs.
    pub(crate) caches: Caches,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("queue", &self.home.queue().map(Queue::name))
            .field("job_id", &self.job_id)
            .field("attempt", &self.attempt)
            .finish()
    }
}

impl Ctx {
    /// Stores the job's progress (a number 0–100 or any JSON, at most 64 KiB of it:
    /// [`MAX_PROGRESS_BYTES`](crate::queue::MAX_PROGRESS_BYTES)) and emits a `progress`
    /// event. Inline (Redis down), it is logged at debug level instead.
    pub async fn progress(&self, progress: impl Serialize) -> Result<()> {
        // (checked wherever the job runs: a handler tested in-process meets the cap too)
        let text = serde_json::to_string(&progress)?;
        crate::queue::check_progress(&text)?;
        match &self.home {
            Home::Queue(q) => {
                q.set_progress(&self.job_id, &text).await?;
            }
            Home::Inline => {
                tracing::debug!(job = %self.job_id, progress = %text, "inline job progress");
            }
            Home::Test(trail) => trail.progress(serde_json::from_str(&text)?),
        }
        Ok(())
    }

    /// Appends a line to the job's log (the newest 1,000 lines are kept; a line over 64 KiB
    /// is cut there, saying how long it was). Inline (Redis down), it is logged at info
    /// level instead.
    pub async fn log(&self, line: impl AsRef<str>) -> Result<()> {
        let line = crate::queue::log_line(line.as_ref());
        match &self.home {
            Home::Queue(q) => {
                q.add_log(&self.job_id, &line).await?;
            }
            Home::Inline => tracing::info!(job = %self.job_id, "{line}"),
            Home::Test(trail) => trail.log(&line),
        }
        Ok(())
    }

    /// For a flow's parent: each child's queue, id, name, and how it ended (return value
    /// or failure reason), in the order the flow gave them. Empty for a job without
    /// children.
    ///
    /// # Panics
    /// Inline (Redis down): the job fails with "Redis is down: children is not available
    /// inline".
    pub async fn children(&self) -> Result<Vec<crate::flow::ChildOutcome>> {
        self.redis_part("children").children(&self.job_id).await
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
    ///
    /// # Panics
    /// In an inline run (Redis down), where there is no queue; the inline runner turns that
    /// panic into the job's error "Redis is down: the queue is not available inline".
    pub fn queue(&self) -> &Queue {
        self.redis_part("the queue")
    }

    /// The queue, or (inline, or in a test run) the panic that fails the job, naming `part`.
    fn redis_part(&self, part: &'static str) -> &Queue {
        match &self.home {
            Home::Queue(q) => q,
            Home::Inline => std::panic::panic_any(InlineUnavailable(part)),
            Home::Test(_) => std::panic::panic_any(super::trail::NoRedis(part)),
        }
    }

    /// Cancelled when the attempt times out, the job is cancelled ([`Queue::cancel`]) or
    /// the worker gives up on it; long handlers (child processes) should watch it and stop.
    pub fn cancellation_token(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Whether the attempt has been cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// The cache of `namespace`: one instance per namespace for the whole worker, so its
    /// hit/miss counters add up over jobs (see [`crate::Worker::cache_stats`]).
    ///
    /// # Panics
    /// Inline (Redis down): the job fails with "Redis is down: cache is not available inline".
    pub fn cache(&self, namespace: &str) -> Cache {
        let q = self.redis_part("cache");
        self.caches.get(q.redis(), q.prefix(), namespace)
    }

    /// Named locks on the worker's Redis, under its prefix.
    ///
    /// # Panics
    /// Inline (Redis down): the job fails with "Redis is down: lock is not available inline".
    pub fn lock(&self) -> Lock {
        let q = self.redis_part("lock");
        Lock::new(q.redis().clone(), q.prefix())
    }

    /// Sliding-window rate limits on the worker's Redis, under its prefix.
    ///
    /// # Panics
    /// Inline (Redis down): the job fails with "Redis is down: rate limiter is not available
    /// inline".
    pub fn rate_limiter(&self) -> RateLimiter {
        let q = self.redis_part("rate limiter");
        RateLimiter::new(q.redis().clone(), q.prefix())
    }
}

/// Where a handler's [`Ctx`] sends what it reports.
#[derive(Clone)]
pub(crate) enum Home {
    /// A worker's attempt: progress and logs are stored on the job.
    Queue(Queue),
    /// The producer's inline fallback (Redis down): they go to `tracing`.
    Inline,
    /// A [`crate::testing`] run: they are recorded for the test.
    Test(std::sync::Arc<super::trail::Trail>),
}

impl Home {
    fn queue(&self) -> Option<&Queue> {
        match self {
            Home::Queue(q) => Some(q),
            _ => None,
        }
    }
}

/// The panic payload of a Redis-backed part of [`Ctx`] used in an inline run: the inline
/// runner reports it as `Redis is down: <part> is not available inline`. A panic rather
/// than an error keeps the accessors' signatures (and the worker's path) as they are.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InlineUnavailable(pub &'static str);

impl std::fmt::Display for InlineUnavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redis is down: {} is not available inline", self.0)
    }
}
