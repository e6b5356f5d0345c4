//! The janitor of one queue: keeps applying retention while no job finishes, so finished
//! jobs past their age go even on an idle queue (completions and failures also trim as they
//! are recorded).

use futures_util::future::BoxFuture;

use super::duty::Duty;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::outage::Outage;
use crate::queue::Queue;
use crate::scripts;

/// Starts this duty (see `duty.rs`).
pub(crate) fn start(d: Duty<'_>) -> BoxFuture<'static, ()> {
    Box::pin(retention_loop(
        d.queue.clone(),
        d.settings.retention_interval,
        d.stop.clone(),
    ))
}

async fn retention_loop(queue: Queue, every: Duration, stop: CancellationToken) {
    let mut outage = Outage::new(format!("retention of queue {}", queue.name()));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.cancelled() => return,
        }
        let removed = scripts::retention::retention(&queue.inner).await;
        match removed {
            Ok((completed, failed, cancelled)) => {
                outage.recovered();
                if completed + failed + cancelled > 0 {
                    tracing::debug!(queue = %queue.name(), completed, failed, cancelled, "retention removed jobs");
                }
            }
            Err(e) => {
                outage.failed(&e);
            }
        }
    }
}
