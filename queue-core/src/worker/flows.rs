//! The flow duty of one queue: delivers the queue's outbox of finished flow children to
//! their parents (`flow/deliver.rs`) as soon as this worker records one (the finisher
//! wakes it) and every [`PUMP_EVERY`] for what other processes left, and every flow check
//! interval (`WorkerBuilder::flow_check_interval`) runs
//! the safety net of `flow/reconcile.rs` (parents that wait too long, jobs staged too long).

use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use super::duty::Duty;
use super::outage::Outage;
use crate::flow::{deliver, reconcile};
use crate::queue::Queue;

/// Pause between deliveries of the outbox when nothing wakes the duty.
const PUMP_EVERY: Duration = Duration::from_secs(2);

/// Starts this duty (see `duty.rs`).
pub(crate) fn start(d: Duty<'_>) -> BoxFuture<'static, ()> {
    Box::pin(flows_loop(
        d.queue.clone(),
        d.settings.flow_check_interval,
        d.stop.clone(),
    ))
}

async fn flows_loop(queue: Queue, check_every: Duration, stop: CancellationToken) {
    let q = &queue.inner;
    let mut outage = Outage::new(format!("delivering flow outcomes of queue {}", q.name));
    let mut last_check = Instant::now();
    loop {
        tokio::select! {
            _ = q.flows.notified() => {}
            _ = tokio::time::sleep(PUMP_EVERY) => {}
            _ = stop.cancelled() => return,
        }
        let mut result = deliver::pump(&q.redis, &q.prefix, &q.name)
            .await
            .map(|_| ());
        if result.is_ok() && last_check.elapsed() >= check_every {
            last_check = Instant::now();
            result = async {
                reconcile::recheck_parents(q).await?;
                reconcile::sweep_staged(q).await
            }
            .await
            .map(|_| ());
        }
        match result {
            Ok(()) => outage.recovered(),
            Err(e) => {
                let _ = outage.failed(&e);
            }
        }
    }
}
