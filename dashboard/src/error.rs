//! What can go wrong while answering a request, and the HTTP status each deserves. The JSON
//! API answers `{"error": "..."}`; pages render the same message in an error page
//! (`pages::layout`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// A request that could not be served. Every message names the value that was wrong.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppError {
    /// Malformed input: bad JSON, a bad queue name, an unknown state… (400)
    #[error("{0}")]
    BadRequest(String),
    /// Credentials missing or wrong (401).
    #[error("{0}")]
    Unauthorized(String),
    /// Refused whoever asks: read-only mode, a cross-site form post (403).
    #[error("{0}")]
    Forbidden(String),
    /// No such queue or job (404).
    #[error("{0}")]
    NotFound(String),
    /// The job is not in a state the action applies to (409).
    #[error("{0}")]
    Conflict(String),
    /// Neither REDIS_URL nor REDIS_HOST is set (503).
    #[error("Redis is not configured: set REDIS_URL (or REDIS_HOST) or pass --redis-url")]
    NotConfigured,
    /// Redis is down, not reached yet, or too slow (503).
    #[error("{0}")]
    Unavailable(String),
    /// Anything else: a bug or an unexpected reply (500).
    #[error("{0}")]
    Internal(String),
}

impl AppError {
    /// The status code of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::NotConfigured | AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The read-only refusal.
    pub fn read_only() -> Self {
        AppError::Forbidden("this dashboard is read-only (--read-only): changes are refused".into())
    }
}

impl From<queue_core::Error> for AppError {
    fn from(e: queue_core::Error) -> Self {
        use queue_core::Error as E;
        match &e {
            E::InvalidQueueName(_)
            | E::Invalid { .. }
            | E::InvalidDuration(_)
            | E::DurationTooLong(_)
            | E::Serialize(_)
            | E::Config(_) => AppError::BadRequest(e.to_string()),
            E::JobNotFound { .. } => AppError::NotFound(e.to_string()),
            E::JobState { .. } | E::Refused(_) => AppError::Conflict(e.to_string()),
            E::NotConfigured => AppError::NotConfigured,
            E::Redis { addr, source } if e.is_connection() => {
                AppError::Unavailable(format!("cannot reach Redis at {addr}: {source}"))
            }
            _ if e.is_connection() => AppError::Unavailable(e.to_string()),
            _ => AppError::Internal(e.to_string()),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match &self {
            // a bug or an unexpected reply: worth a line every time
            AppError::Internal(_) => tracing::warn!(error = %self, "request failed"),
            // Redis missing or down is reported once by the connection and live tasks
            _ => tracing::debug!(error = %self, "request refused"),
        }
        (self.status(), Json(json!({ "error": self.to_string() }))).into_response()
    }
}

/// Result of the API handlers.
pub type ApiResult<T> = Result<T, AppError>;
