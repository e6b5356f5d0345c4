//! `complete.lua`: records a batch of successful attempts (result stored, job to the
//! completed set or deleted by its retention, lane entries acknowledged, metrics counted).

use std::borrow::Cow;

use super::packed::Packed;
use super::{lanes_of, Attempt, Call, LeanAttempt, EVENTS_MAXLEN, TRIM_BUDGET};
use crate::error::Result;
use crate::job::{push_long, Retention};
use crate::store::QueueStore;

script!(SCRIPT, "complete.lua");

/// Records each attempt's `result`; returns the ids of jobs this worker had lost to a
/// reclaimer (their outcomes are not recorded). `again`: the batch is sent again (a call
/// before failed, maybe after Redis ran it).
pub(crate) async fn complete(
    q: &QueueStore,
    jobs: &[(Attempt<'_>, &str)],
    policy: Retention,
    again: bool,
) -> Result<Vec<String>> {
    let keys = &q.keys;
    let (lane_keys, numbers) = lanes_of(keys, jobs.iter().map(|(a, _)| a.prio));
    let (keep, age) = policy.as_args();
    let mut call = Call::new(&SCRIPT, 5 + lane_keys.len());
    call.arg(keys.meta())
        .arg(keys.completed())
        .arg(keys.events())
        .arg(keys.metrics_completed())
        .arg(keys.outbox());
    for k in &lane_keys {
        call.arg(k);
    }
    call.arg(crate::keys::GROUP)
        .arg(EVENTS_MAXLEN)
        .arg(keys.job_prefix())
        .arg(jobs.len())
        .arg(keep)
        .arg(age)
        .arg(TRIM_BUDGET)
        .arg(if again { "1" } else { "0" });
    // the jobs, packed (packed.rs): lane numbers and counts as numbers, the rest as text
    let mut batch = Packed::default();
    for ((job, result), lane) in jobs.iter().zip(numbers) {
        batch.text(if job.lean.is_some() { "L" } else { "R" });
        batch
            .text(job.id)
            .number(lane as u64)
            .text(job.sid)
            .text(result);
        match &job.lean {
            Some(lean) => {
                // its record, laid out here as add_job would have stored it, when kept
                let record = if keep != 0 {
                    lean_record(job, lean)
                } else {
                    Vec::new()
                };
                batch
                    .text(&job.started_ms.to_string())
                    .number(record.len() as u64);
                for value in &record {
                    batch.text(value);
                }
            }
            None => {
                batch
                    .text(&job.attempt.to_string())
                    .text(&job.started_ms.to_string())
                    .text(job.parent)
                    .text(job.group);
            }
        }
    }
    call.arg(batch.finish());
    call.invoke_on(q).await
}

/// The record arguments of lean job `job` (complete.lua's layout): its `name` and first
/// `data` piece values, then the field/value pairs of the rest of what `add_job` stores for
/// a ready job, read from its entry at its claim. (Its `ts`, its entry's time, and `att`, 1,
/// are left out: its id says them.)
fn lean_record<'a>(job: &'a Attempt<'_>, lean: &'a LeanAttempt<'_>) -> Vec<Cow<'a, str>> {
    let mut fields: Vec<Cow<str>> = vec![lean.name.into()];
    push_long(&mut fields, "data", lean.data);
    // (the script names `data`: its first piece's value follows `name`)
    fields.remove(1);
    if !lean.entry.opts.is_empty() {
        push_long(&mut fields, "opts", &lean.entry.opts);
    }
    if job.prio != 0 {
        fields.push("prio".into());
        fields.push(job.prio.to_string().into());
    }
    if let Some(tp) = &lean.entry.traceparent {
        fields.push("tp".into());
        fields.push(tp.as_str().into());
    }
    fields
}
