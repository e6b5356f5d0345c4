//! Steering a queue: per-job retry, promote, remove, priority and data changes, and the bulk
//! operations (retry all failed, promote all delayed, clean, drain, obliterate).
//!
//! Every bulk operation runs as a loop of bounded script calls ([`BATCH`] jobs each), so a
//! queue of any size never blocks Redis for long.

use std::time::Duration;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::job::JobState;
use crate::keys::{queue_registry, GROUP};
use crate::queue::Queue;
use crate::scan::scan_unlink;
use crate::scripts::{self, Reply, EVENTS_MAXLEN};

/// Jobs handled per script call by the bulk operations.
pub const BATCH: usize = 500;

#[derive(Clone, Copy, PartialEq)]
enum Move {
    Retry,
    Promote,
}

impl Queue {
    /// Moves a failed job back to waiting, with its attempts and error cleared.
    pub async fn retry_job(&self, id: &str) -> Result<()> {
        self.move_one(Move::Retry, id).await
    }

    /// Retries every failed job (in batches); returns how many were moved.
    pub async fn retry_all_failed(&self) -> Result<u64> {
        self.move_all(Move::Retry).await
    }

    /// Starts a delayed job now (moves it to waiting).
    pub async fn promote_job(&self, id: &str) -> Result<()> {
        self.move_one(Move::Promote, id).await
    }

    /// Promotes every delayed job (in batches); returns how many were moved.
    pub async fn promote_all_delayed(&self) -> Result<u64> {
        self.move_all(Move::Promote).await
    }

    async fn move_one(&self, mode: Move, id: &str) -> Result<()> {
        let (moved, skipped) = self.move_jobs(mode, &[id]).await?;
        if moved == 1 {
            return Ok(());
        }
        debug_assert_eq!(skipped.len(), 1);
        let job = self.job(id).await?;
        Err(Error::JobState {
            queue: self.name().to_string(),
            id: id.to_string(),
            action: if mode == Move::Retry {
                "retry"
            } else {
                "promote"
            },
            state: job.state.to_string(),
        })
    }

    async fn move_all(&self, mode: Move) -> Result<u64> {
        let mut total = 0;
        loop {
            let (moved, skipped) = self.move_jobs(mode, &[]).await?;
            total += moved;
            // a batch that moved nothing and skipped nothing means the source set is empty;
            // one that only skipped (ids in the set whose jobs say otherwise) cannot progress
            if moved == 0 {
                if !skipped.is_empty() {
                    tracing::warn!(queue = %self.name(), ids = ?skipped, "jobs listed in the wrong set were left alone");
                }
                return Ok(total);
            }
        }
    }

    async fn move_jobs(&self, mode: Move, ids: &[&str]) -> Result<(u64, Vec<String>)> {
        let keys = &self.inner.keys;
        let (v, _) = self
            .invoke_with_lanes(&scripts::MOVE_JOBS, "moving jobs", |inv, lanes| {
                inv.key(keys.meta())
                    .key(keys.lanes())
                    .key(match mode {
                        Move::Retry => keys.failed(),
                        Move::Promote => keys.delayed(),
                    })
                    .key(keys.marker())
                    .key(keys.events());
                for k in lanes.keys(keys) {
                    inv.key(k);
                }
                inv.arg(match mode {
                    Move::Retry => "retry",
                    Move::Promote => "promote",
                })
                .arg(GROUP)
                .arg(EVENTS_MAXLEN)
                .arg(keys.job_prefix())
                .arg(&lanes.version)
                .arg(BATCH)
                .arg(lanes.prios.len());
                for p in &lanes.prios {
                    inv.arg(*p);
                }
                for id in ids {
                    inv.arg(*id);
                }
            })
            .await?;
        let mut r = Reply::new(&v)?;
        let _ok = r.string()?;
        let moved = r.int()? as u64;
        let mut skipped = Vec::new();
        while r.remaining() > 0 {
            skipped.push(r.string()?);
        }
        Ok((moved, skipped))
    }

    /// Deletes a job that is not running (waiting, delayed, completed or failed) and its
    /// logs. An active job is refused: remove it once it has finished.
    pub async fn remove_job(&self, id: &str) -> Result<()> {
        let keys = &self.inner.keys;
        let (v, _) = self
            .invoke_with_lanes(&scripts::REMOVE_JOBS, "removing a job", |inv, lanes| {
                inv.key(keys.meta())
                    .key(keys.delayed())
                    .key(keys.completed())
                    .key(keys.failed())
                    .key(keys.events());
                for k in lanes.keys(keys) {
                    inv.key(k);
                }
                inv.arg(GROUP)
                    .arg(EVENTS_MAXLEN)
                    .arg(keys.job_prefix())
                    .arg(&lanes.version)
                    .arg(lanes.prios.len());
                for p in &lanes.prios {
                    inv.arg(*p);
                }
                inv.arg(id);
            })
            .await?;
        let mut r = Reply::new(&v)?;
        let _ok = r.string()?;
        if r.int()? == 1 {
            return Ok(());
        }
        let _id = r.string()?;
        match r.string()?.as_str() {
            "active" => Err(Error::JobState {
                queue: self.name().to_string(),
                id: id.to_string(),
                action: "remove",
                state: "active (remove it once it has finished)".into(),
            }),
            _ => Err(Error::JobNotFound {
                queue: self.name().to_string(),
                id: id.to_string(),
            }),
        }
    }

    /// Replaces a job's data (a running attempt keeps the data it started with).
    pub async fn update_data<T: Serialize + ?Sized>(&self, id: &str, data: &T) -> Result<()> {
        let json = serde_json::to_string(data)?;
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
        let inner = &self.inner;
        let keys = &inner.keys;
        let current = self.job(id).await?;
        let mut conn = inner.redis.conn();
        let outcome: String = scripts::UPDATE_JOB
            .key(keys.job(id))
            .key(keys.meta())
            .key(keys.lanes())
            .key(keys.events())
            .key(keys.lane(current.priority))
            .key(keys.lane(new_prio))
            .arg(id)
            .arg(what)
            .arg(value)
            .arg(GROUP)
            .arg(EVENTS_MAXLEN)
            .arg(fields)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| inner.redis.err(e))?;
        match outcome.as_str() {
            "ok" => Ok(()),
            "missing" => Err(Error::JobNotFound {
                queue: self.name().to_string(),
                id: id.to_string(),
            }),
            state => Err(Error::JobState {
                queue: self.name().to_string(),
                id: id.to_string(),
                action: "change the priority of",
                state: state.to_string(),
            }),
        }
    }

    /// Deletes finished jobs (`state` completed or failed) that finished more than
    /// `older_than` ago, oldest first, at most `limit` (all when `None`). Returns how many.
    pub async fn clean(
        &self,
        state: JobState,
        older_than: Duration,
        limit: Option<u64>,
    ) -> Result<u64> {
        let keys = &self.inner.keys;
        let set = match state {
            JobState::Completed => keys.completed(),
            JobState::Failed => keys.failed(),
            other => {
                return Err(Error::invalid(
                    "state",
                    format!("{other}: clean takes completed or failed"),
                ))
            }
        };
        let mut conn = self.inner.redis.conn();
        let (secs, micros): (i64, i64) = redis::cmd("TIME")
            .query_async(&mut conn)
            .await
            .map_err(|e| self.inner.redis.err(e))?;
        let now_ms = secs * 1000 + micros / 1000;
        let before = now_ms - older_than.as_millis() as i64;
        let mut total = 0u64;
        loop {
            let want = limit.map_or(BATCH as u64, |l| (l - total).min(BATCH as u64));
            if want == 0 {
                return Ok(total);
            }
            let n: u64 = scripts::CLEAN
                .key(&set)
                .key(keys.events())
                .arg(before)
                .arg(want)
                .arg(keys.job_prefix())
                .arg(EVENTS_MAXLEN)
                .invoke_async(&mut conn)
                .await
                .map_err(|e| self.inner.redis.err(e))?;
            total += n;
            if n < want {
                return Ok(total);
            }
        }
    }

    /// Deletes every job that has not started (waiting and delayed), in batches. Running
    /// jobs are left alone. Returns how many were deleted.
    pub async fn drain(&self) -> Result<u64> {
        let inner = &self.inner;
        let keys = &inner.keys;
        let lanes = inner.lanes.refresh(&inner.redis, keys).await?;
        let mut total = 0u64;
        loop {
            let mut inv = scripts::DRAIN.prepare_invoke();
            inv.key(keys.meta()).key(keys.delayed()).key(keys.events());
            for k in lanes.keys(keys) {
                inv.key(k);
            }
            inv.arg(GROUP)
                .arg(BATCH)
                .arg(keys.job_prefix())
                .arg(EVENTS_MAXLEN);
            let n: u64 = inv
                .invoke_async(&mut inner.redis.conn())
                .await
                .map_err(|e| inner.redis.err(e))?;
            total += n;
            if n == 0 {
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
        // stop workers from starting anything while the keys go
        self.pause().await?;
        let pattern = format!("{}:*", inner.keys.base());
        let deleted = scan_unlink(&inner.redis, &pattern).await?;
        let mut conn = inner.redis.conn();
        let _: i64 = redis::cmd("SREM")
            .arg(queue_registry(&inner.prefix))
            .arg(self.name())
            .query_async(&mut conn)
            .await
            .map_err(|e| inner.redis.err(e))?;
        inner.lanes.refresh(&inner.redis, &inner.keys).await?;
        Ok(deleted)
    }
}
