//! `jobq stats`: job counts per state for every queue (or one); `--watch` redraws them in
//! place, like `top`, until Ctrl-C.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::Result;
use queue_core::{all_queue_stats, stats_of, QueueStats};

use super::ctx::Ctx;
use crate::output::{self, Table};

/// Prints the counts once, or every `interval` with `watch`.
pub async fn stats(ctx: &Ctx, queue: Option<&str>, watch: bool, interval: Duration) -> Result<()> {
    if !watch {
        return print(ctx, &gather(ctx, queue).await?);
    }
    let redraw = !ctx.json && std::io::stdout().is_terminal();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let rows = tokio::select! {
            _ = &mut ctrl_c => return Ok(()),
            rows = gather(ctx, queue) => rows?,
        };
        if redraw {
            // home, clear: the table is redrawn in place
            print!("\x1b[H\x1b[2J");
            println!(
                "jobq stats: {} queue(s) under {:?}, every {} (Ctrl-C to stop)\n",
                rows.len(),
                ctx.prefix,
                queue_core::format_duration(interval)
            );
        }
        print(ctx, &rows)?;
        std::io::stdout().flush()?;
        tokio::select! {
            _ = &mut ctrl_c => return Ok(()),
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

async fn gather(ctx: &Ctx, queue: Option<&str>) -> Result<Vec<QueueStats>> {
    Ok(match queue {
        Some(q) => stats_of(&[ctx.existing_queue(q).await?]).await?,
        None => all_queue_stats(&ctx.redis, &ctx.prefix).await?,
    })
}

/// The table's columns, one per [`QueueStats`] field shown (`>`: right-aligned).
const COLUMNS: [&str; 11] = [
    "QUEUE",
    ">WAITING",
    ">WAITING_CHILDREN",
    ">ACTIVE",
    ">DELAYED",
    ">COMPLETED",
    ">FAILED",
    ">CANCELLED",
    "PAUSED",
    ">COMPLETED_TOTAL",
    ">FAILED_TOTAL",
];

fn print(ctx: &Ctx, rows: &[QueueStats]) -> Result<()> {
    if ctx.json {
        for r in rows {
            output::json_line(r);
        }
        return Ok(());
    }
    if rows.is_empty() {
        println!("no queues under prefix {:?}", ctx.prefix);
        return Ok(());
    }
    let mut t = Table::new(&COLUMNS);
    for r in rows {
        if r.error.is_some() {
            // its counts are unknown, not zero
            let mut cells = vec![r.queue.clone()];
            cells.resize(COLUMNS.len(), "?".into());
            t.row(cells);
            continue;
        }
        t.row(vec![
            r.queue.clone(),
            r.waiting.to_string(),
            r.waiting_children.to_string(),
            r.active.to_string(),
            r.delayed.to_string(),
            r.completed.to_string(),
            r.failed.to_string(),
            r.cancelled.to_string(),
            if r.paused { "yes" } else { "no" }.into(),
            r.completed_total.to_string(),
            r.failed_total.to_string(),
        ]);
    }
    t.print();
    for r in rows {
        if let Some(e) = &r.error {
            eprintln!("queue {}: its records cannot be read: {e}", r.queue);
        }
    }
    Ok(())
}
