//! `retention.lua`: deletes finished jobs past their retention (by age or count), a bounded
//! number per call.

use super::{invoke_on, TRIM_BUDGET};
use crate::error::Result;
use crate::store::QueueStore;

script!(SCRIPT, "retention.lua");

/// One retention pass; (completed, failed, cancelled) jobs deleted.
pub(crate) async fn retention(q: &QueueStore) -> Result<(i64, i64, i64)> {
    let keys = &q.keys;
    invoke_on(
        q,
        SCRIPT
            .key(keys.meta())
            .key(keys.completed())
            .key(keys.failed())
            .key(keys.cancelled())
            .arg(keys.job_prefix())
            .arg(TRIM_BUDGET),
    )
    .await
}
