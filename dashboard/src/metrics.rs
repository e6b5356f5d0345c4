//! `GET /metrics`: Prometheus text exposition of every queue, read from Redis at scrape
//! time (so any number of dashboards report the same figures):
//!
//! - `jobq_jobs{queue,state}` gauge: jobs per state (`waiting` counts ready jobs, `paused`
//!   the waiting jobs of a paused queue, `waiting_children` the flow parents waiting for
//!   their children, as `jobq_jobs` over all states sums to the jobs stored);
//! - `jobq_queue_paused{queue}` gauge;
//! - `jobq_completed_total{queue}`, `jobq_failed_total{queue}` counters (monotonic, not
//!   reduced by retention);
//! - `jobq_processing_seconds{queue}` histogram: time from an attempt's start to its
//!   recorded outcome, counted by the completion scripts (see queue-core `processing.rs`);
//! - `jobq_groups{queue,state}` gauge: how many of the queue's groups (tenants) have
//!   waiting jobs (`waiting`), have active jobs (`active`), are held back by a group limit
//!   now (`limited`);
//! - `jobq_group_waiting{queue,group}`, `jobq_group_active{queue,group}` gauges: the jobs of
//!   the queue's [`TOP_GROUPS`] busiest groups only (most waiting first, then those with
//!   active jobs only), so a queue of a million tenants still makes a bounded label set; a
//!   group out of the top is not reported (its series goes stale);
//! - `jobq_redis_up` gauge: 1 when Redis answered this scrape. When it did not, the scrape
//!   still succeeds with `jobq_redis_up 0`, so the outage can be alerted on.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use futures_util::future::try_join_all;
use queue_core::{Counts, GroupInfo, GroupsView, ProcessingTime, PROCESSING_BUCKETS_MS};

use crate::api::groups;
use crate::backend::deadline;
use crate::error::AppError;
use crate::state::AppState;

/// The exposition's content type.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Groups of each queue with series of their own (`jobq_group_*`).
pub const TOP_GROUPS: u64 = 20;

/// What is reported of one queue.
#[derive(Debug, Clone, Default)]
pub struct QueueMetrics {
    /// Its counts.
    pub counts: Counts,
    /// Its processing-time histogram.
    pub time: ProcessingTime,
    /// Its group counts and [`TOP_GROUPS`] busiest groups.
    pub groups: GroupsView,
}

/// The metrics of every queue.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let body = match gather(&state).await {
        Ok(queues) => render(&queues, true),
        Err(e) => {
            tracing::debug!(error = ?e.to_string(), "metrics without Redis");
            render(&[], false)
        }
    };
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body)
}

async fn gather(state: &AppState) -> Result<Vec<QueueMetrics>, AppError> {
    let backend = state.backend();
    let names = backend.queue_names().await?;
    try_join_all(names.iter().map(|name| async move {
        let q = backend.queue(name).await?;
        let ((counts, time), groups) = tokio::try_join!(
            deadline(async { tokio::try_join!(q.counts(), q.processing_time()) }),
            groups(&q, TOP_GROUPS)
        )?;
        Ok::<_, AppError>(QueueMetrics {
            counts,
            time,
            groups,
        })
    }))
    .await
}

/// The exposition text of `queues`.
pub fn render(queues: &[QueueMetrics], redis_up: bool) -> String {
    let mut out = String::with_capacity(512 + queues.len() * 2048);
    out.push_str("# HELP jobq_redis_up Whether Redis answered this scrape.\n");
    out.push_str("# TYPE jobq_redis_up gauge\n");
    let _ = writeln!(out, "jobq_redis_up {}", u8::from(redis_up));

    out.push_str("# HELP jobq_jobs Jobs per queue and state.\n# TYPE jobq_jobs gauge\n");
    for QueueMetrics { counts: c, .. } in queues {
        let q = label(&c.queue);
        for (state, n) in [
            ("waiting", c.waiting),
            ("waiting_children", c.waiting_children),
            ("active", c.active),
            ("delayed", c.delayed),
            ("completed", c.completed),
            ("failed", c.failed),
            ("cancelled", c.cancelled),
            ("paused", c.paused_jobs),
        ] {
            let _ = writeln!(out, "jobq_jobs{{queue=\"{q}\",state=\"{state}\"}} {n}");
        }
    }
    out.push_str("# HELP jobq_queue_paused Whether the queue is paused.\n");
    out.push_str("# TYPE jobq_queue_paused gauge\n");
    for QueueMetrics { counts: c, .. } in queues {
        let _ = writeln!(
            out,
            "jobq_queue_paused{{queue=\"{}\"}} {}",
            label(&c.queue),
            u8::from(c.paused)
        );
    }
    out.push_str("# HELP jobq_completed_total Jobs completed, ever.\n");
    out.push_str("# TYPE jobq_completed_total counter\n");
    for QueueMetrics { counts: c, .. } in queues {
        let _ = writeln!(
            out,
            "jobq_completed_total{{queue=\"{}\"}} {}",
            label(&c.queue),
            c.completed_total
        );
    }
    out.push_str("# HELP jobq_failed_total Jobs failed for good, ever.\n");
    out.push_str("# TYPE jobq_failed_total counter\n");
    for QueueMetrics { counts: c, .. } in queues {
        let _ = writeln!(
            out,
            "jobq_failed_total{{queue=\"{}\"}} {}",
            label(&c.queue),
            c.failed_total
        );
    }
    out.push_str(
        "# HELP jobq_processing_seconds Time from an attempt's start to its recorded outcome.\n",
    );
    out.push_str("# TYPE jobq_processing_seconds histogram\n");
    for QueueMetrics {
        counts: c, time: t, ..
    } in queues
    {
        let q = label(&c.queue);
        for (bound, n) in PROCESSING_BUCKETS_MS.iter().zip(&t.cumulative) {
            let _ = writeln!(
                out,
                "jobq_processing_seconds_bucket{{queue=\"{q}\",le=\"{}\"}} {n}",
                bound / 1000.0
            );
        }
        let _ = writeln!(
            out,
            "jobq_processing_seconds_bucket{{queue=\"{q}\",le=\"+Inf\"}} {}",
            t.count
        );
        let _ = writeln!(
            out,
            "jobq_processing_seconds_sum{{queue=\"{q}\"}} {}",
            t.sum_ms as f64 / 1000.0
        );
        let _ = writeln!(
            out,
            "jobq_processing_seconds_count{{queue=\"{q}\"}} {}",
            t.count
        );
    }
    render_groups(&mut out, queues);
    out
}

/// The group series of `queues`: the counts of every queue, the jobs of its busiest groups.
fn render_groups(out: &mut String, queues: &[QueueMetrics]) {
    out.push_str(
        "# HELP jobq_groups Groups of the queue with waiting jobs, with active jobs, held back \
         by a group limit.\n# TYPE jobq_groups gauge\n",
    );
    for m in queues {
        let q = label(&m.counts.queue);
        let g = &m.groups;
        for (state, n) in [
            ("waiting", g.with_waiting),
            ("active", g.with_active),
            ("limited", g.limited),
        ] {
            let _ = writeln!(out, "jobq_groups{{queue=\"{q}\",state=\"{state}\"}} {n}");
        }
    }
    let per_group: [GroupGauge; 2] = [
        ("jobq_group_waiting", "Jobs waiting in a group", |g| {
            g.waiting
        }),
        ("jobq_group_active", "Jobs of a group running now", |g| {
            g.active
        }),
    ];
    for (name, help, value) in per_group {
        out.push_str(&format!(
            "# HELP {name} {help}, for the {TOP_GROUPS} busiest groups of each queue.\n\
             # TYPE {name} gauge\n"
        ));
        for m in queues {
            let q = label(&m.counts.queue);
            for g in &m.groups.groups {
                let _ = writeln!(
                    out,
                    "{name}{{queue=\"{q}\",group=\"{}\"}} {}",
                    label(&g.group),
                    value(g)
                );
            }
        }
    }
}

/// A per-group gauge: its name, its help text, and its value for a group.
type GroupGauge = (&'static str, &'static str, fn(&GroupInfo) -> u64);

/// A label value escaped per the exposition format.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use queue_core::{GroupInfo, GroupLimited};

    #[test]
    fn every_series_is_rendered_with_a_cumulative_histogram() {
        let c = Counts {
            queue: "video".into(),
            waiting: 2,
            waiting_children: 3,
            failed: 1,
            cancelled: 4,
            completed_total: 7,
            failed_total: 1,
            ..Counts::default()
        };
        let mut cumulative = vec![3; PROCESSING_BUCKETS_MS.len()];
        cumulative[0] = 1;
        let t = ProcessingTime {
            cumulative,
            count: 4,
            sum_ms: 61_500,
        };
        let groups = GroupsView {
            with_waiting: 2,
            with_active: 1,
            limited: 1,
            groups: vec![
                GroupInfo {
                    group: "acme".into(),
                    waiting: 5,
                    active: 1,
                    limited: Some(GroupLimited::Concurrency),
                },
                GroupInfo {
                    group: "b\"c".into(),
                    waiting: 1,
                    active: 0,
                    limited: None,
                },
            ],
        };
        let text = render(
            &[QueueMetrics {
                counts: c,
                time: t,
                groups,
            }],
            true,
        );
        for line in [
            "jobq_redis_up 1",
            "jobq_jobs{queue=\"video\",state=\"waiting\"} 2",
            "jobq_jobs{queue=\"video\",state=\"waiting_children\"} 3",
            "jobq_jobs{queue=\"video\",state=\"failed\"} 1",
            "jobq_jobs{queue=\"video\",state=\"cancelled\"} 4",
            "jobq_queue_paused{queue=\"video\"} 0",
            "jobq_completed_total{queue=\"video\"} 7",
            "jobq_failed_total{queue=\"video\"} 1",
            "jobq_processing_seconds_bucket{queue=\"video\",le=\"0.001\"} 1",
            "jobq_processing_seconds_bucket{queue=\"video\",le=\"300\"} 3",
            "jobq_processing_seconds_bucket{queue=\"video\",le=\"+Inf\"} 4",
            "jobq_processing_seconds_sum{queue=\"video\"} 61.5",
            "jobq_processing_seconds_count{queue=\"video\"} 4",
            "jobq_groups{queue=\"video\",state=\"waiting\"} 2",
            "jobq_groups{queue=\"video\",state=\"active\"} 1",
            "jobq_groups{queue=\"video\",state=\"limited\"} 1",
            "jobq_group_waiting{queue=\"video\",group=\"acme\"} 5",
            "jobq_group_active{queue=\"video\",group=\"acme\"} 1",
            "jobq_group_waiting{queue=\"video\",group=\"b\\\"c\"} 1",
            "jobq_group_active{queue=\"video\",group=\"b\\\"c\"} 0",
            "# TYPE jobq_groups gauge",
            "# TYPE jobq_group_waiting gauge",
            "# TYPE jobq_group_active gauge",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
        }
        assert!(render(&[], false).contains("jobq_redis_up 0"));
    }
}
