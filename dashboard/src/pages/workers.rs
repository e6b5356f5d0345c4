//! `/workers`: the live workers, from their heartbeats — id, host, pid, version, queues
//! (linked), jobs held (the first few linked) of its concurrency, when it started and when
//! it was last seen. A worker killed without leaving drops out three heartbeats after its
//! last. Records come from Redis and are escaped like any job data (a `maud` template); a
//! corrupt one shows as its id and why.

use axum::extract::State;
use axum::response::{Html, Response};
use axum::Extension;
use maud::{html, Markup};
use queue_core::WorkerInfo;

use super::layout::page;
use super::{respond, PageCtx};
use crate::discovery::workers;
use crate::error::AppError;
use crate::html::{clip, job_href, queue_href, relative, url_component, utc};
use crate::session::Access;
use crate::state::AppState;

/// Running jobs linked per worker; the rest are counted.
const JOBS_SHOWN: usize = 5;

/// The workers page.
pub async fn workers_page(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
) -> Response {
    let page = render(&state, access).await;
    respond(&state, access, page)
}

async fn render(state: &AppState, access: Access) -> Result<Html<String>, AppError> {
    let ctx = PageCtx::new(state, Some(access));
    let list = workers(state.backend()).await?;
    let body = workers_body(&list, &ctx.prefix);
    Ok(page(
        &ctx,
        "Workers",
        body,
        &[("workers", "/workers".into())],
        "",
    ))
}

/// The page's content for `list`.
fn workers_body(list: &[WorkerInfo], prefix: &str) -> Markup {
    let held: usize = list.iter().map(|w| w.running_count).sum();
    html! {
        h1 { "Workers" }
        p class="muted" {
            span id="worker-count" { (list.len()) } " live worker(s) holding " (held)
            " job(s). Each heartbeats every few seconds; a worker killed without stopping drops \
             out three heartbeats after its last."
        }
        @if list.is_empty() {
            p id="no-workers" class="muted" {
                "No live worker under prefix " (prefix) ": start one with "
                span class="mono" { "jobq-worker" } "."
            }
        } @else {
            table id="workers" {
                thead {
                    tr {
                        th { "Worker" }
                        th { "Host" }
                        th class="num" { "PID" }
                        th { "Version" }
                        th { "Queues" }
                        th { "Jobs held" }
                        th { "Started" }
                        th { "Last seen" }
                    }
                }
                tbody {
                    @for w in list { (row(w)) }
                }
            }
        }
    }
}

/// One worker's row; its element id is the worker id, so a job page links to it.
fn row(w: &WorkerInfo) -> Markup {
    let more_queues = w.queue_count.saturating_sub(w.queues.len());
    let jobs_shown = w.running.len().min(JOBS_SHOWN);
    html! {
        tr id={ "w-" (url_component(&w.id)) } data-worker=(w.id) {
            td class="mono" { (w.id) }
            @if let Some(why) = &w.corrupt {
                td colspan="7" class="reason" { "corrupt record: " (clip(why, 200)) }
            } @else {
                td { (w.host) }
                td class="num" { (w.pid) }
                td { (w.version) }
                td {
                    @for (i, q) in w.queues.iter().enumerate() {
                        @if i > 0 { ", " }
                        a href=(queue_href(q)) { (q) }
                    }
                    @if more_queues > 0 {
                        @if !w.queues.is_empty() { ", " }
                        span class="muted" { "+" (more_queues) " more" }
                    }
                }
                td {
                    span data-field="running" { (w.running_count) } " of " (w.concurrency)
                    @if jobs_shown > 0 || w.running_count > 0 { br; }
                    @for (i, j) in w.running.iter().take(JOBS_SHOWN).enumerate() {
                        @if i > 0 { " " }
                        a class="mono" href=(job_href(&j.queue, &j.id)) { (clip(&j.id, 40)) }
                    }
                    @if w.running_count > jobs_shown {
                        @if jobs_shown > 0 { " " }
                        span class="muted" { "+" (w.running_count - jobs_shown) " more" }
                    }
                }
                td title=(utc(w.started_at)) { (relative(w.started_at)) }
                td title=(utc(w.last_seen)) { (relative(w.last_seen)) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use queue_core::RunningJob;

    #[test]
    fn every_value_from_a_record_is_escaped() {
        let evil = "<script>alert(1)</script>";
        let w = WorkerInfo {
            id: format!("h:1:{evil}"),
            host: evil.into(),
            pid: 42,
            version: evil.into(),
            queues: vec![evil.into()],
            queue_count: 3,
            concurrency: 8,
            running: vec![RunningJob {
                queue: evil.into(),
                id: evil.into(),
            }],
            running_count: 9,
            ..WorkerInfo::default()
        };
        let bad = WorkerInfo {
            id: evil.into(),
            corrupt: Some(evil.into()),
            ..WorkerInfo::default()
        };
        let html = workers_body(&[w, bad], evil).into_string();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("<span data-field=\"running\">9</span> of 8"));
        assert!(
            html.contains("+2 more") && html.contains("+8 more"),
            "{html}"
        );
        assert!(html.contains("corrupt record: &lt;script&gt;"));
        assert!(html.contains("/queues/%3Cscript%3Ealert%281%29%3C%2Fscript%3E"));
        assert!(workers_body(&[], evil)
            .0
            .contains("No live worker under prefix &lt;script&gt;"));
    }
}
