//! `diag.*`: handlers for smoke tests, benchmarks and fault drills.

use std::time::Duration;

use queue_core::{ChildOutcome, Ctx, Job, JobError, WorkerBuilder};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Registers `diag.noop`, `diag.echo`, `diag.sleep`, `diag.fail`, `diag.panic` and
/// `diag.collect`.
pub fn register(builder: WorkerBuilder) -> WorkerBuilder {
    builder
        .handler("diag.noop", noop)
        .handler("diag.echo", echo)
        .handler("diag.sleep", sleep)
        .handler("diag.fail", fail)
        .handler("diag.panic", panic)
        .handler("diag.collect", collect)
}

/// Does nothing and succeeds (any data).
pub async fn noop(_job: Job<Value>, _ctx: Ctx) -> Result<(), JobError> {
    Ok(())
}

/// Returns its data.
pub async fn echo(job: Job<Value>, _ctx: Ctx) -> Result<Value, JobError> {
    Ok(job.data)
}

/// `{"ms": N}`
#[derive(Debug, Deserialize)]
pub struct Sleep {
    /// How long to sleep.
    pub ms: u64,
}

/// Sleeps `ms` milliseconds (stopping early if cancelled), reporting progress.
pub async fn sleep(job: Job<Sleep>, ctx: Ctx) -> Result<u64, JobError> {
    let total = Duration::from_millis(job.data.ms);
    tokio::select! {
        _ = tokio::time::sleep(total) => Ok(job.data.ms),
        _ = ctx.cancellation_token().cancelled() => Err(JobError::new("cancelled")),
    }
}

/// `{"times": N}`
#[derive(Debug, Deserialize)]
pub struct Fail {
    /// How many attempts fail before one succeeds.
    #[serde(default = "one")]
    pub times: u32,
}

fn one() -> u32 {
    1
}

/// Fails the first `times` attempts, then succeeds.
pub async fn fail(job: Job<Fail>, _ctx: Ctx) -> Result<u32, JobError> {
    if job.attempt <= job.data.times {
        return Err(JobError::new(format!(
            "diag.fail: attempt {} of the {} that fail",
            job.attempt, job.data.times
        )));
    }
    Ok(job.attempt)
}

/// Panics, to show that a panic fails only the attempt.
pub async fn panic(_job: Job<Value>, _ctx: Ctx) -> Result<(), JobError> {
    panic!("diag.panic: deliberate panic")
}

/// What `diag.collect` returns: `{"children": [...]}`.
#[derive(Debug, Clone, Serialize)]
pub struct Collected {
    /// Every child's queue, id, name, state and return value or failure reason, in the
    /// flow's order.
    pub children: Vec<ChildOutcome>,
}

/// As a flow's parent, returns its children's outcomes (any data; a job that is no
/// parent returns no children).
pub async fn collect(_job: Job<Value>, ctx: Ctx) -> Result<Collected, JobError> {
    Ok(Collected {
        children: ctx.children().await?,
    })
}
