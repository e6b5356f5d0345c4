//! `jobq search`: finding jobs by name, data, failure reason, state and age, a page at a
//! time (`Queue::search`).

use anyhow::Result;
use queue_core::SearchFilter;
use serde_json::json;

use super::ctx::Ctx;
use super::inspect::job_table;
use crate::output;

/// Prints one page of the jobs of `queue` that pass `filter`, and the cursor of the next
/// page when there may be more.
pub async fn search(ctx: &Ctx, queue: &str, filter: &SearchFilter) -> Result<()> {
    let q = ctx.existing_queue(queue).await?;
    let page = q.search(filter).await?;
    if ctx.json {
        let jobs: Vec<_> = page.jobs.iter().map(output::job_json).collect();
        output::json_line(&json!({ "jobs": jobs, "next": page.next }));
        return Ok(());
    }
    if page.jobs.is_empty() {
        println!("no matching jobs in {queue}");
    } else {
        job_table(&page.jobs).print();
    }
    if let Some(next) = page.next {
        println!("more may match: add --cursor {next}");
    }
    Ok(())
}
