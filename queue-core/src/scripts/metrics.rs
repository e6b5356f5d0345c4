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
    // read as text and parsed here: a counter that is not a number (a corrupt record)
    // counts 0 rather than failing the read (a reply of the wrong type would read as an
    // unreachable Redis)
    #[allow(clippy::type_complexity)]
    let (minute, current, older, time): (
        Option<Vec<u8>>,
        Option<Vec<u8>>,
        Vec<Vec<u8>>,
        (i64, i64),
    ) = redis::pipe()
        .hget(keys.meta(), format!("{tag}m"))
        .hget(keys.meta(), format!("{tag}c"))
        .lrange(&list, 0, minutes as isize)
        .cmd("TIME")
        .query_async(&mut conn)
        .await
        .map_err(|e| q.redis.err(e))?;
    let now_minute = time.0 / 60;
    let number = |v: &[u8]| std::str::from_utf8(v).ok()?.parse::<i64>().ok();
    let count = |v: &[u8]| number(v).map_or(0, |n| n.max(0) as u64);
    let mut out = vec![0u64; minutes];
    if let Some(m) = minute.as_deref().and_then(number) {
        // the bucket of minute `m` sits `now_minute - m` places back, older ones after it
        let back = (now_minute - m).max(0) as usize;
        if back < minutes {
            out[back] = current.as_deref().map_or(0, count);
        }
        for (i, v) in older.into_iter().enumerate() {
            if back + 1 + i < minutes {
                out[back + 1 + i] = count(&v);
            }
        }
    }
    Ok(out)
}
