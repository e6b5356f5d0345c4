//! Commands that change a queue: retry, promote, priority, update, cancel, remove,
//! pause/resume, clean, drain, obliterate. Each prints what it did (`--json`: one object).

use std::time::Duration;

use anyhow::{anyhow, Result};
use queue_core::{Cancelled, Config, JobState};
use serde_json::json;

use super::add::data_of;
use super::ctx::Ctx;
use crate::cli::{CleanState, UpdateArgs};
use crate::output;

fn report(ctx: &Ctx, json: serde_json::Value, text: String) {
    if ctx.json {
        output::json_line(&json);
    } else {
        println!("{text}");
    }
}

/// Retries one failed job, or (`id` None: `--all-failed`) every failed job.
pub async fn retry(ctx: &Ctx, queue: &str, id: Option<&str>) -> Result<()> {
    let q = ctx.existing_queue(queue).await?;
    match id {
        Some(id) => {
            q.retry_job(id).await?;
            report(
                ctx,
                json!({"queue": queue, "id": id, "retried": 1}),
                format!("retrying job {id} of {queue}"),
            );
        }
        None => {
            let n = q.retry_all_failed().await?;
            report(
                ctx,
                json!({"queue": queue, "retried": n}),
                format!("retrying {n} failed job(s) of {queue}"),
            );
        }
    }
    Ok(())
}

/// Cancels one job: at once, or (running) by its worker.
pub async fn cancel(ctx: &Ctx, queue: &str, id: &str) -> Result<()> {
    let q = ctx.existing_queue(queue).await?;
    match q.cancel(id).await? {
        Cancelled::Now { children } => report(
            ctx,
            json!({"queue": queue, "id": id, "cancelled": "now", "children": children}),
            if children > 0 {
                format!("cancelled job {id} of {queue} and {children} of its flow's jobs")
            } else {
                format!("cancelled job {id} of {queue}")
            },
        ),
        Cancelled::Requested => report(
            ctx,
            json!({"queue": queue, "id": id, "cancelled": "requested"}),
            format!("cancelling job {id} of {queue}: it is running, its worker stops it"),
        ),
    }
    Ok(())
}

/// Promotes one delayed job, or (`id` None: `--all-delayed`) every delayed job.
pub async fn promote(ctx: &Ctx, queue: &str, id: Option<&str>) -> Result<()> {
    let q = ctx.existing_queue(queue).await?;
    match id {
        Some(id) => {
            q.promote_job(id).await?;
            report(
                ctx,
                json!({"queue": queue, "id": id, "promoted": 1}),
                format!("promoted job {id} of {queue}: it is waiting"),
            );
        }
        None => {
            let n = q.promote_all_delayed().await?;
            report(
                ctx,
                json!({"queue": queue, "promoted": n}),
                format!("promoted {n} delayed job(s) of {queue}"),
            );
        }
    }
    Ok(())
}

/// Changes the priority of a waiting or delayed job.
pub async fn priority(ctx: &Ctx, queue: &str, id: &str, priority: i32) -> Result<()> {
    ctx.existing_queue(queue)
        .await?
        .change_priority(id, priority)
        .await?;
    report(
        ctx,
        json!({"queue": queue, "id": id, "priority": priority}),
        format!("job {id} of {queue} now has priority {priority}"),
    );
    Ok(())
}

/// Replaces a job's data.
pub async fn update(ctx: &Ctx, config: &Config, args: &UpdateArgs) -> Result<()> {
    let data = data_of(&args.data, config.caps.max_data_bytes)?
        .expect("clap requires --data or --data-file");
    let (queue, id) = (&args.queue, &args.id);
    ctx.existing_queue(queue)
        .await?
        .update_data(id, &data)
        .await?;
    report(
        ctx,
        json!({"queue": queue, "id": id, "data": data}),
        format!("replaced the data of job {id} of {queue}"),
    );
    Ok(())
}

/// Removes one job that is not running.
pub async fn remove(ctx: &Ctx, queue: &str, id: &str) -> Result<()> {
    ctx.existing_queue(queue).await?.remove_job(id).await?;
    report(
        ctx,
        json!({"queue": queue, "id": id, "removed": 1}),
        format!("removed job {id} from {queue}"),
    );
    Ok(())
}

/// Pauses or resumes a queue.
pub async fn set_paused(ctx: &Ctx, queue: &str, paused: bool) -> Result<()> {
    let q = ctx.existing_queue(queue).await?;
    if paused {
        q.pause().await?;
    } else {
        q.resume().await?;
    }
    report(
        ctx,
        json!({"queue": queue, "paused": paused}),
        format!("{queue} {}", if paused { "paused" } else { "resumed" }),
    );
    Ok(())
}

/// Deletes finished jobs older than `older_than`, at most `limit`.
pub async fn clean(
    ctx: &Ctx,
    queue: &str,
    state: CleanState,
    older_than: Duration,
    limit: Option<u64>,
) -> Result<()> {
    let state = match state {
        CleanState::Completed => JobState::Completed,
        CleanState::Failed => JobState::Failed,
        CleanState::Cancelled => JobState::Cancelled,
    };
    let n = ctx
        .existing_queue(queue)
        .await?
        .clean(state, older_than, limit)
        .await?;
    report(
        ctx,
        json!({"queue": queue, "state": state, "removed": n}),
        format!(
            "removed {n} {state} job(s) older than {} from {queue}",
            queue_core::format_duration(older_than)
        ),
    );
    Ok(())
}

/// Deletes every waiting and delayed job.
pub async fn drain(ctx: &Ctx, queue: &str) -> Result<()> {
    let n = ctx.existing_queue(queue).await?.drain().await?;
    report(
        ctx,
        json!({"queue": queue, "removed": n}),
        format!("removed {n} waiting or delayed job(s) from {queue}"),
    );
    Ok(())
}

/// Deletes the queue entirely (the `--force` confirmation was checked before connecting).
/// Unlike the other commands it also takes a queue missing from the registry: it is how
/// the leftover keys of one are removed. A queue with neither is not found (exit 1).
pub async fn obliterate(ctx: &Ctx, queue: &str) -> Result<()> {
    let known = ctx.is_registered(queue).await?;
    let keys = ctx.queue(queue).await?.obliterate(true).await?;
    if keys == 0 && !known {
        return Err(anyhow!(
            "queue {queue:?} not found under prefix {:?}: it has no keys to delete",
            ctx.prefix
        ));
    }
    report(
        ctx,
        json!({"queue": queue, "obliterated": true, "keys_deleted": keys}),
        format!("obliterated {queue} ({keys} key(s) deleted)"),
    );
    Ok(())
}
