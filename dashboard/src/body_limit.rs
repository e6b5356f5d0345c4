//! How large a request body may be: large enough for one job at the size caps
//! (`JOBQ_MAX_DATA_BYTES` + `JOBQ_MAX_OPTS_BYTES`, 1 MiB each by default) where jobs are
//! enqueued or schedules added, that plus [`FLOW_TREE_BYTES`] for a flow (one request, all or nothing, so it
//! cannot be sent in parts), small everywhere else, and bounded everywhere. A body over its limit is a 413
//! naming the limit (before it is read when `Content-Length` says so, else as soon as the
//! limit is passed).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use queue_core::config::JobCaps;

use crate::state::AppState;

/// Room for the rest of an enqueue body: the name, the JSON around data and options,
/// whitespace.
pub const ENVELOPE_BYTES: usize = 64 * 1024;

/// The limit of every body other than an enqueue's: forms, clean requests.
pub const SMALL_BODY_BYTES: usize = 64 * 1024;

/// Room a flow has besides one job at the caps, for the rest of its tree (10,000 children
/// of a few hundred bytes each).
pub const FLOW_TREE_BYTES: usize = 8 << 20;

/// The body limit of a request, and what it is for.
pub fn limit_for(caps: &JobCaps, method: &Method, path: &str) -> (usize, &'static str) {
    let job = caps.max_data_bytes.saturating_add(caps.max_opts_bytes);
    if method == Method::POST {
        let segments: Vec<&str> = path.split('/').collect();
        match segments.as_slice() {
            ["", "api", "flows"] => {
                return (
                    job.saturating_add(FLOW_TREE_BYTES)
                        .saturating_add(ENVELOPE_BYTES),
                    "a flow (one job at the caps plus 8 MiB for the rest of its tree)",
                )
            }
            ["", "api", "queues", _, "jobs"] => {
                return (
                    job.saturating_add(ENVELOPE_BYTES),
                    "an enqueue (one job at the caps)",
                )
            }
            ["", "api", "queues", _, "schedules"] => {
                return (
                    job.saturating_add(ENVELOPE_BYTES),
                    "a schedule (its job at the caps)",
                )
            }
            // a form url-encodes the JSON: up to 3 bytes per byte
            ["", "queues", _, "jobs"] => {
                return (
                    job.saturating_mul(3).saturating_add(ENVELOPE_BYTES),
                    "the add-job form (one job at the caps)",
                )
            }
            ["", "queues", _, "schedules"] => {
                return (
                    job.saturating_mul(3).saturating_add(ENVELOPE_BYTES),
                    "the add-schedule form (its job at the caps)",
                )
            }
            _ => {}
        }
    }
    (SMALL_BODY_BYTES, "this request")
}

/// The message of a 413 for a request to `path`.
pub fn too_large_message(caps: &JobCaps, method: &Method, path: &str) -> String {
    let (limit, what) = limit_for(caps, method, path);
    let advice = if path == "/api/flows" {
        "pass large data by reference, e.g. where to find it"
    } else {
        "send many jobs in several requests"
    };
    format!(
        "request body is too large: {what} may send at most {limit} bytes (job data is \
         capped at {} bytes by JOBQ_MAX_DATA_BYTES, options at {} by JOBQ_MAX_OPTS_BYTES; \
         {advice})",
        caps.max_data_bytes, caps.max_opts_bytes
    )
}

/// The middleware: refuses a body whose `Content-Length` is over the limit, and holds the
/// others to it while they are read (an overflow then fails the extractor with a 413).
pub async fn limit_body(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let caps = state.config().redis.caps;
    let (limit, _) = limit_for(&caps, req.method(), req.uri().path());
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        // plain text: `refusals::errors_as_json` turns it into JSON or an error page
        let message = too_large_message(&caps, req.method(), req.uri().path());
        let mut response = (StatusCode::PAYLOAD_TOO_LARGE, message).into_response();
        // the body is not read: the connection cannot be kept
        response.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
        return response;
    }
    let req = req.map(|body| Body::new(http_body_util::Limited::new(body, limit)));
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_enqueue_may_carry_one_job_at_the_caps_and_other_bodies_are_small() {
        let caps = JobCaps::default();
        let (api, _) = limit_for(&caps, &Method::POST, "/api/queues/q/jobs");
        assert_eq!(api, 2 * JobCaps::DEFAULT_BYTES + ENVELOPE_BYTES);
        let (form, _) = limit_for(&caps, &Method::POST, "/queues/q/jobs");
        assert!(form > api);
        assert_eq!(
            limit_for(&caps, &Method::POST, "/api/queues/q/schedules").0,
            api
        );
        assert_eq!(
            limit_for(&caps, &Method::POST, "/queues/q/schedules").0,
            form
        );
        for (m, p) in [
            (Method::POST, "/api/queues/q/clean"),
            (Method::POST, "/api/queues/q/limits"),
            (Method::POST, "/queues/q/schedules/s/remove"),
            (Method::POST, "/api/queues/q/jobs/1/retry"),
            (Method::GET, "/api/queues/q/jobs"),
            (Method::POST, "/login"),
        ] {
            assert_eq!(limit_for(&caps, &m, p).0, SMALL_BODY_BYTES, "{m} {p}");
        }
        let msg = too_large_message(&caps, &Method::POST, "/api/queues/q/jobs");
        assert!(msg.contains(&api.to_string()), "{msg}");
        let (flow, _) = limit_for(&caps, &Method::POST, "/api/flows");
        assert_eq!(flow, api + FLOW_TREE_BYTES);
        let msg = too_large_message(&caps, &Method::POST, "/api/flows");
        assert!(
            msg.contains(&flow.to_string()) && msg.contains("a flow"),
            "{msg}"
        );
    }
}
