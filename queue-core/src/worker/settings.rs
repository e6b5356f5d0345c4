//! A worker's settings and their defaults.

use std::time::Duration;

/// Default time active jobs get to finish after a shutdown signal.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);
/// How long past the grace period a stopping worker still tries to record outcomes.
pub(crate) const RECORD_AFTER_GRACE: Duration = Duration::from_secs(5);
/// Default lease: a job whose worker has not renewed it for this long is reclaimed.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
/// Default number of stalls (expired leases) after which a job fails instead of re-running.
pub const DEFAULT_MAX_STALLS: u32 = 1;
/// Default pause between two batches of the consistency sweep.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(10);
/// Default pause between two passes of the retention janitor.
pub const DEFAULT_RETENTION_INTERVAL: Duration = Duration::from_secs(5);

/// Default pause between two passes of the flows' safety net (parents that wait too long,
/// jobs staged too long).
pub const DEFAULT_FLOW_CHECK_INTERVAL: Duration = Duration::from_secs(10);

/// Default time between two heartbeats of a worker; its record lives for three of them
/// (`heartbeat.rs`), so a worker killed without leaving drops out of listings within 15 s.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(5);

/// A worker's settings, as `WorkerBuilder` collects them and `Worker` runs with them.
pub(crate) struct Settings {
    pub queues: Vec<String>,
    pub concurrency: usize,
    pub grace: Duration,
    pub lease: Duration,
    pub max_stalls: u32,
    pub sweep_interval: Duration,
    pub retention_interval: Duration,
    pub flow_check_interval: Duration,
    pub heartbeat: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            queues: Vec::new(),
            concurrency: 16,
            grace: DEFAULT_GRACE,
            lease: DEFAULT_LEASE,
            max_stalls: DEFAULT_MAX_STALLS,
            sweep_interval: DEFAULT_SWEEP_INTERVAL,
            retention_interval: DEFAULT_RETENTION_INTERVAL,
            flow_check_interval: DEFAULT_FLOW_CHECK_INTERVAL,
            heartbeat: DEFAULT_HEARTBEAT,
        }
    }
}
