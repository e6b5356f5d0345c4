//! Inline runs: the `inline` fallback runs a job's registered handler in the producer's
//! process, now, and hands back its return value.
//!
//! The handler gets a [`Ctx`] without a queue (see `handler/ctx.rs`): progress and log lines
//! go to `tracing`; the cache, lock, rate limiter and queue fail the job with
//! `Redis is down: <part> is not available inline`. One attempt is made, at once: delay,
//! retries and backoff are not applied (they need Redis to wait in); the job's `timeout`
//! is. An error, a panic or a timeout is the add's error ([`Error::Inline`]), never a crash
//! (binaries should call [`crate::install_panic_hook`] so a panic is not also printed).

use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::handle::{Produced, Producer};
use crate::error::{Error, Result};
use crate::handler::{
    guarded_call, panicked, timed_out, unregistered, Ctx, Handlers, Home, InlineUnavailable,
    RawJob, Stop,
};
use crate::job::JobOptions;
use crate::job::{new_job_id, NewJob};
use crate::primitives::Caches;

/// Runs job `id` (`name` with `data`) of `queue` in its handler; its return value.
pub(crate) async fn run_inline(
    handlers: &Handlers,
    queue: &str,
    id: &str,
    name: &str,
    data: &Value,
    opts: &JobOptions,
) -> Result<Value> {
    let fail = |message: String| Error::Inline {
        id: id.to_string(),
        name: name.to_string(),
        message,
    };
    let Some(handler) = handlers.get(name) else {
        return Err(fail(unregistered(name).message().to_string()));
    };
    let raw = RawJob {
        id: id.to_string(),
        name: name.to_string(),
        queue: queue.to_string(),
        data: serde_json::to_string(data)?,
        attempt: 1,
        opts: opts.clone(),
    };
    let cancel = CancellationToken::new();
    let ctx = Ctx {
        home: Home::Inline,
        job_id: id.to_string(),
        attempt: 1,
        cancel: cancel.clone(),
        caches: Caches::default(),
    };
    let stop = guarded_call(
        handler(raw, ctx),
        opts.timeout_ms.map(Duration::from_millis),
    )
    .await;
    cancel.cancel();
    match stop {
        Stop::Returned(Ok(Ok(json))) => {
            Ok(serde_json::from_str(&json).unwrap_or(Value::String(json)))
        }
        Stop::Returned(Ok(Err(e))) => Err(fail(e.message().to_string())),
        Stop::Returned(Err(panic)) => Err(fail(panic_message(&*panic))),
        Stop::TimedOut(limit) => Err(fail(timed_out(limit).message().to_string())),
        // nothing cancels an inline run from outside
        Stop::Cancelled => Err(fail("cancelled".into())),
    }
}

/// The failure message of a handler's panic: "Redis is down: …" for a Redis-backed part of
/// `Ctx` used inline, else "handler panicked: <message>" as a worker records it.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    match payload.downcast_ref::<InlineUnavailable>() {
        Some(u) => u.to_string(),
        None => panicked(payload).message().to_string(),
    }
}

impl Producer {
    pub(super) async fn run_inline(
        &self,
        queue: &str,
        job: &NewJob,
        reason: &str,
    ) -> Result<Produced> {
        let id = job.opts.job_id.clone().unwrap_or_else(new_job_id);
        let Some(handlers) = &self.inner.handlers else {
            return Err(Error::Inline {
                id,
                name: job.name.clone(),
                message: format!(
                    "{reason} and JOBQ_FALLBACK=inline, but this producer has no handlers \
                     to run jobs with"
                ),
            });
        };
        let result = run_inline(handlers, queue, &id, &job.name, &job.data, &job.opts).await?;
        Ok(Produced::Inline {
            id,
            result,
            reason: reason.to_string(),
        })
    }
}
