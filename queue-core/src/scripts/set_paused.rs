//! `set_paused.lua`: pauses or resumes a queue, waking its workers on resume.

use super::{invoke, EVENTS_MAXLEN};
use crate::error::Result;
use crate::store::QueueStore;

script!(SCRIPT, "set_paused.lua");

pub(crate) async fn set_paused(q: &QueueStore, paused: bool) -> Result<()> {
    let keys = &q.keys;
    let _: i64 = invoke(
        &q.redis,
        SCRIPT
            .key(keys.meta())
            .key(keys.marker())
            .key(keys.events())
            .arg(if paused { "1" } else { "0" })
            .arg(EVENTS_MAXLEN),
    )
    .await?;
    Ok(())
}
