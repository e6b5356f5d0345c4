//! Steering a queue: per-job retry, promote, remove, priority and data changes, and the bulk
//! operations (retry all failed, promote all delayed, clean, drain, obliterate).
//!
//! Every bulk operation runs as a loop of bounded script calls ([`BATCH`] jobs each), so a
//! queue of any size never blocks Redis for long.

use std::collections::HashSet;
use std::sync::LazyLock;
use std::time::Duration;

use serde::Serialize;

use redis::streams::StreamRangeReply;
use redis::Script;

use crate::duration::{check_ms, MAX_DURATION_MS};
use crate::error::{Error, Result};
use crate::job::JobState;
use crate::keys::{queue_registry, GROUP};
use crate::queue::Queue;
use crate::scan::scan_unlink;
use crate::scripts::{self, Reply, EVENTS_MAXLEN};

/// Jobs handled per script call by the bulk operations: 200, so even a call that deletes
/// jobs at the 1 MiB data cap (with results as large) stays well under 50 ms.
pub const BATCH: usize = 200;

#[derive(Clone, Copy, PartialEq)]
enum Move {
    Retry,
    Promote,
}

/// Which jobs one `move_jobs` call looks at.
#[derive(Clone, Copy)]
enum Pick {
    /// The ids given.
    Ids,
    /// Up to [`BATCH`] members of the source set scored at most `bound`, after the first
    /// `offset` of them.
    Upto { bound: i64, offset: usize },
}

impl Queue {
    /// Moves a failed job back to waiting, with its attempts and error cleared.
    pub async fn retry_job(&self, id: &str) -> Result<()> {
        self.move_one(Move::Retry, id).await
    }

    /// Retries every job that was failed when the call started (in batches); returns how
    /// many were moved. A job that fails again while the call runs is not retried again.
    pub async fn retry_all_failed(&self) -> Result<u64> {
        // the failed set is scored by finish time, so a bound taken now is an exact snapshot
        let bound = self.snapshot_bound().await?;
        let mut total = 0;
        let mut offset = 0;
        loop {
            let (moved, skipped) = self
                .move_jobs(Move::Retry, Pick::Upto { bound, offset }, &[])
                .await?;
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
        let ids = self.snapshot_members(&self.inner.keys.delayed()).await?;
        let mut total = 0;
        for chunk in ids.chunks(BATCH) {
            let (moved, _gone) = self.move_jobs(Move::Promote, Pick::Ids, chunk).await?;
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

    /// The Redis clock in microseconds, read on the node holding the queue (on a cluster,
    /// a bare TIME would go to any node, whose clock may differ from the scripts').
    async fn redis_time_us(&self) -> Result<i64> {
        static NODE_TIME: LazyLock<Script> =
            LazyLock::new(|| Script::new("return redis.call('TIME')"));
        let (secs, micros): (i64, i64) = NODE_TIME
            .key(self.inner.keys.meta())
            .invoke_async(&mut self.inner.redis.conn())
            .await
            .map_err(|e| self.inner.redis.err(e))?;
        Ok(secs * 1_000_000 + micros)
    }

    /// The members of sorted set `key`, read in bounded ZSCAN pages, each once, ordered by
    /// score. ZSCAN returns every member present for the whole scan whatever else changes
    /// meanwhile; rank pages (ZRANGE) would skip members when others leave the set between
    /// two pages, as delayed jobs do when workers promote them.
    async fn snapshot_members(&self, key: &str) -> Result<Vec<String>> {
        let mut conn = self.inner.redis.conn();
        let mut seen = HashSet::new();
        let mut members: Vec<(f64, String)> = Vec::new();
        let mut cursor = "0".to_string();
        loop {
            let (next, page): (String, Vec<(String, f64)>) = redis::cmd("ZSCAN")
                .arg(key)
                .arg(&cursor)
                .arg("COUNT")
                .arg(BATCH)
                .query_async(&mut conn)
                .await
                .map_err(|e| self.inner.redis.err(e))?;
            for (member, score) in page {
                if seen.insert(member.clone()) {
                    members.push((score, member));
                }
            }
            if next == "0" {
                break;
            }
            cursor = next;
        }
        members.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        Ok(members.into_iter().map(|(_, m)| m).collect())
    }

    async fn move_one(&self, mode: Move, id: &str) -> Result<()> {
        let (moved, skipped) = self.move_jobs(mode, Pick::Ids, &[id.to_string()]).await?;
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

    /// One `move_jobs` call: the given ids, or (`Pick::Upto`) the next batch of the source set.
    async fn move_jobs(
        &self,
        mode: Move,
        pick: Pick,
        ids: &[String],
    ) -> Result<(u64, Vec<String>)> {
        let (bound, offset) = match pick {
            // (no id would make the script pick from the set)
            Pick::Ids if ids.is_empty() => return Ok((0, Vec::new())),
            Pick::Ids => (0, 0),
            Pick::Upto { bound, offset } => (bound, offset),
        };
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
                .arg(bound)
                .arg(offset)
                .arg(lanes.prios.len());
                for p in &lanes.prios {
                    inv.arg(*p);
                }
                for id in ids {
                    inv.arg(id);
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
            .key(keys.front_lane())
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

    /// Deletes finished jobs (`state` completed or failed) that had finished more than
    /// `older_than` ago when the call started, oldest first, at most `limit` (all when
    /// `None`). A job finishing while the call runs stays. `older_than` is at most
    /// [`MAX_DURATION`](crate::duration::MAX_DURATION). Returns how many were deleted.
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
        let mut conn = self.inner.redis.conn();
        let mut total = 0u64;
        loop {
            let want = limit.map_or(BATCH as u64, |l| (l - total).min(BATCH as u64));
            if want == 0 {
                return Ok(total);
            }
            let n: u64 = scripts::CLEAN
                .key(&set)
                .key(keys.events())
                .arg(cutoff)
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

    /// Deletes every job that had not started (waiting and delayed) when the call started,
    /// in batches; jobs added meanwhile stay, and running jobs are left alone. Returns how
    /// many were deleted.
    pub async fn drain(&self) -> Result<u64> {
        let inner = &self.inner;
        let keys = &inner.keys;
        let lanes = inner.lanes.refresh(&inner.redis, keys).await?;
        let lane_keys = lanes.keys(keys);
        // each lane's last entry id now: an entry added later has a greater one
        let mut pipe = redis::pipe();
        pipe.atomic();
        for k in &lane_keys {
            pipe.cmd("XREVRANGE")
                .arg(k)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1);
        }
        let last: Vec<StreamRangeReply> = if lane_keys.is_empty() {
            Vec::new()
        } else {
            pipe.query_async(&mut inner.redis.conn())
                .await
                .map_err(|e| inner.redis.err(e))?
        };
        let bounds: Vec<String> = last
            .iter()
            .map(|r| r.ids.first().map_or_else(|| "0-0".into(), |e| e.id.clone()))
            .collect();
        let delayed = self.snapshot_members(&keys.delayed()).await?;
        let call = |ids: &[String]| {
            let mut inv = scripts::DRAIN.prepare_invoke();
            inv.key(keys.meta()).key(keys.delayed()).key(keys.events());
            for k in &lane_keys {
                inv.key(k);
            }
            inv.arg(GROUP)
                .arg(BATCH)
                .arg(keys.job_prefix())
                .arg(EVENTS_MAXLEN)
                .arg(lanes.prios.len());
            for p in &lanes.prios {
                inv.arg(*p);
            }
            for b in &bounds {
                inv.arg(b);
            }
            for id in ids {
                inv.arg(id);
            }
            async move {
                inv.invoke_async::<u64>(&mut inner.redis.conn())
                    .await
                    .map_err(|e| inner.redis.err(e))
            }
        };
        let mut total = 0u64;
        for chunk in delayed.chunks(BATCH) {
            total += call(chunk).await?;
        }
        loop {
            let n = call(&[]).await?;
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
