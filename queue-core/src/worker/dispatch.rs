//! The dispatcher of one queue: starts the jobs its fetch loop claimed, in claim order, each
//! as soon as a handler slot frees. Jobs claimed ahead of free slots (see `pace.rs`) wait here,
//! in order: tasks spawned all at once would start in whatever order the runtime polls them.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::run::{run_job, Active, Outcome, Shares, Stops};
use super::shared::Shared;
use crate::queue::Queue;

/// A job claimed from Redis, not started yet.
pub(crate) struct Claimed {
    pub job: Box<Active>,
    /// Its shares of the claim budget and of its queue's room.
    pub shares: Shares,
    /// Fire when the job must not run (lost to a reclaimer, the shutdown deadline, a cancel
    /// request).
    pub stops: Arc<Stops>,
}

/// Runs until the fetch loop is gone and every claimed job has been started (or abandoned).
pub(crate) async fn dispatch_loop(
    queue: Queue,
    shared: Arc<Shared>,
    mut claimed: mpsc::UnboundedReceiver<Claimed>,
    done_tx: mpsc::UnboundedSender<Outcome>,
) {
    while let Some(c) = claimed.recv().await {
        let slot = tokio::select! {
            biased;
            _ = c.stops.cancel.cancelled() => None,
            s = shared.slots.clone().acquire_owned() => s.ok(),
        };
        match slot {
            Some(slot) => {
                tokio::spawn(run_job(
                    queue.clone(),
                    shared.clone(),
                    c.job,
                    slot,
                    done_tx.clone(),
                    c.stops,
                    c.shares,
                ));
            }
            // never started: nothing to record, the job is left for reclaim (or cancelled)
            None => {
                let _ = done_tx.send(Outcome {
                    ending: c.stops.ending(),
                    job: c.job,
                    _room: c.shares.room,
                });
            }
        }
    }
}
