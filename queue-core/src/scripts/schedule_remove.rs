//! `schedule_remove.lua`: deletes a schedule and its due tick.

use super::invoke;
use crate::error::Result;
use crate::store::QueueStore;

script!(SCRIPT, "schedule_remove.lua");

/// Removes schedule `id`; whether it existed.
pub(crate) async fn schedule_remove(q: &QueueStore, id: &str) -> Result<bool> {
    let keys = &q.keys;
    let n: i64 = invoke(
        &q.redis,
        SCRIPT
            .key(keys.schedules())
            .key(keys.schedules_due())
            .arg(id),
    )
    .await?;
    Ok(n == 1)
}
