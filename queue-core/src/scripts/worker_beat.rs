//! `worker_beat.lua`: one heartbeat of a worker: its record rewritten with a TTL, its
//! registry entry renewed, expired entries pruned.

use std::time::Duration;

use super::invoke;
use crate::connection::Redis;
use crate::error::Result;
use crate::keys::WorkerKeys;

standalone_script!(SCRIPT, "worker_beat.lua");

/// Expired registry entries pruned per heartbeat.
const PRUNE: usize = 100;

/// Writes worker `id`'s record (`info`, JSON) to live for `ttl`; the Redis clock (ms).
pub(crate) async fn worker_beat(
    redis: &Redis,
    keys: &WorkerKeys,
    id: &str,
    info: &str,
    ttl: Duration,
) -> Result<u64> {
    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
    let mut inv = SCRIPT.prepare_invoke();
    inv.key(keys.registry())
        .key(keys.record(id))
        .arg(id)
        .arg(info)
        .arg(ttl_ms)
        .arg(PRUNE);
    invoke(redis, &inv).await
}
