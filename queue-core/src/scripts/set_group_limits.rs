//! `set_group_limits.lua`: sets or clears a per-group limit (the default or one group's
//! override) and gives parked groups their turn back.

use super::{invoke, EVENTS_MAXLEN};
use crate::error::Result;
use crate::store::QueueStore;

script!(SCRIPT, "set_group_limits.lua");

/// Sets limit `kind` (`c` or `r`) of `group` ("" the default) to `value` ("" clears it).
pub(crate) async fn set(q: &QueueStore, kind: &str, group: &str, value: &str) -> Result<()> {
    let keys = &q.keys;
    let _: i64 = invoke(
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
    .await?;
    Ok(())
}
