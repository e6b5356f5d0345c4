//! `claim_entries.lua`: the second step of a fast claim (`claim_fast.rs`). Claims the
//! entries it read that are not lean jobs without a record, as `move_to_active` would; and
//! (no script) writes the `active` events of its lean jobs.

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

/// The most job ids one event entry holds (prelude.lua `EVENT_IDS_MAX`).
const EVENT_IDS_MAX: usize = 20;

/// Writes the `active` events of the lean jobs (their entry ids `lean`) a fast claim read
/// from the lane of priority `prio`, as prelude.lua `emit_lean` writes them, with plain
/// `XADD`s: no script needs to see them (one cost Redis ~0.3 µs a job, most of it turning
/// ids into Lua strings and back). Sent without waiting for the answer, so the jobs start
/// at once; a failure (an events key that is not a stream, a corrupt record) costs the
/// events alone, logged.
pub(crate) fn announce(queue: &QueueStore, prio: i32, lean: &[&str]) {
    if lean.is_empty() {
        return;
    }
    let events = queue.keys.events();
    let mut pipe = redis::pipe();
    for ids in lean.chunks(EVENT_IDS_MAX) {
        pipe.cmd("XADD")
            .arg(&events)
            .arg("MAXLEN")
            .arg("~")
            .arg(EVENTS_MAXLEN)
            .arg("*")
            .arg("event")
            .arg("active")
            .arg("lean")
            .arg(prio)
            .arg("ids")
            .arg(ids.join(" "));
    }
    let mut conn = queue.redis.conn();
    tokio::spawn(async move {
        if let Err(e) = pipe.query_async::<redis::Value>(&mut conn).await {
            tracing::debug!(error = %e, "the active events of a fast claim were not written");
        }
    });
}
