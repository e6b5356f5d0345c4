//! `complete.lua`: records a batch of successful attempts (result stored, job to the
//! completed set or deleted by its retention, lane entries acknowledged, metrics counted).

use super::{invoke, outcome_call, Attempt};
use crate::error::Result;
use crate::job::Retention;
use crate::store::QueueStore;

script!(SCRIPT, "complete.lua");

/// Records each attempt's `result`; returns the ids of jobs this worker had lost to a
/// reclaimer (their outcomes are not recorded).
pub(crate) async fn complete(
    q: &QueueStore,
    jobs: &[(Attempt<'_>, &str)],
    policy: Retention,
) -> Result<Vec<String>> {
    let keys = &q.keys;
    let prios = jobs.iter().map(|(a, _)| a.prio);
    let (mut inv, numbers) = outcome_call(
        &SCRIPT,
        q,
        &[
            keys.meta(),
            keys.completed(),
            keys.events(),
            keys.metrics_completed(),
        ],
        prios,
        jobs.len(),
        policy,
    );
    for ((job, result), lane) in jobs.iter().zip(numbers) {
        inv.arg(job.id)
            .arg(lane)
            .arg(job.sid)
            .arg(*result)
            .arg(job.attempt)
            .arg(job.started_ms);
    }
    invoke(&q.redis, &inv).await
}
