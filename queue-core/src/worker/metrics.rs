//! In-process metrics of a worker — attempts by queue, handler and outcome, handler time
//! as a histogram, jobs running now — rendered as Prometheus text.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

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

#[derive(Default)]
struct Series {
    completed: u64,
    failed: u64,
    abandoned: u64,
    /// Per bucket of [`DURATION_BUCKETS`], not cumulative.
    buckets: [u64; DURATION_BUCKETS.len()],
    count: u64,
    sum_secs: f64,
}

/// A worker's counters. Cheap to update from every handler slot.
pub struct WorkerMetrics {
    /// queue → handler name → series
    series: Mutex<HashMap<String, HashMap<String, Series>>>,
    running: AtomicI64,
    concurrency: AtomicI64,
    /// The handlers' caches, for their hit and miss counts.
    caches: Caches,
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
        WorkerMetrics {
            series: Mutex::default(),
            running: AtomicI64::new(0),
            concurrency: AtomicI64::new(0),
            caches,
        }
    }

    pub(crate) fn set_concurrency(&self, n: usize) {
        self.concurrency.store(n as i64, Ordering::Relaxed);
    }

    pub(crate) fn started(&self) {
        self.running.fetch_add(1, Ordering::Relaxed);
    }

    /// Records an attempt that ran for `took`.
    pub(crate) fn finished(
        &self,
        queue: &str,
        name: &str,
        outcome: AttemptOutcome,
        took: Duration,
    ) {
        self.running.fetch_sub(1, Ordering::Relaxed);
        let mut all = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let by_name = match all.get_mut(queue) {
            Some(m) => m,
            None => all.entry(queue.to_string()).or_default(),
        };
        let s = match by_name.get_mut(name) {
            Some(s) => s,
            None => by_name.entry(name.to_string()).or_default(),
        };
        match outcome {
            AttemptOutcome::Completed => s.completed += 1,
            AttemptOutcome::Failed => s.failed += 1,
            AttemptOutcome::Abandoned => s.abandoned += 1,
        }
        let secs = took.as_secs_f64();
        if let Some(i) = DURATION_BUCKETS.iter().position(|b| secs <= *b) {
            s.buckets[i] += 1;
        }
        s.count += 1;
        s.sum_secs += secs;
    }

    /// Handlers running now.
    pub fn running(&self) -> i64 {
        self.running.load(Ordering::Relaxed)
    }

    /// Attempts counted so far for `queue` and handler `name`: (completed, failed,
    /// abandoned).
    pub fn attempts(&self, queue: &str, name: &str) -> (u64, u64, u64) {
        let all = self.series.lock().unwrap_or_else(|p| p.into_inner());
        all.get(queue)
            .and_then(|m| m.get(name))
            .map_or((0, 0, 0), |s| (s.completed, s.failed, s.abandoned))
    }

    /// The metrics in the Prometheus text exposition format (series `jobq_worker_*`, and
    /// `jobq_cache_*` for the handlers' caches).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let all = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let mut rows: Vec<(&String, &String, &Series)> = all
            .iter()
            .flat_map(|(q, m)| m.iter().map(move |(n, s)| (q, n, s)))
            .collect();
        rows.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));

        out.push_str(
            "# HELP jobq_worker_attempts_total Job attempts run by this worker, by outcome.\n",
        );
        out.push_str("# TYPE jobq_worker_attempts_total counter\n");
        for (q, n, s) in &rows {
            for (outcome, v) in [
                ("completed", s.completed),
                ("failed", s.failed),
                ("abandoned", s.abandoned),
            ] {
                let _ = writeln!(
                    out,
                    "jobq_worker_attempts_total{{queue=\"{}\",name=\"{}\",outcome=\"{outcome}\"}} {v}",
                    escape(q),
                    escape(n)
                );
            }
        }
        out.push_str(
            "# HELP jobq_worker_handler_seconds Time from an attempt's handler start to its outcome.\n",
        );
        out.push_str("# TYPE jobq_worker_handler_seconds histogram\n");
        for (q, n, s) in &rows {
            let labels = format!("queue=\"{}\",name=\"{}\"", escape(q), escape(n));
            let mut cumulative = 0;
            for (bound, c) in DURATION_BUCKETS.iter().zip(s.buckets) {
                cumulative += c;
                let _ = writeln!(
                    out,
                    "jobq_worker_handler_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "jobq_worker_handler_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "jobq_worker_handler_seconds_sum{{{labels}}} {}",
                s.sum_secs
            );
            let _ = writeln!(
                out,
                "jobq_worker_handler_seconds_count{{{labels}}} {}",
                s.count
            );
        }
        drop(all);
        out.push_str("# HELP jobq_worker_running_jobs Handlers running now.\n");
        out.push_str("# TYPE jobq_worker_running_jobs gauge\n");
        let _ = writeln!(out, "jobq_worker_running_jobs {}", self.running());
        out.push_str("# HELP jobq_worker_concurrency Most handlers this worker runs at once.\n");
        out.push_str("# TYPE jobq_worker_concurrency gauge\n");
        let _ = writeln!(
            out,
            "jobq_worker_concurrency {}",
            self.concurrency.load(Ordering::Relaxed)
        );
        let caches = self.caches.stats();
        for (metric, help, pick) in [
            (
                "jobq_cache_hits_total",
                "Cache reads served from Redis, by namespace.",
                (|s: &CacheStats| s.hits) as fn(&CacheStats) -> u64,
            ),
            (
                "jobq_cache_misses_total",
                "Cache reads that found nothing, by namespace.",
                |s: &CacheStats| s.misses,
            ),
        ] {
            let _ = writeln!(out, "# HELP {metric} {help}");
            let _ = writeln!(out, "# TYPE {metric} counter");
            for (namespace, stats) in &caches {
                let _ = writeln!(
                    out,
                    "{metric}{{namespace=\"{}\"}} {}",
                    escape(namespace),
                    pick(stats)
                );
            }
        }
        out
    }
}

/// Escapes a Prometheus label value.
pub fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
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
        let text = m.render();
        assert!(text.contains(
            "jobq_worker_attempts_total{queue=\"video\",name=\"video.probe\",outcome=\"completed\"} 2"
        ));
        assert!(text.contains(
            "jobq_worker_attempts_total{queue=\"video\",name=\"video.probe\",outcome=\"failed\"} 1"
        ));
        assert!(text.contains(
            "jobq_worker_handler_seconds_bucket{queue=\"video\",name=\"video.probe\",le=\"0.0025\"} 1"
        ));
        assert!(text.contains(
            "jobq_worker_handler_seconds_bucket{queue=\"video\",name=\"video.probe\",le=\"0.5\"} 2"
        ));
        assert!(text.contains(
            "jobq_worker_handler_seconds_bucket{queue=\"video\",name=\"video.probe\",le=\"+Inf\"} 3"
        ));
        assert!(text.contains("jobq_worker_running_jobs 1\n"));
        assert!(text.contains("jobq_worker_concurrency 4\n"));
        assert_eq!(m.attempts("video", "video.probe"), (2, 1, 0));
        assert_eq!(escape("a\"b\\c"), "a\\\"b\\\\c");
    }
}
