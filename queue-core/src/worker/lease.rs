//! Lease renewal of one queue: every third of the lease, reset the idle time of every lane
//! entry this worker holds, so a healthy long job is never reclaimed. Entries a reclaimer
//! already took are cancelled here.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::held::Held;
use super::outage::Outage;
use crate::error::Result;
use crate::keys::GROUP;
use crate::queue::Queue;
use crate::scripts;

pub(crate) async fn lease_loop(
    queue: Queue,
    held: Arc<Held>,
    consumer: String,
    lease: Duration,
    stop: CancellationToken,
) {
    let every = (lease / 3).max(Duration::from_millis(50));
    let mut outage = Outage::new(format!("renewing leases in queue {}", queue.name()));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.cancelled() => return,
        }
        match extend(&queue, &held, &consumer).await {
            Ok(lost) => {
                outage.recovered();
                if !lost.is_empty() {
                    tracing::warn!(
                        queue = %queue.name(),
                        entries = lost.len(),
                        "lease lost (jobs reclaimed by another worker): cancelling them here"
                    );
                    held.lose(&lost);
                }
            }
            Err(e) => {
                outage.failed(&e);
            }
        }
    }
}

async fn extend(queue: &Queue, held: &Held, consumer: &str) -> Result<Vec<String>> {
    let lanes = held.by_lane();
    if lanes.is_empty() {
        return Ok(Vec::new());
    }
    let keys = &queue.inner.keys;
    let mut inv = scripts::EXTEND_LEASE.prepare_invoke();
    for prio in lanes.keys() {
        inv.key(keys.lane(*prio));
    }
    inv.arg(GROUP).arg(consumer).arg(keys.job_prefix());
    for entries in lanes.values() {
        inv.arg(entries.len());
        for e in entries {
            inv.arg(&e.sid).arg(&e.id).arg(&e.run);
        }
    }
    let mut conn = queue.inner.redis.conn();
    inv.invoke_async(&mut conn)
        .await
        .map_err(|e| queue.inner.redis.err(e))
}
