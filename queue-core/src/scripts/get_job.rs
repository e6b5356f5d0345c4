//! `get_job.lua`: one job, whole (hash, logs, whether it runs now and on which worker),
//! read atomically; a hash or log too large to copy through Lua in one short call is read
//! after it, by plain reads of a bounded size each.

use std::collections::HashMap;

use super::budget::{pack, Run, READ_BUDGET};
use super::{invoke_with_lanes, Reply, MAX_LOG_LINES};
use crate::error::Result;
use crate::job::{lean_place, JobInfo, JobState};
use crate::keys::GROUP;
use crate::store::QueueStore;

script!(SCRIPT, "get_job.lua");

/// Reads a job (data, options, state, attempts, progress, logs, result or error),
/// atomically.
pub(crate) async fn get_job(q: &QueueStore, id: &str) -> Result<Option<JobInfo>> {
    let keys = &q.keys;
    // a lean job without a record is its lane entry alone: the script reads it there
    let lean = lean_place(id);
    let (v, _) = invoke_with_lanes(q, &SCRIPT, "reading a job", |inv, lanes| {
        inv.key(keys.job(id))
            .key(keys.job_logs(id))
            .key(keys.meta())
            .key(lean.map_or_else(|| keys.meta(), |(prio, _)| keys.lane(prio)));
        for k in lanes.keys(keys) {
            inv.key(k);
        }
        inv.arg(GROUP).arg(&lanes.version).arg(MAX_LOG_LINES);
        match lean {
            Some((prio, sid)) => inv.arg(prio).arg(sid),
            None => inv.arg("").arg(""),
        };
        for p in &lanes.prios {
            inv.arg(*p);
        }
    })
    .await?;
    let mut r = Reply::new(&v)?;
    match r.string()?.as_str() {
        "none" => return Ok(None),
        "unreadable" => {
            let why = r.string()?;
            // (in no finished or delayed set: shown failed, as it cannot run)
            let state = r.string()?.parse().unwrap_or(JobState::Failed);
            return Ok(Some(JobInfo::unreadable(&q.name, id, state, &why)));
        }
        _ => {}
    }
    let active = r.int()? == 1;
    let paused = r.int()? == 1;
    let idle = r.int()?;
    let consumer = r.string()?;
    let now = r.int()?;
    let logs_note = r.string()?;
    let later_lines = r.int()?;
    let log_bytes = r.int()?;
    let found_on = r.string()?;
    let n = r.int()?;
    let mut notes = vec![logs_note];
    let mut hash = HashMap::with_capacity(n.max(0) as usize / 2);
    for _ in 0..n.max(0) / 2 {
        let k = r.string()?;
        hash.insert(k, r.string()?);
    }
    let mut logs = Vec::with_capacity(r.remaining());
    while r.remaining() > 0 {
        logs.push(r.string()?);
    }
    let mut active = active;
    if n < 0 {
        let (big, skipped) = read_big_hash(q, &keys.job(id)).await?;
        hash = big;
        notes.extend(skipped);
        if hash.is_empty() {
            // removed between the two reads
            return Ok(None);
        }
        // it moved on between the two reads (finished, or on a new entry): shown as its
        // hash says, not as running
        if hash.contains_key("state") || hash.get("sid") != Some(&found_on) {
            active = false;
        }
    }
    if later_lines > 0 {
        let lines = later_lines as usize;
        logs = read_log(q, &keys.job_logs(id), lines, log_bytes.max(1) as u64).await?;
    }
    let run = hash.get("run").cloned();
    let mut info = JobInfo::from_hash(&q.name, id, hash, logs, paused)?;
    notes.retain(|n| !n.is_empty());
    if !notes.is_empty() {
        let notes = notes.join("; ");
        info.corrupt = Some(match info.corrupt.take() {
            Some(c) => format!("{c}; {notes}"),
            None => notes,
        });
    }
    if active {
        // the hash is written when an attempt ends: report the running one
        info.state = JobState::Active;
        info.attempts_made += 1;
        info.started_at = Some(running_since(run.as_deref(), info.attempts_made, now, idle));
        info.worker = Some(consumer);
    }
    Ok(Some(info))
}

/// Bytes of one stored value that no job can hold (past the largest caps): such a field of a
/// corrupt record is named, not read.
const FIELD_MOST: u64 = 64 * 1024 * 1024 + 1024;

/// The most bytes field `name` of a job can hold: progress is refused past
/// [`MAX_PROGRESS_BYTES`](crate::queue::MAX_PROGRESS_BYTES) when it is set, so a longer one
/// is a corrupt record, named, not read (a 20 MB field read whole took 50 ms of Redis).
fn field_most(name: &str) -> u64 {
    match name {
        "progress" => crate::queue::MAX_PROGRESS_BYTES as u64,
        _ => FIELD_MOST,
    }
}

/// Every field of the job hash `key` (one too large for the script to read), read in runs
/// of at most [`READ_BUDGET`] bytes ([`pack`]); a field over [`FIELD_MOST`] is left out,
/// said in the notes returned.
async fn read_big_hash(
    q: &QueueStore,
    key: &str,
) -> Result<(HashMap<String, String>, Vec<String>)> {
    let mut conn = q.redis.conn();
    let err = |e| q.redis.err(e);
    // (at most MOST_JOB_FIELDS names: the script checked)
    let names: Vec<String> = redis::cmd("HKEYS")
        .arg(key)
        .query_async(&mut conn)
        .await
        .map_err(err)?;
    let mut pipe = redis::pipe();
    for name in &names {
        pipe.cmd("HSTRLEN").arg(key).arg(name);
    }
    let lens: Vec<u64> = pipe.query_async(&mut conn).await.map_err(err)?;
    let sizes: Vec<Option<u64>> = lens
        .iter()
        .zip(&names)
        .map(|(&n, name)| (n <= field_most(name)).then_some(n))
        .collect();
    let mut hash = HashMap::with_capacity(names.len());
    let mut notes = Vec::new();
    let runs = pack(&sizes, |i| {
        let name = crate::text::clip(&names[i], 40);
        format!(
            "field {name} is {} bytes, more than a job's {name} may hold: not read",
            lens[i]
        )
    });
    for run in runs {
        let at = match run {
            Run::Read(at) => at,
            Run::Skip(_, why) => {
                notes.push(why);
                continue;
            }
        };
        let values: Vec<Option<Vec<u8>>> = redis::cmd("HMGET")
            .arg(key)
            .arg(&names[at.clone()])
            .query_async(&mut conn)
            .await
            .map_err(err)?;
        for (name, v) in names[at].iter().zip(values) {
            if let Some(v) = v {
                hash.insert(name.clone(), String::from_utf8_lossy(&v).into_owned());
            }
        }
    }
    Ok((hash, notes))
}

/// The newest `lines` lines of the log `key` (of `bytes` in all, as the script measured),
/// about [`READ_BUDGET`] bytes a call.
async fn read_log(q: &QueueStore, key: &str, lines: usize, bytes: u64) -> Result<Vec<String>> {
    let mut conn = q.redis.conn();
    let mut out = Vec::with_capacity(lines);
    let per_read = (READ_BUDGET.saturating_mul(lines as u64) / bytes).clamp(1, 1_000) as i64;
    let mut from = -(lines as i64);
    while from < 0 {
        let to = (from + per_read - 1).min(-1);
        let some: Vec<Vec<u8>> = redis::cmd("LRANGE")
            .arg(key)
            .arg(from)
            .arg(to)
            .query_async(&mut conn)
            .await
            .map_err(|e| q.redis.err(e))?;
        out.extend(some.iter().map(|l| String::from_utf8_lossy(l).into_owned()));
        from = to + 1;
    }
    Ok(out)
}

/// When the running attempt started: recorded by the lease renewal (`run` =
/// "<attempt>:<ms>") once the attempt has been renewed, else the entry's idle time, which
/// is exact until the first renewal.
fn running_since(run: Option<&str>, attempt: u32, now: i64, idle: i64) -> u64 {
    let recorded = run
        .and_then(|r| r.split_once(':'))
        .filter(|(a, _)| a.parse() == Ok(attempt))
        .and_then(|(_, ms)| ms.parse().ok());
    recorded.unwrap_or_else(|| (now - idle.max(0)).max(0) as u64)
}
