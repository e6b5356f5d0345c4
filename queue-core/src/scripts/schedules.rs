//! Plain reads of a queue's schedules (definitions hash, due set); the writes are the
//! `schedule_*` scripts. They run by the Redis clock (`node_time.rs`), as every process
//! must agree on "now".

use crate::error::Result;
use crate::store::QueueStore;

/// Members of a sorted set with their scores.
type Scored = Vec<(String, f64)>;

/// Every schedule's stored definition, and the due set, read together.
pub(crate) async fn all(q: &QueueStore) -> Result<(Vec<(String, String)>, Scored)> {
    redis::pipe()
        .atomic()
        .hgetall(q.keys.schedules())
        .zrange_withscores(q.keys.schedules_due(), 0, -1)
        .query_async(&mut q.redis.conn())
        .await
        .map_err(|e| q.redis.err(e))
}

/// Schedule `id`'s stored definition and next tick, read together.
pub(crate) async fn one(q: &QueueStore, id: &str) -> Result<(Option<String>, Option<f64>)> {
    redis::pipe()
        .atomic()
        .hget(q.keys.schedules(), id)
        .zscore(q.keys.schedules_due(), id)
        .query_async(&mut q.redis.conn())
        .await
        .map_err(|e| q.redis.err(e))
}

/// The Redis clock and the earliest `batch` due ticks, read together.
pub(crate) async fn due(q: &QueueStore, batch: usize) -> Result<((u64, u64), Scored)> {
    redis::pipe()
        .atomic()
        .cmd("TIME")
        .zrange_withscores(q.keys.schedules_due(), 0, batch as isize - 1)
        .query_async(&mut q.redis.conn())
        .await
        .map_err(|e| q.redis.err(e))
}

/// The stored definitions of schedules `ids` (None for one removed meanwhile).
pub(crate) async fn definitions(q: &QueueStore, ids: &[&str]) -> Result<Vec<Option<String>>> {
    redis::cmd("HMGET")
        .arg(q.keys.schedules())
        .arg(ids)
        .query_async(&mut q.redis.conn())
        .await
        .map_err(|e| q.redis.err(e))
}
