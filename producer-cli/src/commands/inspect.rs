//! `jobq list` and `jobq show`: reading jobs without changing them.

use anyhow::Result;
use queue_core::{JobInfo, JobState};

use super::ctx::Ctx;
use crate::output::{self, Table};

/// Lists a page of the jobs in `state`. `waiting` includes the waiting jobs of a paused
/// queue, as `stats` counts them.
pub async fn list(ctx: &Ctx, queue: &str, state: JobState, limit: u64, offset: u64) -> Result<()> {
    let q = ctx.existing_queue(queue).await?;
    let mut jobs = q.list_jobs(state, offset, limit).await?;
    if state == JobState::Waiting && jobs.is_empty() {
        // empty unless the queue is paused
        jobs = q.list_jobs(JobState::Paused, offset, limit).await?;
    }
    if ctx.json {
        for job in &jobs {
            output::json_line(&output::job_json(job));
        }
        return Ok(());
    }
    if jobs.is_empty() {
        println!("no {state} jobs in {queue}");
        return Ok(());
    }
    job_table(&jobs).print();
    Ok(())
}

/// Jobs as a table: id, name, state, attempts, priority, age, and the one thing worth
/// knowing about each (`list`, `search`).
pub(super) fn job_table(jobs: &[JobInfo]) -> Table {
    let mut t = Table::new(&[
        "ID",
        "NAME",
        "STATE",
        ">ATTEMPTS",
        ">PRIO",
        "CREATED",
        "INFO",
    ]);
    for job in jobs {
        t.row(vec![
            job.id.clone(),
            job.name.clone(),
            job.state.to_string(),
            format!("{}/{}", job.attempts_made, job.opts.max_attempts()),
            job.priority.to_string(),
            output::relative(job.created_at),
            info(job),
        ]);
    }
    t
}

/// The one thing worth knowing about a job in a listing.
fn info(job: &JobInfo) -> String {
    if let Some(c) = &job.corrupt {
        return format!("CORRUPT: {}", output::clip(c, 60));
    }
    match job.state {
        JobState::Failed => format!(
            "{}: {}",
            job.finished_at.map(output::relative).unwrap_or_default(),
            output::clip(job.failed_reason.as_deref().unwrap_or(""), 60)
        ),
        JobState::Completed => format!(
            "finished {}",
            job.finished_at.map(output::relative).unwrap_or_default()
        ),
        JobState::Cancelled => format!(
            "cancelled {}",
            job.finished_at.map(output::relative).unwrap_or_default()
        ),
        JobState::Delayed => {
            let due = job.due_at.map(output::relative).unwrap_or_default();
            match &job.failed_reason {
                Some(e) => format!("retry {due}: {}", output::clip(e, 50)),
                None => format!("due {due}"),
            }
        }
        JobState::Active => format!(
            "started {}",
            job.started_at.map(output::relative).unwrap_or_default()
        ),
        JobState::Waiting | JobState::Paused => output::clip(&job.data.to_string(), 60),
        JobState::WaitingChildren => {
            format!("{} children to finish", job.children_pending.unwrap_or(0))
        }
    }
}

/// Shows one job, with its children when it is a flow's parent (its parent, when it has
/// one, is a field of the job); a missing id is a runtime failure naming it.
pub async fn show(ctx: &Ctx, queue: &str, id: &str) -> Result<()> {
    let q = ctx.existing_queue(queue).await?;
    let job = q.job(id).await?;
    let children = q.children(id).await?;
    if ctx.json {
        let mut out = output::job_json(&job);
        out["children"] = serde_json::to_value(&children)?;
        output::json_line(&out);
    } else {
        output::print_job(&job, &children);
    }
    Ok(())
}
