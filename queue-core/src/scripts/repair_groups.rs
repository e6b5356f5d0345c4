//! `repair_groups.lua`: the sweep's repair of a page of a queue's groups.

use super::invoke;
use crate::error::Result;
use crate::store::QueueStore;

script!(SCRIPT, "repair_groups.lua");

/// Groups looked at per call.
const PAGE: u64 = 200;

/// Repairs one page of groups from `cursor` (a ZSCAN cursor, "0" to start); returns the
/// next cursor ("0" once round) and how many groups were repaired.
pub(crate) async fn repair(q: &QueueStore, cursor: &str) -> Result<(String, i64)> {
    let keys = &q.keys;
    invoke(
        &q.redis,
        SCRIPT
            .key(keys.meta())
            .key(keys.marker())
            .arg(keys.job_prefix())
            .arg(cursor)
            .arg(PAGE)
            .arg(crate::keys::GROUP),
    )
    .await
}
