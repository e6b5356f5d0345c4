//! The cancel watch of one queue: while this worker holds jobs of the queue, it looks up
//! the attempts it holds in the queue's cancel requests a few times a second (one
//! `ZMSCORE` for all of them, never a read per job) and stops the handlers asked for; their
//! attempts end cancelled (finish.rs). A read that fails is tried again at the next tick: a
//! request stays until its attempt ends.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::held::Held;
use super::outage::Outage;
use crate::queue::Queue;
use crate::scripts::cancel;

/// How often the requests are read while jobs are held: a cancelled handler sees its token
/// fire within this (plus one round trip).
pub(crate) const CANCEL_POLL: Duration = Duration::from_millis(250);

/// Runs until `stop` is cancelled (after the last outcome is recorded).
pub(crate) async fn cancel_loop(queue: Queue, held: Arc<Held>, stop: CancellationToken) {
    let mut outage = Outage::new(format!(
        "watching cancel requests in queue {}",
        queue.name()
    ));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(CANCEL_POLL) => {}
            _ = stop.cancelled() => return,
        }
        let mine = held.cancellable();
        if mine.is_empty() {
            continue;
        }
        match cancel::requested(&queue.inner, &mine).await {
            Ok(asked) => {
                outage.recovered();
                let asked: HashSet<String> = mine
                    .into_iter()
                    .zip(asked)
                    .filter_map(|(m, a)| a.then_some(m))
                    .collect();
                if asked.is_empty() {
                    continue;
                }
                let n = held.cancel_requested(&asked);
                if n > 0 {
                    tracing::info!(queue = %queue.name(), jobs = n, "cancelling running jobs, as asked");
                }
            }
            Err(e) => {
                outage.failed(&e);
            }
        }
    }
}
