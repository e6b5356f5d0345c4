//! `get_job.lua`: one job, whole (hash, logs, whether it runs now and on which worker),
//! read atomically.

use std::collections::HashMap;

use super::{invoke_with_lanes, Reply};
use crate::error::Result;
use crate::job::{JobInfo, JobState};
use crate::keys::GROUP;
use crate::store::QueueStore;

script!(SCRIPT, "get_job.lua");

/// Reads a job (data, options, state, attempts, progress, logs, result or error),
/// atomically.
pub(crate) async fn get_job(q: &QueueStore, id: &str) -> Result<Option<JobInfo>> {
    let keys = &q.keys;
    let (v, _) = invoke_with_lanes(q, &SCRIPT, "reading a job", |inv, lanes| {
        inv.key(keys.job(id))
            .key(keys.job_logs(id))
            .key(keys.meta());
        for k in lanes.keys(keys) {
            inv.key(k);
        }
        inv.arg(GROUP).arg(&lanes.version);
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
            return Ok(Some(JobInfo::unreadable(
                &q.name,
                id,
                JobState::Failed,
                &why,
            )));
        }
        _ => {}
    }
    let active = r.int()? == 1;
    let paused = r.int()? == 1;
    let idle = r.int()?;
    let consumer = r.string()?;
    let now = r.int()?;
    let logs_note = r.string()?;
    let n = r.int()? as usize;
    let mut hash = HashMap::with_capacity(n / 2);
    for _ in 0..n / 2 {
        let k = r.string()?;
        hash.insert(k, r.string()?);
    }
    let mut logs = Vec::with_capacity(r.remaining());
    while r.remaining() > 0 {
        logs.push(r.string()?);
    }
    let run = hash.get("run").cloned();
    let mut info = JobInfo::from_hash(&q.name, id, hash, logs, paused)?;
    if !logs_note.is_empty() {
        info.corrupt = Some(match info.corrupt.take() {
            Some(c) => format!("{c}; {logs_note}"),
            None => logs_note,
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
