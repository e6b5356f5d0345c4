//! `cancel.lua`: cancels one job — at once when it is not running, by a cancel request to
//! the worker running it otherwise.

use super::{invoke_with_lanes, Reply, EVENTS_MAXLEN, TRIM_BUDGET};
use crate::error::{Error, Result};
use crate::job::Retention;
use crate::keys::GROUP;
use crate::store::QueueStore;

script!(SCRIPT, "cancel.lua");

/// Age past which a cancel request is stale: one is answered (removed) when its attempt
/// ends cancelled; one whose attempt completed anyway stays, matching nothing (it names the
/// attempt, not just the job), and a later cancel removes it once it is this old.
pub(crate) const STALE_REQUEST_MS: u64 = 86_400_000;

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
            .arg(STALE_REQUEST_MS)
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
        "corrupt" => Err(refused(corrupt_state(&r.string()?))),
        _ => Err(Error::JobNotFound {
            queue: q.name.clone(),
            id: id.to_string(),
        }),
    }
}

/// What a job whose record cannot be read (`why`) is said to be when a change of it is
/// refused: removing it is the way out.
pub(crate) fn corrupt_state(why: &str) -> String {
    format!("corrupt ({why}): remove it")
}

/// The member of the queue's cancel requests that asks to stop the attempt of job `id`
/// on lane entry `sid` (as `request_member` in the prelude).
pub(crate) fn request_member(sid: &str, id: &str) -> String {
    format!("{sid} {id}")
}

/// Which of `members` (attempts, as [`request_member`]) have a cancel request: one
/// `ZMSCORE` for all of them.
pub(crate) async fn requested(q: &QueueStore, members: &[String]) -> Result<Vec<bool>> {
    if members.is_empty() {
        return Ok(Vec::new());
    }
    let scores: Vec<Option<f64>> = redis::cmd("ZMSCORE")
        .arg(q.keys.cancels())
        .arg(members)
        .query_async(&mut q.redis.conn())
        .await
        .map_err(|e| q.redis.err(e))?;
    Ok(scores.into_iter().map(|s| s.is_some()).collect())
}
