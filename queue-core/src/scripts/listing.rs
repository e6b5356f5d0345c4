//! The reads behind a listing (see `listing.rs`): a few pipelined reads of the queue's
//! sets, lanes and job hashes rather than a script.

use std::collections::HashMap;

use redis::streams::StreamInfoGroupsReply;

use super::budget::{self, Run, READ_BUDGET};
use super::{empty_if_corrupt, piped};
use crate::error::Result;
use crate::job::{
    entry_time, lean_id, lean_place, stored_state, JobInfo, JobState, LEAN_MAX_BYTES,
    MAX_NAME_BYTES,
};
use crate::keys::GROUP;
use crate::listing::ListOrder;
use crate::store::QueueStore;

/// Groups (and a group's jobs) read per round trip; and how far before the page asked for
/// a walk of a lane starts reading jobs (entries before are skipped by their count).
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

/// Most bytes one lane entry holds: a lean job's (its data and options, name, trace context
/// and field names); the entry of a job with a record holds its id alone.
const ENTRY_MOST: u64 = (LEAN_MAX_BYTES + MAX_NAME_BYTES + 512) as u64;

/// Most lane entries one round trip reads: a read returns entries whole, and a lean job's
/// entry holds its data, so at most [`READ_BUDGET`] bytes of them (~860 entries).
const LANE_READ: u64 = READ_BUDGET / ENTRY_MOST;

/// Lane entries one call skips, far before the page asked for (an offset deep in a queue
/// of millions): counted, not read as jobs.
const SKIP_PAGE: u64 = LANE_READ;

/// Entries not yet delivered to the consumer group, lane by lane, in `order`. Entries more
/// than a [`PAGE`] before the page asked for are skipped by their count alone, without
/// reading their jobs, so a page at offset 1,000,000 costs ~1,200 short reads of entries
/// (at most [`READ_BUDGET`] bytes each), not a million reads of jobs; such an offset counts
/// the rare leftover entry (of a job that moved on) too. A lean job's entry (no hash) is
/// shown as its record would show it.
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
    let mut lane_keys: Vec<(i32, String)> =
        lanes.prios.iter().map(|p| (*p, keys.lane(*p))).collect();
    if order == ListOrder::Newest {
        lane_keys.reverse();
    }
    for (prio, lane) in lane_keys {
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
                .min(LANE_READ);
            if want == 0 {
                return Ok(out);
            }
            let entries: Vec<(String, Vec<Vec<u8>>)> =
                lane_range(inner, command, &lane, &from, &to, want).await?;
            let Some((last, _)) = entries.last() else {
                break;
            };
            cursor = format!("({last}");
            let got = entries.len() as u64;
            let found: Vec<(String, EntryJob)> = entries
                .into_iter()
                .filter_map(|(sid, fields)| entry_job(prio, &sid, fields).map(|j| (sid, j)))
                .collect();
            let ids: Vec<String> = found.iter().map(|(_, j)| j.id.clone()).collect();
            let hashes = read_hashes(q, &ids).await?;
            for ((sid, job), h) in found.into_iter().zip(hashes) {
                let (id, h) = job.with_hash(h);
                let bad = unreadable(q, &id, JobState::Waiting, &h);
                // an entry the job no longer points at is a leftover, not a job
                if bad.is_none()
                    && (stored_state(&h) != Some("waiting") || h.get("sid") != Some(&sid))
                {
                    continue;
                }
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                out.push(match bad {
                    Some(info) => info,
                    None => JobInfo::from_hash(&inner.name, &id, h, Vec::new(), paused)?,
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
    for (prio, lane) in lanes.prios.iter().map(|p| (*p, keys.lane(*p))) {
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
        // (a lean job's entry holds its data: a bounded number of bytes per round trip)
        for pending in pending.chunks(LANE_READ as usize) {
            let mut pipe = redis::pipe();
            for (sid, ..) in pending {
                pipe.cmd("XRANGE").arg(&lane).arg(sid).arg(sid);
            }
            let entries: Vec<Vec<(String, Vec<Vec<u8>>)>> = pipe
                .query_async(&mut conn)
                .await
                .map_err(|e| inner.redis.err(e))?;
            let mut found = Vec::new();
            for ((sid, consumer, idle, _), entry) in pending.iter().zip(entries) {
                let job = entry
                    .into_iter()
                    .next()
                    .and_then(|(_, f)| entry_job(prio, sid, f));
                if let Some(job) = job {
                    found.push((sid, job, *idle, consumer));
                }
            }
            let ids: Vec<String> = found.iter().map(|(_, j, ..)| j.id.clone()).collect();
            let hashes = read_hashes(q, &ids).await?;
            for ((sid, job, idle, consumer), h) in found.into_iter().zip(hashes) {
                let (id, h) = job.with_hash(h);
                let bad = unreadable(q, &id, JobState::Active, &h);
                if bad.is_none() && h.get("sid") != Some(sid) {
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
                        info.worker = Some(consumer.clone());
                        info
                    }
                };
                out.push(info);
                if out.len() as u64 == limit {
                    return Ok(out);
                }
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

/// The job a lane entry is for: its id, and for a lean job's entry (field `n` first,
/// `prelude.lua` *Lean jobs*) the hash its record would hold, which stands for the record
/// while it has none.
pub(crate) struct EntryJob {
    pub id: String,
    lean: Option<HashMap<String, String>>,
}

impl EntryJob {
    /// The job's id and hash, given its hash `h` as read (empty: it has none): a lean
    /// job's entry speaks for it only while it has no record; once it has one, the record
    /// speaks, as for any job.
    pub(crate) fn with_hash(self, h: HashMap<String, String>) -> (String, HashMap<String, String>) {
        match self.lean {
            Some(lean) if h.is_empty() => (self.id, lean),
            _ => (self.id, h),
        }
    }
}

/// The job entry `sid` of the lane of priority `prio` (with fields `fields`) is for: the
/// one it names (field `i`), or the lean job it is. None for an entry of neither kind.
pub(crate) fn entry_job(prio: i32, sid: &str, fields: Vec<Vec<u8>>) -> Option<EntryJob> {
    let text = |v: Vec<u8>| String::from_utf8_lossy(&v).into_owned();
    let mut it = fields.into_iter().map(text);
    let first = it.next()?;
    if first == "n" {
        // (only the priority lanes hold lean jobs: the front and group lanes never do)
        let id = lean_id(prio, sid);
        lean_place(&id)?;
        let mut v: HashMap<String, String> = HashMap::new();
        v.insert("n".into(), it.next()?);
        while let (Some(k), Some(x)) = (it.next(), it.next()) {
            v.entry(k).or_insert(x);
        }
        return Some(EntryJob {
            id,
            lean: Some(lean_hash(prio, sid, v)),
        });
    }
    let mut it = std::iter::once(first).chain(it);
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        if k == "i" {
            return Some(EntryJob { id: v, lean: None });
        }
    }
    None
}

/// The hash fields of the lean job in entry `sid` (lane of priority `prio`) with entry
/// fields `v`, as add_job would have written them (`prelude.lua` `lean_fields`; values
/// whole, which [`JobInfo::from_hash`] reads as it reads pieces).
fn lean_hash(prio: i32, sid: &str, mut v: HashMap<String, String>) -> HashMap<String, String> {
    let mut h = HashMap::from([
        ("ts".to_string(), entry_time(sid).to_string()),
        ("sid".to_string(), sid.to_string()),
        ("name".to_string(), v.remove("n").unwrap_or_default()),
        ("data".to_string(), v.remove("d").unwrap_or_default()),
    ]);
    if let Some(o) = v.remove("o").filter(|o| !o.is_empty()) {
        h.insert("opts".into(), o);
    }
    if prio != 0 {
        h.insert("prio".into(), prio.to_string());
    }
    if let Some(t) = v.remove("t") {
        h.insert("tp".into(), t);
    }
    h
}

/// Lean jobs `ids` (ids [`lean_place`] reads; others read as None) as their lane entries
/// show them: for each, the hash its record would hold and, while it is active, its
/// consumer and idle time (ms); None when its entry is not live (gone, or delivered and
/// acknowledged: a finished job's, left until the lane is trimmed). For jobs found without
/// a record: at most [`READ_BUDGET`] bytes of entries a round trip.
pub(crate) async fn read_lean(
    q: &QueueStore,
    ids: &[String],
) -> Result<Vec<Option<(HashMap<String, String>, Option<(String, u64)>)>>> {
    let mut conn = q.redis.conn();
    let err = |e| q.redis.err(e);
    let mut out = Vec::with_capacity(ids.len());
    for ids in ids.chunks(LANE_READ as usize) {
        let places: Vec<Option<(i32, &str)>> = ids.iter().map(|id| lean_place(id)).collect();
        let mut prios: Vec<i32> = places.iter().flatten().map(|(p, _)| *p).collect();
        prios.sort_unstable();
        prios.dedup();
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for p in &prios {
            pipe.cmd("XINFO").arg("GROUPS").arg(q.keys.lane(*p));
        }
        for (prio, sid) in places.iter().flatten() {
            let lane = q.keys.lane(*prio);
            pipe.cmd("XRANGE").arg(&lane).arg(*sid).arg(*sid);
            pipe.cmd("XPENDING")
                .arg(&lane)
                .arg(GROUP)
                .arg(*sid)
                .arg(*sid)
                .arg(1);
        }
        let replies: Vec<redis::Value> = pipe.query_async(&mut conn).await.map_err(err)?;
        let mut replies = replies.into_iter();
        let mut delivered = HashMap::new();
        for p in &prios {
            let groups: StreamInfoGroupsReply =
                piped(replies.next().unwrap_or(redis::Value::Nil)).unwrap_or_default();
            let last = groups
                .groups
                .into_iter()
                .find(|g| g.name == GROUP)
                .map_or_else(|| "0-0".to_string(), |g| g.last_delivered_id);
            delivered.insert(*p, last);
        }
        for place in places {
            let Some((prio, sid)) = place else {
                out.push(None);
                continue;
            };
            let mut next = || replies.next().unwrap_or(redis::Value::Nil);
            let entry: Vec<(String, Vec<Vec<u8>>)> = piped(next()).unwrap_or_default();
            let pending: Vec<(String, String, u64, u64)> = piped(next()).unwrap_or_default();
            let job = entry
                .into_iter()
                .next()
                .and_then(|(_, f)| entry_job(prio, sid, f))
                .and_then(|j| j.lean);
            let live = match pending.into_iter().next() {
                Some((_, consumer, idle, _)) => Some(Some((consumer, idle))),
                None if id_after(sid, &delivered[&prio]) => Some(None),
                None => None,
            };
            out.push(job.zip(live));
        }
    }
    Ok(out)
}

/// Whether stream entry id `a` comes after `b` (ids "<ms>-<seq>"; false for anything else).
fn id_after(a: &str, b: &str) -> bool {
    let parse = |s: &str| -> Option<(u64, u64)> {
        let (ms, seq) = s.split_once('-')?;
        Some((ms.parse().ok()?, seq.parse().ok()?))
    };
    matches!((parse(a), parse(b)), (Some(a), Some(b)) if a > b)
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

    fn fields(v: &[&str]) -> Vec<Vec<u8>> {
        v.iter().map(|f| f.as_bytes().to_vec()).collect()
    }

    #[test]
    fn entry_fields_give_the_job_id() {
        let job = entry_job(0, "1-0", fields(&["i", "abc"])).unwrap();
        assert_eq!(job.id, "abc");
        assert!(job.lean.is_none());
        assert!(entry_job(0, "1-0", fields(&["x", "abc"])).is_none());
    }

    #[test]
    fn a_lean_entry_gives_its_job_until_it_has_a_record() {
        let f = fields(&[
            "n",
            "mail",
            "d",
            "{\"x\":1}",
            "o",
            "{\"a\":3}",
            "t",
            "00-ab",
        ]);
        let job = entry_job(-5, "1700000000000-7", f).unwrap();
        assert_eq!(job.id, "~-5.1700000000000-7");
        let lean = job.lean.clone().unwrap();
        let want = [
            ("ts", "1700000000000"),
            ("sid", "1700000000000-7"),
            ("name", "mail"),
            ("data", "{\"x\":1}"),
            ("opts", "{\"a\":3}"),
            ("prio", "-5"),
            ("tp", "00-ab"),
        ];
        let want: HashMap<String, String> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(lean, want);
        // once it has a record, the record speaks
        let record = HashMap::from([("sid".to_string(), "9-9".to_string())]);
        assert_eq!(job.with_hash(record.clone()).1, record);
        // priority 0 and no options: no such fields
        let lean = entry_job(0, "5-0", fields(&["n", "a", "d", "1", "o", ""]))
            .unwrap()
            .lean
            .unwrap();
        assert!(!lean.contains_key("prio") && !lean.contains_key("opts"));
        // the front lane holds no lean job
        assert!(entry_job(1001, "5-0", fields(&["n", "a", "d", "1"])).is_none());
        assert!(id_after("2-0", "1-9") && id_after("1-10", "1-9"));
        assert!(!id_after("1-9", "1-9") && !id_after("x", "0-0"));
    }

    #[test]
    fn running_since_prefers_the_record_of_this_attempt() {
        assert_eq!(running_since(Some("2:500"), 2, 1_000, 100), 500);
        assert_eq!(running_since(Some("1:500"), 2, 1_000, 100), 900);
        assert_eq!(running_since(None, 1, 1_000, 5_000), 0);
    }
}
