//! `/queues/{queue}/jobs/{id}`: one job — state and attempts, the worker running it (an
//! active job), the timeline (created, started, finished or due), progress, data, options,
//! return value, error and its backtrace, logs — with the actions its state allows. A flow's child links to its parent;
//! a flow's parent lists its children (the first [`CHILDREN_SHOWN`], with a count of all by
//! state), each linked to its page, with its state and its return value or failure reason.
//! Every value is escaped (a `maud` template): data, names or ids holding `<script>` show
//! as text. The page
//! follows the job's events: progress updates in place, any other change reloads it.

use axum::extract::{Path, Query, State};
use axum::response::{Html, Response};
use axum::Extension;
use maud::{html, Markup};
use queue_core::{ChildOutcome, ChildState, JobInfo, JobState};
use serde_json::Value;

use super::layout::{button_form, notice_banner, page};
use super::overview::NoticeQuery;
use super::{respond, PageCtx};
use crate::api::is_parent;
use crate::backend::deadline;
use crate::error::AppError;
use crate::html::{
    clip, job_href, pretty_json, queue_href, relative, short_duration, url_component, utc,
};
use crate::session::Access;
use crate::state::AppState;

/// Follows this job's events: progress in place, reload on anything else.
const SCRIPT: &str = r#"
const section = document.getElementById('job');
const q = section.dataset.queue, id = section.dataset.job;
// a button's form post is on its way: its answer is the next page, not a reload
let leaving = false;
document.addEventListener('submit', () => { leaving = true; });
// only this job's events (the server filters them), plus the queue's counts
const es = jobqLive('/events?queue=' + encodeURIComponent(q) + '&job=' + encodeURIComponent(id), {
  job: (e) => {
    if (e.queue !== q || !e.job_ids.includes(id) || leaving) return;
    if (e.event === 'progress') {
      const p = document.getElementById('progress-text');
      if (p) p.textContent = e.fields.progress;
      return;
    }
    // the shared follower may deliver an event written before this page was rendered: the
    // job's add (it exists, or there would be no page), or a move to the state shown
    // already, changes nothing
    if (e.event === 'added' || e.event === section.dataset.state) return;
    // one reload for a burst of events (waiting, active, completed come close together)
    leaving = true;
    setTimeout(() => location.reload(), 100);
  },
  // events were dropped on the way: this job's may be among them
  lagged: () => { if (!leaving) { leaving = true; location.reload(); } },
});
// events before the stream opened (or while it reconnected) are not replayed: once it is
// open, a job whose state moved on since this page was rendered reloads it
es.addEventListener('open', () => {
  fetch('/api/queues/' + encodeURIComponent(q) + '/jobs/' + encodeURIComponent(id))
    .then((r) => r.ok ? r.json() : null)
    .then((j) => {
      if (j && j.state !== section.dataset.state && !leaving) { leaving = true; location.reload(); }
    })
    .catch(() => {});
});
"#;

/// The job page (404 when the queue or job does not exist).
pub async fn job_page(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path((queue, id)): Path<(String, String)>,
    Query(query): Query<NoticeQuery>,
) -> Response {
    let page = render(&state, access, &queue, &id, query.notice.as_deref()).await;
    respond(&state, access, page)
}

async fn render(
    state: &AppState,
    access: Access,
    queue: &str,
    id: &str,
    notice: Option<&str>,
) -> Result<Html<String>, AppError> {
    let ctx = PageCtx::new(state, Some(access));
    let q = state.backend().existing_queue(queue).await?;
    let job = deadline(q.job(id)).await?;
    let children = if is_parent(&job) {
        deadline(q.children(id)).await?
    } else {
        Vec::new()
    };
    let opts = serde_json::to_value(&job.opts).unwrap_or(Value::Null);
    let body = html! {
        (notice_banner(notice))
        section id="job" data-queue=(queue) data-job=(id) data-state=(job.state.as_str()) {
            h1 {
                span class="mono" { (job.id) } " "
                span class={ "badge " (job.state.as_str()) } { (job.state.as_str()) }
                @if job.staged { " " span class="badge" { "staged" } }
            }
            @if job.staged {
                p class="muted" {
                    "Its flow's add did not finish: it is not counted nor listed until its \
                     queue's workers commit it."
                }
            }
            (actions(&ctx, queue, &job))
            (facts(&job))
            @if let Some(c) = &job.corrupt {
                h2 { "Corrupt record" }
                pre class="error" { (c) }
            }
            @if let Some(reason) = &job.failed_reason {
                h2 { "Error" }
                pre class="error" { (reason) }
                @if let Some(trace) = &job.stacktrace {
                    h2 { "Backtrace" }
                    pre { (trace) }
                }
            }
            @if is_parent(&job) { (children_table(&children)) }
            h2 { "Data" }
            pre id="data" { (pretty_json(&job.data)) }
            @if let Some(v) = &job.return_value {
                h2 { "Return value" }
                pre { (pretty_json(v)) }
            }
            h2 { "Options" }
            pre { (pretty_json(&opts)) }
            h2 { "Logs (" (job.logs.len()) " line(s))" }
            @if job.logs.is_empty() {
                p class="muted" { "No log lines." }
            } @else {
                pre id="logs" { (job.logs.join("\n")) }
            }
        }
    };
    Ok(page(
        &ctx,
        &format!("{queue} / {id}"),
        body,
        &[(queue, queue_href(queue)), (id, job_href(queue, id))],
        SCRIPT,
    ))
}

fn actions(ctx: &PageCtx, queue: &str, job: &JobInfo) -> Markup {
    if !ctx.can_change() {
        return Markup::default();
    }
    let base = job_href(queue, &job.id);
    html! {
        div class="actions" {
            @match job.state {
                JobState::Failed | JobState::Cancelled => {
                    (button_form(&format!("{base}/retry"), "Retry", "primary", &[], None))
                },
                JobState::Delayed => {
                    (button_form(
                        &format!("{base}/promote"),
                        "Promote (run now)",
                        "primary",
                        &[],
                        None,
                    ))
                },
                _ => {},
            }
            @if !job.state.is_finished() {
                (button_form(
                    &format!("{base}/cancel"),
                    "Cancel",
                    "danger",
                    &[],
                    Some(if job.state == JobState::Active {
                        "Cancel this running job? Its worker stops it."
                    } else {
                        "Cancel this job?"
                    }),
                ))
            }
            @if job.state != JobState::Active {
                (button_form(
                    &format!("{base}/remove"),
                    "Remove",
                    "danger",
                    &[],
                    Some("Remove this job and its logs?"),
                ))
            }
        }
    }
}

/// Name, attempts, priority, progress and the timeline.
fn facts(job: &JobInfo) -> Markup {
    let mut rows: Vec<(&str, Markup)> = vec![
        ("Name", html! { (job.name) }),
        ("Queue", html! { (job.queue) }),
        (
            "Attempts",
            html! { (job.attempts_made) " of " (job.opts.max_attempts()) },
        ),
        ("Priority", html! { (job.priority) }),
    ];
    if let Some(w) = &job.worker {
        rows.push((
            "Worker",
            html! {
                a class="mono" id="worker" href={ "/workers#w-" (url_component(w)) } { (w) }
            },
        ));
    }
    if let Some(p) = &job.parent {
        rows.push(("Parent", job_link(&p.queue, &p.id)));
    }
    if let Some(n) = job.children_pending {
        rows.push((
            "Children",
            html! { (n) " not finished " a href="#children" { "(below)" } },
        ));
    }
    if let Some(p) = &job.progress {
        rows.push(("Progress", progress(p)));
    }
    rows.push(("Created", when(job.created_at)));
    if let Some(t) = job.started_at {
        let waited = t.saturating_sub(job.created_at);
        rows.push((
            "Started",
            html! {
                (when(t)) " " span class="muted" { "(waited " (short_duration(waited)) ")" }
            },
        ));
    }
    if let Some(t) = job.finished_at {
        rows.push((
            "Finished",
            html! {
                (when(t))
                @if let Some(s) = job.started_at {
                    " " span class="muted" { "(ran " (short_duration(t.saturating_sub(s))) ")" }
                }
            },
        ));
    }
    if let Some(t) = job.due_at {
        if job.state == JobState::Delayed {
            rows.push(("Due", when(t)));
        }
    }
    html! {
        div class="card" {
            dl class="facts" {
                @for (label, value) in rows {
                    dt { (label) }
                    dd { (value) }
                }
            }
        }
    }
}

/// Children listed on a parent's page; the rest are counted.
pub const CHILDREN_SHOWN: usize = 200;

/// `<queue>/<id>` linked to that job's page.
fn job_link(queue: &str, id: &str) -> Markup {
    html! { a class="mono" href=(job_href(queue, id)) { (queue) "/" (id) } }
}

/// A parent's children: how many in each state, then the first [`CHILDREN_SHOWN`] in the
/// order the flow gave them, each with its state and its return value or failure reason
/// (clipped). A removed child has no page to link to.
fn children_table(children: &[ChildOutcome]) -> Markup {
    // per state, finished ones first, then in the order of the job states
    let order = [
        ChildState::Completed,
        ChildState::Failed,
        ChildState::Removed,
    ]
    .into_iter()
    .chain(JobState::ALL.into_iter().map(ChildState::Unfinished));
    let tally: Vec<String> = order
        .filter_map(|st| {
            let n = children.iter().filter(|c| c.state == st).count();
            (n > 0).then(|| format!("{n} {st}"))
        })
        .collect();
    html! {
        h2 id="children" { "Children (" (children.len()) ")" }
        @if children.is_empty() {
            p class="muted" { "No children found." }
        } @else {
            p class="muted" {
                (tally.join(" · "))
                @if children.len() > CHILDREN_SHOWN {
                    " — showing the first " (CHILDREN_SHOWN) " of " (children.len())
                }
            }
            table id="children-table" {
                thead {
                    tr {
                        th { "Child" }
                        th { "Name" }
                        th { "State" }
                        th { "Return value or reason" }
                    }
                }
                tbody {
                    @for c in children.iter().take(CHILDREN_SHOWN) {
                        tr {
                            td {
                                @if c.state == ChildState::Removed {
                                    span class="mono" { (c.queue) "/" (c.id) }
                                } @else {
                                    (job_link(&c.queue, &c.id))
                                }
                            }
                            td { (c.name) }
                            td { span class={ "badge " (c.state.as_str()) } { (c.state.as_str()) } }
                            td {
                                @match (&c.return_value, &c.failed_reason) {
                                    (_, Some(reason)) => {
                                        span class="reason" { (clip(reason, 120)) }
                                    },
                                    (Some(v), None) => {
                                        span class="mono" { (clip(&v.to_string(), 120)) }
                                    },
                                    (None, None) => {},
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn when(ms: u64) -> Markup {
    html! { (utc(ms)) " " span class="muted" { "(" (relative(ms)) ")" } }
}

/// A bar for a percentage, else the JSON.
fn progress(p: &Value) -> Markup {
    html! {
        @match p.as_f64() {
            Some(pct) if (0.0..=100.0).contains(&pct) => {
                span class="progress" { span style={ "width:" (format!("{pct:.0}")) "%" } {} }
                " " span id="progress-text" { (pct) } "%"
            },
            _ => span id="progress-text" class="mono" { (p.to_string()) },
        }
    }
}
