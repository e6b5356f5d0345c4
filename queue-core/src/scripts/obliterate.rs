//! Deleting every key of a queue (`Queue::obliterate`): a bounded SCAN + UNLINK of the
//! queue's hash tag on its node, then its name out of the registry.

use crate::error::Result;
use crate::keys::queue_registry;
use crate::scan::scan_unlink;
use crate::store::QueueStore;

/// Whether the queue has its meta hash or its lanes (a queue that never had a job, a pause
/// or a limit has neither, and no worker can claim anything of it).
pub(crate) async fn has_meta_or_lanes(q: &QueueStore) -> Result<bool> {
    let n: u64 = redis::cmd("EXISTS")
        .arg(q.keys.meta())
        .arg(q.keys.lanes())
        .query_async(&mut q.redis.conn())
        .await
        .map_err(|e| q.redis.err(e))?;
    Ok(n > 0)
}

/// Deletes every key of the queue and its registry entry; how many keys were deleted.
pub(crate) async fn delete_all(q: &QueueStore) -> Result<u64> {
    let pattern = format!("{}:*", q.keys.base());
    let deleted = scan_unlink(&q.redis, &pattern).await?;
    let _: i64 = redis::cmd("SREM")
        .arg(queue_registry(&q.prefix))
        .arg(&q.name)
        .query_async(&mut q.redis.conn())
        .await
        .map_err(|e| q.redis.err(e))?;
    super::refresh_lanes(q).await?;
    Ok(deleted)
}
