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
//! - `jobq_redis_up` gauge: 1 when Redis answered this scrape. When it did not, the scrape
//!   still succeeds with `jobq_redis_up 0`, so the outage can be alerted on.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use futures_util::future::try_join_all;
use queue_core::{Counts, ProcessingTime, PROCESSING_BUCKETS_MS};

use crate::backend::deadline;
use crate::error::AppError;
use crate::state::AppState;

/// The exposition's content type.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

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

async fn gather(state: &AppState) -> Result<Vec<(Counts, ProcessingTime)>, AppError> {
    let backend = state.backend();
    let names = backend.queue_names().await?;
    try_join_all(names.iter().map(|name| async move {
        let q = backend.queue(name).await?;
        deadline(async { tokio::try_join!(q.counts(), q.processing_time()) }).await
    }))
    .await
}

/// The exposition text of `queues`.
pub fn render(queues: &[(Counts, ProcessingTime)], redis_up: bool) -> String {
    let mut out = String::with_capacity(512 + queues.len() * 2048);
    out.push_str("# HELP jobq_redis_up Whether Redis answered this scrape.\n");
    out.push_str("# TYPE jobq_redis_up gauge\n");
    let _ = writeln!(out, "jobq_redis_up {}", u8::from(redis_up));

    out.push_str("# HELP jobq_jobs Jobs per queue and state.\n# TYPE jobq_jobs gauge\n");
    for (c, _) in queues {
        let q = label(&c.queue);
        for (state, n) in [
            ("waiting", c.waiting),
            ("waiting_children", c.waiting_children),
            ("active", c.active),
            ("delayed", c.delayed),
            ("completed", c.completed),
            ("failed", c.failed),
            ("paused", c.paused_jobs),
        ] {
            let _ = writeln!(out, "jobq_jobs{{queue=\"{q}\",state=\"{state}\"}} {n}");
        }
    }
    out.push_str("# HELP jobq_queue_paused Whether the queue is paused.\n");
    out.push_str("# TYPE jobq_queue_paused gauge\n");
    for (c, _) in queues {
        let _ = writeln!(
            out,
            "jobq_queue_paused{{queue=\"{}\"}} {}",
            label(&c.queue),
            u8::from(c.paused)
        );
    }
    out.push_str("# HELP jobq_completed_total Jobs completed, ever.\n");
    out.push_str("# TYPE jobq_completed_total counter\n");
    for (c, _) in queues {
        let _ = writeln!(
            out,
            "jobq_completed_total{{queue=\"{}\"}} {}",
            label(&c.queue),
            c.completed_total
        );
    }
    out.push_str("# HELP jobq_failed_total Jobs failed for good, ever.\n");
    out.push_str("# TYPE jobq_failed_total counter\n");
    for (c, _) in queues {
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
    for (c, t) in queues {
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
    out
}

/// A label value escaped per the exposition format.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_is_rendered_with_a_cumulative_histogram() {
        let c = Counts {
            queue: "video".into(),
            waiting: 2,
            waiting_children: 3,
            failed: 1,
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
        let text = render(&[(c, t)], true);
        for line in [
            "jobq_redis_up 1",
            "jobq_jobs{queue=\"video\",state=\"waiting\"} 2",
            "jobq_jobs{queue=\"video\",state=\"waiting_children\"} 3",
            "jobq_jobs{queue=\"video\",state=\"failed\"} 1",
            "jobq_queue_paused{queue=\"video\"} 0",
            "jobq_completed_total{queue=\"video\"} 7",
            "jobq_failed_total{queue=\"video\"} 1",
            "jobq_processing_seconds_bucket{queue=\"video\",le=\"0.001\"} 1",
            "jobq_processing_seconds_bucket{queue=\"video\",le=\"300\"} 3",
            "jobq_processing_seconds_bucket{queue=\"video\",le=\"+Inf\"} 4",
            "jobq_processing_seconds_sum{queue=\"video\"} 61.5",
            "jobq_processing_seconds_count{queue=\"video\"} 4",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
        }
        assert!(render(&[], false).contains("jobq_redis_up 0"));
    }
}
