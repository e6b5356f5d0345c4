//! Calling a handler safely: its panic caught, its time limit enforced. What the worker's
//! handler slots and the producer's inline fallback share.

use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;

use super::job::{HandlerFuture, JobError};
use super::panic::InHandler;
use crate::duration::format_duration;

/// How a handler call ended.
pub(crate) enum Stop {
    /// It returned (or panicked: the `Err` of the outer result holds the payload).
    Returned(std::thread::Result<Result<String, JobError>>),
    /// It ran past its time limit and was dropped.
    TimedOut(std::time::Duration),
    /// The attempt was cancelled from outside (by the caller of [`guarded_call`]).
    Cancelled,
}

/// Runs a handler's future (`handler(raw, ctx)`), catching a panic and dropping it after
/// `limit`: what the worker's slots and the inline fallback share.
pub(crate) async fn guarded_call(call: HandlerFuture, limit: Option<std::time::Duration>) -> Stop {
    let call = AssertUnwindSafe(InHandler(call)).catch_unwind();
    match limit {
        Some(l) => tokio::time::timeout(l, call)
            .await
            .map_or(Stop::TimedOut(l), Stop::Returned),
        None => Stop::Returned(call.await),
    }
}

/// The failure a worker records for a handler that panicked with `payload`.
pub(crate) fn panicked(payload: &(dyn std::any::Any + Send)) -> JobError {
    JobError::new(format!("handler panicked: {}", panic_message(payload)))
}

/// The failure a worker records for a handler dropped at its time limit.
pub(crate) fn timed_out(limit: std::time::Duration) -> JobError {
    JobError::new(format!("timed out after {}", format_duration(limit)))
}

/// The failure a worker records for a job whose name has no handler.
pub(crate) fn unregistered(name: &str) -> JobError {
    JobError::new(format!("no handler registered for '{name}'"))
}

/// The message a panic was raised with (its `&str` or `String` payload).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".into()
    }
}
