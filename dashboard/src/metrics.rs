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
//! - `jobq_queue_unreadable{queue}` gauge: 1 for a queue whose records could not be read
//!   this scrape (a corrupt record, such as a key of the wrong type), which then has no
//!   other series; the other queues are reported as usual;
//! - `jobq_redis_up` gauge: 1 when Redis answered this scrape. When it did not, the scrape
//!   still succeeds with `jobq_redis_up 0`, so the outage can be alerted on.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use futures_util::future::try_join_all;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::prometheus_text::{self, CONTENT_TYPE};
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use queue_core::{Counts, GroupInfo, GroupsView, ProcessingTime, PROCESSING_BUCKETS_MS};

use crate::api::groups;
use crate::backend::deadline;
use crate::error::AppError;
use crate::state::AppState;
use crate::stats::isolated;

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
    /// Its records could not be read (a corrupt record): only `jobq_queue_unreadable` is
    /// reported of it.
    pub unreadable: bool,
}

/// `GET /metrics`: the metrics of every queue, as Prometheus text.
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "metrics",
    responses(
        (status = 200, description = "Prometheus text exposition: per-queue gauges by \
            state, completed and failed counters, the processing-time histogram, the \
            busiest groups (`jobq_redis_up` 0 while Redis is unreachable)",
            content_type = "text/plain", body = String),
    ))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let body = match gather(&state).await {
        Ok(queues) => render(queues, true),
        Err(e) => {
            tracing::debug!(error = ?e.to_string(), "metrics without Redis");
            render(Vec::new(), false)
        }
    };
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body)
}

async fn gather(state: &AppState) -> Result<Vec<QueueMetrics>, AppError> {
    let backend = state.backend();
    let names = backend.queue_names().await?;
    let read = try_join_all(names.iter().map(|name| {
        isolated(name, async move {
            let q = backend.queue(name).await?;
            let ((counts, time), groups) = tokio::try_join!(
                deadline(async { tokio::try_join!(q.counts(), q.processing_time()) }),
                groups(&q, TOP_GROUPS)
            )?;
            Ok(QueueMetrics {
                counts,
                time,
                groups,
                unreadable: false,
            })
        })
    }))
    .await?;
    // a queue whose records cannot be read (a corrupt record) reports only that
    Ok(names
        .iter()
        .zip(read)
        .map(|(name, r)| {
            r.unwrap_or_else(|_| QueueMetrics {
                counts: Counts {
                    queue: name.clone(),
                    ..Counts::default()
                },
                unreadable: true,
                ..QueueMetrics::default()
            })
        })
        .collect())
}

/// The exposition text of `queues`, written by `prometheus-client`'s Prometheus text
/// encoder (names, label escaping, number formats).
pub fn render(queues: Vec<QueueMetrics>, redis_up: bool) -> String {
    let mut out = String::with_capacity(512 + queues.len() * 2048);
    let mut registry = Registry::default();
    let readable = queues
        .iter()
        .map(|m| (m.counts.queue.clone(), m.unreadable))
        .collect();
    let queues = queues.into_iter().filter(|m| !m.unreadable).collect();
    registry.register_collector(Box::new(Scrape {
        queues,
        readable,
        redis_up,
    }));
    // writing to a String cannot fail, nor can the encoders of these values
    let _ = prometheus_text::encode(&mut out, &registry);
    out
}

/// One scrape's figures, read from Redis before; encoded once. The values are not the
/// library's live metrics but constants of this scrape (the figures live in Redis).
#[derive(Debug)]
struct Scrape {
    /// The queues read whole.
    queues: Vec<QueueMetrics>,
    /// Every queue, and whether its records could not be read.
    readable: Vec<(String, bool)>,
    redis_up: bool,
}

impl Scrape {
    /// One family `name` of `kind` with a series per label set and value in `series`.
    /// Counters are named without `_total`: the library adds it.
    fn family<L, V>(
        encoder: &mut DescriptorEncoder,
        (name, help, kind): (&str, &str, MetricType),
        series: impl IntoIterator<Item = (L, V)>,
    ) -> Result<(), std::fmt::Error>
    where
        L: EncodeLabelSet,
        V: Into<u64>,
    {
        let mut family = encoder.encode_descriptor(name, help, None, kind)?;
        for (labels, value) in series {
            let value: u64 = value.into();
            let metric = family.encode_family(&labels)?;
            match kind {
                MetricType::Counter => ConstCounter::new(value).encode(metric)?,
                _ => ConstGauge::new(value).encode(metric)?,
            }
        }
        Ok(())
    }
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let queues = &self.queues;
        let up = ConstGauge::new(u64::from(self.redis_up));
        up.encode(encoder.encode_descriptor(
            "jobq_redis_up",
            "Whether Redis answered this scrape.",
            None,
            MetricType::Gauge,
        )?)?;
        Self::family(
            &mut encoder,
            (
                "jobq_queue_unreadable",
                "Whether the queue's records could not be read this scrape (a corrupt record, \
                 such as a key of the wrong type): 1 for such a queue, which has no other series.",
                MetricType::Gauge,
            ),
            self.readable
                .iter()
                .map(|(q, bad)| ([("queue", q.as_str())], u64::from(*bad))),
        )?;

        Self::family(
            &mut encoder,
            ("jobq_jobs", "Jobs per queue and state.", MetricType::Gauge),
            queues.iter().flat_map(|QueueMetrics { counts: c, .. }| {
                [
                    ("waiting", c.waiting),
                    ("waiting_children", c.waiting_children),
                    ("active", c.active),
                    ("delayed", c.delayed),
                    ("completed", c.completed),
                    ("failed", c.failed),
                    ("cancelled", c.cancelled),
                    ("paused", c.paused_jobs),
                ]
                .map(|(state, n)| ([("queue", c.queue.as_str()), ("state", state)], n))
            }),
        )?;
        Self::family(
            &mut encoder,
            (
                "jobq_queue_paused",
                "Whether the queue is paused.",
                MetricType::Gauge,
            ),
            queues
                .iter()
                .map(|m| ([("queue", m.counts.queue.as_str())], m.counts.paused)),
        )?;
        Self::family(
            &mut encoder,
            (
                "jobq_completed",
                "Jobs completed, ever.",
                MetricType::Counter,
            ),
            queues.iter().map(|m| {
                (
                    [("queue", m.counts.queue.as_str())],
                    m.counts.completed_total,
                )
            }),
        )?;
        Self::family(
            &mut encoder,
            (
                "jobq_failed",
                "Jobs failed for good, ever.",
                MetricType::Counter,
            ),
            queues
                .iter()
                .map(|m| ([("queue", m.counts.queue.as_str())], m.counts.failed_total)),
        )?;
        let mut histogram = encoder.encode_descriptor(
            "jobq_processing_seconds",
            "Time from an attempt's start to its recorded outcome.",
            None,
            MetricType::Histogram,
        )?;
        for m in queues {
            processing_histogram(&mut histogram, &m.counts.queue, &m.time)?;
        }
        encode_groups(&mut encoder, queues)
    }
}

/// The series of one queue's processing-time histogram.
fn processing_histogram(
    histogram: &mut MetricEncoder,
    queue: &str,
    t: &ProcessingTime,
) -> Result<(), std::fmt::Error> {
    // the encoder takes each bucket's own count (it writes them cumulated); the stored
    // counts are cumulative already
    let mut below = 0;
    let buckets: Vec<(f64, u64)> = PROCESSING_BUCKETS_MS
        .iter()
        .zip(&t.cumulative)
        .map(|(bound, &n)| {
            let own = n.saturating_sub(below);
            below = n;
            (bound / 1000.0, own)
        })
        .collect();
    histogram
        .encode_family(&[("queue", queue)])?
        .encode_histogram::<NoLabelSet>(t.sum_ms as f64 / 1000.0, t.count, &buckets, None)
}

/// The group series of `queues`: the counts of every queue, the jobs of its busiest groups.
fn encode_groups(
    encoder: &mut DescriptorEncoder,
    queues: &[QueueMetrics],
) -> Result<(), std::fmt::Error> {
    Scrape::family(
        encoder,
        (
            "jobq_groups",
            "Groups of the queue with waiting jobs, with active jobs, held back by a group \
             limit.",
            MetricType::Gauge,
        ),
        queues.iter().flat_map(|m| {
            let g = &m.groups;
            [
                ("waiting", g.with_waiting),
                ("active", g.with_active),
                ("limited", g.limited),
            ]
            .map(|(state, n)| ([("queue", m.counts.queue.as_str()), ("state", state)], n))
        }),
    )?;
    let per_group: [GroupGauge; 2] = [
        ("jobq_group_waiting", "Jobs waiting in a group", |g| {
            g.waiting
        }),
        ("jobq_group_active", "Jobs of a group running now", |g| {
            g.active
        }),
    ];
    for (name, help, value) in per_group {
        let help = format!("{help}, for the {TOP_GROUPS} busiest groups of each queue.");
        Scrape::family(
            encoder,
            (name, &help, MetricType::Gauge),
            queues.iter().flat_map(|m| {
                m.groups.groups.iter().map(|g| {
                    (
                        [
                            ("queue", m.counts.queue.as_str()),
                            ("group", g.group.as_str()),
                        ],
                        value(g),
                    )
                })
            }),
        )?;
    }
    Ok(())
}

/// A per-group gauge: its name, its help text, and its value for a group.
type GroupGauge = (&'static str, &'static str, fn(&GroupInfo) -> u64);

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
        let broken = QueueMetrics {
            counts: Counts {
                queue: "broken".into(),
                ..Counts::default()
            },
            unreadable: true,
            ..QueueMetrics::default()
        };
        let text = render(
            vec![
                QueueMetrics {
                    counts: c,
                    time: t,
                    groups,
                    unreadable: false,
                },
                broken,
            ],
            true,
        );
        // a queue that cannot be read has that series only
        assert!(
            !text
                .lines()
                .any(|l| l.contains("broken") && !l.starts_with("jobq_queue_unreadable")),
            "{text}"
        );
        for line in [
            "jobq_redis_up 1",
            "jobq_queue_unreadable{queue=\"video\"} 0",
            "jobq_queue_unreadable{queue=\"broken\"} 1",
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
        assert!(render(Vec::new(), false).contains("jobq_redis_up 0"));
    }
}
