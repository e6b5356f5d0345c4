//! Live updates: one background task follows every queue's event stream (a blocking
//! `XREAD` on a connection of its own, via queue-core's [`EventFollower`]) and broadcasts
//! what changed to the SSE clients (`sse.rs`):
//!
//! - `counts`: fresh counts, throughput and chart of the queues that had events, read once
//!   per change for all clients, at most every [`MIN_REFRESH`] under load;
//! - `job`: each event as it came (which jobs were added, started, completed, failed…);
//! - `removed`: a queue that is gone; `status`: Redis lost or back.
//!
//! Queues that appear later are followed from the start of their stream, so their first
//! events are not missed. Every [`FULL_REFRESH`] the counts of all queues are sent again
//! while anyone listens: retention trims finished jobs without an event.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use queue_core::{list_queues, EventFollower, QueueEvent, StartAt};
use serde::Serialize;
use tokio::sync::broadcast;

use crate::app::AppState;
use crate::backend::{deadline, REDIS_DEADLINE};
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
/// Messages a slow client may fall behind by before it is re-synchronised.
const CHANNEL: usize = 1024;

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

/// One broadcast message.
#[derive(Debug, Clone)]
pub enum Live {
    /// Fresh rows of the queues that changed.
    Counts(Arc<Vec<LiveRow>>),
    /// An event of one queue.
    Job(Arc<QueueEvent>),
    /// A queue that no longer exists.
    Removed(String),
    /// Whether Redis answers (`connected`) or not (`disconnected`, with why).
    Status {
        /// `connected` or `disconnected`
        redis: &'static str,
        /// what went wrong, when disconnected
        error: Option<String>,
    },
}

/// The broadcaster the SSE streams subscribe to.
#[derive(Debug)]
pub struct Hub {
    tx: broadcast::Sender<Live>,
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
            tx: broadcast::channel(CHANNEL).0,
        }
    }

    /// A new listener.
    pub fn subscribe(&self) -> broadcast::Receiver<Live> {
        self.tx.subscribe()
    }

    fn listening(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    fn send(&self, msg: Live) {
        // nobody listening is fine
        let _ = self.tx.send(msg);
    }
}

/// Rows of the named queues (for live messages and for a new client's first snapshot).
pub async fn rows_of(state: &AppState, names: &[String]) -> Result<Vec<LiveRow>, AppError> {
    Ok(stats::summaries_of(state.backend(), names)
        .await?
        .into_iter()
        .map(LiveRow::from)
        .collect())
}

/// Follows every queue's events until the dashboard stops. Runs once Redis is connected;
/// a Redis outage is reported to clients once, then retried with backoff.
pub async fn follow(state: AppState) {
    let mut backoff = Duration::from_millis(200);
    let mut down_since: Option<Instant> = None;
    loop {
        let err = match run(&state, &mut down_since, &mut backoff).await {
            Ok(never) => match never {},
            Err(e) => e,
        };
        if down_since.is_none() {
            tracing::warn!("live updates paused: {err}; retrying");
            state.hub().send(Live::Status {
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
    state: &AppState,
    down_since: &mut Option<Instant>,
    backoff: &mut Duration,
) -> Result<std::convert::Infallible, AppError> {
    let backend = state.backend();
    let redis = backend.redis()?.clone();
    let prefix = backend.prefix().to_string();
    let mut follower = EventFollower::new(&redis, &prefix);
    let names = deadline(list_queues(&redis, &prefix)).await?;
    deadline(follower.follow(&names, StartAt::End)).await?;
    let mut known: BTreeSet<String> = names.into_iter().collect();
    *backoff = Duration::from_millis(200);
    if let Some(since) = down_since.take() {
        tracing::info!("live updates resumed after {:?}", since.elapsed());
        state.hub().send(Live::Status {
            redis: "connected",
            error: None,
        });
        // clients missed changes meanwhile
        refresh(state, &known.iter().cloned().collect::<Vec<_>>()).await?;
    }
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
        for gone in known.difference(&names) {
            follower.unfollow(gone);
            state.hub().send(Live::Removed(gone.clone()));
        }
        deadline(follower.follow(&added, StartAt::Beginning)).await?;
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
            if state.hub().listening() {
                state.hub().send(Live::Job(Arc::new(e)));
            }
        }
        if state.hub().listening() && last_full.elapsed() >= FULL_REFRESH {
            pending.extend(known.iter().cloned());
            last_full = Instant::now();
        }
        if !pending.is_empty() && last_refresh.elapsed() >= MIN_REFRESH {
            let names: Vec<String> = std::mem::take(&mut pending).into_iter().collect();
            if state.hub().listening() {
                refresh(state, &names).await?;
            }
            last_refresh = Instant::now();
        } else if busy {
            // events keep coming: gather them for a moment rather than refresh per event
            tokio::time::sleep(MIN_REFRESH.saturating_sub(last_refresh.elapsed())).await;
        }
    }
}

/// Reads and broadcasts the rows of `names`.
async fn refresh(state: &AppState, names: &[String]) -> Result<(), AppError> {
    if names.is_empty() {
        return Ok(());
    }
    let rows = rows_of(state, names).await?;
    state.hub().send(Live::Counts(Arc::new(rows)));
    Ok(())
}
