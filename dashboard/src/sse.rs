//! `GET /events`: live updates as Server-Sent Events, from the hub (`live.rs`).
//!
//! A client first gets a `counts` event with every queue's row (or, with `?queue=q`, that
//! queue's), then `counts` as queues change, `removed` when a queue goes, and `status` when
//! Redis is lost or back. With `?jobs=1` it also gets each `job` event (`{"queue",
//! "stream_id", "event", "job_ids", "fields"}`), e.g. to see a job just added appear; with
//! `?job=<id>` only the job events of that job (the job page). Counts are read once per
//! round for all clients (`live.rs`), never per client: one that falls behind skips to the
//! newest round, whose `counts` carries the newest row of every queue the hub holds (all of
//! them within [`live::FULL_REFRESH`]), after `removed` for the queues that went meanwhile.
//! One that falls behind on job events, which cannot be skipped over, gets `lagged`
//! (`{"missed": n}`).

use std::collections::{BTreeSet, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Query, RawQuery, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use queue_core::QueueEvent;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};

use crate::error::{AppError, ErrorBody};
use crate::live::{self, LiveRow, Round, Status};
use crate::query::only_known;
use crate::state::AppState;

/// What a client wants.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EventsQuery {
    /// Only this queue.
    pub queue: Option<String>,
    /// Also every job event (`1` or `true`).
    pub jobs: Option<String>,
    /// Also the job events of this job only (implies `jobs`).
    pub job: Option<String>,
}

impl EventsQuery {
    fn wants_queue(&self, queue: &str) -> bool {
        self.queue.as_deref().is_none_or(|q| q == queue)
    }

    fn wants_jobs(&self) -> bool {
        self.job.is_some() || matches!(self.jobs.as_deref(), Some("1" | "true" | "yes"))
    }

    fn wants_job_event(&self, e: &QueueEvent) -> bool {
        self.wants_jobs()
            && self.wants_queue(&e.queue)
            && self
                .job
                .as_deref()
                .is_none_or(|id| e.job_ids.iter().any(|j| j == id))
    }

    /// A 400 naming a parameter that is not one of ours or holds a bad value (a queue name
    /// or job id that none can have, `jobs` not a yes or no).
    fn check(&self, raw: Option<&str>) -> Result<(), AppError> {
        only_known(raw, &["queue", "jobs", "job"])?;
        if let Some(q) = &self.queue {
            queue_core::internal::validate::validate_queue_name(q)
                .map_err(|e| AppError::BadRequest(e.to_string()))?;
        }
        if let Some(id) = &self.job {
            queue_core::internal::validate::validate_job_id(id)
                .map_err(|e| AppError::BadRequest(e.to_string()))?;
        }
        match self.jobs.as_deref() {
            None | Some("1" | "true" | "yes" | "0" | "false" | "no") => Ok(()),
            Some(other) => Err(AppError::BadRequest(format!(
                "jobs={:?}: use 1 (every job event) or 0",
                queue_core::internal::text::clip(other, 40)
            ))),
        }
    }
}

/// `GET /events`: the SSE stream of one client; ends when the dashboard stops.
#[utoipa::path(get, path = "/events", operation_id = "events", tag = "live",
    params(
        ("queue" = Option<String>, Query, description = "Only this queue's updates"),
        ("jobs" = Option<String>, Query, description = "`1`: also every job event"),
        ("job" = Option<String>, Query,
            description = "Also the job events of this job only (implies `jobs`)"),
    ),
    responses(
        (status = 200, description = "Server-Sent Events: `counts`, `job`, `removed`, \
            `status`, `lagged` (each `data:` a JSON object)", content_type = "text/event-stream",
            body = String),
        (status = 400, description = "A bad parameter, named", body = ErrorBody),
        (status = 503, description = "As many live streams as the dashboard serves (half its \
            --max-connections) are open",
            body = ErrorBody),
    ))]
pub async fn events(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    Query(query): Query<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    query.check(raw.as_deref())?;
    let slot = state.stream_slot().ok_or_else(|| {
        AppError::Unavailable(format!(
            "{} live streams are open, as many as this dashboard serves (half its \
             --max-connections); try again later",
            crate::state::max_streams(state.config().limits.max_connections)
        ))
    })?;
    // subscribe before the snapshot: a change in between is sent twice, never lost
    let hub = state.hub();
    let mut counts = hub.subscribe_counts();
    let seen = counts.borrow_and_update().seq;
    let mut client = Client {
        counts,
        seen,
        status: hub.subscribe_status(),
        jobs: query.wants_jobs().then(|| hub.subscribe_jobs()),
        shown: BTreeSet::new(),
        out: VecDeque::new(),
        query,
    };
    client.snapshot(&state).await;
    let shutdown = state.shutdown().clone().cancelled_owned();
    // (the slot goes with the stream: freed when the client leaves)
    let stream = stream::unfold((client, slot), |(mut client, slot)| async move {
        let event = client.next_event().await?;
        Some((Ok(event), (client, slot)))
    })
    .take_until(shutdown);
    Ok(Sse::new(stream).keep_alive(
        KeepAlive::new().interval(keep_alive_every(state.config().limits.idle_timeout)),
    ))
}

/// How often a quiet stream sends a keep-alive comment: every 15 seconds, or more often
/// when the connection idle timeout (`--idle-timeout`) is shorter, so the server never
/// closes a live stream as idle.
pub fn keep_alive_every(idle_timeout: std::time::Duration) -> std::time::Duration {
    (idle_timeout / 3).clamp(
        std::time::Duration::from_millis(100),
        std::time::Duration::from_secs(15),
    )
}

/// One client's subscriptions and what it has been sent.
struct Client {
    query: EventsQuery,
    counts: watch::Receiver<Arc<Round>>,
    /// The last round this client has seen.
    seen: u64,
    status: watch::Receiver<Status>,
    /// Job events, when the client asked for them.
    jobs: Option<broadcast::Receiver<Arc<QueueEvent>>>,
    /// Queues the client has been sent a row of (to tell it which went, after a skip).
    shown: BTreeSet<String>,
    /// Events decided on, not yet sent.
    out: VecDeque<Event>,
}

impl Client {
    /// The first event: the counts of every queue the client wants, read now, or the reason
    /// there are none.
    async fn snapshot(&mut self, state: &AppState) {
        let rows = async {
            let names = state.backend().queue_names().await?;
            let names: Vec<String> = names
                .into_iter()
                .filter(|q| self.query.wants_queue(q))
                .collect();
            live::rows_of(state.backend(), &names).await
        }
        .await;
        match rows {
            Ok(rows) => {
                // sent even when empty: the page learns at once that there is nothing yet
                self.shown
                    .extend(rows.iter().map(|r| r.summary.stats.queue.clone()));
                self.out.push_back(json_event("counts", &rows));
            }
            Err(e) => self.out.push_back(status_event(&Status {
                redis: "disconnected",
                error: Some(e.to_string()),
            })),
        }
    }

    /// The next event for this client; `None` when the hub is gone.
    async fn next_event(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.out.pop_front() {
                return Some(event);
            }
            tokio::select! {
                biased;
                changed = self.status.changed() => {
                    changed.ok()?;
                    let status = self.status.borrow_and_update().clone();
                    self.out.push_back(status_event(&status));
                }
                changed = self.counts.changed() => {
                    changed.ok()?;
                    let round = self.counts.borrow_and_update().clone();
                    self.on_round(&round);
                }
                received = recv_job(self.jobs.as_mut()) => match received {
                    Ok(e) => {
                        if self.query.wants_job_event(&e) {
                            self.out.push_back(json_event("job", e.as_ref()));
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        self.out.push_back(json_event("lagged", &json!({ "missed": missed })));
                    }
                    Err(RecvError::Closed) => return None,
                },
            }
        }
    }

    /// What a new round means for this client: the rows that changed, or — when it missed
    /// rounds — every row the round holds, which replaces whatever it missed (no Redis read).
    fn on_round(&mut self, round: &Round) {
        let skipped = round.seq != self.seen + 1;
        self.seen = round.seq;
        let gone: Vec<String> = if skipped {
            self.shown
                .iter()
                .filter(|q| !round.known.contains(*q))
                .cloned()
                .collect()
        } else {
            round
                .removed
                .iter()
                .filter(|q| self.query.wants_queue(q))
                .cloned()
                .collect()
        };
        for q in gone {
            self.shown.remove(&q);
            self.out
                .push_back(json_event("removed", &json!({ "queue": q })));
        }
        let rows: Vec<&LiveRow> = if skipped {
            round.rows.values().map(Arc::as_ref).collect()
        } else {
            round
                .changed
                .iter()
                .filter_map(|q| round.rows.get(q))
                .map(Arc::as_ref)
                .collect()
        };
        self.send_rows(&rows);
    }

    /// A `counts` event with the rows this client wants, if any.
    fn send_rows(&mut self, rows: &[&LiveRow]) {
        let rows: Vec<&LiveRow> = rows
            .iter()
            .copied()
            .filter(|r| self.query.wants_queue(&r.summary.stats.queue))
            .collect();
        if rows.is_empty() {
            return;
        }
        self.shown
            .extend(rows.iter().map(|r| r.summary.stats.queue.clone()));
        self.out.push_back(json_event("counts", &rows));
    }
}

/// The next job event, or never when the client did not ask for them.
async fn recv_job(
    jobs: Option<&mut broadcast::Receiver<Arc<QueueEvent>>>,
) -> Result<Arc<QueueEvent>, RecvError> {
    match jobs {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

fn status_event(status: &Status) -> Event {
    json_event(
        "status",
        &json!({ "redis": status.redis, "error": status.error }),
    )
}

fn json_event<T: serde::Serialize + ?Sized>(name: &str, data: &T) -> Event {
    Event::default()
        .event(name)
        .data(serde_json::to_string(data).unwrap_or_else(|_| "null".into()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::live::Hub;
    use crate::stats::{QueueStats, QueueSummary, Throughput};

    fn row(queue: &str, waiting: u64) -> Arc<LiveRow> {
        Arc::new(LiveRow::from(QueueSummary {
            stats: QueueStats {
                queue: queue.into(),
                waiting,
                ..QueueStats::default()
            },
            throughput: Throughput::default(),
        }))
    }

    fn client(hub: &Hub, query: EventsQuery) -> Client {
        Client {
            counts: hub.subscribe_counts(),
            seen: 0,
            status: hub.subscribe_status(),
            jobs: None,
            shown: ["a", "b", "gone"].map(String::from).into(),
            out: VecDeque::new(),
            query,
        }
    }

    fn round(seq: u64, changed: &[&str], removed: &[&str]) -> Round {
        let rows: BTreeMap<String, Arc<LiveRow>> = [("a", 1), ("b", 2), ("c", 3)]
            .map(|(q, n)| (q.to_string(), row(q, n)))
            .into();
        Round {
            seq,
            known: rows.keys().cloned().collect(),
            rows,
            changed: changed.iter().map(|q| q.to_string()).collect(),
            removed: removed.iter().map(|q| q.to_string()).collect(),
        }
    }

    /// How many events are queued for the client (taking them).
    fn taken(c: &mut Client) -> usize {
        std::mem::take(&mut c.out).len()
    }

    #[test]
    fn the_next_round_sends_only_what_changed() {
        let hub = Hub::new();
        let mut c = client(&hub, EventsQuery::default());
        c.on_round(&round(1, &["a"], &["gone"]));
        // `removed` for gone, `counts` for a
        assert_eq!(taken(&mut c), 2);
        assert_eq!(c.seen, 1);
        assert!(!c.shown.contains("gone"));
        c.on_round(&round(2, &[], &[]));
        assert_eq!(taken(&mut c), 0);
    }

    #[test]
    fn a_client_that_missed_rounds_gets_the_newest_rows_of_every_queue() {
        let hub = Hub::new();
        let mut c = client(&hub, EventsQuery::default());
        // rounds 1..=4 went by: "gone" went in one of them, only "a" changed in the last
        c.on_round(&round(5, &["a"], &[]));
        assert_eq!(c.seen, 5);
        assert_eq!(taken(&mut c), 2, "removed gone + counts of a, b, c");
        assert_eq!(
            c.shown,
            ["a", "b", "c"].map(String::from).into(),
            "the skip sent every queue's row"
        );
    }

    #[test]
    fn a_queue_filter_applies_to_skips_too() {
        let hub = Hub::new();
        let query = EventsQuery {
            queue: Some("b".into()),
            ..EventsQuery::default()
        };
        let mut c = client(&hub, query);
        c.shown = ["b"].map(String::from).into();
        c.on_round(&round(3, &["a"], &[]));
        assert_eq!(taken(&mut c), 1);
        assert_eq!(c.shown, ["b"].map(String::from).into());
        c.on_round(&round(4, &["a"], &["b"]));
        assert_eq!(taken(&mut c), 1, "removed b, no counts of a");
    }

    #[test]
    fn job_events_are_filtered_by_queue_and_job() {
        let event = |queue: &str, ids: &[&str]| QueueEvent {
            queue: queue.into(),
            stream_id: "1-0".into(),
            event: "added".into(),
            job_ids: ids.iter().map(|s| s.to_string()).collect(),
            fields: BTreeMap::new(),
        };
        let q = |jobs: Option<&str>, queue: Option<&str>, job: Option<&str>| EventsQuery {
            queue: queue.map(String::from),
            jobs: jobs.map(String::from),
            job: job.map(String::from),
        };
        assert!(!q(None, None, None).wants_job_event(&event("a", &["1"])));
        assert!(q(Some("1"), None, None).wants_job_event(&event("a", &["1"])));
        assert!(!q(Some("1"), Some("b"), None).wants_job_event(&event("a", &["1"])));
        let page = q(None, Some("a"), Some("7"));
        assert!(page.wants_jobs());
        assert!(page.wants_job_event(&event("a", &["6", "7"])));
        assert!(!page.wants_job_event(&event("a", &["6"])));
        assert!(!page.wants_job_event(&event("b", &["7"])));
    }
}
