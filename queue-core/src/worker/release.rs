//! Giving back claims a worker does not hold (see release.lua): after a claim call failed,
//! Redis may still have run it, and its entries would sit pending to this worker with no
//! one renewing them. The fetch loop calls [`release`] once Redis answers again.

use super::held::Held;
use crate::error::Result;
use crate::keys::{FRONT_LANE, GROUP};
use crate::queue::Queue;
use crate::scripts::{self, EVENTS_MAXLEN};

/// Gives back every entry pending to `consumer` in `queue` that is not in `held`; returns
/// how many jobs went back to the front lane.
pub(crate) async fn release(queue: &Queue, held: &Held, consumer: &str) -> Result<i64> {
    let inner = &queue.inner;
    let keys = &inner.keys;
    let lanes = inner.lanes.refresh(&inner.redis, keys).await?;
    let mut prios = lanes.prios.clone();
    if !prios.contains(&FRONT_LANE) {
        prios.insert(0, FRONT_LANE);
    }
    let mut inv = scripts::RELEASE.prepare_invoke();
    inv.key(keys.meta())
        .key(keys.lanes())
        .key(keys.front_lane())
        .key(keys.marker())
        .key(keys.events());
    for p in &prios {
        inv.key(keys.lane(*p));
    }
    inv.arg(GROUP)
        .arg(consumer)
        .arg(keys.job_prefix())
        .arg(EVENTS_MAXLEN);
    for (prio, entries) in held.by_lane() {
        if let Some(i) = prios.iter().position(|p| *p == prio) {
            for e in entries {
                // the lane's KEYS index (1-based, after the 5 fixed keys)
                inv.arg(format!("{} {}", i + 6, e.sid));
            }
        }
    }
    inv.invoke_async(&mut inner.redis.conn())
        .await
        .map_err(|e| inner.redis.err(e))
}
