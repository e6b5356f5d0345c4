//! `/queues/{queue}/jobs/{id}`: one job — state and attempts, the worker running it (an
//! active job), the timeline (created, started, finished or due), progress, data, options,
//! return value, error and its backtrace, logs — with the actions its state allows. A flow's child links to its parent;
//! a flow's parent lists its children (the first [`CHILDREN_SHOWN`], with a count of all by
//! state), each linked to its page, with its state and its return value or failure reason.
//! Every value is escaped: data, names or ids holding `<script>` show as text. The page
//! follows the job's events: progress updates in place, any other change reloads it.

use axum::extract::{Path, Query, State};
use axum::response::{Html, Response};
use axum::Extension;
use queue_core::{ChildOutcome, ChildState, JobInfo, JobState};
use serde_json::Value;

use super::layout::{button_form, notice_banner, page};
use super::overview::NoticeQuery;
use super::{respond, PageCtx};
use crate::api::is_parent;
use crate::backend::deadline;
use crate::error::AppError;
use crate::html::{
    clip, esc, job_href, pretty_json, queue_href, relative, short_duration, url_component, utc,
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
    let mut body = String::with_capacity(8192);
    body.push_str(&notice_banner(notice).into_string());
    body.push_str(&format!(
        "<section id=\"job\" data-queue=\"{}\" data-job=\"{}\" data-state=\"{}\">",
        esc(queue),
        esc(id),
        job.state
    ));
    body.push_str(&format!(
        "<h1><span class=\"mono\">{}</span> <span class=\"badge {st}\">{st}</span></h1>",
        esc(&job.id),
        st = job.state
    ));
    body.push_str(&actions(&ctx, queue, &job));
    body.push_str(&facts(&job));
    if let Some(c) = &job.corrupt {
        body.push_str("<h2>Corrupt record</h2>");
        body.push_str(&format!("<pre class=\"error\">{}</pre>", esc(c)));
    }
    if let Some(reason) = &job.failed_reason {
        body.push_str("<h2>Error</h2>");
        body.push_str(&format!("<pre class=\"error\">{}</pre>", esc(reason)));
        if let Some(trace) = &job.stacktrace {
            body.push_str("<h2>Backtrace</h2>");
            body.push_str(&format!("<pre>{}</pre>", esc(trace)));
        }
    }
    if is_parent(&job) {
        body.push_str(&children_table(&children));
    }
    body.push_str("<h2>Data</h2>");
    body.push_str(&format!(
        "<pre id=\"data\">{}</pre>",
        esc(&pretty_json(&job.data))
    ));
    if let Some(v) = &job.return_value {
        body.push_str("<h2>Return value</h2>");
        body.push_str(&format!("<pre>{}</pre>", esc(&pretty_json(v))));
    }
    body.push_str("<h2>Options</h2>");
    let opts = serde_json::to_value(&job.opts).unwrap_or(Value::Null);
    body.push_str(&format!("<pre>{}</pre>", esc(&pretty_json(&opts))));
    body.push_str(&format!("<h2>Logs ({} line(s))</h2>", job.logs.len()));
    if job.logs.is_empty() {
        body.push_str("<p class=\"muted\">No log lines.</p>");
    } else {
        body.push_str(&format!(
            "<pre id=\"logs\">{}</pre>",
            esc(&job.logs.join("\n"))
        ));
    }
    body.push_str("</section>");
    Ok(page(
        &ctx,
        &format!("{queue} / {id}"),
        maud::PreEscaped(body),
        &[(queue, queue_href(queue)), (id, job_href(queue, id))],
        SCRIPT,
    ))
}

fn actions(ctx: &PageCtx, queue: &str, job: &JobInfo) -> String {
    if !ctx.can_change() {
        return String::new();
    }
    let base = job_href(queue, &job.id);
    let mut out = String::from("<div class=\"actions\">");
    match job.state {
        JobState::Failed | JobState::Cancelled => out.push_str(
            &button_form(&format!("{base}/retry"), "Retry", "primary", &[], None).into_string(),
        ),
        JobState::Delayed => out.push_str(
            &button_form(
                &format!("{base}/promote"),
                "Promote (run now)",
                "primary",
                &[],
                None,
            )
            .into_string(),
        ),
        _ => {}
    }
    if !job.state.is_finished() {
        out.push_str(
            &button_form(
                &format!("{base}/cancel"),
                "Cancel",
                "danger",
                &[],
                Some(if job.state == JobState::Active {
                    "Cancel this running job? Its worker stops it."
                } else {
                    "Cancel this job?"
                }),
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
                &[],
                Some("Remove this job and its logs?"),
            )
            .into_string(),
        );
    }
    out.push_str("</div>");
    out
}

/// Name, attempts, priority, progress and the timeline.
fn facts(job: &JobInfo) -> String {
    let mut rows: Vec<(&str, String)> = vec![
        ("Name", esc(&job.name)),
        ("Queue", esc(&job.queue)),
        (
            "Attempts",
            format!("{} of {}", job.attempts_made, job.opts.max_attempts()),
        ),
        ("Priority", job.priority.to_string()),
    ];
    if let Some(w) = &job.worker {
        rows.push((
            "Worker",
            format!(
                "<a class=\"mono\" id=\"worker\" href=\"/workers#w-{}\">{}</a>",
                esc(&url_component(w)),
                esc(w)
            ),
        ));
    }
    if let Some(p) = &job.parent {
        rows.push(("Parent", job_link(&p.queue, &p.id)));
    }
    if let Some(n) = job.children_pending {
        rows.push((
            "Children",
            format!("{n} not finished <a href=\"#children\">(below)</a>"),
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
            format!(
                "{} <span class=\"muted\">(waited {})</span>",
                when(t),
                short_duration(waited)
            ),
        ));
    }
    if let Some(t) = job.finished_at {
        let ran = job
            .started_at
            .map(|s| {
                format!(
                    " <span class=\"muted\">(ran {})</span>",
                    short_duration(t.saturating_sub(s))
                )
            })
            .unwrap_or_default();
        rows.push(("Finished", format!("{}{ran}", when(t))));
    }
    if let Some(t) = job.due_at {
        if job.state == JobState::Delayed {
            rows.push(("Due", when(t)));
        }
    }
    let mut out = String::from("<div class=\"card\"><dl class=\"facts\">");
    for (label, value) in rows {
        out.push_str(&format!("<dt>{label}</dt><dd>{value}</dd>"));
    }
    out.push_str("</dl></div>");
    out
}

/// Children listed on a parent's page; the rest are counted.
pub const CHILDREN_SHOWN: usize = 200;

/// `<queue>/<id>` linked to that job's page (escaped).
fn job_link(queue: &str, id: &str) -> String {
    format!(
        "<a class=\"mono\" href=\"{}\">{}/{}</a>",
        esc(&job_href(queue, id)),
        esc(queue),
        esc(id)
    )
}

/// A parent's children: how many in each state, then the first [`CHILDREN_SHOWN`] in the
/// order the flow gave them, each with its state and its return value or failure reason
/// (clipped). A removed child has no page to link to.
fn children_table(children: &[ChildOutcome]) -> String {
    let mut out = format!("<h2 id=\"children\">Children ({})</h2>", children.len());
    if children.is_empty() {
        out.push_str("<p class=\"muted\">No children found.</p>");
        return out;
    }
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
    out.push_str(&format!("<p class=\"muted\">{}", tally.join(" · ")));
    if children.len() > CHILDREN_SHOWN {
        out.push_str(&format!(
            " — showing the first {CHILDREN_SHOWN} of {}",
            children.len()
        ));
    }
    out.push_str(
        "</p><table id=\"children-table\"><thead><tr><th>Child</th><th>Name</th><th>State</th>\
         <th>Return value or reason</th></tr></thead><tbody>",
    );
    for c in children.iter().take(CHILDREN_SHOWN) {
        let child = if c.state == ChildState::Removed {
            format!(
                "<span class=\"mono\">{}/{}</span>",
                esc(&c.queue),
                esc(&c.id)
            )
        } else {
            job_link(&c.queue, &c.id)
        };
        let outcome = match (&c.return_value, &c.failed_reason) {
            (_, Some(reason)) => {
                format!("<span class=\"reason\">{}</span>", esc(&clip(reason, 120)))
            }
            (Some(v), None) => format!(
                "<span class=\"mono\">{}</span>",
                esc(&clip(&v.to_string(), 120))
            ),
            (None, None) => String::new(),
        };
        out.push_str(&format!(
            "<tr><td>{child}</td><td>{}</td><td><span class=\"badge {st}\">{st}</span></td>\
             <td>{outcome}</td></tr>",
            esc(&c.name),
            st = esc(c.state.as_str()),
        ));
    }
    out.push_str("</tbody></table>");
    out
}

fn when(ms: u64) -> String {
    format!(
        "{} <span class=\"muted\">({})</span>",
        utc(ms),
        relative(ms)
    )
}

/// A bar for a percentage, else the JSON (escaped).
fn progress(p: &Value) -> String {
    match p.as_f64() {
        Some(pct) if (0.0..=100.0).contains(&pct) => format!(
            "<span class=\"progress\"><span style=\"width:{pct:.0}%\"></span></span> <span id=\"progress-text\">{pct}</span>%"
        ),
        _ => format!("<span id=\"progress-text\" class=\"mono\">{}</span>", esc(&p.to_string())),
    }
}
