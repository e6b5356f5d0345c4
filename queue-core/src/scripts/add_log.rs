//! `add_log.lua`: a line appended to a job's log, the log capped.

use super::{invoke, MAX_LOG_LINES};
use crate::error::Result;
use crate::job::lean_place;
use crate::keys::GROUP;
use crate::store::QueueStore;

script!(SCRIPT, "add_log.lua");

/// Appends a line to a job's log.
pub(crate) async fn add_log(q: &QueueStore, id: &str, line: &str) -> Result<bool> {
    let keys = &q.keys;
    let n: i64 = invoke(
        &q.redis,
        SCRIPT
            .key(keys.job(id))
            .key(keys.job_logs(id))
            // (a lean job's record is made from its entry, in the lane its id names)
            .key(keys.lane(lean_place(id).map_or(0, |(prio, _)| prio)))
            .key(keys.meta())
            .arg(line)
            .arg(MAX_LOG_LINES)
            .arg(id)
            .arg(GROUP),
    )
    .await?;
    Ok(n > 0)
}
