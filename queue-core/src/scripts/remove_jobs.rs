//! `remove_jobs.lua`: deletes jobs that are not running, with their logs.

use super::{invoke_with_lanes, Reply, EVENTS_MAXLEN};
use crate::error::{Error, Result};
use crate::keys::GROUP;
use crate::store::QueueStore;

script!(SCRIPT, "remove_jobs.lua");

/// Deletes a job that is not running (waiting, delayed, completed or failed) and its
/// logs. An active job is refused: remove it once it has finished.
pub(crate) async fn remove_job(q: &QueueStore, id: &str) -> Result<()> {
    let keys = &q.keys;
    let (v, _) = invoke_with_lanes(q, &SCRIPT, "removing a job", |inv, lanes| {
        inv.key(keys.meta())
            .key(keys.delayed())
            .key(keys.completed())
            .key(keys.failed())
            .key(keys.events())
            .key(keys.outbox())
            .key(keys.waiting_children())
            .key(keys.staged());
        for k in lanes.keys(keys) {
            inv.key(k);
        }
        inv.arg(GROUP)
            .arg(EVENTS_MAXLEN)
            .arg(keys.job_prefix())
            .arg(&lanes.version)
            .arg(lanes.prios.len());
        for p in &lanes.prios {
            inv.arg(*p);
        }
        inv.arg(id);
    })
    .await?;
    let mut r = Reply::new(&v)?;
    let _ok = r.string()?;
    if r.int()? == 1 {
        return Ok(());
    }
    let _id = r.string()?;
    match r.string()?.as_str() {
        "active" => Err(Error::JobState {
            queue: q.name.as_str().to_string(),
            id: id.to_string(),
            action: "remove",
            state: "active (remove it once it has finished)".into(),
        }),
        _ => Err(Error::JobNotFound {
            queue: q.name.as_str().to_string(),
            id: id.to_string(),
        }),
    }
}
