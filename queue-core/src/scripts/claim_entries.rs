//! `claim_entries.lua`: the second step of a fast claim (`claim_fast.rs`). Claims the
//! entries it read that are not lean jobs without a record, as `move_to_active` would.

use super::move_to_active::Taken;
use super::{Call, Reply, EVENTS_MAXLEN};
use crate::error::Result;
use crate::store::QueueStore;

script!(SCRIPT, "claim_entries.lua");

/// The entries a fast claim read from the lane of priority `prio` that are not lean jobs
/// without a record, `stored`: each entry id with its job id (empty when it names none).
/// `now` is when the fast claim started them.
pub(crate) async fn claim(
    queue: &QueueStore,
    prio: i32,
    stored: &[(String, Vec<u8>)],
    now: i64,
) -> Result<Vec<Taken>> {
    let keys = &queue.keys;
    let caps = queue.redis.caps();
    let mut call = Call::new(&SCRIPT, 5);
    call.arg(keys.events())
        .arg(keys.failed())
        .arg(keys.metrics_failed())
        .arg(keys.meta())
        .arg(keys.lane(prio))
        .arg(crate::keys::GROUP)
        .arg(EVENTS_MAXLEN)
        .arg(keys.job_prefix())
        .arg(caps.max_data_bytes)
        .arg(caps.max_opts_bytes);
    for (sid, id) in stored {
        call.arg(sid).arg(&id[..]);
    }
    let v: redis::Value = call.invoke_on(queue).await?;
    let mut r = Reply::owned(v)?;
    let lane_prio = |_lane: i64| Ok(prio);
    let mut taken = Vec::with_capacity(stored.len());
    while r.remaining() > 0 {
        taken.push(Taken::stored(&mut r, &lane_prio, now)?);
    }
    Ok(taken)
}
