//! `/queues/{queue}?state=&page=`: one queue's jobs by state, a page at a time, with the
//! queue's actions (pause/resume, retry all failed, promote all delayed, clean, drain) and a
//! form to add a job. Its search box finds jobs by name, data, failure reason, state and age
//! (`?name=&data=&error=&since=&state=`, `Queue::search`), a page at a time with a link to
//! the next (`&cursor=`). Tab counts and the paused flag update live. A queue with groups
//! (tenants) shows its busiest groups too (`groups.rs`). It links to the queue's schedules
//! and limits pages (`schedules.rs`, `limits.rs`).
//!
//! Order within a tab (`Queue::list_jobs_in` with `ListOrder::Newest`): completed and
//! failed newest first, waiting newest first (the reverse of the order workers take them:
//! lowest priority lane first, newest first within a lane), delayed next due first, active
//! longest running first, waiting_children (flow parents waiting for their children) next
//! checked first. A flow's parent is marked in every tab with how many of its children have
//! not finished.

use axum::extract::{Path, Query, State};
use axum::response::{Html, Response};
use axum::Extension;
use maud::{html, Markup};
use queue_core::{JobInfo, JobState, SearchFilter};
use serde::Deserialize;

use super::groups::groups_section;
use super::layout::{button_form, notice_banner, page};
use super::{respond, PageCtx};
use crate::api::{groups, list_page, SearchQuery, DEFAULT_GROUPS, MAX_OFFSET};
use crate::backend::deadline;
use crate::error::AppError;
use crate::html::{
    clip, job_href, limits_href, queue_href, relative, schedules_href, short_duration,
    url_component, utc,
};
use crate::session::Access;
use crate::state::AppState;
use crate::stats::{self, QueueStats};

/// Jobs per page.
pub const PAGE_SIZE: u64 = 20;

/// The tabs, in order.
const TABS: [JobState; 7] = [
    JobState::Waiting,
    JobState::WaitingChildren,
    JobState::Active,
    JobState::Delayed,
    JobState::Completed,
    JobState::Failed,
    JobState::Cancelled,
];

/// `?state=&page=&notice=`, or a search: `?name=&data=&error=&since=&state=&cursor=`.
#[derive(Debug, Default, Deserialize)]
pub struct QueuePageQuery {
    /// Which tab (default waiting); in a search, the state searched (default every one).
    pub state: Option<String>,
    /// 1-based page number.
    pub page: Option<String>,
    /// Text an action left.
    pub notice: Option<String>,
    /// What the search box asks for, if anything.
    #[serde(flatten)]
    pub search: SearchQuery,
}

/// Live tab counts and paused flag of this queue.
const SCRIPT: &str = r#"
const section = document.getElementById('queue');
const q = section.dataset.queue;
const shown = section.dataset.state;
let initial = null;
jobqLive('/events?queue=' + encodeURIComponent(q), {
  counts: (rows) => {
    for (const r of rows) {
      if (r.queue !== q) continue;
      for (const el of document.querySelectorAll('[data-count]')) el.textContent = r[el.dataset.count];
      const badge = document.getElementById('paused');
      badge.textContent = r.paused ? 'paused' : 'running';
      badge.className = 'badge ' + (r.paused ? 'paused' : 'running');
      if (initial === null) initial = r[shown];
      document.getElementById('stale').hidden = r[shown] === initial;
    }
  },
  removed: (m) => { if (m.queue === q) document.getElementById('stale').hidden = false; },
});
"#;

/// The queue page.
pub async fn queue_page(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path(queue): Path<String>,
    Query(query): Query<QueuePageQuery>,
) -> Response {
    let page = render(&state, access, &queue, query).await;
    respond(&state, access, page)
}

async fn render(
    state: &AppState,
    access: Access,
    queue: &str,
    query: QueuePageQuery,
) -> Result<Html<String>, AppError> {
    let ctx = PageCtx::new(state, Some(access));
    let tab = match query.state.as_deref() {
        None | Some("") => JobState::Waiting,
        Some(s) => match s.parse::<JobState>()? {
            JobState::Paused => JobState::Waiting,
            other => other,
        },
    };
    let page_no: u64 = match query.page.as_deref() {
        None | Some("") => 1,
        Some(p) => p.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
            AppError::BadRequest(format!(
                "page {:?}: use a whole number of at least 1",
                clip(p, 40)
            ))
        })?,
    };
    let offset = page_offset(page_no)?;
    let search = query
        .search
        .filter(query.state.as_deref(), None, None)?
        .map(|f| f.limit(PAGE_SIZE));
    let q = state.backend().existing_queue(queue).await?;
    let jobs = async {
        match &search {
            Some(filter) => deadline(q.search(filter)).await.map(|p| (p.jobs, p.next)),
            None => list_page(&q, tab, offset, PAGE_SIZE)
                .await
                .map(|j| (j, None)),
        }
    };
    let (counts, (jobs, next), groups) =
        tokio::try_join!(stats::queue_stats(&q), jobs, groups(&q, DEFAULT_GROUPS))?;

    let here = format!("{}?state={tab}&page={page_no}", queue_href(queue));
    let st = if counts.paused { "paused" } else { "running" };
    let body = html! {
        (notice_banner(query.notice.as_deref()))
        section id="queue" data-queue=(queue) data-state=(tab.as_str()) {
            h1 { (queue) " " span id="paused" class={ "badge " (st) } { (st) } }
            (steer_links(queue))
            (queue_actions(&ctx, queue, &counts, tab))
            (tabs(queue, &counts, tab))
            p id="stale" class="banner info" hidden {
                "The " (tab.as_str()) " jobs changed: " a href=(here) { "reload" } " to see them."
            }
            (search_form(queue, &query, search.is_some()))
            @match &search {
                Some(filter) => (search_results(&ctx, queue, filter, &jobs, next)),
                None => {
                    (job_table(&ctx, queue, tab, &jobs, &here))
                    (pager(queue, tab, page_no, counts.listed_in(tab)))
                },
            }
            (groups_section(&groups))
            @if ctx.can_change() { (add_form(queue)) }
        }
    };
    Ok(page(
        &ctx,
        queue,
        body,
        &[(queue, queue_href(queue))],
        SCRIPT,
    ))
}

/// Where page `page_no` (1-based) starts; a page past [`MAX_OFFSET`] is a 400 naming it.
fn page_offset(page_no: u64) -> Result<u64, AppError> {
    page_no
        .checked_sub(1)
        .and_then(|n| n.checked_mul(PAGE_SIZE))
        .filter(|offset| *offset <= MAX_OFFSET)
        .ok_or_else(|| {
            AppError::BadRequest(format!(
                "page {page_no}: at most {}",
                MAX_OFFSET / PAGE_SIZE + 1
            ))
        })
}

/// Links to the queue's schedules and limits pages.
fn steer_links(queue: &str) -> Markup {
    html! {
        nav class="actions" id="steer" {
            a href=(schedules_href(queue)) { "Schedules" } " "
            a href=(limits_href(queue)) { "Limits" }
        }
    }
}

/// The buttons that act on the whole queue (those that apply to the tab shown).
fn queue_actions(ctx: &PageCtx, queue: &str, counts: &QueueStats, tab: JobState) -> Markup {
    if !ctx.can_change() {
        return Markup::default();
    }
    let base = queue_href(queue);
    let back = [("state", tab.as_str())];
    html! {
        div class="actions" {
            @if counts.paused {
                (button_form(&format!("{base}/resume"), "Resume", "primary", &back, None))
            } @else {
                (button_form(&format!("{base}/pause"), "Pause", "", &back, None))
            }
            @match tab {
                JobState::Failed => {
                    (button_form(
                        &format!("{base}/retry-all"),
                        "Retry all failed",
                        "primary",
                        &back,
                        Some("Retry every failed job of this queue?"),
                    ))
                    (clean_form(&base, "failed"))
                },
                JobState::Completed => (clean_form(&base, "completed")),
                JobState::Cancelled => (clean_form(&base, "cancelled")),
                JobState::Delayed => (button_form(
                    &format!("{base}/promote-all"),
                    "Promote all delayed",
                    "",
                    &back,
                    Some("Start every delayed job now?"),
                )),
                JobState::Waiting | JobState::Paused => (button_form(
                    &format!("{base}/drain"),
                    "Drain (delete waiting and delayed)",
                    "danger",
                    &back,
                    Some("Delete every waiting and delayed job of this queue?"),
                )),
                JobState::Active | JobState::WaitingChildren => {},
            }
        }
    }
}

/// `state`: one of this module's constants (it is written into the confirm script).
fn clean_form(base: &str, state: &'static str) -> Markup {
    html! {
        form class="inline" method="post" action={ (base) "/clean" }
            onsubmit={ "return confirm('Delete these " (state) " jobs?')" } {
            input type="hidden" name="state" value=(state);
            button class="danger" { "Clean " (state) } " older than "
            input name="older_than" value="0s" size="5" title="e.g. 0s, 10m, 1h, 7d";
        }
    }
}

fn tabs(queue: &str, counts: &QueueStats, current: JobState) -> Markup {
    let href = queue_href(queue);
    html! {
        nav class="tabs" {
            @for t in TABS {
                a class=(if t == current { "current" } else { "" })
                    href={ (href) "?state=" (t.as_str()) } {
                    (t.as_str().replace('_', " ")) " "
                    span class={ "badge " (t.as_str()) } data-count=(t.as_str()) { (counts.listed_in(t)) }
                }
            }
        }
    }
}

fn job_table(ctx: &PageCtx, queue: &str, tab: JobState, jobs: &[JobInfo], here: &str) -> Markup {
    if jobs.is_empty() {
        return html! {
            div class="card muted" {
                "No " (tab.as_str()) " jobs"
                @if tab == JobState::Waiting { " (or the queue is empty)" }
                "."
            }
        };
    }
    let order = match tab {
        JobState::Completed | JobState::Failed | JobState::Cancelled => "newest first",
        JobState::Delayed => "next due first",
        JobState::WaitingChildren => "next checked first",
        JobState::Active => "longest running first",
        JobState::Waiting | JobState::Paused => "in the order workers take them",
    };
    table(ctx, queue, jobs, here, &format!("Details ({order})"))
}

/// A table of `jobs` with links to their pages, their details (under the column title
/// `details`) and the actions that apply to each.
fn table(ctx: &PageCtx, queue: &str, jobs: &[JobInfo], here: &str, details: &str) -> Markup {
    html! {
        table {
            thead {
                tr {
                    th { "Id" }
                    th { "Name" }
                    th { "State" }
                    th class="num" { "Attempts" }
                    th { "Created" }
                    th { (details) }
                    th {}
                }
            }
            tbody {
                @for job in jobs {
                    tr data-job=(job.id) {
                        td class="mono" { a href=(job_href(queue, &job.id)) { (job.id) } }
                        td { (job.name) (parent_badge(job)) }
                        td { span class={ "badge " (job.state.as_str()) } { (job.state.as_str()) } }
                        td class="num" { (job.attempts_made) "/" (job.opts.max_attempts()) }
                        td title=(utc(job.created_at)) { (relative(job.created_at)) }
                        td { (info(job)) }
                        td { (row_actions(ctx, queue, job, here)) }
                    }
                }
            }
        }
    }
}

/// ` parent · N left` for a flow's parent (N of its children have not finished), else
/// nothing.
pub fn parent_badge(job: &JobInfo) -> Markup {
    html! {
        @if let Some(n) = job.children_pending {
            " "
            span class="badge parent"
                title={ "a flow's parent: " (n) " of its children have not finished" } {
                "parent · " (n) " left"
            }
        }
    }
}

/// The one thing worth knowing about a job in a listing.
fn info(job: &JobInfo) -> Markup {
    let ago = |t: Option<u64>| t.map(relative).unwrap_or_default();
    if let Some(c) = &job.corrupt {
        return html! { span class="badge failed" { "corrupt" } " " (clip(c, 100)) };
    }
    html! {
        @match job.state {
            JobState::Failed => {
                span class="muted" { (ago(job.finished_at)) } " "
                (clip(job.failed_reason.as_deref().unwrap_or(""), 100))
            },
            JobState::Cancelled => { "cancelled " (ago(job.finished_at)) },
            JobState::Completed => {
                "finished " (ago(job.finished_at))
                @if let (Some(s), Some(f)) = (job.started_at, job.finished_at) {
                    " in " (short_duration(f.saturating_sub(s)))
                }
                " "
                @let value = job.return_value.as_ref().map(|v| v.to_string());
                span class="mono muted" { (clip(&value.unwrap_or_default(), 60)) }
            },
            JobState::Delayed => {
                @let due = ago(job.due_at);
                @match &job.failed_reason {
                    Some(e) => { "retry " (due) ": " (clip(e, 80)) },
                    None => { "due " (due) },
                }
            },
            JobState::Active => { "started " (ago(job.started_at)) },
            // a parent's count of children to finish is in its badge
            JobState::Waiting | JobState::Paused | JobState::WaitingChildren => {
                span class="mono" { (clip(&job.data.to_string(), 80)) }
            },
        }
    }
}

fn row_actions(ctx: &PageCtx, queue: &str, job: &JobInfo, here: &str) -> Markup {
    if !ctx.can_change() {
        return Markup::default();
    }
    let base = job_href(queue, &job.id);
    let back = [("return_to", here)];
    html! {
        @match job.state {
            JobState::Failed | JobState::Cancelled => {
                (button_form(&format!("{base}/retry"), "Retry", "", &back, None))
            },
            JobState::Delayed => {
                (button_form(&format!("{base}/promote"), "Promote", "", &back, None))
            },
            _ => {},
        }
        @if !job.state.is_finished() {
            @let ask = Some("Cancel this job?");
            (button_form(&format!("{base}/cancel"), "Cancel", "danger", &back, ask))
        }
        @if job.state != JobState::Active {
            @let ask = Some("Remove this job?");
            (button_form(&format!("{base}/remove"), "Remove", "danger", &back, ask))
        }
    }
}

fn pager(queue: &str, tab: JobState, page_no: u64, total: u64) -> Markup {
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let href = queue_href(queue);
    let link = |n: u64, label: &str| {
        html! { a href={ (href) "?state=" (tab.as_str()) "&page=" (n) } { (label) } }
    };
    html! {
        div class="pager" {
            @if page_no > 1 {
                (link(1, "« first"))
                (link(page_no - 1, "‹ previous"))
            }
            span class="muted" {
                "page " (page_no) " of " (pages) " · " (total) " " (tab.as_str()) " job(s)"
            }
            @if page_no < pages {
                (link(page_no + 1, "next ›"))
                (link(pages, "last »"))
            }
        }
    }
}

/// The search box: a GET form back to this page, holding the search shown (a read, so its
/// submit is no action button: read-only pages show it too).
fn search_form(queue: &str, query: &QueuePageQuery, searching: bool) -> Markup {
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    let chosen = query.state.as_deref().filter(|_| searching).unwrap_or("");
    let href = queue_href(queue);
    html! {
        form id="search" class="card" method="get" action=(href) {
            b { "Search" } " "
            input name="name" value=(value(&query.search.name)) placeholder="name (exact)"
                size="16";
            " "
            input name="data" value=(value(&query.search.data)) placeholder="text in data"
                size="20";
            " "
            input name="error" value=(value(&query.search.error)) placeholder="text in error"
                size="16";
            " "
            input name="since" value=(value(&query.search.since)) placeholder="since, e.g. 1h"
                size="9";
            " "
            select name="state" {
                option value="" { "any state" }
                @for s in JobState::ALL {
                    option value=(s.as_str()) selected[s.as_str() == chosen] {
                        (s.as_str().replace('_', " "))
                    }
                }
            }
            " "
            input type="submit" value="Search";
            @if searching { " " a href=(href) { "clear" } }
        }
    }
}

/// A page of search results, with a link to the next page when more may match.
fn search_results(
    ctx: &PageCtx,
    queue: &str,
    filter: &SearchFilter,
    jobs: &[JobInfo],
    next: Option<String>,
) -> Markup {
    // the link to this search, from its start or from a cursor
    let link = |cursor: Option<&str>| {
        let mut href = format!("{}?", queue_href(queue));
        let state = filter.state.map(|s| s.as_str().to_string());
        let since = filter.since.map(queue_core::format_duration);
        for (key, value) in [
            ("name", &filter.name),
            ("data", &filter.data),
            ("error", &filter.error),
            ("since", &since),
            ("state", &state),
        ] {
            if let Some(v) = value {
                href.push_str(&format!("{key}={}&", url_component(v)));
            }
        }
        if let Some(c) = cursor {
            href.push_str(&format!("cursor={}&", url_component(c)));
        }
        href.pop();
        href
    };
    let here = link(filter.cursor.as_deref());
    html! {
        section id="search-results" {
            @if jobs.is_empty() && next.is_some() {
                // (a page's walk is bounded in time: a big queue is searched a part a page)
                div class="card muted" {
                    "No match in the part searched so far: the next page searches on."
                }
            } @else if jobs.is_empty() {
                div class="card muted" { "No job matches." }
            } @else {
                (table(ctx, queue, jobs, &here, "Details (newest first)"))
            }
            div class="pager" {
                @if filter.cursor.is_some() { a href=(link(None)) { "« first" } }
                span class="muted" { (jobs.len()) " job(s) on this page" }
                @if let Some(next) = next {
                    a id="next" href=(link(Some(&next))) { "next page ›" }
                }
            }
        }
    }
}

fn add_form(queue: &str) -> Markup {
    html! {
        details class="card" {
            summary { b { "Add a job" } }
            form method="post" action={ (queue_href(queue)) "/jobs" } {
                p {
                    label {
                        "Name "
                        input name="name" required placeholder="e.g. video.transcode" size="30";
                    }
                }
                p { label { "Data (JSON)" textarea name="data" rows="5" { "{}" } } }
                p {
                    label {
                        "Options (JSON, optional: delay, priority, attempts, backoff, jobId, \
                         timeout, removeOnComplete, removeOnFail)"
                        textarea name="opts" rows="2"
                            placeholder=r#"{"attempts": 3, "backoff": "exp:1s"}"# {}
                    }
                }
                button class="primary" { "Add job" }
            }
        }
    }
}

/// A link back to a queue tab with a notice.
pub fn tab_href(queue: &str, state: &str, notice: &str) -> String {
    format!(
        "{}?state={}&notice={}",
        queue_href(queue),
        url_component(state),
        url_component(notice)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_past_the_last_possible_offset_is_refused_naming_it() {
        assert_eq!(page_offset(1).unwrap(), 0);
        assert_eq!(page_offset(3).unwrap(), 2 * PAGE_SIZE);
        let last = MAX_OFFSET / PAGE_SIZE + 1;
        assert!(page_offset(last).is_ok());
        for bad in [last + 1, u64::MAX, u64::MAX / PAGE_SIZE + 2] {
            let e = page_offset(bad).unwrap_err();
            assert!(matches!(e, AppError::BadRequest(_)), "{e:?}");
            assert!(e.to_string().contains(&bad.to_string()), "{e}");
        }
    }
}
