//! How many jobs a queue holds in each state: [`Counts`] as read, [`QueueStats`] as shown.

use serde::{Deserialize, Serialize};

/// How many jobs a queue holds in each state, plus monotonic totals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Queue name.
    pub queue: String,
    /// Ready to run (0 while paused: they count as `paused_jobs`).
    pub waiting: u64,
    /// Flow parents waiting for their children.
    #[serde(default)]
    pub waiting_children: u64,
    /// Held by workers.
    pub active: u64,
    /// Due later (delays and retries).
    pub delayed: u64,
    /// Completed jobs still kept by retention.
    pub completed: u64,
    /// Failed jobs still kept by retention.
    pub failed: u64,
    /// Cancelled jobs still kept by retention.
    #[serde(default)]
    pub cancelled: u64,
    /// Waiting jobs of a paused queue.
    pub paused_jobs: u64,
    /// Whether the queue is paused.
    pub paused: bool,
    /// Jobs ever completed (not reduced by retention).
    pub completed_total: u64,
    /// Jobs ever failed for good (not reduced by retention).
    pub failed_total: u64,
}

/// One queue's line of `jobq stats`, also what the dashboard's `/api/queues`
/// returns: [`Counts`] with the waiting jobs of a paused queue counted as waiting. One type
/// for both, so the CLI and the dashboard always agree.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueStats {
    /// Queue name.
    pub queue: String,
    /// Jobs not started yet, whether or not the queue is paused.
    pub waiting: u64,
    /// Flow parents waiting for their children to finish.
    pub waiting_children: u64,
    /// Jobs workers hold now.
    pub active: u64,
    /// Jobs due later (delays and retries).
    pub delayed: u64,
    /// Completed jobs kept by retention.
    pub completed: u64,
    /// Failed jobs kept by retention.
    pub failed: u64,
    /// Cancelled jobs kept by retention.
    pub cancelled: u64,
    /// Whether the queue is paused.
    pub paused: bool,
    /// Jobs ever completed.
    pub completed_total: u64,
    /// Jobs ever failed for good.
    pub failed_total: u64,
    /// Set when this queue's records could not be read (a corrupt record: a key of the
    /// wrong type, say): why, and the counts are zeros. The other queues are read as usual.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl From<Counts> for QueueStats {
    fn from(c: Counts) -> Self {
        QueueStats {
            queue: c.queue,
            waiting: c.waiting + c.paused_jobs,
            waiting_children: c.waiting_children,
            active: c.active,
            delayed: c.delayed,
            completed: c.completed,
            failed: c.failed,
            cancelled: c.cancelled,
            paused: c.paused,
            completed_total: c.completed_total,
            failed_total: c.failed_total,
            error: None,
        }
    }
}

impl QueueStats {
    /// The row of queue `queue` whose records could not be read, saying why.
    pub fn unreadable(queue: &str, error: String) -> Self {
        QueueStats {
            queue: queue.to_string(),
            error: Some(error),
            ..QueueStats::default()
        }
    }

    /// How many jobs are in `state` (waiting and paused both read `waiting`).
    pub fn of(&self, state: crate::job::JobState) -> u64 {
        use crate::job::JobState as S;
        match state {
            S::Waiting | S::Paused => self.waiting,
            S::WaitingChildren => self.waiting_children,
            S::Active => self.active,
            S::Delayed => self.delayed,
            S::Completed => self.completed,
            S::Failed => self.failed,
            S::Cancelled => self.cancelled,
        }
    }
}
