//! `schedule_upsert.lua`: stores a schedule and its first tick, replacing one with the same
//! id, and wakes the workers' schedule loops.

use super::invoke;
use crate::error::Result;
use crate::store::QueueStore;

script!(SCRIPT, "schedule_upsert.lua");

/// Stores schedule `id` (its stored definition `def`); returns its first tick, or -1 when
/// the cron tick `first_cron` is no longer in the future by Redis' clock.
pub(crate) async fn schedule_upsert(
    q: &QueueStore,
    id: &str,
    def: &str,
    every_ms: u64,
    first_cron: u64,
) -> Result<i64> {
    let keys = &q.keys;
    let (first, _replaced): (i64, i64) = invoke(
        &q.redis,
        SCRIPT
            .key(keys.schedules())
            .key(keys.schedules_due())
            .key(keys.schedules_wake())
            .arg(id)
            .arg(def)
            .arg(every_ms)
            .arg(first_cron),
    )
    .await?;
    Ok(first)
}
