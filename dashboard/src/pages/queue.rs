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
use queue_core::{JobInfo, JobState, SearchFilter};
use serde::Deserialize;

use super::groups::groups_section;
use super::layout::{button_form, notice_banner, page};
use super::{respond, PageCtx};
use crate::api::{groups, list_page, SearchQuery, DEFAULT_GROUPS, MAX_OFFSET};
use crate::backend::deadline;
use crate::error::AppError;
use crate::html::{
    clip, esc, job_href, limits_href, queue_href, relative, schedules_href, short_duration,
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
    let mut body = String::with_capacity(8192);
    body.push_str(&notice_banner(query.notice.as_deref()).into_string());
    body.push_str(&format!(
        "<section id=\"queue\" data-queue=\"{}\" data-state=\"{tab}\">",
        esc(queue)
    ));
    body.push_str(&format!(
        "<h1>{} <span id=\"paused\" class=\"badge {st}\">{st}</span></h1>",
        esc(queue),
        st = if counts.paused { "paused" } else { "running" }
    ));
    body.push_str(&steer_links(queue));
    body.push_str(&queue_actions(&ctx, queue, &counts, tab));
    body.push_str(&tabs(queue, &counts, tab));
    body.push_str(&format!(
        "<p id=\"stale\" class=\"banner info\" hidden>The {tab} jobs changed: \
         <a href=\"{}\">reload</a> to see them.</p>",
        esc(&here)
    ));
    body.push_str(&search_form(queue, &query, search.is_some()));
    match &search {
        Some(filter) => body.push_str(&search_results(&ctx, queue, filter, &jobs, next)),
        None => {
            body.push_str(&job_table(&ctx, queue, tab, &jobs, &here));
            body.push_str(&pager(queue, tab, page_no, counts.of(tab)));
        }
    }
    body.push_str(&groups_section(&groups));
    if ctx.can_change() {
        body.push_str(&add_form(queue));
    }
    body.push_str("</section>");
    Ok(page(
        &ctx,
        queue,
        maud::PreEscaped(body),
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
fn steer_links(queue: &str) -> String {
    format!(
        "<nav class=\"actions\" id=\"steer\"><a href=\"{}\">Schedules</a> \
         <a href=\"{}\">Limits</a></nav>",
        esc(&schedules_href(queue)),
        esc(&limits_href(queue))
    )
}

/// The buttons that act on the whole queue (those that apply to the tab shown).
fn queue_actions(ctx: &PageCtx, queue: &str, counts: &QueueStats, tab: JobState) -> String {
    if !ctx.can_change() {
        return String::new();
    }
    let base = queue_href(queue);
    let back = tab.as_str();
    let mut out = String::from("<div class=\"actions\">");
    if counts.paused {
        out.push_str(
            &button_form(
                &format!("{base}/resume"),
                "Resume",
                "primary",
                &[("state", back)],
                None,
            )
            .into_string(),
        );
    } else {
        out.push_str(
            &button_form(
                &format!("{base}/pause"),
                "Pause",
                "",
                &[("state", back)],
                None,
            )
            .into_string(),
        );
    }
    match tab {
        JobState::Failed => {
            out.push_str(
                &button_form(
                    &format!("{base}/retry-all"),
                    "Retry all failed",
                    "primary",
                    &[("state", back)],
                    Some("Retry every failed job of this queue?"),
                )
                .into_string(),
            );
            out.push_str(&clean_form(&base, "failed"));
        }
        JobState::Completed => out.push_str(&clean_form(&base, "completed")),
        JobState::Cancelled => out.push_str(&clean_form(&base, "cancelled")),
        JobState::Delayed => out.push_str(
            &button_form(
                &format!("{base}/promote-all"),
                "Promote all delayed",
                "",
                &[("state", back)],
                Some("Start every delayed job now?"),
            )
            .into_string(),
        ),
        JobState::Waiting | JobState::Paused => out.push_str(
            &button_form(
                &format!("{base}/drain"),
                "Drain (delete waiting and delayed)",
                "danger",
                &[("state", back)],
                Some("Delete every waiting and delayed job of this queue?"),
            )
            .into_string(),
        ),
        JobState::Active | JobState::WaitingChildren => {}
    }
    out.push_str("</div>");
    out
}

fn clean_form(base: &str, state: &str) -> String {
    format!(
        "<form class=\"inline\" method=\"post\" action=\"{}/clean\" \
         onsubmit=\"return confirm('Delete these {state} jobs?')\">\
         <input type=\"hidden\" name=\"state\" value=\"{state}\">\
         <button class=\"danger\">Clean {state}</button> older than \
         <input name=\"older_than\" value=\"0s\" size=\"5\" title=\"e.g. 0s, 10m, 1h, 7d\"></form>",
        esc(base)
    )
}

fn tabs(queue: &str, counts: &QueueStats, current: JobState) -> String {
    let mut out = String::from("<nav class=\"tabs\">");
    for t in TABS {
        out.push_str(&format!(
            "<a class=\"{}\" href=\"{}?state={t}\">{} <span class=\"badge {t}\" data-count=\"{t}\">{}</span></a>",
            if t == current { "current" } else { "" },
            esc(&queue_href(queue)),
            t.as_str().replace('_', " "),
            counts.of(t)
        ));
    }
    out.push_str("</nav>");
    out
}

fn job_table(ctx: &PageCtx, queue: &str, tab: JobState, jobs: &[JobInfo], here: &str) -> String {
    if jobs.is_empty() {
        return format!(
            "<div class=\"card muted\">No {tab} jobs{}.</div>",
            if tab == JobState::Waiting {
                " (or the queue is empty)"
            } else {
                ""
            }
        );
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
fn table(ctx: &PageCtx, queue: &str, jobs: &[JobInfo], here: &str, details: &str) -> String {
    let mut out = format!(
        "<table><thead><tr><th>Id</th><th>Name</th><th>State</th><th class=\"num\">Attempts</th>\
         <th>Created</th><th>{}</th><th></th></tr></thead><tbody>",
        esc(details)
    );
    for job in jobs {
        out.push_str(&format!(
            "<tr data-job=\"{id}\"><td class=\"mono\"><a href=\"{href}\">{id}</a></td><td>{name}{parent}</td>\
             <td><span class=\"badge {st}\">{st}</span></td><td class=\"num\">{att}/{max}</td>\
             <td title=\"{created_utc}\">{created}</td><td>{info}</td><td>{actions}</td></tr>",
            id = esc(&job.id),
            href = esc(&job_href(queue, &job.id)),
            name = esc(&job.name),
            parent = parent_badge(job),
            st = job.state,
            att = job.attempts_made,
            max = job.opts.max_attempts(),
            created_utc = utc(job.created_at),
            created = relative(job.created_at),
            info = info(job),
            actions = row_actions(ctx, queue, job, here),
        ));
    }
    out.push_str("</tbody></table>");
    out
}

/// ` parent · N left` for a flow's parent (N of its children have not finished), else
/// nothing.
pub fn parent_badge(job: &JobInfo) -> String {
    match job.children_pending {
        Some(n) => format!(
            " <span class=\"badge parent\" title=\"a flow's parent: {n} of its children have \
             not finished\">parent · {n} left</span>"
        ),
        None => String::new(),
    }
}

/// The one thing worth knowing about a job in a listing (escaped).
fn info(job: &JobInfo) -> String {
    if let Some(c) = &job.corrupt {
        return format!(
            "<span class=\"badge failed\">corrupt</span> {}",
            esc(&clip(c, 100))
        );
    }
    match job.state {
        JobState::Failed => format!(
            "<span class=\"muted\">{}</span> {}",
            job.finished_at.map(relative).unwrap_or_default(),
            esc(&clip(job.failed_reason.as_deref().unwrap_or(""), 100))
        ),
        JobState::Cancelled => format!(
            "cancelled {}",
            job.finished_at.map(relative).unwrap_or_default()
        ),
        JobState::Completed => {
            let took = match (job.started_at, job.finished_at) {
                (Some(s), Some(f)) => format!(" in {}", short_duration(f.saturating_sub(s))),
                _ => String::new(),
            };
            format!(
                "finished {}{took} <span class=\"mono muted\">{}</span>",
                job.finished_at.map(relative).unwrap_or_default(),
                esc(&clip(
                    &job.return_value
                        .as_ref()
                        .map(|v| v.to_string())
                        .unwrap_or_default(),
                    60
                ))
            )
        }
        JobState::Delayed => {
            let due = job.due_at.map(relative).unwrap_or_default();
            match &job.failed_reason {
                Some(e) => format!("retry {due}: {}", esc(&clip(e, 80))),
                None => format!("due {due}"),
            }
        }
        JobState::Active => format!(
            "started {}",
            job.started_at.map(relative).unwrap_or_default()
        ),
        // a parent's count of children to finish is in its badge
        JobState::Waiting | JobState::Paused | JobState::WaitingChildren => format!(
            "<span class=\"mono\">{}</span>",
            esc(&clip(&job.data.to_string(), 80))
        ),
    }
}

fn row_actions(ctx: &PageCtx, queue: &str, job: &JobInfo, here: &str) -> String {
    if !ctx.can_change() {
        return String::new();
    }
    let base = job_href(queue, &job.id);
    let back = [("return_to", here)];
    let mut out = String::new();
    match job.state {
        JobState::Failed | JobState::Cancelled => out.push_str(
            &button_form(&format!("{base}/retry"), "Retry", "", &back, None).into_string(),
        ),
        JobState::Delayed => out.push_str(
            &button_form(&format!("{base}/promote"), "Promote", "", &back, None).into_string(),
        ),
        _ => {}
    }
    if !job.state.is_finished() {
        out.push_str(
            &button_form(
                &format!("{base}/cancel"),
                "Cancel",
                "danger",
                &back,
                Some("Cancel this job?"),
            )
            .into_string(),
        );
    }
    if job.state != JobState::Active {
        out.push_str(
            &button_form(
                &format!("{base}/remove"),
                "Remove",
                "danger",
                &back,
                Some("Remove this job?"),
            )
            .into_string(),
        );
    }
    out
}

fn pager(queue: &str, tab: JobState, page_no: u64, total: u64) -> String {
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let link = |n: u64, label: &str| {
        format!(
            "<a href=\"{}?state={tab}&amp;page={n}\">{label}</a>",
            esc(&queue_href(queue))
        )
    };
    let mut out = String::from("<div class=\"pager\">");
    if page_no > 1 {
        out.push_str(&link(1, "« first"));
        out.push_str(&link(page_no - 1, "‹ previous"));
    }
    out.push_str(&format!(
        "<span class=\"muted\">page {page_no} of {pages} · {total} {tab} job(s)</span>"
    ));
    if page_no < pages {
        out.push_str(&link(page_no + 1, "next ›"));
        out.push_str(&link(pages, "last »"));
    }
    out.push_str("</div>");
    out
}

/// The search box: a GET form back to this page, holding the search shown (a read, so its
/// submit is no action button: read-only pages show it too).
fn search_form(queue: &str, query: &QueuePageQuery, searching: bool) -> String {
    let value = |v: &Option<String>| esc(v.as_deref().unwrap_or(""));
    let chosen = query.state.as_deref().filter(|_| searching).unwrap_or("");
    let mut states = String::from("<option value=\"\">any state</option>");
    for s in JobState::ALL {
        states.push_str(&format!(
            "<option value=\"{s}\"{}>{}</option>",
            if s.as_str() == chosen {
                " selected"
            } else {
                ""
            },
            s.as_str().replace('_', " ")
        ));
    }
    format!(
        "<form id=\"search\" class=\"card\" method=\"get\" action=\"{}\">\
         <b>Search</b> <input name=\"name\" value=\"{}\" placeholder=\"name (exact)\" size=\"16\"> \
         <input name=\"data\" value=\"{}\" placeholder=\"text in data\" size=\"20\"> \
         <input name=\"error\" value=\"{}\" placeholder=\"text in error\" size=\"16\"> \
         <input name=\"since\" value=\"{}\" placeholder=\"since, e.g. 1h\" size=\"9\"> \
         <select name=\"state\">{states}</select> <input type=\"submit\" value=\"Search\">{}</form>",
        esc(&queue_href(queue)),
        value(&query.search.name),
        value(&query.search.data),
        value(&query.search.error),
        value(&query.search.since),
        if searching {
            format!(" <a href=\"{}\">clear</a>", esc(&queue_href(queue)))
        } else {
            String::new()
        },
    )
}

/// A page of search results, with a link to the next page when more may match.
fn search_results(
    ctx: &PageCtx,
    queue: &str,
    filter: &SearchFilter,
    jobs: &[JobInfo],
    next: Option<String>,
) -> String {
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
    let mut out = String::from("<section id=\"search-results\">");
    if jobs.is_empty() {
        out.push_str("<div class=\"card muted\">No job matches.</div>");
    } else {
        out.push_str(&table(ctx, queue, jobs, &here, "Details (newest first)"));
    }
    out.push_str("<div class=\"pager\">");
    if filter.cursor.is_some() {
        out.push_str(&format!("<a href=\"{}\">« first</a>", esc(&link(None))));
    }
    out.push_str(&format!(
        "<span class=\"muted\">{} job(s) on this page</span>",
        jobs.len()
    ));
    if let Some(next) = next {
        out.push_str(&format!(
            "<a id=\"next\" href=\"{}\">next page ›</a>",
            esc(&link(Some(&next)))
        ));
    }
    out.push_str("</div></section>");
    out
}

fn add_form(queue: &str) -> String {
    format!(
        "<details class=\"card\"><summary><b>Add a job</b></summary>\
         <form method=\"post\" action=\"{}/jobs\">\
         <p><label>Name <input name=\"name\" required placeholder=\"e.g. video.transcode\" size=\"30\"></label></p>\
         <p><label>Data (JSON)<textarea name=\"data\" rows=\"5\">{{}}</textarea></label></p>\
         <p><label>Options (JSON, optional: delay, priority, attempts, backoff, jobId, timeout, \
         removeOnComplete, removeOnFail)<textarea name=\"opts\" rows=\"2\" \
         placeholder='{{\"attempts\": 3, \"backoff\": \"exp:1s\"}}'></textarea></label></p>\
         <button class=\"primary\">Add job</button></form></details>",
        esc(&queue_href(queue))
    )
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
