//! `jobq workers`: the live workers, from their heartbeats: who they are, what they take
//! jobs from, and how many jobs each holds.

use anyhow::Result;
use queue_core::{list_workers, WorkerInfo};

use super::ctx::Ctx;
use crate::output::{self, clip, relative, Table};

/// Prints every live worker (one JSON object each with `--json`).
pub async fn workers(ctx: &Ctx) -> Result<()> {
    let workers = list_workers(&ctx.redis, &ctx.prefix).await?;
    if ctx.json {
        for w in &workers {
            output::json_line(w);
        }
        return Ok(());
    }
    if workers.is_empty() {
        println!("no live worker under prefix {}", output::plain(&ctx.prefix));
        return Ok(());
    }
    workers_table(&workers).print();
    println!("{}", summary(&workers));
    Ok(())
}

fn workers_table(workers: &[WorkerInfo]) -> Table {
    let mut t = Table::new(&[
        "ID", "HOST", ">PID", "VERSION", "QUEUES", ">RUNNING", "STARTED", "SEEN",
    ]);
    for w in workers {
        if let Some(why) = &w.corrupt {
            let mut row = vec![clip(&w.id, 60), format!("CORRUPT: {}", clip(why, 80))];
            row.resize(8, String::new());
            t.row(row);
            continue;
        }
        let mut queues = w.queues.join(",");
        if w.queue_count > w.queues.len() {
            queues.push_str(&format!(" (+{})", w.queue_count - w.queues.len()));
        }
        t.row(vec![
            w.id.clone(),
            w.host.clone(),
            w.pid.to_string(),
            w.version.clone(),
            clip(&queues, 60),
            format!("{}/{}", w.running_count, w.concurrency),
            relative(w.started_at),
            relative(w.last_seen),
        ]);
    }
    t
}

/// How many workers, and how many jobs they hold.
fn summary(workers: &[WorkerInfo]) -> String {
    let jobs: usize = workers.iter().map(|w| w.running_count).sum();
    format!("{} worker(s) holding {jobs} job(s)", workers.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_summary() {
        let ok = WorkerInfo {
            id: "h:7:1:ab".into(),
            host: "h".into(),
            pid: 7,
            version: "0.1.0".into(),
            queues: vec!["a".into(), "b".into()],
            queue_count: 3,
            concurrency: 4,
            running_count: 2,
            ..WorkerInfo::default()
        };
        let bad = WorkerInfo {
            id: "x\u{1b}[2J".into(),
            corrupt: Some("its info does not decode".into()),
            ..WorkerInfo::default()
        };
        let text = workers_table(&[ok.clone(), bad.clone()]).render();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("ID"), "{text}");
        assert!(
            lines[1].contains("a,b (+1)") && lines[1].contains("2/4"),
            "{text}"
        );
        assert!(
            lines[2].starts_with("x\\u{1b}[2J") && lines[2].contains("CORRUPT: its info"),
            "{text}"
        );
        assert_eq!(summary(&[ok, bad]), "2 worker(s) holding 2 job(s)");
    }
}
