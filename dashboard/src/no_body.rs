//! [`NoBody`]: the body of an action that takes none (pause, resume, drain, retry …) must be
//! empty. Such an action never read its body: a 10 MB chunked one got past the 413 (the
//! limit applies as a body is read), and `{"state": "delayed"}` sent to drain drained every
//! waiting job anyway, as if the filter had been heard.

use axum::extract::{FromRequest, Request};

use crate::body_limit::SMALL_BODY_BYTES;
use crate::error::AppError;

/// An extractor (last of an API handler's) that reads the body, at most [`SMALL_BODY_BYTES`]
/// (past that a 413), and refuses anything but nothing, whitespace, `{}` or `null` (what
/// clients send for "no body") with a 400.
pub struct NoBody;

impl<S: Send + Sync> FromRequest<S> for NoBody {
    type Rejection = AppError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        // (the API's actions: their router, nested under `/api`, sees the path without it)
        let what = format!("{} /api{}", req.method(), req.uri().path());
        let bytes = axum::body::to_bytes(req.into_body(), SMALL_BODY_BYTES)
            .await
            .map_err(|_| {
                AppError::TooLarge(format!(
                    "{what} takes no body, and this one is over {SMALL_BODY_BYTES} bytes"
                ))
            })?;
        let text = String::from_utf8_lossy(&bytes);
        match text.trim() {
            "" | "{}" | "null" => Ok(NoBody),
            _ => Err(AppError::BadRequest(format!(
                "{what} takes no body, and this one has {} bytes ({}): nothing was done",
                bytes.len(),
                queue_core::internal::text::clip(&text, 60)
            ))),
        }
    }
}
