//! `jobq groups`: a queue's groups (tenants), the busiest first, with their waiting and
//! active jobs and the limit holding them back, and how many groups there are.

use anyhow::Result;
use queue_core::internal::clock::utc_day;
use queue_core::{GroupLimited, GroupsView};

use super::ctx::Ctx;
use crate::output::{self, relative, Table};

/// Prints at most `limit` groups of `queue` and the counts.
pub async fn groups(ctx: &Ctx, queue: &str, limit: usize) -> Result<()> {
    let view = ctx.existing_queue(queue).await?.groups(limit).await?;
    if ctx.json {
        output::json_line(&view);
        return Ok(());
    }
    if view.groups.is_empty() {
        println!("no group of {queue} has waiting or active jobs");
        return Ok(());
    }
    print!("{}", groups_table(&view).render());
    println!("{}", summary(&view));
    Ok(())
}

fn groups_table(view: &GroupsView) -> Table {
    let mut t = Table::new(&["GROUP", ">WAITING", ">ACTIVE", "LIMITED"]);
    for g in &view.groups {
        t.row(vec![
            g.group.clone(),
            g.waiting.to_string(),
            g.active.to_string(),
            limited_text(g.limited),
        ]);
    }
    t
}

/// `concurrency`, `rate until <when>` or `-`.
fn limited_text(l: Option<GroupLimited>) -> String {
    match l {
        None => "-".into(),
        Some(GroupLimited::Concurrency) => "concurrency".into(),
        Some(GroupLimited::Rate { until_ms }) => {
            format!("rate until {} ({})", utc_time(until_ms), relative(until_ms))
        }
    }
}

/// A Unix time in ms as `YYYY-MM-DD HH:MM:SS.mmm UTC`.
fn utc_time(ms: u64) -> String {
    let ms = i64::try_from(ms).unwrap_or(i64::MAX);
    let in_day = ms.rem_euclid(86_400_000);
    format!(
        "{} {:02}:{:02}:{:02}.{:03} UTC",
        utc_day(ms),
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
}

/// The counts over every group, and how many of them the table shows.
fn summary(view: &GroupsView) -> String {
    format!(
        "{} group(s) with waiting jobs, {} with active jobs, {} limited; {} shown",
        view.with_waiting,
        view.with_active,
        view.limited,
        view.groups.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use queue_core::GroupInfo;

    #[test]
    fn table_and_summary() {
        let view = GroupsView {
            with_waiting: 3,
            with_active: 1,
            limited: 1,
            groups: vec![
                GroupInfo {
                    group: "tenant:1".into(),
                    waiting: 12,
                    active: 2,
                    limited: Some(GroupLimited::Concurrency),
                },
                GroupInfo {
                    group: "b".into(),
                    waiting: 3,
                    active: 0,
                    limited: None,
                },
            ],
        };
        assert_eq!(
            groups_table(&view).render(),
            "GROUP     WAITING  ACTIVE  LIMITED\n\
             tenant:1       12       2  concurrency\n\
             b               3       0  -\n"
        );
        assert_eq!(
            summary(&view),
            "3 group(s) with waiting jobs, 1 with active jobs, 1 limited; 2 shown"
        );
        // 2024-02-29T12:00:01.250Z
        let text = limited_text(Some(GroupLimited::Rate {
            until_ms: 1_709_208_001_250,
        }));
        assert!(
            text.starts_with("rate until 2024-02-29 12:00:01.250 UTC ("),
            "{text}"
        );
    }
}
