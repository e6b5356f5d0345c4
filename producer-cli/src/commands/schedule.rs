//! `jobq schedule add|list|remove`: repeatable jobs (every N, or cron with seconds, UTC).

use anyhow::{anyhow, Result};
use queue_core::{list_queues, Repeat, Schedule, ScheduleInfo};
use serde_json::json;

use super::add::apply_opts;
use super::ctx::Ctx;
use crate::cli::ScheduleCommand;
use crate::output::{self, Table};

/// Runs one `schedule` subcommand.
pub async fn schedule(ctx: &Ctx, cmd: ScheduleCommand) -> Result<()> {
    match cmd {
        ScheduleCommand::Add {
            queue,
            schedule_id,
            name,
            every,
            cron,
            data,
            opts,
        } => {
            let repeat = match (every, cron) {
                (Some(d), _) => Repeat::every(d)?,
                (None, Some(expr)) => Repeat::cron(&expr)?,
                (None, None) => unreachable!("clap requires --every or --cron"),
            };
            let mut s = Schedule::new(schedule_id, name, repeat)
                .opts(apply_opts(queue_core::JobOptions::new(), &opts));
            if let Some(d) = data {
                s = s.data(&d)?;
            }
            let info = ctx.queue(&queue).await?.upsert_schedule(s).await?;
            if ctx.json {
                output::json_line(&info);
            } else {
                println!(
                    "schedule {} of {queue}: {} adds {}, next run {}",
                    output::plain(&info.id),
                    info.repeat,
                    output::plain(&info.name),
                    next_run(&info)
                );
            }
        }
        ScheduleCommand::List { queue } => {
            let queues = match queue {
                Some(q) => vec![ctx.existing_queue(&q).await?],
                None => {
                    let mut all = Vec::new();
                    for name in list_queues(&ctx.redis, &ctx.prefix).await? {
                        all.push(ctx.queue(&name).await?);
                    }
                    all
                }
            };
            let (mut all, mut corrupt) = (Vec::new(), Vec::new());
            for q in queues {
                let listing = q.schedule_listing().await?;
                all.extend(listing.schedules);
                corrupt.extend(listing.corrupt);
            }
            // (a definition that does not read back never fires: shown, for removal)
            if ctx.json {
                for s in &all {
                    output::json_line(s);
                }
                for c in &corrupt {
                    output::json_line(c);
                }
            } else if all.is_empty() && corrupt.is_empty() {
                println!("no schedules");
            } else {
                let mut t = Table::new(&["QUEUE", "ID", "NAME", "REPEAT", "NEXT RUN", "DATA"]);
                for s in &all {
                    t.row(vec![
                        s.queue.clone(),
                        s.id.clone(),
                        s.name.clone(),
                        s.repeat.to_string(),
                        next_run(s),
                        output::clip(&s.data.to_string(), 40),
                    ]);
                }
                for c in &corrupt {
                    t.row(vec![
                        c.queue.clone(),
                        output::clip(&c.id, 200),
                        String::new(),
                        "corrupt".into(),
                        "never".into(),
                        output::clip(&c.corrupt, 60),
                    ]);
                }
                t.print();
                if !corrupt.is_empty() {
                    eprintln!(
                        "jobq: {} schedule(s) whose stored definition cannot be read never \
                         fire: remove them (jobq schedule remove) and add them again",
                        corrupt.len()
                    );
                }
            }
        }
        ScheduleCommand::Remove { queue, schedule_id } => {
            if !ctx
                .queue(&queue)
                .await?
                .remove_schedule(&schedule_id)
                .await?
            {
                return Err(anyhow!(
                    "schedule {schedule_id:?} not found in queue {queue:?}"
                ));
            }
            if ctx.json {
                output::json_line(&json!({"queue": queue, "id": schedule_id, "removed": true}));
            } else {
                println!("removed schedule {schedule_id} from {queue}");
            }
        }
    }
    Ok(())
}

fn next_run(s: &ScheduleInfo) -> String {
    s.next_run_ms
        .map(output::relative)
        .unwrap_or_else(|| "never".into())
}
