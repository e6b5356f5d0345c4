//! Handlers: what a job runs. Users register typed async functions; the worker stores them
//! type-erased and decodes each job's data into the handler's own type.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::ctx::Ctx;
use crate::duration::format_duration;
use crate::job::JobOptions;

/// A job as its handler sees it, with data decoded into `T`.
///
/// The attempt number and the options the job was added with let a handler act on its
/// own history, here settling for a lower quality on the last attempt:
///
/// ```no_run
/// use queue_core::{Ctx, Job, JobError};
/// use serde::Deserialize;
///
/// #[derive(Deserialize)]
/// struct Transcode {
///     src: String,
///     preset: String,
/// }
///
/// async fn transcode(job: Job<Transcode>, ctx: Ctx) -> Result<String, JobError> {
///     let last = job.attempt == job.opts.max_attempts();
///     let preset = if last { "480p" } else { job.data.preset.as_str() };
///     ctx.log(format!("job {} attempt {}: {} at {preset}", job.id, job.attempt, job.data.src))
///         .await?;
///     Ok(format!("{}.{preset}.mp4", job.data.src))
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Job<T> {
    /// Job id.
    pub id: String,
    /// Handler name.
    pub name: String,
    /// Queue name.
    pub queue: String,
    /// Decoded payload.
    pub data: T,
    /// This attempt's number (1 for the first run).
    pub attempt: u32,
    /// Options the job was added with.
    pub opts: JobOptions,
}

/// Why an attempt failed. Any `std::error::Error` converts into it with `?`.
///
/// A retryable error (the default) lets the job run again while it has attempts left;
/// [`JobError::fatal`] fails the job for good.
///
/// ```
/// use queue_core::{Ctx, Job, JobError};
///
/// async fn fetch_upload(job: Job<String>, _ctx: Ctx) -> Result<usize, JobError> {
///     if !job.data.starts_with("uploads/") {
///         // bad input: no retry can fix it
///         return Err(JobError::fatal(format!("not an upload path: {}", job.data)));
///     }
///     // a read error (disk busy, NFS hiccup) converts with `?` and is retried
///     let bytes = std::fs::read(&job.data)?;
///     Ok(bytes.len())
/// }
///
/// assert!(!JobError::fatal("unsupported codec: vp6").is_retryable());
/// let io: JobError = std::io::Error::other("connection reset").into();
/// assert!(io.is_retryable());
/// ```
pub struct JobError {
    message: String,
    detail: Option<String>,
    retryable: bool,
    again: Again,
}

/// When the job runs again after a failed attempt, as its handler asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Again {
    /// As the handler's backoff function, or else the job's backoff, says.
    Backoff,
    /// After this delay ([`JobError::retry_after`]); the attempt counts.
    After(Duration),
    /// After this delay, the attempt not counted ([`JobError::snooze`]).
    Snooze(Duration),
}

impl JobError {
    /// A failure that may succeed on retry.
    pub fn new(message: impl Into<String>) -> Self {
        JobError {
            message: message.into(),
            detail: None,
            retryable: true,
            again: Again::Backoff,
        }
    }

    /// Not a failure: the job runs again after `delay` and this attempt does not count
    /// (Oban's snooze), e.g. when a resource the job needs is not ready yet. Also reached as
    /// [`Ctx::snooze`]. A delay over 3650 days fails the job instead, naming it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use queue_core::{Ctx, Job, JobError};
    ///
    /// async fn publish(job: Job<String>, _ctx: Ctx) -> Result<(), JobError> {
    ///     if job.data.ends_with(".part") {
    ///         // the upload is still arriving: look again in a minute, attempts untouched
    ///         return Err(JobError::snooze(Duration::from_secs(60)));
    ///     }
    ///     Ok(())
    /// }
    /// ```
    pub fn snooze(delay: Duration) -> Self {
        JobError {
            again: Again::Snooze(delay),
            ..JobError::new(format!("snoozed for {}", format_duration(delay)))
        }
    }

    /// Runs the next attempt after `delay` instead of the job's backoff (e.g. an API's
    /// `Retry-After`); the attempt counts, and with no attempts left the job fails. A
    /// delay over 3650 days fails the job for good, naming it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use queue_core::JobError;
    ///
    /// // an HTTP 429 with `Retry-After: 30`
    /// let e = JobError::new("rate limited by the moderation API").retry_after(Duration::from_secs(30));
    /// assert!(e.is_retryable());
    /// ```
    pub fn retry_after(mut self, delay: Duration) -> Self {
        self.retryable = true;
        self.again = Again::After(delay);
        self
    }

    /// When the job runs again, as the handler asked.
    pub(crate) fn again(&self) -> Again {
        self.again
    }

    /// A failure no retry can fix: remaining attempts are skipped.
    pub fn fatal(message: impl Into<String>) -> Self {
        JobError {
            retryable: false,
            ..JobError::new(message)
        }
    }

    /// Whether this is a snooze ([`JobError::snooze`]), not a failure.
    pub fn is_snooze(&self) -> bool {
        matches!(self.again, Again::Snooze(_))
    }

    /// Attaches a backtrace or longer detail, stored beside the message.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// The message stored as the job's failure reason.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Backtrace or detail, if any.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// Whether remaining attempts may run.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobError")
            .field("message", &self.message)
            .field("retryable", &self.retryable)
            .field("again", &self.again)
            .finish()
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for JobError {
    fn from(e: E) -> Self {
        let mut message = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        JobError::new(message)
    }
}

// (beside `JobError`, which `ctx.rs` does not name)
impl Ctx {
    /// What a handler returns (as its `Err`) to run the job again after `delay` without
    /// using an attempt: [`JobError::snooze`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use queue_core::{Ctx, Job, JobError};
    ///
    /// async fn thumbnail(job: Job<String>, ctx: Ctx) -> Result<(), JobError> {
    ///     if !std::path::Path::new(&job.data).exists() {
    ///         return Err(ctx.snooze(Duration::from_secs(30)));
    ///     }
    ///     Ok(())
    /// }
    /// ```
    pub fn snooze(&self, delay: std::time::Duration) -> JobError {
        JobError::snooze(delay)
    }
}

/// A handler's own backoff (`WorkerBuilder::backoff`): the attempt that failed and its
/// error in, the delay before the next attempt out.
pub type BackoffFn = Arc<dyn Fn(u32, &JobError) -> Duration + Send + Sync>;

/// A job as fetched, before its data is decoded.
#[derive(Debug, Clone)]
pub(crate) struct RawJob {
    pub id: String,
    pub name: String,
    pub queue: String,
    pub data: String,
    pub attempt: u32,
    pub opts: JobOptions,
}

pub(crate) type HandlerFuture = Pin<Box<dyn Future<Output = Result<String, JobError>> + Send>>;

/// A registered handler with its types erased: raw job in, JSON result out.
pub(crate) type ErasedHandler = Arc<dyn Fn(RawJob, Ctx) -> HandlerFuture + Send + Sync>;

/// A table of registered handlers, taken from a [`crate::WorkerBuilder`] with
/// [`crate::WorkerBuilder::handlers`]: what a [`crate::producer::Producer`] runs in-process
/// when Redis is down and its fallback is `inline`. Cheap to clone.
///
/// ```
/// use queue_core::{Config, Ctx, Job, JobError, Worker};
///
/// // no connection is made: the builder only collects handlers
/// let handlers = Worker::builder(Config::default())
///     .handler("image.rotate", |job: Job<i32>, _ctx: Ctx| async move {
///         Ok::<_, JobError>(job.data.rem_euclid(360))
///     })
///     .handlers();
/// assert!(handlers.contains("image.rotate"));
/// assert_eq!(handlers.names(), ["image.rotate"]);
/// ```
#[derive(Clone, Default)]
pub struct Handlers(pub(crate) Arc<std::collections::HashMap<String, ErasedHandler>>);

impl Handlers {
    /// Whether a handler is registered for `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// The registered names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.0.keys().cloned().collect();
        names.sort();
        names
    }

    pub(crate) fn get(&self, name: &str) -> Option<&ErasedHandler> {
        self.0.get(name)
    }
}

impl fmt::Debug for Handlers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Handlers").field(&self.names()).finish()
    }
}

pub(crate) fn erase<T, R, F, Fut>(f: F) -> ErasedHandler
where
    T: DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
    F: Fn(Job<T>, Ctx) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, JobError>> + Send + 'static,
{
    let f = Arc::new(f);
    Arc::new(move |raw: RawJob, ctx: Ctx| {
        let f = f.clone();
        Box::pin(async move {
            let data: T = serde_json::from_str(&raw.data).map_err(|e| {
                JobError::fatal(format!(
                    "job {} ({}) has data that cannot be decoded: {e}",
                    raw.id, raw.name
                ))
            })?;
            let job = Job {
                id: raw.id,
                name: raw.name,
                queue: raw.queue,
                data,
                attempt: raw.attempt,
                opts: raw.opts,
            };
            let out = f(job, ctx).await?;
            serde_json::to_string(&out)
                .map_err(|e| JobError::fatal(format!("return value is not serializable: {e}")))
        }) as HandlerFuture
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn std_errors_convert_with_their_causes() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "input.mp4 missing");
        let e: JobError = io.into();
        assert!(e.is_retryable());
        assert_eq!(e.message(), "input.mp4 missing");
        let f = JobError::fatal("bad").with_detail("trace");
        assert!(!f.is_retryable());
        assert_eq!(f.detail(), Some("trace"));
    }
}
