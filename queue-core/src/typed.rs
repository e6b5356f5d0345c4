//! Typed job definitions: [`TypedJob`] ties a handler name to its data type, so the code
//! that adds a job and the handler that runs it cannot disagree on the name or the shape.

use std::future::Future;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::Result;
use crate::handler::{Ctx, Job, JobError};
use crate::job::{Added, JobOptions, NewJob};
use crate::producer::{Produced, Producer};
use crate::queue::Queue;
use crate::worker::WorkerBuilder;

/// A job's data type, with the handler name its jobs are added under and run by.
///
/// ```no_run
/// use queue_core::{Config, Ctx, Job, JobError, JobOptions, Queue, TypedJob, Worker};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Transcode {
///     src: String,
///     preset: String,
/// }
///
/// impl TypedJob for Transcode {
///     const NAME: &'static str = "video.transcode";
/// }
///
/// async fn transcode(job: Job<Transcode>, _ctx: Ctx) -> Result<String, JobError> {
///     Ok(format!("{}.{}.mp4", job.data.src, job.data.preset))
/// }
///
/// # async fn demo(queue: Queue) -> queue_core::Result<()> {
/// let worker = Worker::builder(Config::from_env()?).handler_typed(transcode);
/// let job = Transcode { src: "in.mov".into(), preset: "720p".into() };
/// queue.add_typed(&job, JobOptions::new()).await?;
/// # Ok(()) }
/// ```
pub trait TypedJob: Serialize + DeserializeOwned + Send + 'static {
    /// The handler name, e.g. `video.transcode`.
    const NAME: &'static str;
}

impl Queue {
    /// Adds `job` under its type's name ([`Queue::add`]).
    pub async fn add_typed<J: TypedJob>(&self, job: &J, opts: JobOptions) -> Result<Added> {
        self.add(J::NAME, job, opts).await
    }
}

impl Producer {
    /// Adds `job` to `queue` under its type's name ([`Producer::add`]).
    pub async fn add_typed<J: TypedJob>(
        &self,
        queue: &str,
        job: &J,
        opts: JobOptions,
    ) -> Result<Produced> {
        self.add(queue, J::NAME, job, opts).await
    }
}

impl NewJob {
    /// A job of a [`TypedJob`] type, for [`Queue::add_bulk`] or a flow.
    pub fn typed<J: TypedJob>(job: &J, opts: JobOptions) -> Result<Self> {
        NewJob::new(J::NAME, job, opts)
    }
}

impl WorkerBuilder {
    /// Registers `f` as the handler of `J`'s jobs, under `J::NAME` ([`WorkerBuilder::handler`]).
    pub fn handler_typed<J, R, F, Fut>(self, f: F) -> Self
    where
        J: TypedJob,
        R: Serialize + Send + 'static,
        F: Fn(Job<J>, Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<R, JobError>> + Send + 'static,
    {
        self.handler(J::NAME, f)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::testing::{recording_producer, TestWorker};
    use crate::{Config, Worker};

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Resize {
        width: u32,
    }

    impl TypedJob for Resize {
        const NAME: &'static str = "image.resize";
    }

    #[tokio::test]
    async fn producer_and_handler_agree_on_the_name() {
        let (producer, recorder) = recording_producer();
        producer
            .add_typed("images", &Resize { width: 64 }, JobOptions::new())
            .await
            .unwrap();
        assert_eq!(recorder.named("image.resize").len(), 1);
        assert_eq!(recorder.typed::<Resize>(), [Resize { width: 64 }]);

        let worker = TestWorker::new(
            Worker::builder(Config::default())
                .handler_typed(|job: Job<Resize>, _ctx: Ctx| async move {
                    Ok::<_, JobError>(job.data.width * 2)
                })
                .handlers(),
        );
        assert!(worker.typed(&Resize { width: 1 }).run().await.is_ok());
        assert_eq!(
            worker
                .typed(&Resize { width: 21 })
                .run()
                .await
                .output::<u32>(),
            42
        );
    }
}
