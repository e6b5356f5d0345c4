//! Medians and ranges of repeated measurements.

pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Summary {
    pub fn of(samples: &[f64]) -> Summary {
        let mut v = samples.to_vec();
        v.sort_by(|a, b| a.total_cmp(b));
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Summary {
            median,
            min: v[0],
            max: v[n - 1],
        }
    }
}

/// Nearest-rank percentile of sorted samples (the peer's `pct`: index ⌈p/100·n⌉ − 1).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One named figure of one run (latency and memory workloads).
#[derive(Clone, Copy)]
pub struct Metric {
    /// JSON key, e.g. `p99Ms`.
    pub key: &'static str,
    /// Label in the human line, e.g. `p99`.
    pub label: &'static str,
    /// Unit in the human line, e.g. `ms`.
    pub unit: &'static str,
    /// Decimals kept when printed.
    pub decimals: usize,
    pub value: f64,
}

impl Metric {
    /// A figure in milliseconds, printed with 2 decimals.
    pub fn ms(key: &'static str, label: &'static str, value: f64) -> Metric {
        Metric {
            key,
            label,
            unit: "ms",
            decimals: 2,
            value,
        }
    }
}

/// Rounds to `decimals` places, for the JSON line.
pub fn round_to(x: f64, decimals: usize) -> f64 {
    let f = 10f64.powi(decimals as i32);
    (x * f).round() / f
}
