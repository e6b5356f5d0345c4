//! `/`: every queue on one page — counts per state (flow parents waiting for their children
//! included), paused or running, the last hour as a chart, totals — updated live from
//! `/events`. Counts are read concurrently, one O(1) script call per queue, so the page
//! stays fast with many queues and millions of jobs.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use maud::{html, Markup};
use queue_core::JobState;
use serde::Deserialize;

use super::layout::{error_banner, notice_banner, page};
use super::PageCtx;
use crate::chart::ChartPaths;
use crate::html::queue_href;
use crate::session::Access;
use crate::state::AppState;
use crate::stats::{self, QueueSummary, Throughput};

/// `?notice=` left by an action.
#[derive(Debug, Default, Deserialize)]
pub struct NoticeQuery {
    /// Text to show in a banner.
    pub notice: Option<String>,
}

/// The states shown as columns, in order.
const COLUMNS: [JobState; 7] = [
    JobState::Waiting,
    JobState::WaitingChildren,
    JobState::Active,
    JobState::Delayed,
    JobState::Completed,
    JobState::Failed,
    JobState::Cancelled,
];

/// Updates rows in place from `counts` events; adds a row (from the template) for a new
/// queue and drops the row of a removed one.
const SCRIPT: &str = r#"
const tbody = document.getElementById('queues');
const empty = document.getElementById('empty');
function rowFor(q) { for (const tr of tbody.rows) if (tr.dataset.queue === q) return tr; return null; }
function addRow(q) {
  const tr = document.getElementById('row-template').content.firstElementChild.cloneNode(true);
  tr.dataset.queue = q;
  const href = '/queues/' + encodeURIComponent(q);
  for (const a of tr.querySelectorAll('a[data-state]')) a.href = href + '?state=' + a.dataset.state;
  const name = tr.querySelector('a.name'); name.href = href; name.textContent = q;
  let after = null;
  for (const row of tbody.rows) if (row.dataset.queue > q) { after = row; break; }
  tbody.insertBefore(tr, after);
  empty.hidden = true;
  return tr;
}
function set(tr, field, value) { const el = tr.querySelector('[data-field="' + field + '"]'); if (el) el.textContent = value; }
jobqLive('/events', {
  counts: (rows) => {
    for (const r of rows) {
      const tr = rowFor(r.queue) || addRow(r.queue);
      for (const f of ['waiting', 'waiting_children', 'active', 'delayed', 'completed', 'failed', 'cancelled', 'completed_total', 'failed_total']) set(tr, f, r[f]);
      tr.querySelector('[data-field="failed"]').classList.toggle('nonzero', r.failed > 0);
      const badge = tr.querySelector('[data-field="status"]');
      badge.textContent = r.paused ? 'paused' : 'running';
      badge.className = 'badge ' + (r.paused ? 'paused' : 'running');
      tr.querySelector('path.completed').setAttribute('d', r.chart.completed);
      tr.querySelector('path.failed').setAttribute('d', r.chart.failed);
      tr.querySelector('svg.chart title').textContent = r.chart.title;
      const sum = (a) => a.reduce((x, y) => x + y, 0);
      set(tr, 'hour', sum(r.throughput.completed) + ' / ' + sum(r.throughput.failed));
    }
  },
  removed: (m) => { const tr = rowFor(m.queue); if (tr) tr.remove(); empty.hidden = tbody.rows.length > 0; },
});
"#;

/// The overview page (503 with a banner when Redis cannot be read).
pub async fn overview(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Query(query): Query<NoticeQuery>,
) -> Response {
    let ctx = PageCtx::new(&state, Some(access));
    let loaded = async {
        let names = state.backend().queue_names().await?;
        stats::summaries_of(state.backend(), &names).await
    }
    .await;
    let (rows, banner, status) = match loaded {
        Ok(rows) => (rows, None, axum::http::StatusCode::OK),
        Err(e) => (Vec::new(), Some(error_banner(&e.to_string())), e.status()),
    };
    let template = QueueSummary {
        stats: stats::QueueStats::default(),
        throughput: Throughput::default(),
    };
    let body = html! {
        @if let Some(b) = banner { (b) }
        (notice_banner(query.notice.as_deref()))
        h1 { "Queues" }
        table {
            thead {
                tr {
                    th { "Queue" }
                    th { "Status" }
                    @for c in COLUMNS {
                        th class="num" { (c.as_str().replace('_', " ")) }
                    }
                    th { "Last hour" }
                    th class="num" title="completed / failed in the last hour" { "Hour" }
                    th class="num" { "Completed ever" }
                    th class="num" { "Failed ever" }
                }
            }
            tbody id="queues" {
                @for r in &rows { (row(r)) }
            }
        }
        p id="empty" class="muted" hidden[!rows.is_empty()] {
            "No queues under prefix " (ctx.prefix) " yet: add a job with "
            span class="mono" { "jobq add <queue> <name>" } " or "
            span class="mono" { "POST /api/queues/<queue>/jobs" } "."
        }
        template id="row-template" { (row(&template)) }
    };
    (status, page(&ctx, "Queues", body, &[], SCRIPT)).into_response()
}

/// One queue's row.
fn row(r: &QueueSummary) -> Markup {
    let s = &r.stats;
    let href = queue_href(&s.queue);
    let st = if s.error.is_some() {
        "unreadable"
    } else if s.paused {
        "paused"
    } else {
        "running"
    };
    html! {
        tr data-queue=(s.queue) {
            td { a class="name" href=(href) { (s.queue) } }
            td { span class={ "badge " (st) } data-field="status" title=[s.error.as_deref()] { (st) } }
            @for state in COLUMNS {
                @let n = s.of(state);
                td class="num" {
                    a class={
                            "count " (state.as_str())
                            @if state == JobState::Failed && n > 0 { " nonzero" }
                        }
                        data-state=(state.as_str()) data-field=(state.as_str())
                        href={ (href) "?state=" (state.as_str()) } {
                        (n)
                    }
                }
            }
            td { (ChartPaths::of(&r.throughput).svg()) }
            td class="num" data-field="hour" {
                (r.throughput.completed_sum()) " / " (r.throughput.failed_sum())
            }
            td class="num" data-field="completed_total" { (s.completed_total) }
            td class="num" data-field="failed_total" { (s.failed_total) }
        }
    }
}
