//! `GET /events`: live updates as Server-Sent Events, from the hub (`live.rs`).
//!
//! A client first gets a `counts` event with every queue's row (or, with `?queue=q`, that
//! queue's), then `counts` as queues change, `removed` when a queue goes, and `status` when
//! Redis is lost or back. With `?jobs=1` it also gets each `job` event (`{"queue",
//! "stream_id", "event", "job_ids", "fields"}`), e.g. to see a job just added appear. A
//! client that falls too far behind is sent a fresh snapshot.

use std::convert::Infallible;

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::Receiver;

use crate::app::AppState;
use crate::live::{self, Live};

/// What a client wants.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EventsQuery {
    /// Only this queue.
    pub queue: Option<String>,
    /// Also every job event (`1` or `true`).
    pub jobs: Option<String>,
}

impl EventsQuery {
    fn wants_queue(&self, queue: &str) -> bool {
        self.queue.as_deref().is_none_or(|q| q == queue)
    }

    fn wants_jobs(&self) -> bool {
        matches!(self.jobs.as_deref(), Some("1" | "true" | "yes"))
    }
}

/// The SSE stream of one client; ends when the dashboard stops.
pub async fn events(
    State(state): State<AppState>,
    Query(query): Query<EventsQuery>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    // subscribe before the snapshot: a change in between is sent twice, never lost
    let rx = state.hub().subscribe();
    let first = snapshot(&state, &query).await;
    let shutdown = state.shutdown().clone().cancelled_owned();
    let updates = stream::unfold((rx, state, query), |(mut rx, state, query)| async move {
        let event = next_event(&mut rx, &state, &query).await?;
        Some((Ok(event), (rx, state, query)))
    });
    let stream = stream::iter(first.into_iter().map(Ok))
        .chain(updates)
        .take_until(shutdown);
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// The next event this client wants; `None` when the hub is gone.
async fn next_event(
    rx: &mut Receiver<Live>,
    state: &AppState,
    query: &EventsQuery,
) -> Option<Event> {
    loop {
        match rx.recv().await {
            Ok(msg) => {
                if let Some(event) = to_event(&msg, query) {
                    return Some(event);
                }
            }
            Err(RecvError::Lagged(_)) => return snapshot(state, query).await,
            Err(RecvError::Closed) => return None,
        }
    }
}

/// The counts of every queue the client wants, or the reason there are none.
async fn snapshot(state: &AppState, query: &EventsQuery) -> Option<Event> {
    let names = match state.backend().queue_names().await {
        Ok(names) => names,
        Err(e) => return Some(status_event("disconnected", Some(e.to_string()))),
    };
    let names: Vec<String> = names.into_iter().filter(|q| query.wants_queue(q)).collect();
    match live::rows_of(state, &names).await {
        Ok(rows) => Some(json_event("counts", &rows)),
        Err(e) => Some(status_event("disconnected", Some(e.to_string()))),
    }
}

fn to_event(msg: &Live, query: &EventsQuery) -> Option<Event> {
    match msg {
        Live::Counts(rows) => {
            let rows: Vec<&live::LiveRow> = rows
                .iter()
                .filter(|r| query.wants_queue(&r.summary.stats.queue))
                .collect();
            (!rows.is_empty()).then(|| json_event("counts", &rows))
        }
        Live::Job(e) => (query.wants_jobs() && query.wants_queue(&e.queue))
            .then(|| json_event("job", e.as_ref())),
        Live::Removed(q) => query
            .wants_queue(q)
            .then(|| json_event("removed", &json!({ "queue": q }))),
        Live::Status { redis, error } => Some(status_event(redis, error.clone())),
    }
}

fn status_event(redis: &str, error: Option<String>) -> Event {
    json_event("status", &json!({ "redis": redis, "error": error }))
}

fn json_event<T: serde::Serialize + ?Sized>(name: &str, data: &T) -> Event {
    Event::default()
        .event(name)
        .data(serde_json::to_string(data).unwrap_or_else(|_| "null".into()))
}
