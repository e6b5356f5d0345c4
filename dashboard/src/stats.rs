//! Counts of every queue, as `jobq stats --json` prints them, read concurrently: one
//! `counts` script call per queue (O(1) each: counters, ZCARDs and XPENDING summaries), all
//! in flight at once on the shared multiplexed connection, so 100 queues cost about one
//! round trip. The overview adds each queue's last hour of throughput the same way.

use futures_util::future::try_join_all;
use queue_core::Queue;
use serde::Serialize;

use crate::backend::{deadline, Backend};
use crate::error::AppError;

/// Minutes of throughput the overview shows.
pub const THROUGHPUT_MINUTES: usize = 60;

pub use queue_core::QueueStats;

/// Jobs finished per minute, oldest first, over the last [`THROUGHPUT_MINUTES`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Throughput {
    /// Completed per minute, oldest minute first (the last is the current minute).
    pub completed: Vec<u64>,
    /// Failed for good per minute, oldest minute first.
    pub failed: Vec<u64>,
}

impl Throughput {
    /// Completed jobs over the whole window.
    pub fn completed_sum(&self) -> u64 {
        self.completed.iter().sum()
    }
    /// Failed jobs over the whole window.
    pub fn failed_sum(&self) -> u64 {
        self.failed.iter().sum()
    }
}

/// A queue as the overview shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueSummary {
    /// Its counts.
    #[serde(flatten)]
    pub stats: QueueStats,
    /// Its last hour.
    pub throughput: Throughput,
}

/// The counts of one queue.
pub async fn queue_stats(queue: &Queue) -> Result<QueueStats, AppError> {
    Ok(deadline(queue.counts()).await?.into())
}

/// The last hour of one queue: two reads, concurrently.
pub async fn throughput(queue: &Queue) -> Result<Throughput, AppError> {
    let (mut completed, mut failed) = deadline(async {
        tokio::try_join!(
            queue.metrics(false, THROUGHPUT_MINUTES),
            queue.metrics(true, THROUGHPUT_MINUTES)
        )
    })
    .await?;
    // queue-core gives newest first; charts read left to right
    completed.reverse();
    failed.reverse();
    Ok(Throughput { completed, failed })
}

/// Counts of every registered queue, sorted by name.
pub async fn all_stats(backend: &Backend) -> Result<Vec<QueueStats>, AppError> {
    let names = backend.queue_names().await?;
    stats_of(backend, &names).await
}

/// Counts of the named queues, in order.
pub async fn stats_of(backend: &Backend, names: &[String]) -> Result<Vec<QueueStats>, AppError> {
    try_join_all(names.iter().map(|name| async move {
        isolated(name, async {
            let q = backend.queue(name).await?;
            queue_stats(&q).await
        })
        .await
        .map(|r| r.unwrap_or_else(|e| QueueStats::unreadable(name, e)))
    }))
    .await
}

/// Counts and throughput of the named queues, in order.
pub async fn summaries_of(
    backend: &Backend,
    names: &[String],
) -> Result<Vec<QueueSummary>, AppError> {
    try_join_all(names.iter().map(|name| async move {
        isolated(name, async {
            let q = backend.queue(name).await?;
            let (stats, throughput) = tokio::try_join!(queue_stats(&q), throughput(&q))?;
            Ok(QueueSummary { stats, throughput })
        })
        .await
        .map(|r| {
            r.unwrap_or_else(|e| QueueSummary {
                stats: QueueStats::unreadable(name, e),
                throughput: Throughput::default(),
            })
        })
    }))
    .await
}

/// One queue's reads, kept from failing the others': Redis unavailable (503) fails the
/// whole listing, any other error (a corrupt record of this queue) is returned as the
/// reason for its row.
pub async fn isolated<T>(
    queue: &str,
    read: impl std::future::Future<Output = Result<T, AppError>>,
) -> Result<Result<T, String>, AppError> {
    match read.await {
        Ok(v) => Ok(Ok(v)),
        Err(e) if e.status() == axum::http::StatusCode::SERVICE_UNAVAILABLE => Err(e),
        Err(e) => {
            tracing::warn!(queue, error = ?e.to_string(), "a queue's records cannot be read");
            Ok(Err(e.to_string()))
        }
    }
}
