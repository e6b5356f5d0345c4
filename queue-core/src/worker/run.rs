//! Running one claimed job in its handler slot: call its handler with a timeout, catch
//! panics, and hand the outcome to the queue's finisher. Whatever the handler does, the
//! worker keeps running.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::metrics::AttemptOutcome;
use super::shared::Shared;
use crate::duration::{format_duration, MAX_DURATION};
use crate::handler::{
    guarded_call, panicked, timed_out, unregistered, Again, Ctx, Home, JobError, RawJob, Stop,
};
use crate::queue::Queue;

/// A job this worker holds: what its handler needs and what finishing it needs.
#[derive(Debug, Clone)]
pub(crate) struct Active {
    pub raw: RawJob,
    /// Priority lane it was read from.
    pub prio: i32,
    /// Stream entry id in that lane.
    pub sid: String,
    /// When this attempt started (ms, Redis clock): its claim, moved on to when a handler
    /// slot took it.
    pub started_ms: i64,
    /// When it was claimed (local clock).
    pub claimed: Instant,
    /// Why its stored fields cannot be run (corrupt or over the size caps): it fails
    /// alone, unrun and not retried, with this reason naming the field.
    pub corrupt: Option<String>,
    /// Its flow parent, `<queue>/<id>`: its outcome goes to the queue's outbox for it.
    pub parent: Option<String>,
    /// Its group: its end frees a place in the group's active count.
    pub group: Option<String>,
    /// The trace context recorded at its add (read only while attempts get spans).
    pub traceparent: Option<String>,
    /// A lean job without a record when claimed (`job.rs` `lean_id`): what its record
    /// needs, should it be kept.
    pub lean: Option<crate::scripts::LeanEntry>,
}

/// How an attempt ended.
#[derive(Debug)]
pub(crate) enum Ending {
    /// Succeeded with this JSON return value.
    Completed(String),
    /// Failed (error, panic or timeout), or snoozed.
    Failed(JobError),
    /// Stopped for a cancel request ([`Queue::cancel`]): the job ends cancelled.
    Cancelled,
    /// Stopped without an outcome (shutdown deadline, or the lease was lost): nothing is
    /// recorded, the job is left for reclaim.
    Abandoned,
}

/// An attempt's ending, for the finisher.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// (boxed, as from its claim on: it moves through two channels and a task)
    pub job: Box<Active>,
    pub ending: Ending,
    /// The job's place in its queue's room (`Shares::room`), given back once the outcome
    /// is recorded.
    pub _room: OwnedSemaphorePermit,
}

/// A claimed job's shares of what bounds the jobs a worker holds.
pub(crate) struct Shares {
    /// Of the claim budget, shared by the worker's queues (`concurrency` plus what `pace.rs`
    /// claims ahead): given back once the job's outcome is queued.
    pub claim: OwnedSemaphorePermit,
    /// Of its queue's room (`concurrency` plus up to `pace::MAX_AHEAD` jobs held at once,
    /// fewer when outcomes are large: `held.rs`; from their claim until their outcomes are
    /// recorded): given back once the outcome is recorded. Without it a worker whose
    /// recording lagged (kept results, large return values) claimed the whole queue ahead,
    /// holding every job while outcomes piled up in memory; a queue whose recording stalls
    /// holds up only its own claims.
    pub room: OwnedSemaphorePermit,
}

/// The handler label of jobs whose name has no handler, in metrics.
const UNREGISTERED: &str = "<unregistered>";

/// How one held job is stopped: `cancel` is its handler's token, fired to stop it for any
/// reason; `asked` is set first when the reason is a cancel request. (A flag, not a second
/// token: a token costs an allocation, and a lock at its dropping, for every job.)
#[derive(Debug, Default)]
pub(crate) struct Stops {
    pub cancel: CancellationToken,
    asked: AtomicBool,
}

impl Stops {
    /// Whether a cancel request stopped (or is stopping) the job.
    pub fn asked(&self) -> bool {
        self.asked.load(Ordering::SeqCst)
    }

    /// Stops the job for a cancel request: it ends cancelled.
    pub fn ask(&self) {
        self.asked.store(true, Ordering::SeqCst);
        self.cancel.cancel();
    }

    /// A stopped job's ending: cancelled when a cancel request stopped it, else none (left
    /// for reclaim).
    pub fn ending(&self) -> Ending {
        if self.asked() {
            Ending::Cancelled
        } else {
            Ending::Abandoned
        }
    }
}

/// Runs a claimed job in the handler slot `slot`; the slot and the job's share of the claim
/// budget are given back once the outcome is queued, its place in the queue's room goes
/// with the outcome.
pub(crate) async fn run_job(
    queue: Queue,
    shared: Arc<Shared>,
    mut job: Box<Active>,
    slot: OwnedSemaphorePermit,
    done: mpsc::UnboundedSender<Outcome>,
    stops: Arc<Stops>,
    shares: Shares,
) {
    let cancel = &stops.cancel;
    job.started_ms += job.claimed.elapsed().as_millis() as i64;
    let span = shared.spans.attempt(
        &job.raw.queue,
        &job.raw.id,
        &job.raw.name,
        job.raw.attempt,
        job.traceparent.as_deref(),
    );
    let handler = shared.handlers.get(&job.raw.name).cloned();
    let known = handler.is_some();
    let began = Instant::now();
    shared.metrics.started();
    let ending = match handler {
        _ if job.corrupt.is_some() => Ending::Failed(JobError::fatal(format!(
            "job {} is corrupt: {}",
            job.raw.id,
            job.corrupt.as_deref().unwrap_or_default()
        ))),
        None => Ending::Failed(unregistered(&job.raw.name)),
        Some(handler) => {
            let queue_caps = queue.redis().caps();
            let ctx = Ctx {
                home: Home::Queue(queue),
                job_id: job.raw.id.clone(),
                attempt: job.raw.attempt,
                cancel: cancel.clone(),
                caches: shared.caches.clone(),
            };
            let limit = job
                .raw
                .opts
                .timeout_ms
                .map(std::time::Duration::from_millis);
            // biased: a handler that watches the token returns as soon as it fires; that
            // return must not win over the cancellation it is reacting to
            let stop = tokio::select! {
                biased;
                _ = cancel.cancelled() => Stop::Cancelled,
                r = guarded_call(handler(job.raw.clone(), ctx), limit).instrument(span.clone()) => r,
            };
            // cancelled from outside (shutdown deadline, lease lost) before we cancel it below
            let cancelled = cancel.is_cancelled();
            // the handler future is dropped by now; tell any child work to stop too
            cancel.cancel();
            match stop {
                Stop::Returned(Ok(Ok(result))) => completed(result, &queue_caps),
                // a failure caused by the cancellation is no outcome (left for reclaim),
                // unless a cancel request caused it
                _ if cancelled => stops.ending(),
                Stop::Returned(Ok(Err(e))) => Ending::Failed(handler_delay(&shared, &job, e)),
                Stop::Returned(Err(panic)) => {
                    let e = panicked(&*panic);
                    Ending::Failed(match crate::handler::take_panic_trace() {
                        Some(trace) => e.with_detail(trace),
                        None => e,
                    })
                }
                Stop::TimedOut(l) => Ending::Failed(timed_out(l)),
                Stop::Cancelled => stops.ending(),
            }
        }
    };
    record_outcome(&span, &ending);
    let entered = span.enter();
    match &ending {
        Ending::Failed(e) if e.is_snooze() => tracing::debug!(
            queue = %job.raw.queue,
            job = %job.raw.id,
            "{}", e.message()
        ),
        Ending::Failed(e) => tracing::warn!(
            queue = %job.raw.queue,
            job = %job.raw.id,
            name = %crate::text::printable(&job.raw.name),
            attempt = job.raw.attempt,
            error = %crate::text::printable(&e.to_string()),
            "job attempt failed"
        ),
        Ending::Abandoned => tracing::info!(
            queue = %job.raw.queue,
            job = %job.raw.id,
            "job stopped without an outcome: left for another worker to reclaim"
        ),
        Ending::Cancelled => tracing::info!(
            queue = %job.raw.queue,
            job = %job.raw.id,
            "job cancelled while it ran"
        ),
        Ending::Completed(_) => {}
    }
    let took = began.elapsed();
    let counted = match &ending {
        Ending::Completed(_) => AttemptOutcome::Completed,
        Ending::Failed(e) if !e.is_snooze() => AttemptOutcome::Failed,
        Ending::Failed(_) | Ending::Cancelled | Ending::Abandoned => AttemptOutcome::Abandoned,
    };
    // metrics are kept per handler; names nobody handles share one series
    let label = if known {
        job.raw.name.as_str()
    } else {
        UNREGISTERED
    };
    shared
        .metrics
        .finished(&job.raw.queue, label, counted, took);
    shared.pace.handler_took(took);
    drop(entered);
    // slot and claim free as soon as the outcome is queued: recording it is batched apart
    let Shares { claim, room } = shares;
    let _ = done.send(Outcome {
        job,
        ending,
        _room: room,
    });
    drop(slot);
    drop(claim);
}

/// How the attempt ended, on its span (when it has one).
fn record_outcome(span: &tracing::Span, ending: &Ending) {
    let (outcome, error) = match ending {
        Ending::Completed(_) => ("completed", None),
        Ending::Failed(e) if e.is_snooze() => ("snoozed", None),
        Ending::Failed(e) => ("failed", Some(e.message())),
        Ending::Cancelled => ("cancelled", None),
        Ending::Abandoned => ("abandoned", None),
    };
    crate::trace::record_outcome(span, outcome, error);
}

/// A failed attempt's error with the delay its handler's backoff function gives (when it
/// has one and the error named none itself); a delay the handler asked for past
/// [`MAX_DURATION`] fails the job for good instead, naming it.
fn handler_delay(shared: &Shared, job: &Active, e: JobError) -> JobError {
    let e = match (e.again(), shared.backoffs.get(&job.raw.name)) {
        (Again::Backoff, Some(f)) if e.is_retryable() => {
            let d = f(job.raw.attempt, &e);
            e.retry_after(d)
        }
        _ => e,
    };
    match e.again() {
        Again::After(d) | Again::Snooze(d) if d > MAX_DURATION => JobError::fatal(format!(
            "{} (the handler asked to run again after {}, over the limit of 3650d)",
            e.message(),
            format_duration(d)
        )),
        _ => e,
    }
}

/// A handler's return value as the attempt's outcome: held to the data cap, as data is. A
/// larger one would make the call that records it (and every read of it, a flow parent's
/// among them) block Redis: the attempt fails, for good, naming the size.
fn completed(result: String, caps: &crate::config::JobCaps) -> Ending {
    if result.len() > caps.max_data_bytes {
        return Ending::Failed(JobError::fatal(format!(
            "the return value is {} bytes, over the limit of {} bytes (JOBQ_MAX_DATA_BYTES)",
            result.len(),
            caps.max_data_bytes
        )));
    }
    Ending::Completed(result)
}
