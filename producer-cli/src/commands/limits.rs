//! `jobq limits`: a queue's limits (its rate limit and global concurrency, and the
//! per-group limits: the default of every group and the groups' overrides), changed by
//! flags and then shown as they are.

use anyhow::Result;
use queue_core::internal::limits_view::{self, limits_json};
use queue_core::{GroupLimitChange, GroupLimits, GroupLimitsView, Limits, Queue};

use super::ctx::Ctx;
use crate::cli::LimitsArgs;
use crate::output::{self, Table};

/// Applies the changes `args` asks for (if any), then prints the limits.
pub async fn limits(ctx: &Ctx, args: &LimitsArgs) -> Result<()> {
    let q = ctx.existing_queue(&args.queue).await?;
    if args.changes_anything() {
        change(&q, args).await?;
    }
    let (queue_limits, group_limits) = (q.limits().await?, q.group_limits().await?);
    if ctx.json {
        output::json_line(&limits_json(&args.queue, &queue_limits, &group_limits));
    } else {
        print!("{}", limits_table(&queue_limits, &group_limits).render());
        if let Some(c) = &queue_limits.corrupt {
            println!("queue limits: corrupt record: {c}");
        }
        for c in &group_limits.corrupt {
            println!("group limits: corrupt record: {c}");
        }
    }
    Ok(())
}

/// The queue's changes first, then the group's, each as one call.
async fn change(q: &Queue, args: &LimitsArgs) -> Result<()> {
    if args.clear_rate {
        q.clear_rate_limit().await?;
    }
    if let Some(r) = args.rate {
        q.set_rate_limit(r.max, r.window).await?;
    }
    if args.clear_concurrency {
        q.clear_global_concurrency().await?;
    }
    if let Some(n) = args.concurrency {
        q.set_global_concurrency(n).await?;
    }
    let group = args.group.as_deref();
    let mut changes = Vec::new();
    if args.clear_group_concurrency {
        changes.push(GroupLimitChange::ClearConcurrency);
    }
    if let Some(n) = args.group_concurrency {
        changes.push(GroupLimitChange::Concurrency(n));
    }
    if args.clear_group_rate {
        changes.push(GroupLimitChange::ClearRate);
    }
    if let Some(r) = args.group_rate {
        changes.push(GroupLimitChange::Rate {
            max: r.max,
            window: r.window,
        });
    }
    for c in changes {
        q.set_group_limit(group, c).await?;
    }
    Ok(())
}

/// One row per scope: the queue, the group default, each override. An override's kind
/// it does not set reads "default".
fn limits_table(l: &Limits, g: &GroupLimitsView) -> Table {
    let mut t = Table::new(&["LIMIT OF", ">CONCURRENCY", "RATE"]);
    t.row(vec![
        "queue".into(),
        l.concurrency.map_or("-".into(), |n| n.to_string()),
        rate_text(l.rate_max, l.rate_window_ms, "-"),
    ]);
    let group_row = |t: &mut Table, scope: String, o: &GroupLimits, unset: &str| {
        t.row(vec![
            scope,
            o.concurrency.map_or(unset.into(), |n| n.to_string()),
            rate_text(o.rate_max, o.rate_window_ms, unset),
        ]);
    };
    group_row(&mut t, "each group (default)".into(), &g.default, "-");
    for (name, o) in &g.overrides {
        group_row(&mut t, format!("group {name}"), o, "default");
    }
    t
}

/// `10/1s`, or `unset` without a limit.
fn rate_text(max: Option<u64>, window_ms: Option<u64>, unset: &str) -> String {
    limits_view::rate_text(max, window_ms).unwrap_or_else(|| unset.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_keeps_the_queue_fields_and_adds_the_groups() {
        let l = Limits {
            rate_max: Some(10),
            rate_window_ms: Some(1000),
            concurrency: None,
            corrupt: None,
        };
        let g = GroupLimitsView {
            default: GroupLimits {
                concurrency: Some(2),
                ..GroupLimits::default()
            },
            overrides: vec![(
                "vip".into(),
                GroupLimits {
                    rate_max: Some(5),
                    rate_window_ms: Some(60_000),
                    concurrency: None,
                },
            )],
            corrupt: Vec::new(),
        };
        assert_eq!(
            limits_json("q", &l, &g),
            json!({"queue": "q", "rate_max": 10, "rate_window_ms": 1000, "concurrency": null,
                   "group": {"default": {"concurrency": 2},
                             "overrides": {"vip": {"rate_max": 5, "rate_window_ms": 60000}}}})
        );
        assert_eq!(
            limits_table(&l, &g).render(),
            "LIMIT OF              CONCURRENCY  RATE\n\
             queue                           -  10/1s\n\
             each group (default)            2  -\n\
             group vip                 default  5/1m\n"
        );
    }
}
