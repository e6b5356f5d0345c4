//! `set_group_limits.lua`: sets or clears a per-group limit (the default or one group's
//! override) and gives parked groups their turn back.

use super::{invoke, EVENTS_MAXLEN};
use crate::error::Result;
use crate::store::QueueStore;

script!(SCRIPT, "set_group_limits.lua");

/// Parked groups released per call (`RELEASE_MAX` in the script).
const RELEASE_MAX: i64 = 1_000;

/// Sets limit `kind` (`c` or `r`) of `group` ("" the default) to `value` ("" clears it);
/// a loosened default releases every parked group, a bounded call at a time.
pub(crate) async fn set(q: &QueueStore, kind: &str, group: &str, value: &str) -> Result<()> {
    let mut released = call(q, kind, group, value).await?;
    while released >= RELEASE_MAX {
        released = call(q, "release", "", "").await?;
    }
    Ok(())
}

async fn call(q: &QueueStore, kind: &str, group: &str, value: &str) -> Result<i64> {
    let keys = &q.keys;
    invoke(
        &q.redis,
        SCRIPT
            .key(keys.group_limits())
            .key(keys.group_parked())
            .key(keys.marker())
            .key(keys.events())
            .arg(kind)
            .arg(group)
            .arg(value)
            .arg(keys.job_prefix())
            .arg(EVENTS_MAXLEN),
    )
    .await
}
