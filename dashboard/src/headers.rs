//! Headers every response carries, whatever produced it (pages, the API, refusals of the
//! auth guard, errors): no other site may frame the dashboard (its buttons steer queues, so
//! a page that overlays them invisibly could click them for the operator), and browsers
//! must not guess content types.

use axum::extract::Request;
use axum::http::header::{CONTENT_SECURITY_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

/// The middleware: adds `X-Frame-Options: DENY`, `Content-Security-Policy:
/// frame-ancestors 'none'` and `X-Content-Type-Options: nosniff`.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'none'"),
    );
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}
