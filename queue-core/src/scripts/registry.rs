//! The registry of queue names (`{prefix}:queues`): added to by adds and workers, read by
//! `jobq stats` and the dashboard.

use crate::connection::Redis;
use crate::error::Result;
use crate::keys::queue_registry;
use crate::store::QueueStore;

/// Puts the queue's name in the registry (once per handle), so `stats` and the
/// dashboard list it without SCAN. Done by adds and by workers, not by reads: looking
/// at a queue that does not exist must not make it appear.
pub(crate) async fn register(q: &QueueStore) -> Result<()> {
    use std::sync::atomic::Ordering;
    if q.registered.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut c = q.redis.conn();
    let _: i64 = redis::cmd("SADD")
        .arg(queue_registry(&q.prefix))
        .arg(&q.name)
        .query_async(&mut c)
        .await
        .map_err(|e| q.redis.err(e))?;
    q.registered.store(true, Ordering::Relaxed);
    Ok(())
}

/// Every queue registered under `prefix`, sorted.
pub(crate) async fn list_queues(redis: &Redis, prefix: &str) -> Result<Vec<String>> {
    let mut conn = redis.conn();
    let mut names: Vec<String> = redis::cmd("SMEMBERS")
        .arg(queue_registry(prefix))
        .query_async(&mut conn)
        .await
        .map_err(|e| redis.err(e))?;
    names.sort();
    Ok(names)
}
