//! `complete.lua`: records a batch of successful attempts (result stored, job to the
//! completed set or deleted by its retention, lane entries acknowledged, metrics counted).

use std::borrow::Cow;

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
    for ((job, result), lane) in jobs.iter().zip(numbers) {
        match &job.lean {
            Some(lean) => {
                // its record, laid out here as add_job would have stored it, when kept
                let record = if keep != 0 {
                    lean_record(job, lean)
                } else {
                    Vec::new()
                };
                call.arg("L")
                    .arg(job.id)
                    .arg(lane)
                    .arg(job.sid)
                    .arg(*result)
                    .arg(job.started_ms)
                    .arg(record.len())
                    .arg(&record[..]);
            }
            None => {
                call.arg("R")
                    .arg(job.id)
                    .arg(lane)
                    .arg(job.sid)
                    .arg(*result)
                    .arg(job.attempt)
                    .arg(job.started_ms)
                    .arg(job.parent)
                    .arg(job.group);
            }
        }
    }
    call.invoke_on(q).await
}

/// The record arguments of lean job `job` (complete.lua's layout): its `ts` (its add time:
/// its entry's), `name` and first `data` piece values, then the field/value pairs of the
/// rest of what `add_job` stores for a ready job, read from its entry at its claim.
fn lean_record<'a>(job: &'a Attempt<'_>, lean: &'a LeanAttempt<'_>) -> Vec<Cow<'a, str>> {
    let added = job.sid.split_once('-').map_or(job.sid, |(ms, _)| ms);
    let mut fields: Vec<Cow<str>> = vec![added.into(), lean.name.into()];
    push_long(&mut fields, "data", lean.data);
    // (the script names `data`: its first piece's value follows `name`)
    fields.remove(2);
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
