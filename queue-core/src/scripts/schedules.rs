//! Plain reads of a queue's schedules (definitions hash, due set); the writes are the
//! `schedule_*` scripts. They run by the Redis clock (`node_time.rs`), as every process
//! must agree on "now".

use super::budget;
use crate::error::Result;
use crate::store::QueueStore;

/// Members of a sorted set with their scores.
type Scored = Vec<(String, f64)>;

/// Every schedule's stored definition, and the due set: the ids and the due set read
/// together, then the definitions in bounded reads ([`definitions`]); one removed meanwhile
/// is left out.
pub(crate) async fn all(q: &QueueStore) -> Result<(Vec<(String, String)>, Scored)> {
    let (ids, due): (Vec<String>, Scored) = redis::pipe()
        .atomic()
        .hkeys(q.keys.schedules())
        .zrange_withscores(q.keys.schedules_due(), 0, -1)
        .query_async(&mut q.redis.conn())
        .await
        .map_err(|e| q.redis.err(e))?;
    let defs = definitions(q, &ids).await?;
    let defs = ids
        .into_iter()
        .zip(defs)
        .filter_map(|(id, def)| Some((id, def?)))
        .collect();
    Ok((defs, due))
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

/// The Redis clock and `batch` due ticks from the `start`th earliest, read together.
pub(crate) async fn due(
    q: &QueueStore,
    start: usize,
    batch: usize,
) -> Result<((u64, u64), Scored)> {
    redis::pipe()
        .atomic()
        .cmd("TIME")
        .zrange_withscores(
            q.keys.schedules_due(),
            start as isize,
            (start + batch) as isize - 1,
        )
        .query_async(&mut q.redis.conn())
        .await
        .map_err(|e| q.redis.err(e))
}

/// The stored definitions of schedules `ids` (None for one removed meanwhile). Their sizes
/// are read first, then the definitions in runs of at most [`budget::READ_BUDGET`] bytes: a
/// definition may hold a job's data up to the cap (1 MiB), and one read of 200 of them held
/// Redis for over a second.
pub(crate) async fn definitions<S: AsRef<str>>(
    q: &QueueStore,
    ids: &[S],
) -> Result<Vec<Option<String>>> {
    let mut sizes = Vec::with_capacity(ids.len());
    for part in ids.chunks(1_000) {
        let mut pipe = redis::pipe();
        for id in part {
            pipe.cmd("HSTRLEN").arg(q.keys.schedules()).arg(id.as_ref());
        }
        let got: Vec<u64> = pipe
            .query_async(&mut q.redis.conn())
            .await
            .map_err(|e| q.redis.err(e))?;
        sizes.extend(got.into_iter().map(Some));
    }
    let mut out = Vec::with_capacity(ids.len());
    for run in budget::pack(&sizes, |_| String::new()) {
        match run {
            budget::Run::Read(r) => {
                let defs: Vec<Option<String>> = redis::cmd("HMGET")
                    .arg(q.keys.schedules())
                    .arg(ids[r].iter().map(AsRef::as_ref).collect::<Vec<&str>>())
                    .query_async(&mut q.redis.conn())
                    .await
                    .map_err(|e| q.redis.err(e))?;
                out.extend(defs);
            }
            budget::Run::Skip(..) => out.push(None),
        }
    }
    Ok(out)
}
