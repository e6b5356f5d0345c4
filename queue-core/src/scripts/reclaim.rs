//! `reclaim.lua`: recovers jobs whose worker stopped renewing their lease: each goes back to
//! the front lane, or fails once it has stalled too often. A short lock keeps two
//! reclaimers from repeating each other's work; a pause in reclaim calls (an outage) restarts
//! the lease clock instead of charging stalls.

use std::time::Duration;

use super::{invoke_on, EVENTS_MAXLEN};
use crate::error::{Error, Result};
use crate::keys::{FRONT_LANE, GROUP};
use crate::store::QueueStore;

script!(SCRIPT, "reclaim.lua");

/// The settings of one reclaim call (see worker/reclaim.rs).
pub(crate) struct Reclaim<'a> {
    /// Consumer reclaimed entries are claimed to (they are acknowledged at once).
    pub reclaimer: &'a str,
    pub lease: Duration,
    pub max_stalls: u32,
    pub lock_ttl: Duration,
    /// Most expired entries handled per lane.
    pub budget: u64,
    /// Consumers with nothing pending are removed after this.
    pub consumer_idle: Duration,
    /// A pause in reclaim calls longer than this restarts the lease clock.
    pub outage_gap: Duration,
}

/// One reclaim call: (requeued, failed), or `None` when another worker holds the reclaim
/// lock, or while the lease clock restarts after an outage.
pub(crate) async fn reclaim(queue: &QueueStore, r: &Reclaim<'_>) -> Result<Option<(i64, i64)>> {
    let inner = queue;
    let keys = &inner.keys;
    let lanes = super::refresh_lanes(inner).await?;
    if lanes.prios.is_empty() {
        return Ok(Some((0, 0)));
    }
    let mut inv = SCRIPT.prepare_invoke();
    inv.key(keys.meta())
        .key(keys.failed())
        .key(keys.marker())
        .key(keys.events())
        .key(keys.reclaim_lock())
        .key(keys.metrics_failed())
        .key(keys.lanes())
        .key(keys.front_lane());
    for p in lanes.prios.iter().filter(|p| **p != FRONT_LANE) {
        inv.key(keys.lane(*p));
    }
    inv.arg(GROUP)
        .arg(r.reclaimer)
        .arg(r.lease.as_millis() as u64)
        .arg(r.max_stalls)
        .arg(EVENTS_MAXLEN)
        .arg(keys.job_prefix())
        .arg(r.lock_ttl.as_millis().max(1) as u64)
        .arg(r.budget)
        .arg(r.consumer_idle.as_millis() as u64)
        .arg(r.outage_gap.as_millis() as u64);
    let out: Vec<i64> = invoke_on(inner, &inv).await?;
    match out.as_slice() {
        [-1] | [-2] => Ok(None),
        [requeued, failed, _gone] => Ok(Some((*requeued, *failed))),
        other => Err(Error::Protocol(format!("reclaim returned {other:?}"))),
    }
}
