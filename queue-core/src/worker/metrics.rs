//! In-process metrics of a worker — attempts by queue, handler and outcome, handler time
//! as a histogram, jobs running now — kept in `prometheus-client` metrics and rendered in
//! the Prometheus text exposition format by that library.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::primitives::{CacheStats, Caches};

/// Upper bounds (seconds) of the handler-time histogram's buckets.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0, 300.0,
];

/// How an attempt ended, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The handler succeeded.
    Completed,
    /// The handler failed, panicked or timed out.
    Failed,
    /// Ended without an outcome of its own: stopped (shutdown deadline, lost lease: left
    /// for reclaim), cancelled, or snoozed.
    Abandoned,
}

impl AttemptOutcome {
    const ALL: [AttemptOutcome; 3] = [
        AttemptOutcome::Completed,
        AttemptOutcome::Failed,
        AttemptOutcome::Abandoned,
    ];

    /// Its `outcome` label.
    fn label(self) -> &'static str {
        match self {
            AttemptOutcome::Completed => "completed",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::Abandoned => "abandoned",
        }
    }
}

/// Labels of `jobq_worker_attempts_total` (in this order on each series).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabels {
    queue: String,
    name: String,
    outcome: &'static str,
}

/// Labels of `jobq_worker_handler_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HandlerLabels {
    queue: String,
    name: String,
}

/// A histogram with [`DURATION_BUCKETS`] (a plain `fn`: what a [`Family`] builds with).
fn handler_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// The series one handler of one queue updates: its attempts by outcome (in
/// [`AttemptOutcome::ALL`]'s order) and its handler time, shared with their families.
struct Series {
    attempts: [Counter; 3],
    seconds: Histogram,
}

/// Series by queue, then handler name (nested, so a finished attempt finds its own by `&str`
/// with no labels built: both sets are as small as the worker's queues and handlers).
type SeriesByQueue = HashMap<String, HashMap<String, Arc<Series>>>;

/// A worker's counters. Cheap to update from every handler slot.
pub struct WorkerMetrics {
    /// Every metric below (the registry holds clones sharing their values), and the
    /// caches' counts read at each scrape.
    registry: Registry,
    attempts: Family<AttemptLabels, Counter>,
    handler_seconds: Family<HandlerLabels, Histogram, fn() -> Histogram>,
    running: Gauge,
    concurrency: Gauge,
    series: RwLock<SeriesByQueue>,
}

impl std::fmt::Debug for WorkerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerMetrics")
            .field("running", &self.running())
            .finish_non_exhaustive()
    }
}

impl WorkerMetrics {
    pub(crate) fn new(caches: Caches) -> Self {
        let attempts = Family::<AttemptLabels, Counter>::default();
        let handler_seconds =
            Family::<_, _, fn() -> Histogram>::new_with_constructor(handler_histogram as _);
        let running = Gauge::default();
        let concurrency = Gauge::default();
        let mut registry = Registry::default();
        // the library adds `_total` to a counter's name, and a full stop to each help text
        registry.register(
            "jobq_worker_attempts",
            "Job attempts run by this worker, by outcome",
            attempts.clone(),
        );
        registry.register(
            "jobq_worker_handler_seconds",
            "Time from an attempt's handler start to its outcome",
            handler_seconds.clone(),
        );
        registry.register(
            "jobq_worker_running_jobs",
            "Handlers running now",
            running.clone(),
        );
        registry.register(
            "jobq_worker_concurrency",
            "Most handlers this worker runs at once",
            concurrency.clone(),
        );
        registry.register_collector(Box::new(CacheCounts(caches)));
        WorkerMetrics {
            registry,
            attempts,
            handler_seconds,
            running,
            concurrency,
            series: RwLock::default(),
        }
    }

    pub(crate) fn set_concurrency(&self, n: usize) {
        self.concurrency.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub(crate) fn started(&self) {
        self.running.inc();
    }

    /// Records an attempt that ran for `took`.
    pub(crate) fn finished(
        &self,
        queue: &str,
        name: &str,
        outcome: AttemptOutcome,
        took: Duration,
    ) {
        self.running.dec();
        let series = self.series(queue, name);
        let at = AttemptOutcome::ALL.iter().position(|o| *o == outcome);
        if let Some(counter) = at.and_then(|i| series.attempts.get(i)) {
            counter.inc();
        }
        series.seconds.observe(took.as_secs_f64());
    }

    /// The series of handler `name` in `queue`, made at its first attempt: every outcome
    /// has one from then on, at 0 until seen.
    fn series(&self, queue: &str, name: &str) -> Arc<Series> {
        let known = self.series.read().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = known.get(queue).and_then(|q| q.get(name)) {
            return s.clone();
        }
        drop(known);
        let mut known = self.series.write().unwrap_or_else(|e| e.into_inner());
        let by_name = known.entry(queue.to_string()).or_default();
        by_name
            .entry(name.to_string())
            .or_insert_with(|| {
                let counter = |o| {
                    self.attempts
                        .get_or_create(&attempt_labels(queue, name, o))
                        .clone()
                };
                let [c, f, a] = AttemptOutcome::ALL;
                Arc::new(Series {
                    attempts: [counter(c), counter(f), counter(a)],
                    seconds: self
                        .handler_seconds
                        .get_or_create(&HandlerLabels {
                            queue: queue.to_string(),
                            name: name.to_string(),
                        })
                        .clone(),
                })
            })
            .clone()
    }

    /// Handlers running now.
    pub fn running(&self) -> i64 {
        self.running.get()
    }

    /// Attempts counted so far for `queue` and handler `name`: (completed, failed,
    /// abandoned).
    pub fn attempts(&self, queue: &str, name: &str) -> (u64, u64, u64) {
        let count = |o| {
            self.attempts
                .get(&attempt_labels(queue, name, o))
                .map_or(0, |c| c.get())
        };
        (
            count(AttemptOutcome::Completed),
            count(AttemptOutcome::Failed),
            count(AttemptOutcome::Abandoned),
        )
    }

    /// The metrics in the Prometheus text exposition format (series `jobq_worker_*`, and
    /// `jobq_cache_*` for the handlers' caches).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // writing to a String cannot fail, nor can the metrics' encoders
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

fn attempt_labels(queue: &str, name: &str, outcome: AttemptOutcome) -> AttemptLabels {
    AttemptLabels {
        queue: queue.to_string(),
        name: name.to_string(),
        outcome: outcome.label(),
    }
}

/// A cache counter: its name (without `_total`), its help text, its value in a cache's stats.
type CacheCounter = (&'static str, &'static str, fn(&CacheStats) -> u64);

/// `jobq_cache_hits_total` and `jobq_cache_misses_total` by namespace, read from the
/// handlers' caches at each scrape (the caches count on their own).
#[derive(Debug)]
struct CacheCounts(Caches);

impl Collector for CacheCounts {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = self.0.stats();
        if stats.is_empty() {
            return Ok(());
        }
        let counters: [CacheCounter; 2] = [
            (
                "jobq_cache_hits",
                "Cache reads served from Redis, by namespace.",
                |s| s.hits,
            ),
            (
                "jobq_cache_misses",
                "Cache reads that found nothing, by namespace.",
                |s| s.misses,
            ),
        ];
        // named without `_total`: the library adds it to a counter's name
        for (name, help, pick) in counters {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (namespace, s) in &stats {
                let labels = [("namespace", namespace.as_str())];
                ConstCounter::new(pick(s)).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_a_cumulative_histogram() {
        let m = WorkerMetrics::new(Caches::default());
        m.set_concurrency(4);
        for (outcome, ms) in [
            (AttemptOutcome::Completed, 2),
            (AttemptOutcome::Completed, 40),
            (AttemptOutcome::Failed, 700),
        ] {
            m.started();
            m.finished("video", "video.probe", outcome, Duration::from_millis(ms));
        }
        m.started();
        m.started();
        m.finished(
            "a\"b\\c",
            "x\ny",
            AttemptOutcome::Abandoned,
            Duration::from_secs(1),
        );
        let text = m.render();
        for line in [
            "# TYPE jobq_worker_attempts_total counter",
            "jobq_worker_attempts_total{queue=\"video\",name=\"video.probe\",outcome=\"completed\"} 2",
            "jobq_worker_attempts_total{queue=\"video\",name=\"video.probe\",outcome=\"failed\"} 1",
            "jobq_worker_attempts_total{queue=\"video\",name=\"video.probe\",outcome=\"abandoned\"} 0",
            // label values escaped
            "jobq_worker_attempts_total{queue=\"a\\\"b\\\\c\",name=\"x\\ny\",outcome=\"abandoned\"} 1",
            "# TYPE jobq_worker_handler_seconds histogram",
            "jobq_worker_handler_seconds_bucket{queue=\"video\",name=\"video.probe\",le=\"0.0025\"} 1",
            "jobq_worker_handler_seconds_bucket{queue=\"video\",name=\"video.probe\",le=\"0.5\"} 2",
            "jobq_worker_handler_seconds_bucket{queue=\"video\",name=\"video.probe\",le=\"300\"} 3",
            "jobq_worker_handler_seconds_bucket{queue=\"video\",name=\"video.probe\",le=\"+Inf\"} 3",
            "jobq_worker_handler_seconds_count{queue=\"video\",name=\"video.probe\"} 3",
            "jobq_worker_handler_seconds_sum{queue=\"video\",name=\"video.probe\"} 0.742",
            "# HELP jobq_worker_running_jobs Handlers running now.",
            "jobq_worker_running_jobs 1",
            "jobq_worker_concurrency 4",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
        }
        assert_eq!(m.attempts("video", "video.probe"), (2, 1, 0));
        assert_eq!(m.attempts("video", "nothing"), (0, 0, 0));
        assert!(
            !text.contains("jobq_cache"),
            "no caches, no cache series:\n{text}"
        );
    }
}
