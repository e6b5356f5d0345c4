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
/// for both, so the CLI and the dashboard always agree. Serialized with its counts `null`
/// when its records could not be read (`error`): unknown, never a zero a script would
/// take for a count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueStats {
    /// Queue name.
    pub queue: String,
    /// Jobs not started yet, whether or not the queue is paused.
    #[cfg_attr(feature = "openapi", schema(nullable))]
    pub waiting: u64,
    /// Flow parents waiting for their children to finish.
    #[cfg_attr(feature = "openapi", schema(nullable))]
    pub waiting_children: u64,
    /// Jobs workers hold now.
    #[cfg_attr(feature = "openapi", schema(nullable))]
    pub active: u64,
    /// Jobs due later (delays and retries).
    #[cfg_attr(feature = "openapi", schema(nullable))]
    pub delayed: u64,
    /// Completed jobs kept by retention.
    #[cfg_attr(feature = "openapi", schema(nullable))]
    pub completed: u64,
    /// Failed jobs kept by retention.
    #[cfg_attr(feature = "openapi", schema(nullable))]
    pub failed: u64,
    /// Cancelled jobs kept by retention.
    #[cfg_attr(feature = "openapi", schema(nullable))]
    pub cancelled: u64,
    /// Whether the queue is paused.
    #[cfg_attr(feature = "openapi", schema(nullable))]
    pub paused: bool,
    /// Jobs ever completed.
    #[cfg_attr(feature = "openapi", schema(nullable))]
    pub completed_total: u64,
    /// Jobs ever failed for good.
    #[cfg_attr(feature = "openapi", schema(nullable))]
    pub failed_total: u64,
    /// Set when this queue's records could not be read (a corrupt record: a key of the
    /// wrong type, say): why, and the counts are zeros (serialized as `null`). The other
    /// queues are read as usual.
    pub error: Option<String>,
}

impl Serialize for QueueStats {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let known = self.error.is_none();
        let count = |n: u64| known.then_some(n);
        let mut o = s.serialize_struct("QueueStats", 12)?;
        o.serialize_field("queue", &self.queue)?;
        o.serialize_field("waiting", &count(self.waiting))?;
        o.serialize_field("waiting_children", &count(self.waiting_children))?;
        o.serialize_field("active", &count(self.active))?;
        o.serialize_field("delayed", &count(self.delayed))?;
        o.serialize_field("completed", &count(self.completed))?;
        o.serialize_field("failed", &count(self.failed))?;
        o.serialize_field("cancelled", &count(self.cancelled))?;
        o.serialize_field("paused", &known.then_some(self.paused))?;
        o.serialize_field("completed_total", &count(self.completed_total))?;
        o.serialize_field("failed_total", &count(self.failed_total))?;
        match &self.error {
            Some(e) => o.serialize_field("error", e)?,
            None => o.skip_field("error")?,
        }
        o.end()
    }
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

    /// How many jobs a listing of `state` holds: as [`QueueStats::of`], but a queue that is
    /// not paused has no paused jobs (its waiting jobs are listed as waiting only).
    pub fn listed_in(&self, state: crate::job::JobState) -> u64 {
        match state {
            crate::job::JobState::Paused if !self.paused => 0,
            _ => self.of(state),
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
