//! `search.lua`: one bounded batch of a search (`search.rs`): the jobs of one place that
//! pass the filters, and where the next batch starts.

use super::{invoke_on, Reply};
use crate::error::{Error, Result};
use crate::keys::GROUP;
use crate::store::QueueStore;

script!(SCRIPT, "search.lua");

/// Most entries (set members, lane entries, groups) one call examines: about 10 ms of
/// small jobs.
pub(crate) const MAX_EXAMINED: u64 = 1_000;
/// Most bytes of job hashes one call reads (the job that passes it is read whole).
pub(crate) const MAX_BYTES: u64 = 512 * 1024;
/// A call also stops after examining entries for this long (µs), so a slow or busy server
/// keeps calls short too.
pub(crate) const MAX_MICROS: u64 = 10_000;

/// The place a batch reads.
pub(crate) enum Walk<'a> {
    /// Sorted set `key` of job ids whose hashes record `state`, from the highest score
    /// down to `min` (a time in ms; none when the scores are not times).
    Sorted {
        key: &'a str,
        state: &'a str,
        min: Option<u64>,
    },
    /// Lane stream `key` of priority `prio`: its undelivered entries (waiting), or its
    /// delivered ones still pending (active); its lean jobs get their ids from `prio`.
    Lane {
        key: &'a str,
        prio: i32,
        delivered: bool,
    },
    /// The queues of the groups, group by group (waiting grouped jobs).
    Groups,
}

impl Walk<'_> {
    /// Where a walk starts (see the script's header).
    pub(crate) fn start(&self) -> Vec<String> {
        let s = |v: &[&str]| v.iter().map(|p| p.to_string()).collect();
        match self {
            Walk::Sorted { .. } => s(&["+inf", "0"]),
            Walk::Lane { .. } => s(&["+"]),
            Walk::Groups => s(&["0", "", "+inf", "0"]),
        }
    }
}

/// What a job must have to match; empty texts and a zero cutoff match anything.
#[derive(Debug)]
pub(crate) struct Filters<'a> {
    pub name: &'a str,
    pub data: &'a str,
    pub error: &'a str,
    /// Created at or after this time (ms), or 0.
    pub since_ms: u64,
    /// Bytes of the data searched, from its start.
    pub data_bytes: usize,
}

/// One batch's answer.
pub(crate) struct Batch {
    /// The place has nothing more to examine.
    pub done: bool,
    /// Where the next batch starts.
    pub position: Vec<String>,
    /// The queue's node clock when the batch ran (ms).
    pub now_ms: u64,
    /// The jobs that matched, in order, each with how long its lane entry has been idle
    /// (ms; -1 unless active).
    pub found: Vec<(String, i64)>,
}

/// Examines one bounded batch of `walk` from `position`, for at most `wanted` matches.
pub(crate) async fn batch(
    q: &QueueStore,
    walk: &Walk<'_>,
    filters: &Filters<'_>,
    position: &[String],
    wanted: usize,
) -> Result<Batch> {
    let keys = &q.keys;
    let gwait = keys.group_waiting();
    // only the priority lanes hold lean jobs (job.rs `lean_place`)
    let lean_prio = match walk {
        Walk::Lane { prio, .. } if (-1000..=1000).contains(prio) => prio.to_string(),
        _ => String::new(),
    };
    let (kind, key, state, min) = match walk {
        Walk::Sorted { key, state, min } => (
            "sorted",
            *key,
            *state,
            min.map_or_else(|| "-inf".to_string(), |m| m.to_string()),
        ),
        Walk::Lane { key, delivered, .. } => (
            if *delivered {
                "delivered"
            } else {
                "undelivered"
            },
            *key,
            "",
            String::new(),
        ),
        Walk::Groups => ("groups", gwait.as_str(), "", String::new()),
    };
    let mut inv = SCRIPT.prepare_invoke();
    inv.key(key)
        .arg(kind)
        .arg(keys.job_prefix())
        .arg(GROUP)
        .arg(state)
        .arg(filters.name)
        .arg(filters.data)
        .arg(filters.error)
        .arg(filters.since_ms)
        .arg(min)
        .arg(wanted)
        .arg(MAX_EXAMINED)
        .arg(MAX_BYTES)
        .arg(filters.data_bytes)
        .arg(MAX_MICROS)
        .arg(lean_prio);
    for p in position {
        inv.arg(p);
    }
    let v: redis::Value = invoke_on(q, &inv).await?;
    let mut r = Reply::new(&v)?;
    let done = match r.string()?.as_str() {
        "done" => true,
        "more" => false,
        other => return Err(Error::Protocol(format!("search batch answered {other:?}"))),
    };
    let now_ms = r.int()?.max(0) as u64;
    let n = r.int()?.max(0) as usize;
    let position = (0..n).map(|_| r.string()).collect::<Result<_>>()?;
    let mut found = Vec::with_capacity(r.remaining() / 2);
    while r.remaining() > 0 {
        found.push((r.string()?, r.int()?));
    }
    Ok(Batch {
        done,
        position,
        now_ms,
        found,
    })
}
