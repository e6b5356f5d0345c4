//! A queue's per-minute throughput, as the finishing scripts count it (`complete.lua`,
//! `fail_or_retry.lua`): the current minute in the meta hash, older ones in a list.

use crate::error::Result;
use crate::store::QueueStore;

/// Jobs completed (or failed, with `failed = true`) per minute over the last `minutes`
/// minutes, newest first, by the Redis clock.
pub(crate) async fn metrics(q: &QueueStore, failed: bool, minutes: usize) -> Result<Vec<u64>> {
    let keys = &q.keys;
    let (list, tag) = if failed {
        (keys.metrics_failed(), "f")
    } else {
        (keys.metrics_completed(), "c")
    };
    let mut conn = q.redis.conn();
    let (minute, current, older, time): (Option<i64>, Option<u64>, Vec<u64>, (i64, i64)) =
        redis::pipe()
            .hget(keys.meta(), format!("{tag}m"))
            .hget(keys.meta(), format!("{tag}c"))
            .lrange(&list, 0, minutes as isize)
            .cmd("TIME")
            .query_async(&mut conn)
            .await
            .map_err(|e| q.redis.err(e))?;
    let now_minute = time.0 / 60;
    let mut out = vec![0u64; minutes];
    if let Some(m) = minute {
        // the bucket of minute `m` sits `now_minute - m` places back, older ones after it
        let back = (now_minute - m).max(0) as usize;
        if back < minutes {
            out[back] = current.unwrap_or(0);
        }
        for (i, v) in older.into_iter().enumerate() {
            if back + 1 + i < minutes {
                out[back + 1 + i] = v;
            }
        }
    }
    Ok(out)
}
