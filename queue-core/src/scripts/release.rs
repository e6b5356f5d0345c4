//! `release.lua`: giving back claims a worker does not hold : after a claim call failed,
//! Redis may still have run it, and its entries would sit pending to this worker with no
//! one renewing them. The fetch loop (worker/fetch.rs) calls [`release`] once Redis answers again.

use std::collections::HashMap;

use super::extend_lease::HeldEntry;
use super::{invoke_on, EVENTS_MAXLEN};
use crate::error::Result;
use crate::keys::{FRONT_LANE, GROUP};
use crate::store::QueueStore;

script!(SCRIPT, "release.lua");

/// Gives back every entry pending to `consumer` in `queue` that is not in `held`; returns
/// how many jobs went back to the front lane. `uncounted` names entries (lane priority,
/// entry id) a fast claim read without counting them out of `waiting`.
pub(crate) async fn release(
    queue: &QueueStore,
    held: &HashMap<i32, Vec<HeldEntry>>,
    uncounted: &[(i32, String)],
    consumer: &str,
) -> Result<i64> {
    let inner = queue;
    let keys = &inner.keys;
    let lanes = super::refresh_lanes(inner).await?;
    let mut prios = lanes.prios.clone();
    if !prios.contains(&FRONT_LANE) {
        prios.insert(0, FRONT_LANE);
    }
    let mut inv = SCRIPT.prepare_invoke();
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
    // (each as "<the lane's KEYS index, 1-based after the 5 fixed keys> <entry id>")
    let named = |prio: &i32, sid: &str| {
        prios
            .iter()
            .position(|p| p == prio)
            .map(|i| format!("{} {sid}", i + 6))
    };
    let uncounted: Vec<String> = uncounted
        .iter()
        .filter_map(|(prio, sid)| named(prio, sid))
        .collect();
    inv.arg(uncounted.len()).arg(&uncounted);
    for (prio, entries) in held {
        for e in entries {
            if let Some(entry) = named(prio, &e.sid) {
                inv.arg(entry);
            }
        }
    }
    invoke_on(inner, &inv).await
}
