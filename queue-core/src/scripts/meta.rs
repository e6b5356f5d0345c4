//! Plain reads of fields of a queue's meta hash (its limits, its processing-time
//! histogram), which the scripts keep.

use redis::FromRedisValue;

use crate::error::Result;
use crate::store::QueueStore;

/// The meta hash's `fields`, in one HMGET.
pub(crate) async fn fields<T: FromRedisValue>(q: &QueueStore, fields: &[String]) -> Result<T> {
    redis::cmd("HMGET")
        .arg(q.keys.meta())
        .arg(fields)
        .query_async(&mut q.redis.conn())
        .await
        .map_err(|e| q.redis.err(e))
}
