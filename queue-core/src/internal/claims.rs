//! A worker's two ways of claiming jobs, one call at a time, for tests of the claim's
//! transitions (a worker makes these calls from its fetch loop, `worker/fetch.rs`).

use crate::error::Result;
use crate::queue::Queue;
use crate::scripts::claim_fast::{self, Fast};
use crate::scripts::move_to_active::{self, Claim};

/// One claimed job, as the worker got it.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub id: String,
    pub name: String,
    pub data: String,
    /// Its lane entry.
    pub sid: String,
    pub attempt: u32,
    /// Why it fails unrun (its record is corrupt).
    pub corrupt: Option<String>,
    /// A lean job's trace context, from its entry (None for the others: a worker reads
    /// theirs apart).
    pub traceparent: Option<String>,
}

/// What a claim gave: the jobs, and the lane the next may read fast (None: it must claim
/// the usual way).
#[derive(Debug)]
pub struct Claimed {
    pub jobs: Vec<ClaimedJob>,
    pub fast: Option<i32>,
}

fn claimed(c: Claim) -> Claimed {
    Claimed {
        jobs: c
            .jobs
            .into_iter()
            .map(|j| ClaimedJob {
                id: j.id,
                name: j.name,
                data: j.data,
                sid: j.sid,
                attempt: j.attempt,
                corrupt: j.corrupt,
                traceparent: j.lean.and_then(|l| l.traceparent),
            })
            .collect(),
        fast: c.fast,
    }
}

/// A `move_to_active` claim of up to `count` jobs for `consumer` (which reads the queue's
/// lanes first when this handle knows none).
pub async fn usual(queue: &Queue, consumer: &str, count: usize) -> Result<Claimed> {
    let store = &queue.inner;
    if store.lanes.get().prios.is_empty() {
        crate::scripts::refresh_lanes(store).await?;
    }
    let c =
        move_to_active::claim(store, consumer, count, std::time::Duration::from_millis(50)).await?;
    Ok(claimed(c))
}

/// A `claim_fast` claim of up to `count` entries of the lane of priority `prio`: the jobs,
/// or Err with the reason it claimed none.
pub async fn fast(
    queue: &Queue,
    consumer: &str,
    count: usize,
    prio: i32,
) -> Result<std::result::Result<Claimed, String>> {
    Ok(
        match claim_fast::claim(&queue.inner, consumer, count, prio).await? {
            Fast::Claimed(c) => Ok(claimed(c)),
            Fast::Veto(why) => Err(why),
            Fast::Uncounted(read) => Err(format!("{} entries read, not counted", read.len())),
        },
    )
}

/// Gives back every entry pending to `consumer` (`release`, as after a claim whose reply was
/// lost, with nothing held); `uncounted` names entries (lane priority, entry id) read
/// without being counted out of `waiting`. How many jobs went back.
pub async fn give_back(queue: &Queue, consumer: &str, uncounted: &[(i32, String)]) -> Result<i64> {
    crate::scripts::release::release(
        &queue.inner,
        &std::collections::HashMap::new(),
        uncounted,
        consumer,
    )
    .await
}
