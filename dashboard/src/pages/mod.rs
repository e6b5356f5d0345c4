//! The HTML pages, rendered on the server: no build step, a little inline JavaScript for
//! the live updates. Every page is a `maud` template (`html!`), which escapes every value
//! spliced into it, and shares the shell in `layout.rs`.
//!
//! | path | page |
//! |---|---|
//! | `/` | `overview.rs`: every queue, counts, paused flag, last hour, live |
//! | `/queues/{q}?state=&page=` | `queue.rs`: jobs by state, paginated, queue actions, add a job; `groups.rs`: its busiest groups |
//! | `/queues/{q}/jobs/{id}` | `job.rs`: data, options, progress, logs, error, timeline, a flow's parent and children |
//! | `/queues/{q}/schedules` | `schedules.rs`: the queue's schedules with their next and last runs; add and remove (its own posts) |
//! | `/queues/{q}/limits` | `limits.rs`: the queue's rate limit, global concurrency and group limits; forms that set them (its own posts) |
//! | `/workers` | `workers.rs`: the live workers, their queues and the jobs they hold |
//! | `/redis` | `redis.rs`: Redis at a glance per node, what loses jobs flagged |
//! | `/login`, `/logout` | `login.rs`: the token login form and session cookie |
//! | `POST /queues/{q}/…` | `actions.rs`: what the buttons do, then back to the page |

pub mod actions;
pub mod context;
pub mod groups;
pub mod job;
pub mod layout;
pub mod limits;
pub mod login;
pub mod overview;
pub mod queue;
pub mod redis;
pub mod schedules;
pub mod workers;

pub use context::{AuthKind, PageCtx};

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::Extension;
use maud::html;

use crate::error::AppError;
use crate::session::Access;
use crate::state::AppState;

/// An error page: the message in a banner, with the status of the error.
pub fn error_response(state: &AppState, access: Option<Access>, e: AppError) -> Response {
    let ctx = PageCtx::new(state, access);
    let status = e.status();
    let body = html! {
        h1 { (status.canonical_reason().unwrap_or("Error")) }
        (layout::error_banner(&e.to_string()))
        p { a href="/" { "Back to the overview" } }
    };
    let mut response = (status, layout::page(&ctx, status.as_str(), body, &[], "")).into_response();
    e.decorate(&mut response);
    response
}

/// A rendered page, or an error page.
pub fn respond(state: &AppState, access: Access, page: Result<Html<String>, AppError>) -> Response {
    match page {
        Ok(html) => (StatusCode::OK, html).into_response(),
        Err(e) => error_response(state, Some(access), e),
    }
}

/// The answer to a refused form: its page again (`page`: rendered with the error and what
/// was typed) with the error's status, or the error page when that page cannot be shown.
pub fn refused_form(
    state: &AppState,
    access: Access,
    e: AppError,
    page: Result<Html<String>, AppError>,
) -> Response {
    match page {
        Ok(html) => (e.status(), html).into_response(),
        Err(_) => error_response(state, Some(access), e),
    }
}

/// Any other path.
pub async fn not_found(
    State(state): State<AppState>,
    access: Option<Extension<Access>>,
    uri: Uri,
) -> Response {
    error_response(
        &state,
        access.map(|a| a.0),
        AppError::NotFound(format!("no page at {}", uri.path())),
    )
}
