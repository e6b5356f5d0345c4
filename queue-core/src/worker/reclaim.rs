//! Reclaim of one queue: recover jobs whose worker stopped renewing their lease. Any worker
//! runs it; a short lock in Redis keeps two reclaimers from repeating each other's work.

use futures_util::future::BoxFuture;

use super::duty::Duty;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::outage::Outage;
use crate::error::Result;
use crate::queue::Queue;
use crate::scripts;

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

/// Starts this duty (see `duty.rs`).
pub(crate) fn start(d: Duty<'_>) -> BoxFuture<'static, ()> {
    Box::pin(reclaim_loop(
        d.queue.clone(),
        d.settings.lease,
        d.settings.max_stalls,
        d.stop.clone(),
    ))
}

async fn reclaim_loop(queue: Queue, lease: Duration, max_stalls: u32, stop: CancellationToken) {
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
    let limits = scripts::reclaim::Reclaim {
        reclaimer: RECLAIMER,
        lease,
        max_stalls,
        lock_ttl,
        budget: BUDGET,
        consumer_idle: CONSUMER_IDLE,
        outage_gap: outage_gap(lease),
    };
    scripts::reclaim::reclaim(&queue.inner, &limits).await
}
