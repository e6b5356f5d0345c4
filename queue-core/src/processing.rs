//! How long a queue's attempts take, from the start of an attempt to its recorded outcome,
//! as a histogram kept in Redis (for the dashboard's `jobq_processing_seconds`).
//!
//! The `complete` and `fail_or_retry` scripts count every attempt they record into buckets
//! in the queue's meta hash (`observe_times` in the scripts' prelude): one `HINCRBY` per
//! bucket a batch touches plus one for the sum, so a batch of any size costs a handful of
//! commands (measured: about 4 µs of Redis time for a batch of one). The counts
//! are monotonic, like the totals: retention never lowers them. Bucket bounds are fixed
//! ([`PROCESSING_BUCKETS_MS`]), the same as the worker's own handler-time histogram.

use serde::Serialize;

use crate::error::Result;
use crate::queue::Queue;
use crate::scripts;

/// Upper bounds of the buckets, in milliseconds (the Lua side's `PT_BOUNDS`).
pub const PROCESSING_BUCKETS_MS: [f64; 14] = [
    1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1_000.0, 2_500.0, 10_000.0, 60_000.0,
    300_000.0,
];

/// A queue's processing-time histogram.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProcessingTime {
    /// Attempts that took at most the matching bound of [`PROCESSING_BUCKETS_MS`],
    /// cumulative (each count includes the buckets below it), as Prometheus reports them.
    pub cumulative: Vec<u64>,
    /// Every recorded attempt (the `+Inf` bucket).
    pub count: u64,
    /// Total time of those attempts, in milliseconds.
    pub sum_ms: u64,
}

impl Queue {
    /// The processing-time histogram of this queue's recorded attempts (completed, failed
    /// or retried), in one read.
    pub async fn processing_time(&self) -> Result<ProcessingTime> {
        // one field per bucket, the last for times beyond every bound, then the sum
        let mut names: Vec<String> = (1..=PROCESSING_BUCKETS_MS.len() + 1)
            .map(|i| format!("pt{i}"))
            .collect();
        names.push("pts".into());
        let values: Vec<Option<u64>> = scripts::meta::fields(&self.inner, &names).await?;
        Ok(histogram(&values))
    }
}

/// The histogram from the stored fields: per-bucket counts (the last one beyond every
/// bound), then the sum.
fn histogram(values: &[Option<u64>]) -> ProcessingTime {
    let n = PROCESSING_BUCKETS_MS.len();
    let mut running = 0;
    let cumulative = values[..n]
        .iter()
        .map(|v| {
            running += v.unwrap_or(0);
            running
        })
        .collect();
    let beyond = values.get(n).copied().flatten().unwrap_or(0);
    ProcessingTime {
        cumulative,
        count: running + beyond,
        sum_ms: values.get(n + 1).copied().flatten().unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lua_bounds_match_the_rust_ones() {
        let prelude = include_str!("scripts/prelude.lua");
        let line = prelude
            .lines()
            .find(|l| l.starts_with("local PT_BOUNDS = {"))
            .expect("PT_BOUNDS in the prelude");
        let inside = line
            .trim_start_matches("local PT_BOUNDS = {")
            .trim_end_matches('}');
        let lua: Vec<f64> = inside
            .split(',')
            .map(|v| v.trim().parse().unwrap())
            .collect();
        assert_eq!(lua, PROCESSING_BUCKETS_MS);
    }

    #[test]
    fn buckets_accumulate() {
        let mut stored = vec![None; PROCESSING_BUCKETS_MS.len() + 2];
        stored[0] = Some(2);
        stored[3] = Some(1);
        stored[PROCESSING_BUCKETS_MS.len()] = Some(1); // one took longer than every bound
        stored[PROCESSING_BUCKETS_MS.len() + 1] = Some(400_010);
        let h = histogram(&stored);
        assert_eq!(&h.cumulative[..5], &[2, 2, 2, 3, 3]);
        assert_eq!(*h.cumulative.last().unwrap(), 3);
        assert_eq!((h.count, h.sum_ms), (4, 400_010));
    }
}
