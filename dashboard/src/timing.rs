//! The `Server-Timing` header: how long the dashboard took to produce each response (up to
//! the start of its body), so a browser's network panel and the tests can tell server time
//! from network time. Slow requests are logged.

use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

/// Requests slower than this are logged at `warn`.
const SLOW: Duration = Duration::from_secs(1);

/// The middleware: times the handler and adds `Server-Timing: app;dur=<ms>`.
pub async fn server_timing(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let mut response = next.run(req).await;
    let took = started.elapsed();
    let ms = took.as_secs_f64() * 1000.0;
    if let Ok(v) = HeaderValue::from_str(&format!("app;dur={ms:.2}")) {
        response.headers_mut().insert("server-timing", v);
    }
    let status = response.status().as_u16();
    if took > SLOW {
        tracing::warn!(%method, path = ?path, status, ms, "slow request");
    } else {
        tracing::debug!(%method, path = ?path, status, ms, "request");
    }
    response
}
