//! `drain.lua`: deletes a batch of jobs that had not started when the drain began.

use super::{invoke_on, BATCH, EVENTS_MAXLEN};
use crate::error::Result;
use crate::keys::GROUP;
use crate::lanes::Lanes;
use crate::store::QueueStore;

script!(SCRIPT, "drain.lua");

/// Deletes the delayed jobs `ids`, or (none given) up to a batch of the lanes' entries up to
/// `bounds` (each lane's last entry id when the drain began); how many were deleted.
pub(crate) async fn drain(
    q: &QueueStore,
    lanes: &Lanes,
    lane_keys: &[String],
    bounds: &[String],
    ids: &[String],
) -> Result<u64> {
    let keys = &q.keys;
    let mut inv = SCRIPT.prepare_invoke();
    inv.key(keys.meta())
        .key(keys.delayed())
        .key(keys.events())
        .key(keys.outbox());
    for k in lane_keys {
        inv.key(k);
    }
    inv.arg(GROUP)
        .arg(BATCH)
        .arg(keys.job_prefix())
        .arg(EVENTS_MAXLEN)
        .arg(lanes.prios.len());
    for p in &lanes.prios {
        inv.arg(*p);
    }
    for b in bounds {
        inv.arg(b);
    }
    for id in ids {
        inv.arg(id);
    }
    invoke_on(q, &inv).await
}
