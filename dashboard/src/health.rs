//! `GET /api/health`: whether the dashboard can reach Redis, and how fast.
//!
//! `{"status":"healthy","redis":{"status":"connected","latency_ms":0.31}}` with 200, or
//! `degraded` with 503 when Redis is `disconnected` (unreachable, or not reached yet) or
//! `not_configured`. Always open, whatever the auth, for load balancers and probes.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::AppError;
use crate::state::AppState;

/// Longest the health check waits for a PING.
const PING_DEADLINE: Duration = Duration::from_secs(2);

/// The health report.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Health {
    /// `healthy` when Redis answers, else `degraded`.
    pub status: HealthStatus,
    /// Redis as the dashboard sees it.
    pub redis: RedisHealth,
}

/// Whether the dashboard can do its work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Redis answers.
    Healthy,
    /// Redis is down, not reached yet, or not configured.
    Degraded,
}

/// Redis as the dashboard sees it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RedisHealth {
    /// `connected`, `disconnected` or `not_configured`.
    pub status: RedisStatus,
    /// Round trip of a PING, in ms (null unless connected).
    pub latency_ms: Option<f64>,
    /// Why Redis is disconnected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Whether Redis answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RedisStatus {
    /// It answered a PING.
    Connected,
    /// It is unreachable, or not reached yet.
    Disconnected,
    /// Neither REDIS_URL nor REDIS_HOST is set.
    NotConfigured,
}

/// The health report and its status code.
#[utoipa::path(get, path = "/api/health", operation_id = "health", tag = "health",
    security(()),
    responses(
        (status = 200, description = "Redis answers", body = Health,
            example = json!({"status": "healthy", "redis": {"status": "connected", "latency_ms": 0.31}})),
        (status = 503, description = "Redis is down, not reached yet, or not configured",
            body = Health),
    ))]
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let (status, redis) = redis_health(&state).await;
    let code = match status {
        HealthStatus::Healthy => StatusCode::OK,
        HealthStatus::Degraded => StatusCode::SERVICE_UNAVAILABLE,
    };
    (code, Json(Health { status, redis }))
}

/// Whether Redis answers a PING (within [`PING_DEADLINE`]), and how fast.
pub async fn redis_health(state: &AppState) -> (HealthStatus, RedisHealth) {
    let down = |status, error| {
        (
            HealthStatus::Degraded,
            RedisHealth {
                status,
                latency_ms: None,
                error,
            },
        )
    };
    let redis = match state.backend().redis() {
        Ok(r) => r,
        Err(AppError::NotConfigured) => return down(RedisStatus::NotConfigured, None),
        Err(e) => return down(RedisStatus::Disconnected, Some(e.to_string())),
    };
    match tokio::time::timeout(PING_DEADLINE, redis.ping()).await {
        Ok(Ok(latency)) => (
            HealthStatus::Healthy,
            RedisHealth {
                status: RedisStatus::Connected,
                latency_ms: Some((latency.as_secs_f64() * 1e6).round() / 1e3),
                error: None,
            },
        ),
        Ok(Err(e)) => down(RedisStatus::Disconnected, Some(e.to_string())),
        Err(_) => down(
            RedisStatus::Disconnected,
            Some(format!(
                "no answer to PING within {}",
                queue_core::format_duration(PING_DEADLINE)
            )),
        ),
    }
}
