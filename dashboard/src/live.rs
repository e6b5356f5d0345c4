//! Live updates: one background task follows every queue's event stream (a blocking
//! `XREAD` on a connection of its own, via queue-core's [`EventFollower`]) and publishes
//! what changed to the SSE clients (`sse.rs`) through the [`Hub`]:
//!
//! - counts: a [`Round`] per change — fresh counts, throughput and chart of the queues that
//!   had events (read once per round for all clients, at most every [`MIN_REFRESH`] under
//!   load), the queues that went, and the newest row of every queue. It is a state, not a
//!   queue of messages: a client that falls behind skips to the newest round and sends that,
//!   without reading Redis itself;
//! - job events: each event as it came (which jobs were added, started, completed,
//!   failed…), published only while a client asked for them (`?jobs=1`, `?job=`);
//! - status: Redis lost or back.
//!
//! Queues that appear later are followed from the start of their stream, so their first
//! events are not missed. Every [`FULL_REFRESH`] the counts of all queues are read again
//! while anyone listens (retention trims finished jobs without an event), and once Redis is
//! back after an outage. While nobody listens nothing is read and no rows are kept.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use queue_core::{list_queues, EventFollower, QueueEvent, StartAt};
use serde::Serialize;
use tokio::sync::{broadcast, watch};

use crate::backend::{deadline, Backend, REDIS_DEADLINE};
use crate::chart::ChartPaths;
use crate::error::AppError;
use crate::stats::{self, QueueSummary};

/// Longest one `XREAD` blocks: also how often new queues are noticed.
const BLOCK: Duration = Duration::from_millis(250);
/// Events read per queue per round.
const READ_COUNT: usize = 200;
/// Least time between two count refreshes while events keep coming.
pub const MIN_REFRESH: Duration = Duration::from_millis(200);
/// How often every queue's counts are re-sent while clients listen.
pub const FULL_REFRESH: Duration = Duration::from_secs(5);
/// Job events a slow `?jobs=1` client may fall behind by before it is told it missed some.
const JOB_CHANNEL: usize = 1024;

/// A queue's row as the overview shows it, pushed to the browser.
#[derive(Debug, Clone, Serialize)]
pub struct LiveRow {
    /// Counts and last hour.
    #[serde(flatten)]
    pub summary: QueueSummary,
    /// The chart's new paths.
    pub chart: ChartPaths,
}

impl From<QueueSummary> for LiveRow {
    fn from(summary: QueueSummary) -> Self {
        let chart = ChartPaths::of(&summary.throughput);
        LiveRow { summary, chart }
    }
}

/// One round of counts as the follower last published it. Each round holds the newest row
/// of every queue read so far, so a client that missed rounds catches up from the latest
/// one alone: the next round replaces the old ones.
#[derive(Debug, Clone, Default)]
pub struct Round {
    /// One more than the round before: a client that sees a gap missed rounds.
    pub seq: u64,
    /// The newest row of each queue read since clients started listening.
    pub rows: BTreeMap<String, Arc<LiveRow>>,
    /// The queues whose rows were read in this round.
    pub changed: Vec<String>,
    /// The queues that went in this round.
    pub removed: Vec<String>,
    /// Every queue that exists, as of this round.
    pub known: BTreeSet<String>,
}

/// Whether Redis answers, as the follower last found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// `connected` or `disconnected`
    pub redis: &'static str,
    /// what went wrong, when disconnected
    pub error: Option<String>,
}

impl Status {
    fn connected() -> Self {
        Status {
            redis: "connected",
            error: None,
        }
    }
}

/// What the SSE streams subscribe to. Counts and status are states (`watch`): a slow
/// client skips to the newest. Job events are a stream (`broadcast`), published only while
/// a client asked for them.
#[derive(Debug)]
pub struct Hub {
    counts: watch::Sender<Arc<Round>>,
    jobs: broadcast::Sender<Arc<QueueEvent>>,
    status: watch::Sender<Status>,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    /// A hub with no listeners.
    pub fn new() -> Self {
        Hub {
            counts: watch::channel(Arc::new(Round::default())).0,
            jobs: broadcast::channel(JOB_CHANNEL).0,
            status: watch::channel(Status::connected()).0,
        }
    }

    /// Follows the counts rounds, from the current one on.
    pub fn subscribe_counts(&self) -> watch::Receiver<Arc<Round>> {
        self.counts.subscribe()
    }

    /// Follows the Redis status, from the current one on.
    pub fn subscribe_status(&self) -> watch::Receiver<Status> {
        self.status.subscribe()
    }

    /// Receives every job event from now on (for `?jobs=1` and `?job=` clients only: the
    /// follower publishes them while such a receiver exists).
    pub fn subscribe_jobs(&self) -> broadcast::Receiver<Arc<QueueEvent>> {
        self.jobs.subscribe()
    }

    /// The newest round.
    pub fn current(&self) -> Arc<Round> {
        self.counts.borrow().clone()
    }

    fn counts_listened(&self) -> bool {
        self.counts.receiver_count() > 0
    }

    fn publish(&self, round: Round) {
        // kept even with nobody listening: the next client starts from it
        self.counts.send_replace(Arc::new(round));
    }

    fn send_job(&self, event: QueueEvent) {
        if self.jobs.receiver_count() > 0 {
            // a receiver that left meanwhile is fine
            let _ = self.jobs.send(Arc::new(event));
        }
    }

    fn set_status(&self, status: Status) {
        self.status.send_replace(status);
    }
}

/// Rows of the named queues (for live messages and for a new client's first snapshot).
pub async fn rows_of(backend: &Backend, names: &[String]) -> Result<Vec<LiveRow>, AppError> {
    Ok(stats::summaries_of(backend, names)
        .await?
        .into_iter()
        .map(LiveRow::from)
        .collect())
}

/// Follows every queue's events until the dashboard stops. Runs once Redis is connected;
/// a Redis outage is reported to clients once, then retried with backoff.
pub async fn follow(backend: &Backend, hub: &Hub) {
    let mut backoff = Duration::from_millis(200);
    let mut down_since: Option<Instant> = None;
    loop {
        let err = match run(backend, hub, &mut down_since, &mut backoff).await {
            Ok(never) => match never {},
            Err(e) => e,
        };
        if down_since.is_none() {
            tracing::warn!(error = ?err.to_string(), "live updates paused; retrying");
            hub.set_status(Status {
                redis: "disconnected",
                error: Some(err.to_string()),
            });
            down_since = Some(Instant::now());
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// One run of the follower, from a fresh start, until an error.
async fn run(
    backend: &Backend,
    hub: &Hub,
    down_since: &mut Option<Instant>,
    backoff: &mut Duration,
) -> Result<std::convert::Infallible, AppError> {
    let redis = backend.redis()?.clone();
    let prefix = backend.prefix().to_string();
    let mut follower = EventFollower::new(&redis, &prefix);
    let names = deadline(list_queues(&redis, &prefix)).await?;
    deadline(follower.follow(&names, StartAt::End)).await?;
    *backoff = Duration::from_millis(200);
    // clients missed changes meanwhile: every row is read again in the first round
    let mut refresh_all = false;
    if let Some(since) = down_since.take() {
        tracing::info!("live updates resumed after {:?}", since.elapsed());
        hub.set_status(Status::connected());
        refresh_all = true;
    }
    // carry on from the last round: queues that went while the follower was down are
    // removed in the first round
    let last = hub.current();
    let mut seq = last.seq;
    let mut known: BTreeSet<String> = names.into_iter().collect();
    let mut gone_meanwhile: Vec<String> = last.known.difference(&known).cloned().collect();
    let mut rows = last.rows.clone();
    rows.retain(|q, _| known.contains(q));
    let mut pending: BTreeSet<String> = BTreeSet::new();
    let mut last_refresh = Instant::now();
    let mut last_full = Instant::now();
    loop {
        // queues that appeared or went since the last round
        let names: BTreeSet<String> = deadline(list_queues(&redis, &prefix))
            .await?
            .into_iter()
            .collect();
        let added: Vec<String> = names.difference(&known).cloned().collect();
        let mut removed = std::mem::take(&mut gone_meanwhile);
        for gone in known.difference(&names) {
            follower.unfollow(gone);
            rows.remove(gone);
            pending.remove(gone);
            removed.push(gone.clone());
        }
        if !added.is_empty() {
            deadline(follower.follow(&added, StartAt::Beginning)).await?;
        }
        pending.extend(added);
        known = names;

        // the read blocks for BLOCK at most on the server: a longer silence is a dead link
        let events =
            match tokio::time::timeout(BLOCK + REDIS_DEADLINE, follower.next(BLOCK, READ_COUNT))
                .await
            {
                Ok(events) => events?,
                Err(_) => {
                    return Err(AppError::Unavailable(format!(
                        "no answer to a {}ms XREAD within {}s",
                        BLOCK.as_millis(),
                        REDIS_DEADLINE.as_secs()
                    )))
                }
            };
        let busy = !events.is_empty();
        for e in events {
            pending.insert(e.queue.clone());
            hub.send_job(e);
        }

        if !hub.counts_listened() {
            // nobody to tell: read nothing, and forget rows that would go stale (a new
            // client reads its own first snapshot; a round then holds only fresh rows)
            pending.clear();
            rows.clear();
            refresh_all = false;
        } else if refresh_all || last_full.elapsed() >= FULL_REFRESH {
            pending.extend(known.iter().cloned());
            last_full = Instant::now();
            refresh_all = false;
        }

        let mut changed = Vec::new();
        if !pending.is_empty() && last_refresh.elapsed() >= MIN_REFRESH {
            let names: Vec<String> = std::mem::take(&mut pending).into_iter().collect();
            for row in rows_of(backend, &names).await? {
                let queue = row.summary.stats.queue.clone();
                rows.insert(queue.clone(), Arc::new(row));
                changed.push(queue);
            }
            last_refresh = Instant::now();
        } else if busy {
            // events keep coming: gather them for a moment rather than refresh per event
            tokio::time::sleep(MIN_REFRESH.saturating_sub(last_refresh.elapsed())).await;
        }
        if !changed.is_empty() || !removed.is_empty() {
            seq += 1;
            hub.publish(Round {
                seq,
                rows: rows.clone(),
                changed,
                removed,
                known: known.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str) -> QueueEvent {
        QueueEvent {
            queue: "a".into(),
            stream_id: "1-0".into(),
            event: "added".into(),
            job_ids: vec![id.into()],
            fields: Default::default(),
        }
    }

    #[test]
    fn job_events_go_to_job_subscribers_only() {
        let hub = Hub::new();
        let _counts = hub.subscribe_counts();
        // nobody asked for job events: nothing is queued
        hub.send_job(event("1"));
        assert_eq!(hub.jobs.len(), 0);
        let mut jobs = hub.subscribe_jobs();
        hub.send_job(event("2"));
        assert_eq!(jobs.try_recv().unwrap().job_ids, ["2"]);
        assert!(jobs.try_recv().is_err());
    }

    #[test]
    fn the_newest_round_replaces_the_last() {
        let hub = Hub::new();
        let mut rx = hub.subscribe_counts();
        for seq in 1..=3 {
            hub.publish(Round {
                seq,
                ..Round::default()
            });
        }
        assert!(rx.has_changed().unwrap());
        assert_eq!(
            rx.borrow_and_update().seq,
            3,
            "a slow client sees only the newest"
        );
        assert_eq!(hub.current().seq, 3);
    }
}
