//! Waiting on a wake-up marker (a sorted set the scripts add to): the queue's, which
//! `add_job`, `set_paused` and the others touch when there is work, and the schedules'.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::connection::Conn;
use crate::store::QueueStore;

/// What a BZPOPMIN answers: the key, the member and its score, or nothing at its timeout.
type Popped = redis::RedisResult<Option<(String, String, f64)>>;

/// Waits for work on the queue's wake-up marker. One BZPOPMIN is kept in flight across
/// waits: its server-side timeout only fires on Redis's `hz` tick (up to 100 ms late), so
/// due times are timed here, and a BZPOPMIN still pending when a due time passes is simply
/// picked up again by the next wait (a new one would queue behind it on the connection).
pub(crate) struct Waiter {
    conn: Conn,
    marker: String,
    /// Longest one BZPOPMIN blocks in Redis.
    block_for: Duration,
    pending: Option<Pin<Box<dyn Future<Output = Popped> + Send>>>,
}

impl Waiter {
    /// Waits on the queue's wake-up marker (work added, queue resumed, a delayed job due).
    pub(crate) fn marker(conn: Conn, q: &QueueStore, block_for: Duration) -> Self {
        Self::on(conn, q.keys.marker(), block_for)
    }

    /// Waits on the queue's schedules' wake-up marker (a schedule upserted).
    pub(crate) fn schedules(conn: Conn, q: &QueueStore, block_for: Duration) -> Self {
        Self::on(conn, q.keys.schedules_wake(), block_for)
    }

    fn on(conn: Conn, marker: String, block_for: Duration) -> Self {
        Waiter {
            conn,
            marker,
            block_for,
            pending: None,
        }
    }

    /// Returns when woken (work added, queue resumed), after `wait`, or at `stop`. A marker
    /// scored in the future means "a delayed job falls due then": keep waiting until then.
    pub(crate) async fn wait(&mut self, wait: Duration, stop: &CancellationToken) {
        let mut deadline = Instant::now() + wait;
        loop {
            let pop = self.pending.get_or_insert_with(|| {
                let mut conn = self.conn.clone();
                let mut cmd = redis::cmd("BZPOPMIN");
                cmd.arg(&self.marker).arg(self.block_for.as_secs_f64());
                Box::pin(async move { cmd.query_async(&mut conn).await })
            });
            let popped = tokio::select! {
                r = pop => r,
                _ = tokio::time::sleep_until(deadline.into()) => return,
                _ = stop.cancelled() => return,
            };
            self.pending = None;
            match popped {
                Ok(Some((_, _, score))) => {
                    let now_ms = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_millis() as f64)
                        .unwrap_or(0.0);
                    if score <= now_ms {
                        return;
                    }
                    let due = Instant::now() + Duration::from_millis((score - now_ms) as u64);
                    deadline = deadline.min(due);
                }
                // the server-side timeout: block again until our own deadline
                Ok(None) => {}
                Err(_) => {
                    // the next fetch call notices and reports the outage; do not spin here
                    let left = deadline.saturating_duration_since(Instant::now());
                    tokio::select! {
                        _ = tokio::time::sleep(left.min(Duration::from_millis(200))) => {}
                        _ = stop.cancelled() => {}
                    }
                    return;
                }
            }
        }
    }
}
