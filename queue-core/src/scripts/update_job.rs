//! `update_job.lua`: replaces a job's data or changes its priority (moving a waiting job to
//! its new lane).

use super::{invoke, EVENTS_MAXLEN};
use crate::error::{Error, Result};
use crate::job::lean_place;
use crate::keys::GROUP;
use crate::store::QueueStore;

script!(SCRIPT, "update_job.lua");

/// Runs `update_job`: `value` is the new priority; a data change passes the hash's
/// new `data` field/value pairs as `fields`.
pub(crate) async fn update_job(
    q: &QueueStore,
    id: &str,
    what: &str,
    value: &str,
    current_prio: i32,
    new_prio: i32,
    fields: &[std::borrow::Cow<'_, str>],
) -> Result<()> {
    let keys = &q.keys;
    let outcome: String = invoke(
        &q.redis,
        SCRIPT
            .key(keys.job(id))
            .key(keys.meta())
            .key(keys.lanes())
            .key(keys.events())
            .key(keys.lane(new_prio))
            // (a lean job's record is made from its entry, in the lane its id names)
            .key(keys.lane(lean_place(id).map_or(current_prio, |(prio, _)| prio)))
            .arg(id)
            .arg(what)
            .arg(value)
            .arg(GROUP)
            .arg(EVENTS_MAXLEN)
            .arg(fields),
    )
    .await?;
    match outcome.as_str() {
        "ok" => Ok(()),
        "missing" => Err(Error::JobNotFound {
            queue: q.name.as_str().to_string(),
            id: id.to_string(),
        }),
        state => Err(Error::JobState {
            queue: q.name.as_str().to_string(),
            id: id.to_string(),
            action: "change the priority of",
            state: state.to_string(),
        }),
    }
}
