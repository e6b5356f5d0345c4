//! The janitor of one queue: keeps applying retention while no job finishes, so finished
//! jobs past their age go even on an idle queue (completions and failures also trim as they
//! are recorded).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::outage::Outage;
use crate::queue::Queue;
use crate::scripts::{self, TRIM_BUDGET};

pub(crate) async fn retention_loop(queue: Queue, every: Duration, stop: CancellationToken) {
    let mut outage = Outage::new(format!("retention of queue {}", queue.name()));
    let keys = &queue.inner.keys;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.cancelled() => return,
        }
        let mut conn = queue.inner.redis.conn();
        let removed: redis::RedisResult<(i64, i64)> = scripts::RETENTION
            .key(keys.meta())
            .key(keys.completed())
            .key(keys.failed())
            .arg(keys.job_prefix())
            .arg(TRIM_BUDGET)
            .invoke_async(&mut conn)
            .await;
        match removed {
            Ok((completed, failed)) => {
                outage.recovered();
                if completed + failed > 0 {
                    tracing::debug!(queue = %queue.name(), completed, failed, "retention removed jobs");
                }
            }
            Err(e) => {
                outage.failed(&queue.inner.redis.err(e));
            }
        }
    }
}
