//! Testing handlers and producers with plain `cargo test`, without Redis.
//!
//! - [`TestWorker`] runs a worker's registered handlers on a job in-process: typed data in,
//!   the return value or the [`JobError`] out, with the progress and log lines the handler
//!   reported. The call is guarded as in a worker (a panic fails the attempt, the job's
//!   `timeout` option applies), so what a test sees is what a worker would record.
//! - [`recording_producer`] gives a [`Producer`] that stores nothing and records every job
//!   added through it (after the same validation a real add makes), for a test to assert
//!   what the code under test enqueued.
//!
//! Parts of [`Ctx`] that need Redis (`cache`, `lock`, `rate_limiter`, `children`, `queue`)
//! fail the job here, naming the part: test such handlers against a real Redis.
//!
//! ```
//! use queue_core::testing::TestWorker;
//! use queue_core::{Config, Ctx, Job, JobError, Worker};
//!
//! async fn resize(job: Job<u32>, ctx: Ctx) -> Result<u32, JobError> {
//!     if job.data == 0 {
//!         return Err(JobError::fatal("width 0"));
//!     }
//!     ctx.progress(50).await?;
//!     ctx.log(format!("resizing to {}", job.data)).await?;
//!     Ok(job.data / 2)
//! }
//!
//! # tokio_test_block_on(async {
//! let worker = TestWorker::new(
//!     Worker::builder(Config::default()).handler("image.resize", resize).handlers(),
//! );
//! let run = worker.job("image.resize", &640).run().await;
//! assert_eq!(run.output::<u32>(), 320);
//! assert_eq!(run.logs, ["resizing to 640"]);
//! assert_eq!(run.progress, [serde_json::json!(50)]);
//!
//! let bad = worker.job("image.resize", &0).run().await;
//! assert!(!bad.error().is_retryable());
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::handler::{
    guarded_call, panicked, timed_out, unregistered, Ctx, Handlers, Home, JobError, NoRedis,
    RawJob, Stop, Trail,
};
use crate::job::{new_job_id, JobOptions};
use crate::primitives::Caches;
use crate::producer::Producer;
pub use crate::producer::{Enqueued, Recorder};
use crate::typed::TypedJob;

/// Runs registered handlers in-process, without Redis (see the module doc).
#[derive(Debug, Clone)]
pub struct TestWorker {
    handlers: Handlers,
}

impl TestWorker {
    /// A test worker over `handlers` (from [`crate::WorkerBuilder::handlers`], e.g. the
    /// same registration function the real worker calls).
    pub fn new(handlers: Handlers) -> Self {
        TestWorker { handlers }
    }

    /// A job named `name` with `data`, to [`TestJob::run`]. Defaults: queue `test`, a new
    /// id, attempt 1, default options, not cancelled.
    ///
    /// # Panics
    /// If `data` cannot be serialized to JSON.
    pub fn job<T: Serialize + ?Sized>(&self, name: &str, data: &T) -> TestJob {
        TestJob {
            handlers: self.handlers.clone(),
            raw: RawJob {
                id: new_job_id(),
                name: name.to_string(),
                queue: "test".into(),
                data: serde_json::to_string(data)
                    .unwrap_or_else(|e| panic!("test job data is not serializable: {e}")),
                attempt: 1,
                opts: JobOptions::default(),
            },
            cancel: None,
        }
    }

    /// A job of a [`TypedJob`] type, under its name.
    pub fn typed<J: TypedJob>(&self, job: &J) -> TestJob {
        self.job(J::NAME, job)
    }
}

/// One job for a [`TestWorker`] to run; set what the handler should see, then [`run`](Self::run).
#[derive(Debug)]
pub struct TestJob {
    handlers: Handlers,
    raw: RawJob,
    /// None: never cancelled; Some(d): cancelled `d` after the start.
    cancel: Option<Duration>,
}

impl TestJob {
    /// The job's id.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.raw.id = id.into();
        self
    }

    /// The queue the handler sees in `job.queue`.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.raw.queue = queue.into();
        self
    }

    /// The attempt number the handler sees (1 for the first run), e.g. to test the last
    /// attempt's behaviour.
    pub fn attempt(mut self, attempt: u32) -> Self {
        self.raw.attempt = attempt;
        self
    }

    /// The options the job was "added" with; their `timeout` limits the run as in a worker.
    pub fn opts(mut self, opts: JobOptions) -> Self {
        self.raw.opts = opts;
        self
    }

    /// Cancels the attempt `after` it starts, as a worker does on a cancel request: the
    /// handler's [`Ctx::cancellation_token`] fires and the handler is dropped at its next
    /// await; the run's error is `cancelled` (unless the handler had succeeded).
    /// `Duration::ZERO`: cancelled before the handler runs.
    pub fn cancel_after(mut self, after: Duration) -> Self {
        self.cancel = Some(after);
        self
    }

    /// Runs the handler once and returns what it did.
    pub async fn run(self) -> TestRun {
        let trail = Arc::new(Trail::default());
        let Some(handler) = self.handlers.get(&self.raw.name) else {
            return TestRun {
                outcome: Err(JobError::fatal(format!(
                    "{} (registered: {})",
                    unregistered(&self.raw.name),
                    self.handlers.names().join(", ")
                ))),
                progress: Vec::new(),
                logs: Vec::new(),
            };
        };
        let token = CancellationToken::new();
        let canceller = match self.cancel {
            Some(Duration::ZERO) => {
                token.cancel();
                None
            }
            Some(after) => {
                let token = token.clone();
                Some(tokio::spawn(async move {
                    tokio::time::sleep(after).await;
                    token.cancel();
                }))
            }
            None => None,
        };
        let ctx = Ctx {
            home: Home::Test(trail.clone()),
            job_id: self.raw.id.clone(),
            attempt: self.raw.attempt,
            cancel: token.clone(),
            caches: Caches::default(),
        };
        let limit = self.raw.opts.timeout_ms.map(Duration::from_millis);
        // as in a worker (`worker/run.rs`): a cancellation stops the handler at its next
        // await, watching the token or not, and wins over a return it provokes
        let stop = tokio::select! {
            biased;
            _ = token.cancelled() => Stop::Cancelled,
            r = guarded_call(handler(self.raw, ctx), limit) => r,
        };
        let outcome = match stop {
            Stop::Returned(Ok(Ok(json))) => {
                Ok(serde_json::from_str(&json).unwrap_or(Value::String(json)))
            }
            _ if token.is_cancelled() => Err(JobError::new("cancelled")),
            Stop::Returned(Ok(Err(e))) => Err(e),
            Stop::Returned(Err(panic)) => Err(match panic.downcast_ref::<NoRedis>() {
                Some(part) => JobError::fatal(part.to_string()),
                None => panicked(&*panic),
            }),
            Stop::TimedOut(limit) => Err(timed_out(limit)),
            Stop::Cancelled => Err(JobError::new("cancelled")),
        };
        if let Some(task) = canceller {
            task.abort();
        }
        let (progress, logs) = trail.take();
        TestRun {
            outcome,
            progress,
            logs,
        }
    }
}

/// What a handler did in a [`TestJob::run`].
#[derive(Debug)]
pub struct TestRun {
    /// Its return value as JSON, or its error (a panic or a timeout becomes an error
    /// carrying the message a worker would record).
    pub outcome: Result<Value, JobError>,
    /// Every value passed to [`Ctx::progress`], in order.
    pub progress: Vec<Value>,
    /// Every line passed to [`Ctx::log`], in order.
    pub logs: Vec<String>,
}

impl TestRun {
    /// Whether the handler succeeded.
    pub fn is_ok(&self) -> bool {
        self.outcome.is_ok()
    }

    /// The return value decoded as `R`.
    ///
    /// # Panics
    /// If the handler failed (with its error's message), or its value is not an `R`.
    #[track_caller]
    pub fn output<R: DeserializeOwned>(&self) -> R {
        match &self.outcome {
            Ok(v) => serde_json::from_value(v.clone())
                .unwrap_or_else(|e| panic!("the handler returned {v}, which does not decode: {e}")),
            Err(e) => panic!("the handler failed: {}", e.message()),
        }
    }

    /// The handler's error.
    ///
    /// # Panics
    /// If the handler succeeded (with its return value).
    #[track_caller]
    pub fn error(&self) -> &JobError {
        match &self.outcome {
            Ok(v) => panic!("the handler succeeded with {v}, not an error"),
            Err(e) => e,
        }
    }
}

impl Recorder {
    /// The data of the jobs of type `J` (named `J::NAME`), in order.
    pub fn typed<J: TypedJob>(&self) -> Vec<J> {
        self.named(J::NAME).iter().map(Enqueued::data_as).collect()
    }
}

/// A [`Producer`] that stores nothing and records each job added through it, for a test
/// to assert what the code under test enqueued. Adds are validated as for real (a bad
/// queue name, job name, option or oversized data is the same error), then recorded and
/// answered [`Produced::Stored`](crate::Produced::Stored); [`Producer::queue`] fails, there being no Redis.
///
/// ```
/// use queue_core::testing::recording_producer;
/// use queue_core::{JobOptions, Producer};
///
/// // the code under test
/// async fn on_upload(producer: &Producer, path: &str) -> queue_core::Result<()> {
///     producer
///         .add("media", "video.probe", &serde_json::json!({ "src": path }), JobOptions::new())
///         .await?;
///     Ok(())
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let (producer, recorder) = recording_producer();
/// on_upload(&producer, "uploads/a.mp4").await.unwrap();
/// let jobs = recorder.named("video.probe");
/// assert_eq!(jobs.len(), 1);
/// assert_eq!(jobs[0].queue, "media");
/// assert_eq!(jobs[0].data["src"], "uploads/a.mp4");
/// # });
/// ```
pub fn recording_producer() -> (Producer, Recorder) {
    let recorder = Recorder::default();
    let producer = Producer::builder(crate::Config::default())
        .recording(recorder.clone())
        .build();
    (producer, recorder)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, Job, Worker};

    fn worker() -> TestWorker {
        TestWorker::new(
            Worker::builder(Config::default())
                .handler("t.ok", |job: Job<u32>, ctx: Ctx| async move {
                    ctx.log("one").await?;
                    ctx.progress(serde_json::json!({"step": 1})).await?;
                    Ok::<_, JobError>(job.data + job.attempt)
                })
                .handler("t.panic", |_job: Job<Value>, _ctx: Ctx| async move {
                    if true {
                        panic!("boom");
                    }
                    Ok::<_, JobError>(())
                })
                .handler("t.cache", |_job: Job<Value>, ctx: Ctx| async move {
                    let _ = ctx.cache("c");
                    Ok::<_, JobError>(())
                })
                .handler("t.wait", |_job: Job<Value>, ctx: Ctx| async move {
                    ctx.cancellation_token().cancelled().await;
                    Err::<(), _>(JobError::new("stopped"))
                })
                .handler("t.deaf", |_job: Job<Value>, _ctx: Ctx| async move {
                    // never looks at its cancellation token
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Ok::<_, JobError>(())
                })
                .handlers(),
        )
    }

    #[tokio::test]
    async fn cancel_after_stops_the_attempt_as_a_worker_does() {
        let w = worker();
        // a worker drops a cancelled handler at its next await, whether or not it watches
        // the token, and records "cancelled" rather than what the handler returns then
        for name in ["t.deaf", "t.wait"] {
            for after in [Duration::ZERO, Duration::from_millis(5)] {
                let run = w.job(name, &()).cancel_after(after).run();
                let run = tokio::time::timeout(Duration::from_secs(5), run)
                    .await
                    .unwrap_or_else(|_| panic!("{name} after {after:?}: still running"));
                assert_eq!(run.error().message(), "cancelled", "{name} after {after:?}");
            }
        }
    }

    #[tokio::test]
    async fn a_run_records_output_progress_and_logs() {
        let run = worker().job("t.ok", &40).attempt(2).run().await;
        assert_eq!(run.output::<u32>(), 42);
        assert_eq!(run.logs, ["one"]);
        assert_eq!(run.progress, [serde_json::json!({"step": 1})]);
    }

    #[tokio::test]
    async fn failures_carry_what_a_worker_would_record() {
        let w = worker();
        let panicked = w.job("t.panic", &()).run().await;
        assert_eq!(panicked.error().message(), "handler panicked: boom");
        let cache = w.job("t.cache", &()).run().await;
        assert!(cache
            .error()
            .message()
            .starts_with("cache is not available"));
        let undecodable = w.job("t.ok", &"forty").run().await;
        assert!(undecodable.error().message().contains("cannot be decoded"));
        let unknown = w.job("t.nope", &()).run().await;
        assert!(unknown.error().message().contains("t.nope"));
        let timed = w
            .job("t.wait", &())
            .opts(JobOptions::new().timeout(Duration::from_millis(20)))
            .run()
            .await;
        assert_eq!(timed.error().message(), "timed out after 20ms");
        let cancelled = w
            .job("t.wait", &())
            .cancel_after(Duration::from_millis(5))
            .run()
            .await;
        assert_eq!(cancelled.error().message(), "cancelled");
    }

    #[tokio::test]
    async fn the_recording_producer_validates_then_records() {
        let (producer, recorder) = recording_producer();
        let added = producer
            .add("q1", "t.ok", &1, JobOptions::new().job_id("j1"))
            .await
            .unwrap();
        assert_eq!(added.id(), "j1");
        assert!(producer
            .add("bad name!", "t.ok", &1, JobOptions::new())
            .await
            .is_err());
        assert_eq!(recorder.jobs().len(), 1);
        assert_eq!(recorder.named("t.ok")[0].data_as::<u32>(), 1);
        assert!(producer.queue("q1").await.is_err());
        recorder.clear();
        assert!(recorder.jobs().is_empty());
    }
}
