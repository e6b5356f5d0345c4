//! `fail_or_retry.lua`: records a batch of attempts that did not complete: each job goes back
//! to the delayed set for its retry (or snooze), or to the failed set (or is deleted by its
//! retention), or, stopped for a cancel request, to the cancelled set.

use std::time::Duration;

use super::{invoke_on, outcome_call, Attempt, Reply};
use crate::error::Result;
use crate::job::Retention;
use crate::store::QueueStore;

script!(SCRIPT, "fail_or_retry.lua");

/// How an attempt failed, and when (if at all) it runs again.
#[derive(Clone, Copy)]
pub(crate) struct Failure<'a> {
    pub message: &'a str,
    pub detail: &'a str,
    /// The delay before the retry (or the snooze); `None` when the job fails for good.
    pub retry: Option<Duration>,
    pub how: How,
}

/// What kind of ending a [`Failure`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum How {
    /// A failure: retried after `retry`, or failed for good.
    Failed,
    /// Stopped for a cancel request: the job ends cancelled.
    Cancelled,
    /// Snoozed: due again after `retry`, the attempt not counted.
    Snoozed,
}

impl How {
    fn letter(self) -> &'static str {
        match self {
            How::Failed => "f",
            How::Cancelled => "c",
            How::Snoozed => "s",
        }
    }
}

/// Records each failure; returns the ids of jobs this worker had lost to a reclaimer.
/// `again`: the batch is sent again (a call before failed, maybe after Redis ran it).
pub(crate) async fn fail_or_retry(
    q: &QueueStore,
    jobs: &[(Attempt<'_>, Failure<'_>)],
    policy: Retention,
    again: bool,
) -> Result<Vec<String>> {
    let keys = &q.keys;
    let keys = [
        keys.meta(),
        keys.delayed(),
        keys.failed(),
        keys.marker(),
        keys.events(),
        keys.metrics_failed(),
        keys.outbox(),
    ];
    let inv = outcome_call(&SCRIPT, q, &keys, jobs, policy, again, |inv, f| {
        inv.arg(f.message)
            .arg(f.detail)
            .arg(f.retry.map_or(-1, |d| d.as_millis() as i64))
            .arg(f.how.letter());
    });
    let reply: redis::Value = invoke_on(q, &inv).await?;
    // {retried, failed, lost id…}
    let mut r = Reply::new(&reply)?;
    let (_retried, _failed) = (r.int()?, r.int()?);
    let mut lost = Vec::with_capacity(r.remaining());
    while r.remaining() > 0 {
        lost.push(r.string()?);
    }
    Ok(lost)
}
