//! `analytics.*`: events counted per UTC day — counts per event name, unique users
//! (HyperLogLog) and top items — and a day's summary on demand.
//!
//! Keys live under `{prefix/analytics}` ([`AnalyticsKeys`]) and expire
//! [`RETENTION_SECS`] after a day's last event, so memory stays bounded.

pub mod day;
pub mod ingest;
pub mod keys;
pub mod rollup;

pub use ingest::{ingest, Event, Ingest, Ingested};
pub use keys::AnalyticsKeys;
pub use rollup::{rollup, Rollup, RollupRequest, TopItem};

use queue_core::WorkerBuilder;

/// How long a day's analytics keys are kept after its last ingest: 90 days.
pub const RETENTION_SECS: i64 = 90 * 24 * 3600;

/// Cache namespace of the rollups.
const CACHE_NAMESPACE: &str = "analytics";

/// A day's summary in the cache: by version (a newer ingest changes the key) and `top`.
fn rollup_cache_key(day: &str, version: u64, top: usize) -> String {
    format!("rollup:{day}:v{version}:top{top}")
}

/// Registers `analytics.ingest` and `analytics.rollup`.
pub fn register(builder: WorkerBuilder) -> WorkerBuilder {
    builder
        .handler("analytics.ingest", ingest)
        .handler("analytics.rollup", rollup)
}
