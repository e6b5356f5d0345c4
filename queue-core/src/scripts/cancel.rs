//! `cancel.lua`: cancels one job — at once when it is not running, by a cancel request to
//! the worker running it otherwise.

use super::{invoke_with_lanes, Reply, EVENTS_MAXLEN, TRIM_BUDGET};
use crate::error::{Error, Result};
use crate::job::Retention;
use crate::keys::GROUP;
use crate::store::QueueStore;

script!(SCRIPT, "cancel.lua");

/// Most cancel requests a queue keeps (the oldest go first): each worker holding jobs of
/// the queue reads them all a few times a second, so the set stays small. A request is
/// answered (removed) when its attempt ends; one left by a job that completed anyway goes
/// when newer ones push it out.
pub(crate) const MAX_CANCEL_REQUESTS: usize = 1_000;

/// What one cancel did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cancel {
    /// The job was not running: it is cancelled now. `parent`: it was a flow parent
    /// waiting for its children, which the caller cancels next.
    Done { parent: bool },
    /// The job is running: its worker stops it and records it cancelled.
    Requested,
}

/// Cancels job `id` of `q` (cancelled jobs are kept as failed ones: [`Retention::DEFAULT_FAILED`]).
pub(crate) async fn cancel(q: &QueueStore, id: &str) -> Result<Cancel> {
    let keys = &q.keys;
    let (keep, age) = Retention::DEFAULT_FAILED.as_args();
    let (v, _) = invoke_with_lanes(q, &SCRIPT, "cancelling a job", |inv, lanes| {
        inv.key(keys.meta())
            .key(keys.delayed())
            .key(keys.cancelled())
            .key(keys.waiting_children())
            .key(keys.events())
            .key(keys.outbox())
            .key(keys.cancels());
        for k in lanes.keys(keys) {
            inv.key(k);
        }
        inv.arg(GROUP)
            .arg(EVENTS_MAXLEN)
            .arg(keys.job_prefix())
            .arg(&lanes.version)
            .arg(keep)
            .arg(age)
            .arg(TRIM_BUDGET)
            .arg(MAX_CANCEL_REQUESTS)
            .arg(id)
            .arg(lanes.prios.len());
        for p in &lanes.prios {
            inv.arg(*p);
        }
    })
    .await?;
    let mut r = Reply::new(&v)?;
    let refused = |state: String| Error::JobState {
        queue: q.name.clone(),
        id: id.to_string(),
        action: "cancel",
        state,
    };
    match r.string()?.as_str() {
        "cancelled" => Ok(Cancel::Done {
            parent: r.int()? == 1,
        }),
        "requested" => Ok(Cancel::Requested),
        "finished" => Err(refused(r.string()?)),
        "staged" => Err(refused(
            "part of a flow whose add has not finished".to_string(),
        )),
        _ => Err(Error::JobNotFound {
            queue: q.name.clone(),
            id: id.to_string(),
        }),
    }
}

/// The ids of the queue's jobs with a cancel request (at most [`MAX_CANCEL_REQUESTS`]).
pub(crate) async fn requests(q: &QueueStore) -> Result<Vec<String>> {
    redis::cmd("ZRANGE")
        .arg(q.keys.cancels())
        .arg(0)
        .arg(MAX_CANCEL_REQUESTS - 1)
        .query_async(&mut q.redis.conn())
        .await
        .map_err(|e| q.redis.err(e))
}
