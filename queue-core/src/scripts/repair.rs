//! `repair.lua`: puts back in place jobs whose record says where they belong but that no
//! lane, set or claim holds (a crash between two writes, a restored backup): the sweep's work.

use super::invoke_on;
use crate::error::Result;
use crate::keys::GROUP;
use crate::store::QueueStore;

script!(SCRIPT, "repair.lua");

/// Repairs jobs `ids` where needed, and gives lanes `found` (lane streams the sweep came
/// upon) back their place in the lanes set if they lost it; how many were repaired.
pub(crate) async fn repair(queue: &QueueStore, ids: &[&str], found: &[i32]) -> Result<i64> {
    let inner = queue;
    let keys = &inner.keys;
    let mut lanes = super::refresh_lanes(inner).await?;
    for p in found {
        if !lanes.prios.contains(p) {
            lanes.prios.push(*p);
        }
    }
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

/// One SCAN page of the queue's job hashes and lane streams from `cursor` (on the node
/// that holds the queue): the next cursor, the job ids and the lane priorities found. (A
/// lean job has no hash: its lane, should it lose its place in the lanes set, is found by
/// its stream.)
pub(crate) async fn scan_jobs(
    q: &QueueStore,
    cursor: u64,
    count: u64,
) -> Result<(u64, Vec<String>, Vec<i32>)> {
    let prefix = q.keys.job_prefix();
    let lane_prefix = q.keys.lane_prefix();
    // `j:…` and `ready:…` (and the few other keys starting with those letters)
    let pattern = format!("{}:[jr]*", q.keys.base());
    // the queue's keys are in one slot: in a cluster, on the master serving it
    let target = q.redis.slot_target(q.keys.base());
    let (next, found) = q.redis.scan_page(&target, cursor, &pattern, count).await?;
    let (mut ids, mut lanes) = (Vec::new(), Vec::new());
    for k in found.into_iter().filter_map(|k| String::from_utf8(k).ok()) {
        if let Some(id) = k.strip_prefix(prefix.as_str()) {
            ids.push(id.to_string());
        } else if let Some(p) = k.strip_prefix(lane_prefix.as_str()) {
            // (priorities, the front lane and the group lane)
            if let Ok(n) = p.parse::<i32>() {
                if (-1000..=1002).contains(&n) && n.to_string() == p {
                    lanes.push(n);
                }
            }
        }
    }
    Ok((next, ids, lanes))
}
