//! Removing every key that matches a pattern, for the operations that have to (a queue's
//! obliteration, a cache's prefix invalidation), without ever blocking Redis for long.

use crate::connection::Redis;
use crate::error::Result;

/// Keys asked for per SCAN call, and so removed per UNLINK at most.
const SCAN_COUNT: u64 = 1_000;

/// Removes every key matching the glob `pattern` and returns how many were removed.
///
/// Walks the keyspace with SCAN, never KEYS, and removes each batch with UNLINK (which
/// frees the memory in the background), so no single command holds Redis up for long.
/// Keys written while it runs may or may not be removed.
pub(crate) async fn scan_unlink(redis: &Redis, pattern: &str) -> Result<u64> {
    let mut conn = redis.conn();
    let mut removed = 0u64;
    // in a cluster, every master (or the one of the pattern's hash tag) has its own walk
    for target in redis.scan_targets(pattern).await? {
        let mut cursor = 0u64;
        loop {
            let (next, keys) = redis
                .scan_page(&target, cursor, pattern, SCAN_COUNT)
                .await?;
            if !keys.is_empty() {
                let n: u64 = redis::cmd("UNLINK")
                    .arg(keys)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| redis.err(e))?;
                removed += n;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    Ok(removed)
}
