//! `clean.lua`: deletes up to a batch of finished jobs that finished before a cutoff.

use super::{invoke, EVENTS_MAXLEN};
use crate::error::Result;
use crate::store::QueueStore;

script!(SCRIPT, "clean.lua");

/// Which finished set a clean works on.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Finished {
    Completed,
    Failed,
    Cancelled,
}

/// Deletes up to `want` jobs of the `finished` set that finished before `cutoff` (ms),
/// oldest first; how many were deleted.
pub(crate) async fn clean(
    q: &QueueStore,
    finished: Finished,
    cutoff: i64,
    want: u64,
) -> Result<u64> {
    let keys = &q.keys;
    let set = match finished {
        Finished::Completed => keys.completed(),
        Finished::Failed => keys.failed(),
        Finished::Cancelled => keys.cancelled(),
    };
    invoke(
        &q.redis,
        SCRIPT
            .key(set)
            .key(keys.events())
            .arg(cutoff)
            .arg(want)
            .arg(keys.job_prefix())
            .arg(EVENTS_MAXLEN),
    )
    .await
}
