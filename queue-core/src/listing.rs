//! Listing the jobs of a queue in one state, a page at a time (`jobq list`, the dashboard's
//! queue page).
//!
//! A listing is a read, not a state change, so it is a few pipelined reads rather than a
//! script: a job that moves while it is listed may be missing from the page or show its
//! new state, and is never reported in a state its hash contradicts. Logs are not read for
//! a listing (they can be long); [`Queue::get_job`] has them.

use crate::error::{Error, Result};
use crate::job::{JobInfo, JobState};
use crate::queue::Queue;
use crate::scripts;

/// Most jobs one listing returns.
pub const MAX_LIST_LIMIT: u64 = 10_000;

/// The order of waiting (and paused) jobs in a listing; other states have one order each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ListOrder {
    /// The order workers will take them: highest priority lane first, oldest first within
    /// a lane (`jobq list`).
    #[default]
    Run,
    /// The reverse: newest first within a lane, lowest priority lane first (the
    /// dashboard), so a job just added is on the first page.
    Newest,
}

impl Queue {
    /// Up to `limit` jobs in `state`, skipping the first `offset`:
    ///
    /// - `completed`, `failed`, `cancelled`: newest first (by finish time);
    /// - `delayed`: the next due first;
    /// - `waiting_children`: flow parents waiting for their children;
    /// - `waiting`: the order workers will take them — highest priority lane first, FIFO
    ///   within a lane; empty while the queue is paused;
    /// - `paused`: the waiting jobs of a paused queue, in the same order; empty otherwise;
    /// - `active`: the jobs workers hold, highest priority lane first, longest running first.
    ///
    /// `limit` is at most [`MAX_LIST_LIMIT`]. The jobs come without their logs.
    pub async fn list_jobs(
        &self,
        state: JobState,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<JobInfo>> {
        self.list_jobs_in(state, ListOrder::Run, offset, limit)
            .await
    }

    /// [`Queue::list_jobs`] with waiting and paused jobs in `order`.
    pub async fn list_jobs_in(
        &self,
        state: JobState,
        order: ListOrder,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<JobInfo>> {
        if limit > MAX_LIST_LIMIT {
            return Err(Error::invalid(
                "limit",
                format!("{limit}: list at most {MAX_LIST_LIMIT} jobs at a time"),
            ));
        }
        if limit == 0 {
            return Ok(Vec::new());
        }
        match state {
            JobState::Completed
            | JobState::Failed
            | JobState::Cancelled
            | JobState::Delayed
            | JobState::WaitingChildren => {
                scripts::listing::list_sorted(&self.inner, state, offset, limit).await
            }
            JobState::Waiting | JobState::Paused => {
                if scripts::listing::is_paused(&self.inner).await? != (state == JobState::Paused) {
                    return Ok(Vec::new());
                }
                scripts::listing::list_waiting(&self.inner, order, offset, limit).await
            }
            JobState::Active => scripts::listing::list_active(&self.inner, offset, limit).await,
        }
    }
}
