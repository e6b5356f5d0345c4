//! `complete.lua`: records a batch of successful attempts (result stored, job to the
//! completed set or deleted by its retention, lane entries acknowledged, metrics counted).

use super::{invoke_on, outcome_call, Attempt};
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
    let keys = [
        keys.meta(),
        keys.completed(),
        keys.events(),
        keys.metrics_completed(),
        keys.outbox(),
    ];
    let inv = outcome_call(&SCRIPT, q, &keys, jobs, policy, |inv, result| {
        inv.arg(*result);
    });
    invoke_on(q, &inv).await
}
