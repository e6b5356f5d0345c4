//! The [`errors_as_json`] middleware: axum's own refusals answered in JSON or as an error page.

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::is_machine_path;
use crate::error::AppError;
use crate::state::AppState;

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
        // (this layer is outside the auth guard: the session is not known here)
        crate::pages::error_response(&state, None, e)
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
    let shown = queue_core::internal::text::clip(path, 200);
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
        _ => queue_core::internal::text::clip(&text, 1000),
    }
}
