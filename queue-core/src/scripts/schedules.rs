//! Plain reads of a queue's schedules (definitions hash, due set); the writes are the
//! `schedule_*` scripts. They run by the Redis clock (`node_time.rs`), as every process
//! must agree on "now".

use super::budget;
use crate::error::Result;
use crate::store::QueueStore;

/// Members of a sorted set with their scores.
type Scored = Vec<(String, f64)>;

/// Most schedule ids one `HKEYS` reads (~15 ms for 50,000); past it they are scanned.
const HKEYS_MAX: u64 = 50_000;
/// Elements one `ZSCAN` or `HSCAN` step asks for.
const SCAN_COUNT: usize = 1_000;
/// Definitions one `HMGET` reads, whatever their sizes (300,000 small ones in 4 MiB runs
/// took 60 ms a read).
const DEFINITIONS_PER_READ: usize = 1_000;

/// Every schedule's stored definition, and the due set, each read in bounded steps: the due
/// set scanned, the ids read whole while there are at most [`HKEYS_MAX`] (scanned past it,
/// when some schedule has no due tick), then the definitions in bounded reads
/// ([`definitions`]). Not one snapshot: one removed meanwhile is left out, one added
/// meanwhile may show without its next tick. (One `HKEYS` and one `ZRANGE` of 300,000
/// schedules held Redis 119 ms and 111 ms.)
pub(crate) async fn all(q: &QueueStore) -> Result<(Vec<(String, String)>, Scored)> {
    let mut due: Scored = Vec::new();
    scan(q, "ZSCAN", q.keys.schedules_due(), SCAN_COUNT, |page| {
        for pair in page.chunks_exact(2) {
            due.push((pair[0].clone(), pair[1].parse().unwrap_or(f64::NAN)));
        }
    })
    .await?;
    // (a scan may return an element twice)
    due.sort_by(|a, b| a.0.cmp(&b.0));
    due.dedup_by(|a, b| a.0 == b.0);
    let stored: u64 = redis::cmd("HLEN")
        .arg(q.keys.schedules())
        .query_async(&mut q.redis.conn())
        .await
        .map_err(|e| q.redis.err(e))?;
    let ids: Vec<String> = if stored <= HKEYS_MAX {
        redis::cmd("HKEYS")
            .arg(q.keys.schedules())
            .query_async(&mut q.redis.conn())
            .await
            .map_err(|e| q.redis.err(e))?
    } else if stored <= due.len() as u64 {
        // every schedule has its due tick: the due set names them all
        due.iter().map(|(id, _)| id.clone()).collect()
    } else {
        scanned_ids(q).await?
    };
    let defs = definitions(q, &ids).await?;
    let defs = ids
        .into_iter()
        .zip(defs)
        .filter_map(|(id, def)| Some((id, def?)))
        .collect();
    Ok((defs, due))
}

/// The ids of the schedules hash, scanned a few at a time: a step returns the definitions
/// too (up to the data cap each), so it asks for few.
async fn scanned_ids(q: &QueueStore) -> Result<Vec<String>> {
    let mut ids = Vec::new();
    scan(q, "HSCAN", q.keys.schedules(), 10, |page| {
        ids.extend(page.into_iter().step_by(2))
    })
    .await?;
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// Runs scan command `cmd` (`ZSCAN`, `HSCAN`) over `key` to its end, `count` asked for a
/// step, handing each step's elements (pairs, flat) to `each`.
async fn scan(
    q: &QueueStore,
    cmd: &str,
    key: String,
    count: usize,
    mut each: impl FnMut(Vec<String>),
) -> Result<()> {
    let mut cursor = 0u64;
    loop {
        let (next, page): (u64, Vec<String>) = redis::cmd(cmd)
            .arg(&key)
            .arg(cursor)
            .arg("COUNT")
            .arg(count)
            .query_async(&mut q.redis.conn())
            .await
            .map_err(|e| q.redis.err(e))?;
        each(page);
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
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
                for part in ids[r].chunks(DEFINITIONS_PER_READ) {
                    let defs: Vec<Option<String>> = redis::cmd("HMGET")
                        .arg(q.keys.schedules())
                        .arg(part.iter().map(AsRef::as_ref).collect::<Vec<&str>>())
                        .query_async(&mut q.redis.conn())
                        .await
                        .map_err(|e| q.redis.err(e))?;
                    out.extend(defs);
                }
            }
            budget::Run::Skip(..) => out.push(None),
        }
    }
    Ok(out)
}
