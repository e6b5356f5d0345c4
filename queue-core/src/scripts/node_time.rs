//! `node_time.lua`: the Redis clock on the node holding a queue, which is the clock its
//! scripts use (on a cluster, a bare TIME would go to any node, whose clock may differ).

use super::invoke;
use crate::error::Result;
use crate::store::QueueStore;

standalone_script!(SCRIPT, "node_time.lua");

/// The queue's node clock in milliseconds since the epoch.
pub(crate) async fn now_ms(q: &QueueStore) -> Result<u64> {
    Ok(node_time_us(q).await?.max(0) as u64 / 1000)
}

/// The queue's node clock in microseconds since the epoch.
pub(crate) async fn node_time_us(q: &QueueStore) -> Result<i64> {
    let (secs, micros): (i64, i64) = invoke(&q.redis, &SCRIPT.key(q.keys.meta())).await?;
    Ok(secs * 1_000_000 + micros)
}
