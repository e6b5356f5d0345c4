//! `analytics.*`: events counted per UTC day — counts per event name, unique users
//! (HyperLogLog) and top items — and a day's summary on demand.
//!
//! Keys live under `{prefix:analytics}` (see `queue_core::keys::AnalyticsKeys`) and expire
//! [`RETENTION_SECS`] after a day's last event, so memory stays bounded.

pub mod day;
pub mod ingest;
pub mod rollup;

pub use ingest::{ingest, Event, Ingest, Ingested};
pub use rollup::{rollup, Rollup, RollupRequest, TopItem};

use queue_core::WorkerBuilder;

/// How long a day's analytics keys are kept after its last ingest: 90 days.
pub const RETENTION_SECS: i64 = 90 * 24 * 3600;

/// Cache namespace of the rollups.
const CACHE_NAMESPACE: &str = "analytics";

fn rollup_cache_key(day: &str) -> String {
    format!("rollup:{day}")
}

/// Registers `analytics.ingest` and `analytics.rollup`.
pub fn register(builder: WorkerBuilder) -> WorkerBuilder {
    builder
        .handler("analytics.ingest", ingest)
        .handler("analytics.rollup", rollup)
}
