//! The recording mode of a [`Producer`](super::Producer) (`queue_core::testing::recording_producer`): adds
//! are validated, then recorded here instead of stored.

use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::handler::unpoisoned;
use crate::job::{new_job_id, Added, JobOptions, NewJob};

/// A job added through a [`crate::testing::recording_producer`].
#[derive(Debug, Clone, PartialEq)]
pub struct Enqueued {
    /// The queue it was added to.
    pub queue: String,
    /// The job's id (given in the options, or generated).
    pub id: String,
    /// Handler name.
    pub name: String,
    /// Its data, as JSON.
    pub data: Value,
    /// Its options.
    pub opts: JobOptions,
}

impl Enqueued {
    /// The data decoded as `T`.
    ///
    /// # Panics
    /// If it is not a `T`, naming the job.
    #[track_caller]
    pub fn data_as<T: DeserializeOwned>(&self) -> T {
        serde_json::from_value(self.data.clone()).unwrap_or_else(|e| {
            panic!(
                "job {} ({}) has data {} that is not the type asked for: {e}",
                self.id, self.name, self.data
            )
        })
    }
}

/// What a [`crate::testing::recording_producer`] was given; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    jobs: Arc<Mutex<Vec<Enqueued>>>,
}

impl Recorder {
    /// Every job added, in order.
    pub fn jobs(&self) -> Vec<Enqueued> {
        unpoisoned(&self.jobs).clone()
    }

    /// The jobs named `name`, in order.
    pub fn named(&self, name: &str) -> Vec<Enqueued> {
        unpoisoned(&self.jobs)
            .iter()
            .filter(|j| j.name == name)
            .cloned()
            .collect()
    }

    /// Forgets what was recorded.
    pub fn clear(&self) {
        unpoisoned(&self.jobs).clear();
    }

    /// Records `jobs` added to `queue`, as a real add would answer.
    pub(crate) fn record(&self, queue: &str, jobs: Vec<NewJob>) -> Vec<Added> {
        let mut all = unpoisoned(&self.jobs);
        jobs.into_iter()
            .map(|job| {
                let id = job.opts.job_id.clone().unwrap_or_else(new_job_id);
                all.push(Enqueued {
                    queue: queue.to_string(),
                    id: id.clone(),
                    name: job.name,
                    data: job.data,
                    opts: job.opts,
                });
                Added {
                    id,
                    duplicate: false,
                    debounced: false,
                }
            })
            .collect()
    }
}
