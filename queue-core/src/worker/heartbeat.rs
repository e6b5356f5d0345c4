//! The worker's heartbeat: every `heartbeat` (default 5 s) it writes a record of itself —
//! host, pid, version, queues, concurrency, the jobs it holds, when it started — that
//! lives for [`TTL_BEATS`] heartbeats, so `jobq workers` and the dashboard list it
//! (`workers.rs`). One per worker, not per queue: it runs from the start until every
//! outcome is recorded, then the worker leaves the registry at once. A worker killed
//! without leaving drops out of listings when its record expires.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::held::Held;
use super::outage::Outage;
use crate::connection::Redis;
use crate::keys::WorkerKeys;
use crate::scripts::{worker_beat::worker_beat, worker_leave::worker_leave};
use crate::workers::{RunningJob, WorkerInfo, LIST_BYTES, RUNNING_LISTED};

/// A record lives this many heartbeats: two may be missed (a slow Redis, a busy host)
/// before the worker drops out of listings.
pub const TTL_BEATS: u32 = 3;
/// Longest a stopping worker waits to leave the registry (Redis may be down then: its
/// record expires on its own).
const LEAVE_DEADLINE: Duration = Duration::from_secs(2);

/// What the heartbeat writes from, fixed at start but for the jobs held.
pub(crate) struct Beat {
    pub redis: Redis,
    pub keys: WorkerKeys,
    /// Identity (`id`: the worker's consumer name), queues and settings; `running` is
    /// filled in at each beat.
    pub info: WorkerInfo,
    /// The jobs held, per queue.
    pub held: Vec<(String, Arc<Held>)>,
    pub every: Duration,
}

impl Beat {
    /// The record as of now: the first jobs held (at most [`RUNNING_LISTED`], and
    /// [`LIST_BYTES`] of names) and how many in all.
    fn record(&self) -> String {
        let mut info = self.info.clone();
        let mut bytes = 0;
        info.running.clear();
        info.running_count = 0;
        for (queue, held) in &self.held {
            let (ids, count) = held.job_ids(RUNNING_LISTED);
            info.running_count += count;
            for id in ids {
                bytes += queue.len() + id.len() + 20;
                if info.running.len() >= RUNNING_LISTED || bytes > LIST_BYTES {
                    break;
                }
                info.running.push(RunningJob {
                    queue: queue.clone(),
                    id,
                });
            }
        }
        serde_json::to_string(&info).unwrap_or_default()
    }
}

/// The identity part of a record: the queues named up to [`LIST_BYTES`] of names.
pub(crate) fn identity(
    id: &str,
    host: &str,
    queues: &[String],
    concurrency: usize,
    started_at: u64,
    every: Duration,
) -> WorkerInfo {
    let mut bytes = 0;
    let named = queues
        .iter()
        .take_while(|q| {
            bytes += q.len() + 3;
            bytes <= LIST_BYTES
        })
        .cloned()
        .collect();
    WorkerInfo {
        id: id.into(),
        host: host.chars().take(255).collect(),
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").into(),
        queues: named,
        queue_count: queues.len(),
        concurrency,
        started_at,
        heartbeat_ms: u64::try_from(every.as_millis()).unwrap_or(u64::MAX),
        ..WorkerInfo::default()
    }
}

/// Heartbeats until `stop`, then leaves the registry.
pub(crate) async fn heartbeat_loop(beat: Beat, stop: CancellationToken) {
    let mut outage = Outage::new("the worker's heartbeat".into());
    let ttl = beat.every * TTL_BEATS;
    loop {
        let record = beat.record();
        // a call that hangs on a Redis gone away must not hold up the worker's exit
        tokio::select! {
            r = worker_beat(&beat.redis, &beat.keys, &beat.info.id, &record, ttl) => match r {
                Ok(_) => outage.recovered(),
                Err(e) => {
                    outage.failed(&e);
                }
            },
            _ = stop.cancelled() => break,
        }
        tokio::select! {
            _ = tokio::time::sleep(beat.every) => {}
            _ = stop.cancelled() => break,
        }
    }
    let leave = worker_leave(&beat.redis, &beat.keys, &beat.info.id);
    match tokio::time::timeout(LEAVE_DEADLINE, leave).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "could not leave the worker registry"),
        Err(_) => tracing::warn!("could not leave the worker registry: Redis did not answer"),
    }
}
