//! Steering a queue: per-job retry, promote, remove, priority and data changes, and the bulk
//! operations (retry all failed, promote all delayed, clean, drain, obliterate).
//!
//! Every bulk operation runs as a loop of bounded script calls ([`BATCH`] jobs each), so a
//! queue of any size never blocks Redis for long.

use std::time::Duration;

use serde::Serialize;

use crate::duration::{check_ms, MAX_DURATION_MS};
use crate::error::{Error, Result};
use crate::job::JobState;
use crate::queue::Queue;
use crate::scripts::clean::Finished;
use crate::scripts::move_jobs::{move_jobs, Move, Pick};
use crate::scripts::{self};

pub use crate::scripts::BATCH;

impl Queue {
    /// Moves a failed or cancelled job back to waiting, with its attempts and error cleared.
    pub async fn retry_job(&self, id: &str) -> Result<()> {
        match self.move_one(Move::Retry, id).await {
            Err(Error::JobState { state, .. }) if state == JobState::Cancelled.as_str() => {
                self.move_one(Move::Revive, id).await
            }
            r => r,
        }
    }

    /// Retries every job that was failed when the call started (in batches); returns how
    /// many were moved. A job that fails again while the call runs is not retried again.
    pub async fn retry_all_failed(&self) -> Result<u64> {
        // the failed set is scored by finish time, so a bound taken now is an exact snapshot
        let bound = self.snapshot_bound().await?;
        let mut total = 0;
        let mut offset = 0;
        loop {
            let (moved, skipped) =
                move_jobs(&self.inner, Move::Retry, Pick::Upto { bound, offset }, &[]).await?;
            total += moved;
            if !skipped.is_empty() {
                tracing::warn!(queue = %self.name(), ids = ?skipped, "jobs listed in the failed set but not failed were left alone");
            }
            // skipped members stay in the set, in front of those not looked at yet
            offset += skipped.len();
            if moved as usize + skipped.len() < BATCH {
                return Ok(total);
            }
        }
    }

    /// Starts a delayed job now (moves it to waiting).
    pub async fn promote_job(&self, id: &str) -> Result<()> {
        self.move_one(Move::Promote, id).await
    }

    /// Promotes every job that was delayed when the call started (in batches); returns how
    /// many were moved. A job delayed again while the call runs (a retry) is not promoted
    /// again.
    pub async fn promote_all_delayed(&self) -> Result<u64> {
        // the delayed set is scored by due time, which says nothing of when a job entered it
        // (a retried job may be due before the others): act on a snapshot of its members
        let ids = scripts::snapshot::delayed(&self.inner).await?;
        let mut total = 0;
        for chunk in ids.chunks(BATCH) {
            let (moved, _gone) = move_jobs(&self.inner, Move::Promote, Pick::Ids, chunk).await?;
            total += moved;
        }
        Ok(total)
    }

    /// A time bound (ms, by the Redis clock) for the sets scored by finish time: every member
    /// scored at most the bound finished before this returns, and every job finishing after it
    /// returns scores above it, whether its script rounds the time down or up.
    async fn snapshot_bound(&self) -> Result<i64> {
        let bound = (self.redis_time_us().await? + 999).div_euclid(1000);
        // a finish later in the bound's millisecond, or the next one, could still score it
        while self.redis_time_us().await? < (bound + 1) * 1000 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(bound)
    }

    /// The Redis clock in microseconds, read on the node holding the queue.
    async fn redis_time_us(&self) -> Result<i64> {
        scripts::node_time::node_time_us(&self.inner).await
    }

    async fn move_one(&self, mode: Move, id: &str) -> Result<()> {
        let (moved, skipped) = move_jobs(&self.inner, mode, Pick::Ids, &[id.to_string()]).await?;
        if moved == 1 {
            return Ok(());
        }
        debug_assert_eq!(skipped.len(), 1);
        let job = self.job(id).await?;
        let state = match &job.corrupt {
            Some(why) if job.name.is_empty() => crate::scripts::cancel::corrupt_state(why),
            _ => job.state.to_string(),
        };
        Err(Error::JobState {
            queue: self.name().to_string(),
            id: id.to_string(),
            action: match mode {
                Move::Retry | Move::Revive => "retry",
                Move::Promote => "promote",
            },
            state,
        })
    }

    /// Deletes a job that is not running (waiting, delayed, completed or failed) and its
    /// logs. An active job is refused: remove it once it has finished.
    ///
    /// A flow child removed before it finished counts as finished for its parent (as
    /// removed); a flow parent's removal leaves its children to run.
    pub async fn remove_job(&self, id: &str) -> Result<()> {
        scripts::remove_jobs::remove_job(&self.inner, id).await?;
        self.deliver_flow_outcomes().await;
        Ok(())
    }

    /// Delivers what removals wrote to the queue's flow outbox (for the parents of removed
    /// children) now, rather than at the next pass of a worker of the queue, which delivers
    /// it if this fails.
    pub(crate) async fn deliver_flow_outcomes(&self) {
        self.deliver_flow_outcomes_of(&self.inner.name).await;
    }

    /// [`Queue::deliver_flow_outcomes`] for the outbox of queue `queue` (under this one's
    /// prefix).
    pub(crate) async fn deliver_flow_outcomes_of(&self, queue: &str) {
        let q = &self.inner;
        if let Err(e) = crate::flow::deliver::pump(&q.redis, &q.prefix, queue).await {
            tracing::debug!(queue = %queue, error = %e, "flow outcomes left to the workers");
        }
    }

    /// Replaces a job's data (a running attempt keeps the data it started with).
    /// Data over the size cap is refused (`Error::TooLarge`), as on add: stored, it would
    /// fail the job at its next claim.
    pub async fn update_data<T: Serialize + ?Sized>(&self, id: &str, data: &T) -> Result<()> {
        let json = serde_json::to_string(data)?;
        self.inner.redis.caps().check_data(json.len())?;
        let mut fields = Vec::new();
        crate::job::push_long(&mut fields, "data", &json);
        self.update_job(id, "data", "", 0, &fields).await
    }

    /// Changes the priority of a waiting or delayed job; a waiting job moves to the back of
    /// its new lane.
    pub async fn change_priority(&self, id: &str, priority: i32) -> Result<()> {
        crate::job::JobOptions::new()
            .priority(priority)
            .validate()?;
        self.update_job(id, "priority", &priority.to_string(), priority, &[])
            .await
    }

    /// Runs `update_job`: `value` is the new priority; a data change passes the hash's
    /// new `data` field/value pairs as `fields`.
    async fn update_job(
        &self,
        id: &str,
        what: &str,
        value: &str,
        new_prio: i32,
        fields: &[std::borrow::Cow<'_, str>],
    ) -> Result<()> {
        let current = match (self.job(id).await, crate::job::lean_place(id)) {
            (Ok(job), _) => job.priority,
            // a lean job without a record is read by the script itself, from the entry its
            // id names (it says whether the job is still there)
            (Err(Error::JobNotFound { .. }), Some((prio, _))) => prio,
            (Err(e), _) => return Err(e),
        };
        scripts::update_job::update_job(&self.inner, id, what, value, current, new_prio, fields)
            .await
    }

    /// Deletes finished jobs (`state` completed, failed or cancelled) that had finished more
    /// than `older_than` ago when the call started, oldest first, at most `limit` (all when
    /// `None`). A job finishing while the call runs stays. `older_than` is at most
    /// [`MAX_DURATION`](crate::duration::MAX_DURATION). Returns how many were deleted.
    pub async fn clean(
        &self,
        state: JobState,
        older_than: Duration,
        limit: Option<u64>,
    ) -> Result<u64> {
        let finished = match state {
            JobState::Completed => Finished::Completed,
            JobState::Failed => Finished::Failed,
            JobState::Cancelled => Finished::Cancelled,
            other => {
                return Err(Error::invalid(
                    "state",
                    format!("{other}: clean takes completed, failed or cancelled"),
                ))
            }
        };
        // an age past the range must never wrap into a cutoff in the future ("everything")
        let too_long = || {
            Error::invalid(
                "older_than",
                format!(
                    "{}ms: at most {MAX_DURATION_MS}ms (3650d)",
                    older_than.as_millis()
                ),
            )
        };
        let older_ms = u64::try_from(older_than.as_millis()).map_err(|_| too_long())?;
        let older_ms = i64::try_from(check_ms("older_than", older_ms)?).map_err(|_| too_long())?;
        let cutoff = self
            .snapshot_bound()
            .await?
            .checked_sub(older_ms)
            .ok_or_else(too_long)?;
        let mut total = 0u64;
        loop {
            let want = limit.map_or(BATCH as u64, |l| (l - total).min(BATCH as u64));
            if want == 0 {
                return Ok(total);
            }
            let n = scripts::clean::clean(&self.inner, finished, cutoff, want).await?;
            total += n;
            if n < want {
                return Ok(total);
            }
        }
    }

    /// Deletes every job that had not started (waiting, in a lane or a group, and delayed)
    /// when the call started,
    /// in batches; jobs added meanwhile stay, and running jobs are left alone. Returns how
    /// many were deleted.
    pub async fn drain(&self) -> Result<u64> {
        let (lanes, lane_keys, bounds) = scripts::snapshot::lane_bounds(&self.inner).await?;
        let mut delayed = scripts::snapshot::delayed(&self.inner).await?;
        delayed.extend(scripts::snapshot::grouped(&self.inner).await?);
        let drain = |ids| scripts::drain::drain(&self.inner, &lanes, &lane_keys, &bounds, ids);
        let mut total = 0u64;
        for chunk in delayed.chunks(BATCH) {
            total += drain(chunk).await?;
        }
        loop {
            let n = drain(&[]).await?;
            total += n;
            if n == 0 {
                self.deliver_flow_outcomes().await;
                return Ok(total);
            }
        }
    }

    /// Deletes the queue entirely: every job, its lanes, sets, events, metrics, schedules and
    /// settings, and its name from the registry. Refused while jobs are active unless
    /// `force` (their workers' outcomes are then dropped). Returns how many keys were deleted.
    pub async fn obliterate(&self, force: bool) -> Result<u64> {
        let inner = &self.inner;
        let counts = self.counts().await?;
        if counts.active > 0 && !force {
            return Err(Error::Refused(format!(
                "queue {:?} has {} active job(s): wait for them, or force the obliteration",
                self.name(),
                counts.active
            )));
        }
        // stop workers from starting anything while the keys go (a queue without its meta
        // and lanes has nothing to stop, and a pause would make the keys it then counts as
        // deleted)
        if scripts::obliterate::has_meta_or_lanes(inner).await? {
            self.pause().await?;
        }
        let deleted = scripts::obliterate::delete_all(inner).await?;
        Ok(deleted)
    }
}
