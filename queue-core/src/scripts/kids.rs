//! The plain reads of flows: a parent's children hash, the fields of children that tell
//! how they ended, and the parents and staged jobs due for a look (`flow/children.rs`,
//! `flow/reconcile.rs`).

use std::collections::HashMap;

use super::budget::{self, Run};
use super::hscan;
use crate::error::Result;
use crate::store::QueueStore;

/// The children hash of parent `id`: `<queue>/<id>` → stored outcome (see `keys.rs`
/// `job_kids`), in no particular order, read a bounded number of bytes a call
/// ([`hscan::read_hash`]), so a parent of 10,000 children with large return values never
/// makes one long call. `None` when the record is not a hash (a corrupt record: settle.lua
/// fails its parent).
pub(crate) async fn children_of(q: &QueueStore, id: &str) -> Result<Option<Vec<(String, String)>>> {
    hscan::read_hash(q, &q.keys.job_kids(id)).await
}

/// What a child's hash says of how it is: `state`, `sid`, `par`, `stg`, `rt`, `result`, `error`
/// (None when there is no such job). Read in one pipeline per call.
pub(crate) type ChildFields = Option<HashMap<&'static str, String>>;

/// The fields of jobs `ids` of `q` that tell whether (and how) they finished, read a
/// bounded number of bytes per round trip ([`budget::runs`]: return values can be large).
pub(crate) async fn child_fields(q: &QueueStore, ids: &[&str]) -> Result<Vec<ChildFields>> {
    let mut out = Vec::with_capacity(ids.len());
    for run in budget::runs(q, ids).await? {
        // (a record of more fields than a job has reads its few fields alone)
        let at = match run {
            Run::Read(at) => at,
            Run::Skip(i, _) => i..i + 1,
        };
        out.extend(fields_of(q, &ids[at]).await?);
    }
    Ok(out)
}

/// [`child_fields`] of `ids`, in one round trip.
async fn fields_of(q: &QueueStore, ids: &[&str]) -> Result<Vec<ChildFields>> {
    const FIELDS: [&str; 7] = ["state", "sid", "par", "stg", "rt", "result", "error"];
    let mut pipe = redis::pipe();
    for id in ids {
        pipe.cmd("HMGET").arg(q.keys.job(id)).arg(&FIELDS[..]);
    }
    let rows: Vec<Vec<Option<String>>> = pipe
        .query_async(&mut q.redis.conn())
        .await
        .map_err(|e| q.redis.err(e))?;
    Ok(rows
        .into_iter()
        .map(|row| {
            if row.iter().all(Option::is_none) {
                return None;
            }
            Some(
                FIELDS
                    .iter()
                    .zip(row)
                    .filter_map(|(f, v)| v.map(|v| (*f, v)))
                    .collect(),
            )
        })
        .collect())
}

/// Up to `count` members of sorted set `key` of `q` scored at most `max`.
pub(crate) async fn due(q: &QueueStore, key: &str, max: u64, count: usize) -> Result<Vec<String>> {
    redis::cmd("ZRANGEBYSCORE")
        .arg(key)
        .arg("-inf")
        .arg(max)
        .arg("LIMIT")
        .arg(0)
        .arg(count)
        .query_async(&mut q.redis.conn())
        .await
        .map_err(|e| q.redis.err(e))
}

/// Sets the score of `id` in sorted set `key` of `q` to `score`, if it is still a member.
pub(crate) async fn reschedule(q: &QueueStore, key: &str, id: &str, score: u64) -> Result<()> {
    let _: i64 = redis::cmd("ZADD")
        .arg(key)
        .arg("XX")
        .arg(score)
        .arg(id)
        .query_async(&mut q.redis.conn())
        .await
        .map_err(|e| q.redis.err(e))?;
    Ok(())
}

/// Removes `id` from sorted set `key` of `q`.
pub(crate) async fn forget(q: &QueueStore, key: &str, id: &str) -> Result<()> {
    let _: i64 = redis::cmd("ZREM")
        .arg(key)
        .arg(id)
        .query_async(&mut q.redis.conn())
        .await
        .map_err(|e| q.redis.err(e))?;
    Ok(())
}

/// Fields `fields` of job `id` of `q`.
pub(crate) async fn job_fields(
    q: &QueueStore,
    id: &str,
    fields: &[&str],
) -> Result<Vec<Option<String>>> {
    redis::cmd("HMGET")
        .arg(q.keys.job(id))
        .arg(fields)
        .query_async(&mut q.redis.conn())
        .await
        .map_err(|e| q.redis.err(e))
}
