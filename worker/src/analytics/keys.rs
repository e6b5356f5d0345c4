//! Where the analytics handlers keep their data.

/// Keys of the built-in analytics handlers. All share the hash tag `{prefix/analytics}` so
/// that one ingest batch is one atomic script in a single Cluster slot. The `/` cannot occur
/// in a queue name, so no queue's keys (not even a queue named `analytics`) share the tag.
#[derive(Debug, Clone)]
pub struct AnalyticsKeys {
    base: String,
}

impl AnalyticsKeys {
    /// The field of a day's counts hash that counts its ingests (event names cannot hold
    /// `#`, so it never collides with one).
    pub const VERSION_FIELD: &'static str = "#v";

    /// Analytics keys under `prefix`.
    pub fn new(prefix: &str) -> Self {
        Self {
            base: format!("{{{prefix}/analytics}}"),
        }
    }

    /// Hash of one day's event counts (field = event name), plus the field
    /// [`AnalyticsKeys::VERSION_FIELD`], bumped by every ingest into the day.
    pub fn counts(&self, day: &str) -> String {
        format!("{}:{day}:counts", self.base)
    }

    /// HyperLogLog of one day's distinct users, over all events.
    pub fn users(&self, day: &str) -> String {
        format!("{}:{day}:users", self.base)
    }

    /// HyperLogLog of one day's distinct users of one event.
    pub fn event_users(&self, day: &str, event: &str) -> String {
        format!("{}:{day}:users:{event}", self.base)
    }

    /// Sorted set of one day's items of one event, scored by count (top-N).
    pub fn top(&self, day: &str, event: &str) -> String {
        format!("{}:{day}:top:{event}", self.base)
    }

    /// Marker of an ingested batch (by queue and job id), so a rerun of the job is not
    /// counted twice.
    pub fn batch(&self, queue: &str, job_id: &str) -> String {
        format!("{}:batch:{queue}:{job_id}", self.base)
    }

    /// Marker of part `part` (from 1; part 0 has [`AnalyticsKeys::batch`]) of a batch
    /// written in several calls. (The part comes first: a queue name has no `:`, a job id
    /// may.)
    pub fn batch_part(&self, part: usize, queue: &str, job_id: &str) -> String {
        format!("{}:batchpart:{part}:{queue}:{job_id}", self.base)
    }

    /// The time a batch written in several calls was first ingested at (ms): its events
    /// without a time count on that day in every run, so each part holds the same writes.
    pub fn batch_time(&self, queue: &str, job_id: &str) -> String {
        format!("{}:batchtime:{queue}:{job_id}", self.base)
    }
}
