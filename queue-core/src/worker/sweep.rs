//! The consistency sweep of one queue: walk the queue's job hashes a batch at a time (SCAN,
//! never KEYS) and repair any job left between states, e.g. a waiting job whose lane entry
//! was lost. Slow and steady: one batch per tick, so it never loads Redis.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::outage::Outage;
use crate::error::Result;
use crate::keys::GROUP;
use crate::queue::Queue;
use crate::scripts;

/// Keys looked at per SCAN call.
const SCAN_COUNT: u64 = 500;

pub(crate) async fn sweep_loop(queue: Queue, every: Duration, stop: CancellationToken) {
    let mut outage = Outage::new(format!("consistency sweep of queue {}", queue.name()));
    let mut cursor = 0u64;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.cancelled() => return,
        }
        match sweep_step(&queue, cursor).await {
            Ok((next, repaired)) => {
                outage.recovered();
                cursor = next;
                if repaired > 0 {
                    tracing::warn!(queue = %queue.name(), repaired, "consistency sweep repaired jobs");
                }
            }
            Err(e) => {
                outage.failed(&e);
            }
        }
    }
}

/// One SCAN batch from `cursor`, repaired; returns the next cursor and how many were fixed.
pub(crate) async fn sweep_step(queue: &Queue, cursor: u64) -> Result<(u64, i64)> {
    let inner = &queue.inner;
    let keys = &inner.keys;
    let prefix = keys.job_prefix();
    let pattern = format!("{prefix}*");
    // the queue's keys are in one slot: in a cluster, on the master serving it
    let target = inner.redis.slot_target(keys.base());
    let (next, found) = inner
        .redis
        .scan_page(&target, cursor, &pattern, SCAN_COUNT)
        .await?;
    let found: Vec<String> = found
        .into_iter()
        .filter_map(|k| String::from_utf8(k).ok())
        .collect();
    let ids: Vec<&str> = found
        .iter()
        .filter_map(|k| k.strip_prefix(prefix.as_str()))
        .collect();
    if ids.is_empty() {
        return Ok((next, 0));
    }
    let lanes = inner.lanes.refresh(&inner.redis, keys).await?;
    let mut inv = scripts::REPAIR.prepare_invoke();
    inv.key(keys.meta())
        .key(keys.delayed())
        .key(keys.completed())
        .key(keys.failed())
        .key(keys.marker())
        .key(keys.lanes());
    for k in lanes.keys(keys) {
        inv.key(k);
    }
    for id in &ids {
        inv.key(keys.job(id));
    }
    inv.arg(GROUP).arg(lanes.prios.len());
    for p in &lanes.prios {
        inv.arg(*p);
    }
    for id in &ids {
        inv.arg(*id);
    }
    let repaired: i64 = inv
        .invoke_async(&mut inner.redis.conn())
        .await
        .map_err(|e| inner.redis.err(e))?;
    Ok((next, repaired))
}
