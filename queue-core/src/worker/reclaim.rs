//! Reclaim of one queue: recover jobs whose worker stopped renewing their lease. Any worker
//! runs it; a short lock in Redis keeps two reclaimers from repeating each other's work.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::outage::Outage;
use crate::error::{Error, Result};
use crate::keys::{FRONT_LANE, GROUP};
use crate::queue::Queue;
use crate::scripts::{self, EVENTS_MAXLEN};

/// Consumer name reclaimed entries are claimed to (they are acknowledged at once).
const RECLAIMER: &str = "jobq-reclaimer";
/// Most expired entries handled per lane per call.
const BUDGET: u64 = 1_000;
/// Stopped workers' consumers (nothing pending) are removed from the group after this.
const CONSUMER_IDLE: Duration = Duration::from_secs(600);

/// How often a worker looks for expired leases.
pub(crate) fn interval(lease: Duration) -> Duration {
    (lease / 4).clamp(Duration::from_millis(100), Duration::from_secs(5))
}

/// A pause in reclaim calls longer than this means no reclaimer could reach Redis (an
/// outage): the lease clock restarts (see reclaim.lua). Half a lease: a live worker renews
/// every third of one, so renewal period plus an undetected pause stays under the lease.
pub(crate) fn outage_gap(lease: Duration) -> Duration {
    (lease / 2).max(interval(lease) * 2)
}

pub(crate) async fn reclaim_loop(
    queue: Queue,
    lease: Duration,
    max_stalls: u32,
    stop: CancellationToken,
) {
    let every = interval(lease);
    let mut outage = Outage::new(format!("reclaiming stalled jobs in queue {}", queue.name()));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.cancelled() => return,
        }
        match reclaim(&queue, lease, max_stalls, every).await {
            Ok(Some((requeued, failed))) => {
                outage.recovered();
                if requeued + failed > 0 {
                    tracing::warn!(
                        queue = %queue.name(),
                        requeued,
                        failed,
                        "reclaimed jobs whose lease expired (their worker died or was cut off)"
                    );
                }
            }
            Ok(None) => outage.recovered(),
            Err(e) => {
                outage.failed(&e);
            }
        }
    }
}

/// One reclaim call; `None` when another worker holds the reclaim lock, or while the lease
/// clock restarts after an outage.
pub(crate) async fn reclaim(
    queue: &Queue,
    lease: Duration,
    max_stalls: u32,
    lock_ttl: Duration,
) -> Result<Option<(i64, i64)>> {
    let inner = &queue.inner;
    let keys = &inner.keys;
    let lanes = inner.lanes.refresh(&inner.redis, keys).await?;
    if lanes.prios.is_empty() {
        return Ok(Some((0, 0)));
    }
    let mut inv = scripts::RECLAIM.prepare_invoke();
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
        .arg(RECLAIMER)
        .arg(lease.as_millis() as u64)
        .arg(max_stalls)
        .arg(EVENTS_MAXLEN)
        .arg(keys.job_prefix())
        .arg(lock_ttl.as_millis().max(1) as u64)
        .arg(BUDGET)
        .arg(CONSUMER_IDLE.as_millis() as u64)
        .arg(outage_gap(lease).as_millis() as u64);
    let mut conn = inner.redis.conn();
    let out: Vec<i64> = inv
        .invoke_async(&mut conn)
        .await
        .map_err(|e| inner.redis.err(e))?;
    match out.as_slice() {
        [-1] | [-2] => Ok(None),
        [requeued, failed, _gone] => Ok(Some((*requeued, *failed))),
        other => Err(Error::Protocol(format!("reclaim returned {other:?}"))),
    }
}
