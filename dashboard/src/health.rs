//! `GET /api/health`: whether the dashboard can reach Redis, and how fast.
//!
//! `{"status":"healthy","redis":{"status":"connected","latency_ms":0.31}}` with 200, or
//! `degraded` with 503 when Redis is `disconnected` (unreachable, or not reached yet) or
//! `not_configured`. Always open, whatever the auth, for load balancers and probes.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::error::AppError;
use crate::state::AppState;

/// Longest the health check waits for a PING.
const PING_DEADLINE: Duration = Duration::from_secs(2);

/// The health report and its status code.
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let (status, redis) = redis_health(&state).await;
    let code = if status == "healthy" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(json!({ "status": status, "redis": redis })))
}

/// `("healthy" | "degraded", {"status": .., "latency_ms": ..})`.
pub async fn redis_health(state: &AppState) -> (&'static str, Value) {
    let redis = match state.backend().redis() {
        Ok(r) => r,
        Err(AppError::NotConfigured) => {
            return (
                "degraded",
                json!({"status": "not_configured", "latency_ms": null}),
            )
        }
        Err(e) => {
            return (
                "degraded",
                json!({"status": "disconnected", "latency_ms": null, "error": e.to_string()}),
            )
        }
    };
    match tokio::time::timeout(PING_DEADLINE, redis.ping()).await {
        Ok(Ok(latency)) => (
            "healthy",
            json!({
                "status": "connected",
                "latency_ms": (latency.as_secs_f64() * 1e6).round() / 1e3,
            }),
        ),
        Ok(Err(e)) => (
            "degraded",
            json!({"status": "disconnected", "latency_ms": null, "error": e.to_string()}),
        ),
        Err(_) => (
            "degraded",
            json!({
                "status": "disconnected",
                "latency_ms": null,
                "error": format!("no answer to PING within {}", queue_core::format_duration(PING_DEADLINE)),
            }),
        ),
    }
}
