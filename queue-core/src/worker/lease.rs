//! Lease renewal of one queue: every third of the lease, reset the idle time of every lane
//! entry this worker holds, so a healthy long job is never reclaimed. Entries a reclaimer
//! already took are cancelled here.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::held::Held;
use super::outage::Outage;
use crate::error::Result;
use crate::queue::Queue;
use crate::scripts::extend_lease::{self, HeldEntry};

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

/// Renews every held entry; returns the entries (lane priority, entry id) this worker no
/// longer owns.
async fn extend(queue: &Queue, held: &Held, consumer: &str) -> Result<Vec<(i32, String)>> {
    let lanes: Vec<(i32, Vec<HeldEntry>)> = held.by_lane().into_iter().collect();
    extend_lease::extend_lease(&queue.inner, consumer, &lanes).await
}
