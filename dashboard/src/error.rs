//! What can go wrong while answering a request, and the HTTP status each deserves. The JSON
//! API answers `{"error": "..."}`; pages render the same message in an error page
//! (`pages::layout`). [`errors_as_json`] holds everything else to that too: the refusals
//! axum makes by itself (an unknown method, a body over its limit, a form of the wrong
//! content type, a bad query string or path) come out as JSON or an error page, never as
//! bare text.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::app::AppState;
use crate::auth::{is_machine_path, Access};

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
            let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
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
            E::TooLarge { .. } => AppError::TooLarge(e.to_string()),
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
        // `?`: a message may quote what a client sent; escaped, it cannot forge log lines
        match &self {
            // a bug or an unexpected reply: worth a line every time
            AppError::Internal(_) => tracing::warn!(error = ?self.to_string(), "request failed"),
            // Redis missing or down is reported once by the connection and live tasks
            _ => tracing::debug!(error = ?self.to_string(), "request refused"),
        }
        let mut response =
            (self.status(), Json(json!({ "error": self.to_string() }))).into_response();
        self.decorate(&mut response);
        response
    }
}

/// Longest text of a refusal read back to be rewritten (axum's are one line).
const REFUSAL_TEXT_MAX: usize = 4096;

/// Whether an error should be answered in JSON: on the API (and the other machine paths),
/// and to any client that does not ask for HTML (a browser always does).
fn wants_json(path: &str, headers: &axum::http::HeaderMap) -> bool {
    is_machine_path(path)
        || path == "/api"
        || !headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("text/html"))
}

/// The middleware: an error response that is neither JSON nor HTML (axum's own refusals:
/// plain text or nothing) is answered again as `{"error": "..."}` (the API, and clients that
/// do not ask for HTML) or as an error page, with a message naming what was wrong.
pub async fn errors_as_json(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let json = wants_json(&path, req.headers());
    let access = req.extensions().get::<Access>().copied();
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/json") || content_type.starts_with("text/html") {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, REFUSAL_TEXT_MAX)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = refusal_message(&state, status, &method, &path, &parts.headers, text);
    let e = match status {
        StatusCode::BAD_REQUEST => AppError::BadRequest(message),
        StatusCode::NOT_FOUND => AppError::NotFound(message),
        StatusCode::PAYLOAD_TOO_LARGE => AppError::TooLarge(message),
        _ => AppError::Http(status, message),
    };
    let mut rewritten = if json {
        e.into_response()
    } else {
        crate::pages::error_response(&state, access, e)
    };
    // keep what the refusal said besides its body (`Allow`, `Retry-After`, `Connection`)
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rewritten.headers_mut().insert(name.clone(), value.clone());
        }
    }
    rewritten
}

/// What to say about a refusal axum made, naming the method, path or limit involved.
fn refusal_message(
    state: &AppState,
    status: StatusCode,
    method: &Method,
    path: &str,
    headers: &axum::http::HeaderMap,
    text: String,
) -> String {
    // a path as the client sent it (percent-encoded: printable ASCII), clipped
    let shown = queue_core::text::clip(path, 200);
    match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            // axum adds `Allow` only after this middleware has run, on most routes
            match headers.get(header::ALLOW).and_then(|v| v.to_str().ok()) {
                Some(allow) if !allow.is_empty() => {
                    format!("method {method} is not allowed on {shown}: use {allow}")
                }
                _ => format!("method {method} is not allowed on {shown} (see the Allow header)"),
            }
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            crate::body_limit::too_large_message(&state.config().redis.caps, method, path)
        }
        _ if text.is_empty() => format!(
            "{} ({method} {shown})",
            status.canonical_reason().unwrap_or("error")
        ),
        _ if text.starts_with("Invalid URL") => format!("{text} (path {shown})"),
        _ => queue_core::text::clip(&text, 1000),
    }
}

/// Result of the API handlers.
pub type ApiResult<T> = Result<T, AppError>;
