//! `set_limits.lua`: sets or clears a queue-wide limit (rate or global concurrency) and wakes
//! the workers.

use super::{invoke, EVENTS_MAXLEN};
use crate::error::Result;
use crate::store::QueueStore;

script!(SCRIPT, "set_limits.lua");

/// Sets limit `kind` (`rate` or `conc`) to `max` per `window_ms`; an empty `max` clears it.
pub(crate) async fn set_limits(
    q: &QueueStore,
    kind: &str,
    max: &str,
    window_ms: u64,
) -> Result<()> {
    let keys = &q.keys;
    let _: i64 = invoke(
        &q.redis,
        SCRIPT
            .key(keys.meta())
            .key(keys.marker())
            .key(keys.rate_limiter())
            .key(keys.events())
            .arg(kind)
            .arg(max)
            .arg(window_ms)
            .arg(EVENTS_MAXLEN),
    )
    .await?;
    Ok(())
}
