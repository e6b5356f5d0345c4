//! `extend_lease.lua`: renews the lease of every lane entry a worker holds (resets its idle
//! time), answering the entries it no longer owns (taken by a reclaimer).

use super::invoke_on;
use crate::error::Result;
use crate::keys::GROUP;
use crate::store::QueueStore;

script!(SCRIPT, "extend_lease.lua");

/// A lane entry a worker holds: its entry id, its job, and the attempt's `run` stamp.
pub(crate) struct HeldEntry {
    pub sid: String,
    pub id: String,
    pub run: String,
}

/// Renews `lanes` (each lane's priority and the entries held there) for `consumer`; returns
/// the entries (lane priority, entry id) this worker no longer owns.
pub(crate) async fn extend_lease(
    q: &QueueStore,
    consumer: &str,
    lanes: &[(i32, Vec<HeldEntry>)],
) -> Result<Vec<(i32, String)>> {
    if lanes.is_empty() {
        return Ok(Vec::new());
    }
    let keys = &q.keys;
    let mut inv = SCRIPT.prepare_invoke();
    for (prio, _) in lanes {
        inv.key(keys.lane(*prio));
    }
    inv.arg(GROUP).arg(consumer).arg(keys.job_prefix());
    for (_, entries) in lanes {
        inv.arg(entries.len());
        for e in entries {
            inv.arg(&e.sid).arg(&e.id).arg(&e.run);
        }
    }
    // per lane (in KEYS order), the ids of the entries lost there
    let lost: Vec<Vec<String>> = invoke_on(q, &inv).await?;
    Ok(lanes
        .iter()
        .zip(lost)
        .flat_map(|((prio, _), sids)| sids.into_iter().map(move |sid| (*prio, sid)))
        .collect())
}
