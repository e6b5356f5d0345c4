//! The state every task of a running worker shares (handler slots, claim budget, handlers).

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Semaphore;

use super::metrics::WorkerMetrics;
use super::pace::Pace;
use crate::handler::{BackoffFn, ErasedHandler};
use crate::primitives::Caches;

/// What every task of a running worker shares.
pub(crate) struct Shared {
    /// Handler slots: `concurrency` permits, one per running handler.
    pub slots: Arc<Semaphore>,
    /// Claim budget: one permit per job held, from its claim to its outcome (`concurrency`
    /// plus what `pace` claims ahead).
    pub claims: Arc<Semaphore>,
    pub pace: Pace,
    pub handlers: HashMap<String, ErasedHandler>,
    /// Handlers' own backoffs, by job name.
    pub backoffs: HashMap<String, BackoffFn>,
    /// Stable consumer name: host, pid, start time.
    pub consumer: String,
    pub metrics: Arc<WorkerMetrics>,
    /// Handlers' caches by namespace (`Ctx::cache`).
    pub caches: Caches,
    /// Whether attempts get OpenTelemetry spans (found out by the first one).
    pub spans: crate::trace::AttemptSpans,
}
