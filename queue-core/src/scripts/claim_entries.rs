//! `claim_entries.lua`: the second step of a fast claim (`claim_fast.rs`). Claims the
//! entries it read that are not lean jobs without a record, as `move_to_active` would, and
//! writes the `active` events of its lean jobs.

use super::move_to_active::Taken;
use super::{Call, Reply, EVENTS_MAXLEN};
use crate::error::Result;
use crate::store::QueueStore;

script!(SCRIPT, "claim_entries.lua");

/// The entries a fast claim read from the lane of priority `prio`: `lean` the entry ids of
/// its lean jobs (for their event), `stored` the others, each entry id with its job id
/// (empty when it names none). `now` is when the fast claim started them.
pub(crate) async fn claim(
    queue: &QueueStore,
    prio: i32,
    lean: &[&str],
    stored: &[(String, Vec<u8>)],
    now: i64,
) -> Result<Vec<Taken>> {
    let v: redis::Value = call(queue, prio, lean, stored).invoke_on(queue).await?;
    let mut r = Reply::owned(v)?;
    let lane_prio = |_lane: i64| Ok(prio);
    let mut taken = Vec::with_capacity(stored.len());
    while r.remaining() > 0 {
        taken.push(Taken::stored(&mut r, &lane_prio, now)?);
    }
    Ok(taken)
}

/// Writes the `active` events of the lean jobs (their entry ids `lean`) a fast claim read
/// from the lane of priority `prio`, when it read nothing else: sent without waiting for
/// the answer, so the jobs start at once (a failure costs the events, logged).
pub(crate) fn announce(queue: &QueueStore, prio: i32, lean: &[&str]) {
    let call = call(queue, prio, lean, &[]);
    let redis = queue.redis.clone();
    tokio::spawn(async move {
        if let Err(e) = call.send::<redis::Value>(&redis).await {
            tracing::debug!(error = %e, "the active events of a fast claim were not written");
        }
    });
}

/// The call of `claim_entries.lua` for these entries.
fn call(
    queue: &QueueStore,
    prio: i32,
    lean: &[&str],
    stored: &[(String, Vec<u8>)],
) -> Call<'static> {
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
        .arg(caps.max_opts_bytes)
        .arg(prio)
        .arg(lean.len())
        .arg(lean);
    for (sid, id) in stored {
        call.arg(sid).arg(&id[..]);
    }
    call
}
