//! The background duties of one queue: periodic work beside the job pipeline (fetch,
//! dispatch, finish, lease renewal), each a loop that runs until the worker's shutdown
//! signal. Each duty's file has the loop and a `start` function of the [`Start`] shape;
//! `worker/mod.rs` lists them in `DUTIES`, so adding a duty is one file and one line.

use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use super::settings::Settings;
use crate::queue::Queue;

/// What a duty is started with.
pub(crate) struct Duty<'a> {
    /// The queue it works on.
    pub queue: &'a Queue,
    /// The worker's settings (lease, intervals …).
    pub settings: &'a Settings,
    /// Cancelled at the shutdown signal: the duty's loop returns.
    pub stop: &'a CancellationToken,
}

/// Starts one duty for one queue: its loop, to be spawned.
pub(crate) type Start = fn(Duty<'_>) -> BoxFuture<'static, ()>;
