//! # jobq-dashboard
//!
//! The web side of jobq: server-rendered HTML pages to watch and steer queues, a
//! JSON API under `/api` (so services in any language can enqueue and inspect jobs), a
//! health check, Prometheus metrics and live updates by Server-Sent Events fed from the
//! queues' event streams. Every read and write goes through queue-core, the library the
//! `jobq` CLI uses, so the dashboard's counts are `jobq stats`'s.
//!
//! Where things live:
//!
//! | file | what |
//! |---|---|
//! | `config.rs` | flags and environment → [`DashboardConfig`]; the exposure rule (bind + auth) |
//! | `app.rs` | every route, in one place |
//! | `state.rs` | [`AppState`], what every handler shares |
//! | `backend.rs` | the Redis connection (connected in the background), queue handles, timeouts |
//! | `server.rs` | serving connections: the connection cap, header and idle timeouts |
//! | `auth.rs` | token / basic auth, login sessions, CSRF (same-origin) checks, read-only |
//! | `session.rs` | the login sessions in memory, and the access a request was granted |
//! | `throttle.rs` | backoff on failed authentication, per client address |
//! | `body_limit.rs` | how large a request body may be (one job at the size caps; a flow) |
//! | `error.rs`, `refusals.rs` | errors and their status; axum's own refusals as JSON or a page |
//! | `strict_json.rs` | request bodies as JSON, a key given twice in one object refused |
//! | `api.rs` | the JSON API (flows: `POST /api/flows`) |
//! | `enqueue.rs` | enqueueing (API and form) through the producer: `JOBQ_FALLBACK` when Redis is down |
//! | `schedules.rs`, `limits.rs` | a queue's schedules and limits: their API, and the checks and reads their pages share |
//! | `pages/` | the HTML pages and the form actions behind their buttons |
//! | `html.rs`, `chart.rs` | escaping and formatting; the throughput chart (inline SVG) |
//! | `stats.rs` | counts of every queue, read concurrently (what `jobq stats` prints) |
//! | `live.rs`, `sse.rs` | following the event streams; the `/events` SSE endpoint |
//! | `metrics.rs`, `health.rs` | `/metrics` (Prometheus text) and `/api/health` |
//! | `openapi.rs` | `/api/openapi.json`: the API's OpenAPI document, generated from the handlers |
//! | `timing.rs` | the `Server-Timing` header on every response |
//! | `headers.rs` | frame protection and `nosniff` on every response |

#![warn(missing_docs)]

pub mod api;
pub mod app;
pub mod auth;
pub mod backend;
pub mod body_limit;
pub mod chart;
pub mod config;
pub mod discovery;
pub mod enqueue;
pub mod error;
pub mod headers;
pub mod health;
pub mod html;
pub mod limits;
pub mod live;
pub mod metrics;
pub mod no_body;
pub mod openapi;
pub mod openapi_rules;
pub mod pages;
pub mod query;
pub mod refusals;
pub mod schedules;
pub mod server;
pub mod session;
pub mod sse;
pub mod state;
pub mod stats;
pub mod strict_json;
pub mod throttle;
pub mod timing;

pub use app::router;
pub use config::{AuthMode, DashboardConfig};
pub use state::AppState;

use queue_core::worker::CancellationToken;

/// Longest the dashboard waits for its first connection to Redis before serving.
const FIRST_CONNECT: std::time::Duration = std::time::Duration::from_secs(5);

/// Serves the dashboard on `listener` until `shutdown` is cancelled: connects to Redis in
/// the background (retrying while it is unreachable), then replays the spool dir and follows
/// the queues' events for live updates, and answers requests meanwhile (pages and health
/// report what is missing; enqueues apply `JOBQ_FALLBACK`, see `enqueue.rs`).
pub async fn serve(
    config: DashboardConfig,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let state = AppState::new(config, shutdown.clone());
    state.start_background();
    // requests wait for the first connection attempt (bounded: an unreachable Redis is
    // retried in the background while the dashboard serves its degraded pages)
    let _ = tokio::time::timeout(FIRST_CONNECT, state.backend().first_attempt()).await;
    let limits = state.config().limits;
    let app = router(state);
    server::serve(listener, app, limits, shutdown).await
}
