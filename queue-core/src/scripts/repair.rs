//! `repair.lua`: puts back in place jobs whose record says where they belong but that no
//! lane, set or claim holds (a crash between two writes, a restored backup): the sweep's work.

use super::invoke_on;
use crate::error::Result;
use crate::keys::GROUP;
use crate::store::QueueStore;

script!(SCRIPT, "repair.lua");

/// Repairs jobs `ids` where needed; how many were repaired.
pub(crate) async fn repair(queue: &QueueStore, ids: &[&str]) -> Result<i64> {
    let inner = queue;
    let keys = &inner.keys;
    let lanes = super::refresh_lanes(inner).await?;
    let mut inv = SCRIPT.prepare_invoke();
    inv.key(keys.meta())
        .key(keys.delayed())
        .key(keys.completed())
        .key(keys.failed())
        .key(keys.marker())
        .key(keys.lanes());
    for k in lanes.keys(keys) {
        inv.key(k);
    }
    for id in ids {
        inv.key(keys.job(id));
    }
    inv.arg(GROUP).arg(lanes.prios.len());
    for p in &lanes.prios {
        inv.arg(*p);
    }
    for id in ids {
        inv.arg(*id);
    }
    invoke_on(inner, &inv).await
}

/// One SCAN page of the queue's job hashes from `cursor` (on the node that holds the
/// queue): the next cursor and the ids found.
pub(crate) async fn scan_jobs(
    q: &QueueStore,
    cursor: u64,
    count: u64,
) -> Result<(u64, Vec<String>)> {
    let prefix = q.keys.job_prefix();
    let pattern = format!("{prefix}*");
    // the queue's keys are in one slot: in a cluster, on the master serving it
    let target = q.redis.slot_target(q.keys.base());
    let (next, found) = q.redis.scan_page(&target, cursor, &pattern, count).await?;
    let ids = found
        .into_iter()
        .filter_map(|k| String::from_utf8(k).ok())
        .filter_map(|k| k.strip_prefix(prefix.as_str()).map(str::to_string))
        .collect();
    Ok((next, ids))
}
