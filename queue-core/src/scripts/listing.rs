//! The reads behind a listing (see `listing.rs`): a few pipelined reads of the queue's
//! sets, lanes and job hashes rather than a script.

use std::collections::HashMap;

use redis::streams::StreamInfoGroupsReply;

use super::budget::{self, Run};
use super::empty_if_corrupt;
use crate::error::Result;
use crate::job::{stored_state, JobInfo, JobState};
use crate::keys::GROUP;
use crate::listing::ListOrder;
use crate::store::QueueStore;

/// Lane entries read per round trip while walking a lane.
const PAGE: u64 = 1_000;

pub(crate) async fn is_paused(q: &QueueStore) -> Result<bool> {
    let inner = q;
    let paused: Option<Vec<u8>> = redis::cmd("HGET")
        .arg(inner.keys.meta())
        .arg("paused")
        .query_async(&mut inner.redis.conn())
        .await
        .map_err(|e| inner.redis.err(e))?;
    Ok(paused.as_deref() == Some(b"1"))
}

pub(crate) async fn list_sorted(
    q: &QueueStore,
    state: JobState,
    offset: u64,
    limit: u64,
) -> Result<Vec<JobInfo>> {
    let inner = q;
    let keys = &inner.keys;
    let (set, newest_first) = match state {
        JobState::Completed => (keys.completed(), true),
        JobState::Failed => (keys.failed(), true),
        JobState::Cancelled => (keys.cancelled(), true),
        JobState::WaitingChildren => (keys.waiting_children(), false),
        _ => (keys.delayed(), false),
    };
    // ranks past any set's size: an empty page, never a wrapped index
    let start = isize::try_from(offset).unwrap_or(isize::MAX);
    let stop = isize::try_from(offset.saturating_add(limit - 1)).unwrap_or(isize::MAX);
    let mut conn = inner.redis.conn();
    let ids: Vec<String> = empty_if_corrupt(
        if newest_first {
            redis::cmd("ZREVRANGE")
        } else {
            redis::cmd("ZRANGE")
        }
        .arg(&set)
        .arg(start)
        .arg(stop)
        .query_async(&mut conn)
        .await,
    )
    .map_err(|e| inner.redis.err(e))?;
    let hashes = read_hashes(q, &ids).await?;
    let paused = false; // only waiting jobs show as paused
    let mut out = Vec::with_capacity(ids.len());
    for (id, h) in ids.iter().zip(hashes) {
        if let Some(info) = unreadable(q, id, state, &h) {
            out.push(info);
            continue;
        }
        // a job that moved on between the two reads is left out, not misreported
        if stored_state(&h) == Some(state.as_str()) {
            out.push(JobInfo::from_hash(&inner.name, id, h, Vec::new(), paused)?);
        }
    }
    Ok(out)
}

/// Lane entries one call skips, far before the page asked for (an offset deep in a queue
/// of millions): counted, not read as jobs.
const SKIP_PAGE: u64 = 10_000;

/// Entries not yet delivered to the consumer group, lane by lane, in `order`. Entries more
/// than a [`PAGE`] before the page asked for are skipped by their count alone, without
/// reading their jobs, so a page at offset 1,000,000 costs ~100 short reads, not a
/// million; such an offset counts the rare leftover entry (of a job that moved on) too.
pub(crate) async fn list_waiting(
    q: &QueueStore,
    order: ListOrder,
    mut skip: u64,
    limit: u64,
) -> Result<Vec<JobInfo>> {
    let inner = q;
    let keys = &inner.keys;
    let lanes = super::refresh_lanes(inner).await?;
    let paused = is_paused(q).await?;
    let mut conn = inner.redis.conn();
    let mut out = Vec::new();
    let mut lane_keys = lanes.keys(keys);
    if order == ListOrder::Newest {
        lane_keys.reverse();
    }
    for lane in lane_keys {
        let groups: StreamInfoGroupsReply = empty_if_corrupt(
            redis::cmd("XINFO")
                .arg("GROUPS")
                .arg(&lane)
                .query_async(&mut conn)
                .await,
        )
        .map_err(|e| inner.redis.err(e))?;
        let delivered = groups
            .groups
            .iter()
            .find(|g| g.name == GROUP)
            .map_or_else(|| "0-0".to_string(), |g| g.last_delivered_id.clone());
        // walking up from the last delivered entry, or down from the newest to it
        let mut cursor = match order {
            ListOrder::Run => format!("({delivered}"),
            ListOrder::Newest => "+".to_string(),
        };
        loop {
            let (command, from, to) = match order {
                ListOrder::Run => ("XRANGE", cursor.clone(), "+".to_string()),
                ListOrder::Newest => ("XREVRANGE", cursor.clone(), format!("({delivered}")),
            };
            if skip > PAGE {
                let want = (skip - PAGE).min(SKIP_PAGE);
                let ids: Vec<(String, redis::Value)> =
                    lane_range(inner, command, &lane, &from, &to, want).await?;
                let Some((last, _)) = ids.last() else { break };
                cursor = format!("({last}");
                skip -= ids.len() as u64;
                if (ids.len() as u64) < want {
                    break;
                }
                continue;
            }
            let want = skip
                .saturating_add(limit)
                .saturating_sub(out.len() as u64)
                .min(PAGE);
            if want == 0 {
                return Ok(out);
            }
            let entries: Vec<(String, Vec<String>)> =
                lane_range(inner, command, &lane, &from, &to, want).await?;
            let Some((last, _)) = entries.last() else {
                break;
            };
            cursor = format!("({last}");
            let got = entries.len() as u64;
            let (sids, ids): (Vec<String>, Vec<String>) = entries
                .into_iter()
                .filter_map(|(sid, fields)| entry_job_id(fields).map(|id| (sid, id)))
                .unzip();
            let hashes = read_hashes(q, &ids).await?;
            for ((sid, id), h) in sids.iter().zip(&ids).zip(hashes) {
                let bad = unreadable(q, id, JobState::Waiting, &h);
                // an entry the job no longer points at is a leftover, not a job
                if bad.is_none()
                    && (stored_state(&h) != Some("waiting") || h.get("sid") != Some(sid))
                {
                    continue;
                }
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                out.push(match bad {
                    Some(info) => info,
                    None => JobInfo::from_hash(&inner.name, id, h, Vec::new(), paused)?,
                });
                if out.len() as u64 == limit {
                    return Ok(out);
                }
            }
            if got < want {
                break;
            }
        }
    }
    list_grouped(q, out, skip, limit, paused).await
}

/// Up to `count` entries of `lane` from `from` to `to` by `command` (`XRANGE`, or
/// `XREVRANGE` newest first); a lane of the wrong type or gone reads as empty.
async fn lane_range<T: redis::FromRedisValue>(
    q: &QueueStore,
    command: &str,
    lane: &str,
    from: &str,
    to: &str,
    count: u64,
) -> Result<Vec<(String, T)>> {
    empty_if_corrupt(
        redis::cmd(command)
            .arg(lane)
            .arg(from)
            .arg(to)
            .arg("COUNT")
            .arg(count)
            .query_async(&mut q.redis.conn())
            .await,
    )
    .map_err(|e| q.redis.err(e))
}

/// After the lanes' waiting jobs: the jobs waiting in groups, group by group (fewest
/// waiting first), each group in the order it runs, up to `limit` in `out` in all.
async fn list_grouped(
    q: &QueueStore,
    mut out: Vec<JobInfo>,
    mut skip: u64,
    limit: u64,
    paused: bool,
) -> Result<Vec<JobInfo>> {
    let keys = &q.keys;
    let mut conn = q.redis.conn();
    let mut rank = 0u64;
    loop {
        let groups: Vec<(String, f64)> = empty_if_corrupt(
            redis::cmd("ZRANGE")
                .arg(keys.group_waiting())
                .arg(rank)
                .arg(rank + PAGE - 1)
                .arg("WITHSCORES")
                .query_async(&mut conn)
                .await,
        )
        .map_err(|e| q.redis.err(e))?;
        rank += PAGE;
        for (group, waiting) in &groups {
            let waiting = waiting.max(0.0) as u64;
            if skip >= waiting {
                skip -= waiting;
                continue;
            }
            let want = (limit - out.len() as u64).min(PAGE);
            let ids: Vec<String> = empty_if_corrupt(
                redis::cmd("ZRANGE")
                    .arg(keys.group_queue(group))
                    .arg(skip)
                    .arg(skip + want - 1)
                    .query_async(&mut conn)
                    .await,
            )
            .map_err(|e| q.redis.err(e))?;
            skip = 0;
            let hashes = read_hashes(q, &ids).await?;
            for (id, h) in ids.iter().zip(hashes) {
                if let Some(info) = unreadable(q, id, JobState::Waiting, &h) {
                    out.push(info);
                } else if stored_state(&h) != Some("waiting") || h.get("grp") != Some(group) {
                    continue;
                } else {
                    out.push(JobInfo::from_hash(&q.name, id, h, Vec::new(), paused)?);
                }
                if out.len() as u64 >= limit {
                    return Ok(out);
                }
            }
        }
        if (groups.len() as u64) < PAGE {
            return Ok(out);
        }
    }
}

/// Entries the consumer group holds pending (delivered, not yet acknowledged).
pub(crate) async fn list_active(q: &QueueStore, mut skip: u64, limit: u64) -> Result<Vec<JobInfo>> {
    let inner = q;
    let keys = &inner.keys;
    let lanes = super::refresh_lanes(inner).await?;
    let now = super::node_time::now_ms(q).await?;
    let mut conn = inner.redis.conn();
    let mut out = Vec::new();
    for lane in lanes.keys(keys) {
        let want = skip
            .saturating_add(limit)
            .saturating_sub(out.len() as u64)
            .min(i64::MAX as u64);
        // (entry id, consumer, idle ms, deliveries), oldest entry first
        let pending: Vec<(String, String, u64, u64)> = empty_if_corrupt(
            redis::cmd("XPENDING")
                .arg(&lane)
                .arg(GROUP)
                .arg("-")
                .arg("+")
                .arg(want)
                .query_async(&mut conn)
                .await,
        )
        .map_err(|e| inner.redis.err(e))?;
        if pending.is_empty() {
            continue;
        }
        let mut pipe = redis::pipe();
        for (sid, ..) in &pending {
            pipe.cmd("XRANGE").arg(&lane).arg(sid).arg(sid);
        }
        let entries: Vec<Vec<(String, Vec<String>)>> = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| inner.redis.err(e))?;
        let mut found = Vec::new();
        for ((sid, consumer, idle, _), entry) in pending.into_iter().zip(entries) {
            if let Some(id) = entry.into_iter().next().and_then(|(_, f)| entry_job_id(f)) {
                found.push((sid, id, idle, consumer));
            }
        }
        let ids: Vec<String> = found.iter().map(|(_, id, ..)| id.clone()).collect();
        let hashes = read_hashes(q, &ids).await?;
        for ((sid, id, idle, consumer), h) in found.into_iter().zip(hashes) {
            let bad = unreadable(q, &id, JobState::Active, &h);
            if bad.is_none() && h.get("sid") != Some(&sid) {
                continue;
            }
            if skip > 0 {
                skip -= 1;
                continue;
            }
            let info = match bad {
                Some(info) => info,
                None => {
                    let run = h.get("run").cloned();
                    let mut info = JobInfo::from_hash(&inner.name, &id, h, Vec::new(), false)?;
                    // the hash is written when an attempt ends: report the running one
                    info.state = JobState::Active;
                    info.attempts_made += 1;
                    info.started_at =
                        Some(running_since(run.as_deref(), info.attempts_made, now, idle));
                    info.worker = Some(consumer);
                    info
                }
            };
            out.push(info);
            if out.len() as u64 == limit {
                return Ok(out);
            }
        }
    }
    Ok(out)
}

/// The hashes of jobs `ids`, in order (empty for a job gone), read a bounded number of
/// bytes per round trip ([`budget::runs`]). A job key that is not a hash, or a hash of more
/// fields than a job has (corrupt records), reads as the one field [`UNREADABLE`], saying
/// so: the listing shows that job as corrupt ([`unreadable`]) and goes on.
pub(crate) async fn read_hashes(
    q: &QueueStore,
    ids: &[String],
) -> Result<Vec<HashMap<String, String>>> {
    let mut out = Vec::with_capacity(ids.len());
    for run in budget::runs(q, ids).await? {
        match run {
            Run::Read(at) => out.extend(read_some(q, &ids[at]).await?),
            Run::Skip(_, why) => out.push(HashMap::from([(UNREADABLE.to_string(), why)])),
        }
    }
    Ok(out)
}

/// The hashes of jobs `ids`, in order, in one round trip.
async fn read_some(q: &QueueStore, ids: &[String]) -> Result<Vec<HashMap<String, String>>> {
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for id in ids {
        pipe.hgetall(q.keys.job(id));
    }
    let raw: Vec<redis::Value> = pipe
        .query_async(&mut q.redis.conn())
        .await
        .map_err(|e| q.redis.err(e))?;
    Ok(raw
        .into_iter()
        .map(|v| {
            if let redis::Value::ServerError(e) = &v {
                let why = format!("its record cannot be read: {}", e.details().unwrap_or(""));
                return HashMap::from([(UNREADABLE.to_string(), why)]);
            }
            // bytes, not text: one job's field that is not UTF-8 must not fail the page
            let pairs: Vec<(Vec<u8>, Vec<u8>)> = redis::from_redis_value(v).unwrap_or_default();
            pairs
                .into_iter()
                .map(|(k, v)| {
                    (
                        String::from_utf8_lossy(&k).into_owned(),
                        String::from_utf8_lossy(&v).into_owned(),
                    )
                })
                .collect()
        })
        .collect())
}

/// The field [`read_hashes`] gives a job whose key is not a hash: why it cannot be read.
/// (No stored field has this name: it starts with NUL.)
pub(crate) const UNREADABLE: &str = "\0unreadable";

/// Job `id` as a listing of `state` shows it when its record cannot be read
/// ([`UNREADABLE`] in `h`), None for a readable one.
pub(crate) fn unreadable(
    q: &QueueStore,
    id: &str,
    state: JobState,
    h: &HashMap<String, String>,
) -> Option<JobInfo> {
    let why = h.get(UNREADABLE)?;
    Some(JobInfo::unreadable(&q.name, id, state, why))
}

/// The job id a lane entry carries (field `i`).
fn entry_job_id(fields: Vec<String>) -> Option<String> {
    let mut it = fields.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        if k == "i" {
            return Some(v);
        }
    }
    None
}

/// When the running attempt started: the lease renewal's record (`run` = "<attempt>:<ms>")
/// when it is of this attempt, else the entry's idle time (exact until the first renewal).
/// Mirrors what [`Queue::get_job`] reports.
pub(crate) fn running_since(run: Option<&str>, attempt: u32, now: u64, idle: u64) -> u64 {
    run.and_then(|r| r.split_once(':'))
        .filter(|(a, _)| a.parse() == Ok(attempt))
        .and_then(|(_, ms)| ms.parse().ok())
        .unwrap_or_else(|| now.saturating_sub(idle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_fields_give_the_job_id() {
        assert_eq!(
            entry_job_id(vec!["i".into(), "abc".into()]),
            Some("abc".into())
        );
        assert_eq!(entry_job_id(vec!["x".into(), "abc".into()]), None);
    }

    #[test]
    fn running_since_prefers_the_record_of_this_attempt() {
        assert_eq!(running_since(Some("2:500"), 2, 1_000, 100), 500);
        assert_eq!(running_since(Some("1:500"), 2, 1_000, 100), 900);
        assert_eq!(running_since(None, 1, 1_000, 5_000), 0);
    }
}
