//! `/workers`: the live workers, from their heartbeats — id, host, pid, version, queues
//! (linked), jobs held (the first few linked) of its concurrency, when it started and when
//! it was last seen. A worker killed without leaving drops out three heartbeats after its
//! last. Records come from Redis and are escaped like any job data; a corrupt one shows as
//! its id and why.

use axum::extract::State;
use axum::response::{Html, Response};
use axum::Extension;
use queue_core::WorkerInfo;

use super::layout::page;
use super::{respond, PageCtx};
use crate::discovery::workers;
use crate::error::AppError;
use crate::html::{clip, esc, job_href, queue_href, relative, url_component, utc};
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
        maud::PreEscaped(body),
        &[("workers", "/workers".into())],
        "",
    ))
}

/// The page's content for `list`.
fn workers_body(list: &[WorkerInfo], prefix: &str) -> String {
    let held: usize = list.iter().map(|w| w.running_count).sum();
    let mut out = format!(
        "<h1>Workers</h1><p class=\"muted\"><span id=\"worker-count\">{}</span> live \
         worker(s) holding {held} job(s). Each heartbeats every few seconds; a worker \
         killed without stopping drops out three heartbeats after its last.</p>",
        list.len()
    );
    if list.is_empty() {
        out.push_str(&format!(
            "<p id=\"no-workers\" class=\"muted\">No live worker under prefix {}: start one \
             with <span class=\"mono\">jobq-worker</span>.</p>",
            esc(prefix)
        ));
        return out;
    }
    out.push_str(
        "<table id=\"workers\"><thead><tr><th>Worker</th><th>Host</th><th class=\"num\">PID\
         </th><th>Version</th><th>Queues</th><th>Jobs held</th><th>Started</th>\
         <th>Last seen</th></tr></thead><tbody>",
    );
    for w in list {
        out.push_str(&row(w));
    }
    out.push_str("</tbody></table>");
    out
}

/// One worker's row; its element id is the worker id, so a job page links to it.
fn row(w: &WorkerInfo) -> String {
    let open = format!(
        "<tr id=\"w-{anchor}\" data-worker=\"{id}\"><td class=\"mono\">{id}</td>",
        anchor = esc(&url_component(&w.id)),
        id = esc(&w.id),
    );
    if let Some(why) = &w.corrupt {
        return format!(
            "{open}<td colspan=\"7\" class=\"reason\">corrupt record: {}</td></tr>",
            esc(&clip(why, 200))
        );
    }
    let mut queues: Vec<String> = w
        .queues
        .iter()
        .map(|q| format!("<a href=\"{}\">{}</a>", esc(&queue_href(q)), esc(q)))
        .collect();
    if w.queue_count > w.queues.len() {
        queues.push(format!(
            "<span class=\"muted\">+{} more</span>",
            w.queue_count - w.queues.len()
        ));
    }
    let mut jobs: Vec<String> = w
        .running
        .iter()
        .take(JOBS_SHOWN)
        .map(|j| {
            format!(
                "<a class=\"mono\" href=\"{}\">{}</a>",
                esc(&job_href(&j.queue, &j.id)),
                esc(&clip(&j.id, 40))
            )
        })
        .collect();
    let shown = jobs.len();
    if w.running_count > shown {
        jobs.push(format!(
            "<span class=\"muted\">+{} more</span>",
            w.running_count - shown
        ));
    }
    format!(
        "{open}<td>{host}</td><td class=\"num\">{pid}</td><td>{version}</td><td>{queues}</td>\
         <td><span data-field=\"running\">{running}</span> of {conc}{jobs}</td>\
         <td title=\"{started_utc}\">{started}</td><td title=\"{seen_utc}\">{seen}</td></tr>",
        host = esc(&w.host),
        pid = w.pid,
        version = esc(&w.version),
        queues = queues.join(", "),
        running = w.running_count,
        conc = w.concurrency,
        jobs = if jobs.is_empty() {
            String::new()
        } else {
            format!("<br>{}", jobs.join(" "))
        },
        started_utc = esc(&utc(w.started_at)),
        started = esc(&relative(w.started_at)),
        seen_utc = esc(&utc(w.last_seen)),
        seen = esc(&relative(w.last_seen)),
    )
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
        let html = workers_body(&[w, bad], evil);
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("<span data-field=\"running\">9</span> of 8"));
        assert!(
            html.contains("+2 more") && html.contains("+8 more"),
            "{html}"
        );
        assert!(html.contains("corrupt record: &lt;script&gt;"));
        assert!(html.contains("/queues/%3Cscript%3Ealert%281%29%3C%2Fscript%3E"));
        assert!(workers_body(&[], evil).contains("No live worker under prefix &lt;script&gt;"));
    }
}
