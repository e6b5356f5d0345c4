//! The finisher of one queue: collects attempt outcomes and records them in batches —
//! `complete` calls for the successes and `fail_or_retry` calls for the failures of a
//! batch, at most [`RECORDED_PER_CALL`] to a call where each writes a record. Results are
//! kept in memory and retried until Redis takes them.

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::mpsc;

use super::held::Held;
use super::outage::Outage;
use super::run::{Active, Ending, Outcome};
use crate::error::Result;
use crate::handler::{Again, JobError};
use crate::job::Retention;
use crate::queue::Queue;
use crate::scripts::fail_or_retry::{Failure, How};
use crate::scripts::{self, Attempt};

/// Most outcomes recorded by one script call.
const MAX_BATCH: usize = 1_000;
/// Most batches being recorded at once.
const BATCHES_IN_FLIGHT: usize = 2;
/// Most outcomes per call that write a record: a kept job's completion writes its record
/// and, once its retention's count is reached, deletes an older one; a failure writes its
/// error and often re-adds the job. A call of 500 kept completions took 25–30 ms of Redis
/// on a slow day of the 2-core machine (up to 87 ms under load): 200 keep it near 10.
const RECORDED_PER_CALL: usize = 200;
/// Most bytes of results and errors one call carries (a larger outcome goes alone): big
/// return values must not make one call that blocks Redis.
const MAX_BATCH_BYTES: usize = 1 << 20;

impl Outcome {
    /// Bytes this outcome sends to Redis beyond its fixed fields.
    fn bytes(&self) -> usize {
        match &self.ending {
            Ending::Completed(r) => r.len(),
            Ending::Failed(e) => e.message().len() + e.detail().map_or(0, str::len),
            Ending::Cancelled | Ending::Abandoned => 0,
        }
    }
}

/// Runs until every sender is gone, the channel is drained and every batch recorded.
///
/// Up to [`BATCHES_IN_FLIGHT`] batches are being recorded at once: the next one is sent
/// while Redis runs the last (a claim's call, on its own connection, often runs between),
/// rather than after its reply came back. Nothing depends on the order Redis runs them in:
/// a job is in one batch only (its next attempt needs its outcome recorded first).
pub(crate) async fn finish_loop(
    queue: Queue,
    held: Arc<Held>,
    mut rx: mpsc::UnboundedReceiver<Outcome>,
    lease: Duration,
) {
    let mut inflight = FuturesUnordered::new();
    // an outcome that did not fit the last batch starts the next
    let mut carried: Option<Outcome> = None;
    loop {
        let first = tokio::select! {
            biased;
            Some(()) = inflight.next(), if !inflight.is_empty() => continue,
            o = next_outcome(&mut carried, &mut rx), if inflight.len() < BATCHES_IN_FLIGHT => o,
        };
        let Some(first) = first else { break };
        let mut bytes = first.bytes();
        // (sized at once: grown step by step, a batch cost fresh memory on every call)
        let mut batch = Vec::with_capacity(MAX_BATCH.min(rx.len() + 1));
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(o) if bytes + o.bytes() > MAX_BATCH_BYTES => {
                    carried = Some(o);
                    break;
                }
                Ok(o) => {
                    bytes += o.bytes();
                    batch.push(o);
                }
                Err(_) => break,
            }
        }
        inflight.push(record_batch(&queue, &held, lease, batch));
    }
    while inflight.next().await.is_some() {}
}

/// The outcome carried over from the last batch, else the next one to arrive (None: every
/// sender is gone).
async fn next_outcome(
    carried: &mut Option<Outcome>,
    rx: &mut mpsc::UnboundedReceiver<Outcome>,
) -> Option<Outcome> {
    match carried.take() {
        Some(o) => Some(o),
        None => rx.recv().await,
    }
}

/// Records `batch`, retrying until Redis takes it (each batch backs off on its own: a
/// failing one must not be hurried by the other's success); then the worker no longer holds
/// its jobs, and their places in the queue's room come back.
async fn record_batch(queue: &Queue, held: &Held, lease: Duration, batch: Vec<Outcome>) {
    // (sent again after a failed call, which Redis may have run: recorded exactly)
    let mut again = false;
    let mut outage: Option<Outage> = None;
    loop {
        match record(queue, &batch, again).await {
            Ok(lost) => {
                if let Some(mut o) = outage.take() {
                    o.recovered();
                }
                if batch.iter().any(|o| o.job.parent.is_some()) {
                    // flow children: their outcomes wait in the outbox for their parents
                    queue.inner.flows.notify_one();
                }
                if !lost.is_empty() {
                    tracing::warn!(
                        queue = %queue.name(),
                        jobs = ?lost,
                        "outcomes not recorded: these jobs were reclaimed by another worker"
                    );
                }
                break;
            }
            Err(e) => {
                // keep the outcomes (the entries stay ours while leases are renewed)
                let wait = outage
                    .get_or_insert_with(|| {
                        let what = format!("recording results in queue {}", queue.name());
                        Outage::within_lease(what, lease)
                    })
                    .failed(&e);
                tokio::time::sleep(wait).await;
                again = true;
            }
        }
    }
    held.remove(batch.iter().map(|o| (o.job.prio, o.job.sid.as_str())));
    let bytes: usize = batch.iter().map(|o| o.job.raw.data.len() + o.bytes()).sum();
    held.recorded((bytes / batch.len().max(1)) as u64);
}

/// Records a batch; returns the ids of jobs this worker had lost to a reclaimer.
async fn record(queue: &Queue, batch: &[Outcome], again: bool) -> Result<Vec<String>> {
    let mut ok: Vec<(&Active, &str)> = Vec::new();
    let mut failed: Vec<(&Active, Failure<'_>)> = Vec::new();
    for o in batch {
        match &o.ending {
            Ending::Completed(r) => ok.push((&o.job, r)),
            Ending::Failed(e) => failed.push((&o.job, failure(&o.job, e))),
            Ending::Cancelled => failed.push((
                &o.job,
                Failure {
                    message: "cancelled",
                    detail: "",
                    retry: None,
                    how: How::Cancelled,
                },
            )),
            // left pending on purpose: reclaimed after the lease
            Ending::Abandoned => {}
        }
    }
    let mut lost = Vec::new();
    for (policy, group) in by_policy(ok, |o| {
        o.remove_on_complete.unwrap_or(Retention::DEFAULT_COMPLETED)
    }) {
        // (removed at once, a completion writes nothing: a whole batch is one short call)
        let per_call = match policy.as_args().0 {
            0 => MAX_BATCH,
            _ => RECORDED_PER_CALL,
        };
        for chunk in group.chunks(per_call) {
            lost.extend(complete(queue, chunk, policy, again).await?);
        }
    }
    for (policy, group) in by_policy(failed, |o| {
        o.remove_on_fail.unwrap_or(Retention::DEFAULT_FAILED)
    }) {
        for chunk in group.chunks(RECORDED_PER_CALL) {
            lost.extend(fail_or_retry(queue, chunk, policy, again).await?);
        }
    }
    Ok(lost)
}

/// Groups outcomes by their retention policy (an argument of a whole script call), keeping
/// the batch's order within each group.
fn by_policy<'a, T>(
    items: Vec<(&'a Active, T)>,
    policy: impl Fn(&crate::job::JobOptions) -> Retention,
) -> Vec<(Retention, Vec<(&'a Active, T)>)> {
    let mut groups: Vec<(Retention, Vec<(&'a Active, T)>)> = Vec::new();
    for (job, x) in items {
        let p = policy(&job.raw.opts);
        match groups.iter_mut().find(|(q, _)| *q == p) {
            Some((_, g)) => g.push((job, x)),
            None => groups.push((p, vec![(job, x)])),
        }
    }
    groups
}

/// What the scripts need of a claimed attempt.
fn attempt(job: &Active) -> Attempt<'_> {
    Attempt {
        id: &job.raw.id,
        prio: job.prio,
        sid: &job.sid,
        attempt: job.raw.attempt,
        started_ms: job.started_ms,
        parent: job.parent.as_deref().unwrap_or(""),
        group: job.group.as_deref().unwrap_or(""),
        lean: job.lean.as_ref().map(|entry| scripts::LeanAttempt {
            name: &job.raw.name,
            data: &job.raw.data,
            entry,
        }),
    }
}

async fn complete(
    queue: &Queue,
    jobs: &[(&Active, &str)],
    policy: Retention,
    again: bool,
) -> Result<Vec<String>> {
    let jobs: Vec<_> = jobs.iter().map(|(j, r)| (attempt(j), *r)).collect();
    scripts::complete::complete(&queue.inner, &jobs, policy, again).await
}

async fn fail_or_retry(
    queue: &Queue,
    jobs: &[(&Active, Failure<'_>)],
    policy: Retention,
    again: bool,
) -> Result<Vec<String>> {
    let jobs: Vec<_> = jobs.iter().map(|(j, f)| (attempt(j), *f)).collect();
    scripts::fail_or_retry::fail_or_retry(&queue.inner, &jobs, policy, again).await
}

/// How a failed attempt is recorded: a snooze, a retry after its delay, or a failure for
/// good.
fn failure<'a>(job: &Active, err: &'a JobError) -> Failure<'a> {
    let (how, retry) = match err.again() {
        Again::Snooze(d) => (How::Snoozed, Some(d)),
        _ => (How::Failed, retry_delay(job, err)),
    };
    Failure {
        message: err.message(),
        detail: err.detail().unwrap_or(""),
        retry,
        how,
    }
}

/// When a failed attempt runs again, or `None` when the job fails for good: after the
/// handler's own delay (`retry_after`, or its backoff function: run.rs), or else the
/// job's backoff.
fn retry_delay(job: &Active, err: &JobError) -> Option<Duration> {
    let opts = &job.raw.opts;
    if !err.is_retryable() || job.raw.attempt >= opts.max_attempts() {
        return None;
    }
    Some(match err.again() {
        Again::After(d) | Again::Snooze(d) => d,
        Again::Backoff => opts
            .backoff
            .map(|b| b.delay_after(job.raw.attempt))
            .unwrap_or(Duration::ZERO),
    })
}
