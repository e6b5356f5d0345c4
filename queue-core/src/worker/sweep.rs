//! The consistency sweep of one queue: walk the queue's job hashes and lane streams a batch
//! at a time (SCAN, never KEYS) and repair any job left between states, e.g. a waiting job
//! whose lane entry was lost, or a lane lost from the lanes set, then a page of its groups (`repair_groups.lua`). Slow and steady: one batch
//! per tick, so it never loads Redis.

use futures_util::future::BoxFuture;

use super::duty::Duty;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::outage::Outage;
use crate::error::Result;
use crate::queue::Queue;
use crate::scripts;

/// Keys looked at per SCAN call.
const SCAN_COUNT: u64 = 500;

/// Starts this duty (see `duty.rs`).
pub(crate) fn start(d: Duty<'_>) -> BoxFuture<'static, ()> {
    Box::pin(sweep_loop(
        d.queue.clone(),
        d.settings.sweep_interval,
        d.stop.clone(),
    ))
}

async fn sweep_loop(queue: Queue, every: Duration, stop: CancellationToken) {
    let mut outage = Outage::new(format!("consistency sweep of queue {}", queue.name()));
    let mut cursor = 0u64;
    let mut groups_cursor = "0".to_string();
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
                continue;
            }
        }
        // and a page of the queue's groups
        match scripts::repair_groups::repair(&queue.inner, &groups_cursor).await {
            Ok((next, repaired)) => {
                groups_cursor = next;
                if repaired > 0 {
                    tracing::warn!(queue = %queue.name(), repaired, "consistency sweep repaired groups");
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
    let (next, ids, lanes) = scripts::repair::scan_jobs(&queue.inner, cursor, SCAN_COUNT).await?;
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    if ids.is_empty() && lanes.is_empty() {
        return Ok((next, 0));
    }
    let repaired = scripts::repair::repair(&queue.inner, &ids, &lanes).await?;
    Ok((next, repaired))
}
