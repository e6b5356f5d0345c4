//! Query strings of the API, checked whole: a parameter the endpoint does not take (a typo
//! such as `stat=failed`, which used to list the default state silently), or a name or
//! value that is not UTF-8 once decoded (`name=%FF`, which used to search for U+FFFD), is
//! a 400 naming it.

use std::borrow::Cow;

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode;

use crate::error::AppError;

/// An extractor for an API read that takes no query parameter: any is a 400 naming it.
pub struct NoQuery;

impl<S: Send + Sync> FromRequestParts<S> for NoQuery {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        only_known(parts.uri.query(), &[]).map(|()| NoQuery)
    }
}

/// Middleware of the API: a request that changes something (any method but GET and HEAD)
/// takes no query parameter, as no such endpoint does, so any is a 400 naming it before
/// anything is done (`DELETE …/jobs/j?dry_run=1` used to delete the job).
pub async fn writes_take_no_query(req: Request, next: Next) -> Response {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        if let Err(e) = only_known(req.uri().query(), &[]) {
            return e.into_response();
        }
    }
    next.run(req).await
}

/// Checks the raw query `raw` of an endpoint that takes the parameters `known`.
pub fn only_known(raw: Option<&str>, known: &[&str]) -> Result<(), AppError> {
    for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decoded(name).map_err(|_| {
            AppError::BadRequest(format!(
                "query parameter {:?}: its name is not UTF-8 once decoded",
                clipped(name)
            ))
        })?;
        if !known.contains(&name.as_ref()) {
            let takes = match known {
                [] => "none".to_string(),
                _ => known.join(", "),
            };
            return Err(AppError::BadRequest(format!(
                "unknown query parameter {:?}: this endpoint takes {takes}",
                clipped(&name)
            )));
        }
        if decoded(value).is_err() {
            return Err(AppError::BadRequest(format!(
                "query parameter {name}: its value is not UTF-8 once decoded"
            )));
        }
    }
    Ok(())
}

/// A query string part decoded (`+` is a space), or an error if not UTF-8.
fn decoded(part: &str) -> Result<Cow<'_, str>, std::str::Utf8Error> {
    let spaced: Cow<'_, str> = if part.contains('+') {
        part.replace('+', " ").into()
    } else {
        part.into()
    };
    let bytes: Vec<u8> = percent_decode(spaced.as_bytes()).collect();
    Ok(Cow::Owned(std::str::from_utf8(&bytes)?.to_string()))
}

/// At most 60 characters of a name given, for an error.
fn clipped(s: &str) -> String {
    queue_core::internal::text::clip(s, 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_parameters_and_bad_utf8_are_named() {
        let known = ["state", "limit"];
        assert!(only_known(None, &known).is_ok());
        assert!(only_known(Some("state=failed&limit=5&"), &known).is_ok());
        assert!(only_known(Some("state=caf%C3%A9+x"), &known).is_ok());
        let e = only_known(Some("stat=failed"), &known)
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"stat\"") && e.contains("state, limit"), "{e}");
        let e = only_known(Some("state=%FF"), &known)
            .unwrap_err()
            .to_string();
        assert!(e.contains("state") && e.contains("UTF-8"), "{e}");
        let e = only_known(Some("%FF=1"), &known).unwrap_err().to_string();
        assert!(e.contains("UTF-8"), "{e}");
    }
}
