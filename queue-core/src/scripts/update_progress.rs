//! `update_progress.lua`: a running job's progress, stored and announced.

use super::{invoke, EVENTS_MAXLEN};
use crate::error::Result;
use crate::job::lean_place;
use crate::keys::GROUP;
use crate::store::QueueStore;

script!(SCRIPT, "update_progress.lua");

/// Reports progress of a running job (stored and announced as an event).
pub(crate) async fn update_progress(q: &QueueStore, id: &str, progress: &str) -> Result<bool> {
    let keys = &q.keys;
    let n: i64 = invoke(
        &q.redis,
        SCRIPT
            .key(keys.job(id))
            .key(keys.events())
            // (a lean job's record is made from its entry, in the lane its id names)
            .key(keys.lane(lean_place(id).map_or(0, |(prio, _)| prio)))
            .arg(id)
            .arg(progress)
            .arg(EVENTS_MAXLEN)
            .arg(GROUP),
    )
    .await?;
    Ok(n == 1)
}
