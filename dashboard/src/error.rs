//! What can go wrong while answering a request, and the HTTP status each deserves. The JSON
//! API answers `{"error": "..."}`; pages render the same message in an error page
//! (`pages::layout`). `refusals.rs` holds everything else to that too: the refusals axum
//! makes by itself (an unknown method, a body over its limit, a form of the wrong content
//! type, a bad query string or path) come out as JSON or an error page, never as bare text.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// The body of every error the API answers: what was wrong, naming the bad value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, naming the value that was wrong and what to do instead.
    #[schema(
        example = "state \"done\": use waiting, waiting_children, active, delayed, completed, failed, paused or cancelled"
    )]
    pub error: String,
}

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
    /// Job data or options over the size caps, or a body over its limit (413).
    #[error("{0}")]
    TooLarge(String),
    /// Too many failed authentications from this address: try again after the delay
    /// (429 with `Retry-After`).
    #[error("{message}")]
    TooManyRequests {
        /// what happened and when to try again
        message: String,
        /// how long until the next attempt is checked
        retry_after: Duration,
    },
    /// Any other refusal with its own status (a method not allowed, an unsupported media
    /// type…).
    #[error("{1}")]
    Http(StatusCode, String),
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

/// A wait as `Retry-After` says it: whole seconds, rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
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
            AppError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Http(status, _) => *status,
            AppError::NotConfigured | AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Adds the headers this error calls for (`Retry-After` of a 429) to its response.
    pub fn decorate(&self, response: &mut Response) {
        if let AppError::TooManyRequests { retry_after, .. } = self {
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs(*retry_after).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
    }

    /// The read-only refusal.
    pub fn read_only() -> Self {
        AppError::Forbidden("this dashboard is read-only (--read-only): changes are refused".into())
    }
}

impl From<queue_core::Error> for AppError {
    fn from(e: queue_core::Error) -> Self {
        use queue_core::{Error as E, ErrorKind as K};
        match e.kind() {
            K::BadInput => AppError::BadRequest(e.to_string()),
            K::TooLarge => AppError::TooLarge(e.to_string()),
            K::NotFound => AppError::NotFound(e.to_string()),
            K::Conflict => AppError::Conflict(e.to_string()),
            K::Unavailable => match &e {
                E::NotConfigured => AppError::NotConfigured,
                E::Redis { addr, source } => {
                    AppError::Unavailable(format!("cannot reach Redis at {addr}: {source}"))
                }
                _ => AppError::Unavailable(e.to_string()),
            },
            K::Internal => AppError::Internal(e.to_string()),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        // `?`: a message may quote what a client sent; escaped, it cannot forge log lines
        match &self {
            // a bug or an unexpected reply: worth a line every time
            AppError::Internal(_) => tracing::warn!(error = ?self.to_string(), "request failed"),
            // Redis missing or down is reported once by the connection and live tasks
            _ => tracing::debug!(error = ?self.to_string(), "request refused"),
        }
        let body = ErrorBody {
            error: self.to_string(),
        };
        let mut response = (self.status(), Json(body)).into_response();
        self.decorate(&mut response);
        response
    }
}

/// Result of the API handlers.
pub type ApiResult<T> = Result<T, AppError>;
